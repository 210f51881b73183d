// The performance chart: one range at a time from the history endpoint, green when the range
// ended at or above where it started, red otherwise; all-time performance above it. A toggle
// adds the benchmark (SPY) rebased to the account's first value, and the return over it.

import { Card, EndpointWidget, byId, chartLibrary, drawChart, setSigned, toggleGroup } from "./card.js";
import { compareDecimal } from "./decimal.js";
import * as format from "./format.js";

const GREEN = "#3ddc97";
const RED = "#ff6b6b";
const BENCHMARK = "#6ea8fe";
const MUTED = "#9aa3b2";
const PERIOD_NAMES = {
  "1D": "Today", "1W": "Past week", "1M": "Past month", "6M": "Past 6 months",
  "1Y": "Past year", MAX: "Since you joined",
};

export class HistoryChart extends EndpointWidget {
  constructor(source) {
    super(source);
    this.card = new Card("history", "your performance");
    [this.canvas, this.cover, this.empty] = this.card.parts("chart", "cover", "empty");
    [this.allTime, this.periodLabel, this.periodChange, this.benchmarkToggle, this.benchmarkLine] =
      byId("all-time", "period-label", "period-change", "benchmark-toggle", "benchmark-line");
    this.chart = null;
    this.period = toggleGroup(this.card.element, "period", (period) => {
      this.period = period;
      this.load();
    });
    this.benchmarkToggle.addEventListener("click", () => {
      const on = this.benchmarkToggle.getAttribute("aria-pressed") !== "true";
      this.benchmarkToggle.setAttribute("aria-pressed", String(on));
      this.load();
    });
  }

  /** The benchmark's symbol while the toggle is on, else null. */
  get benchmark() {
    const on = this.benchmarkToggle.getAttribute("aria-pressed") === "true";
    return on ? this.benchmarkToggle.dataset.benchmark : null;
  }

  async load() {
    this.card.clear();
    this.cover.hidden = false;
    if (await this.read({ period: this.period, benchmark: this.benchmark })) this.cover.hidden = true;
  }

  /** The answer of the latest read (an older one is dropped), so of the range and benchmark chosen now. */
  show(history) {
    const { period, benchmark } = this;
    const all = history.all_time_change || { amount: null, percent: null };
    setSigned(this.allTime, format.change(all.amount, all.percent), format.direction(all.amount));
    this.periodLabel.textContent = PERIOD_NAMES[period];
    const change = history.period_change;
    setSigned(this.periodChange, format.change(change.amount, change.percent), format.direction(change.amount));

    // Alpaca leaves a point's equity null where it has no value (before the first deposit).
    const known = history.equity
      .map((value, index) => ({ value, time: Date.parse(history.timestamps[index]) }))
      .filter((point) => point.value !== null);
    const rising = known.length < 2 || compareDecimal(known.at(-1).value, known[0].value) >= 0;
    const colour = rising ? GREEN : RED;
    this.card.element.dataset.trend = rising ? "up" : "down";
    this.card.element.dataset.period = period;
    this.card.element.dataset.points = String(known.length);
    this.empty.hidden = known.length > 0;

    const Chart = chartLibrary();
    const points = known.map((point) => ({ x: point.time, y: Number(point.value) }));  // positions only
    const compared = this.compare(history, benchmark);
    const dataset = {
      label: "Account value",
      data: points,
      borderColor: colour,
      borderWidth: 2,
      pointRadius: 0,
      pointHitRadius: 8,
      tension: 0.2,
      fill: "start",
      backgroundColor: (context) => gradient(context.chart, colour),
    };
    const options = {
      animation: false,
      maintainAspectRatio: false,
      interaction: { mode: "index", intersect: false },
      plugins: {
        legend: { display: compared !== null, labels: { color: MUTED, boxHeight: 2 } },
        tooltip: {
          callbacks: {
            title: (items) => format.tooltipTime(period, items[0].parsed.x),
            label: (item) => (item.datasetIndex === 0
              ? format.money(known[item.dataIndex].value)
              : `${compared.label}: ${format.money(compared.known[item.dataIndex].value)}`),
          },
        },
      },
      scales: {
        x: {
          type: "linear",
          min: known.length ? known[0].time : undefined,
          max: known.length ? known.at(-1).time : undefined,
          grid: { display: false },
          ticks: {
            color: "#9aa3b2",
            maxTicksLimit: 6,
            maxRotation: 0,
            callback: (value) => format.axisTime(period, value),
          },
        },
        y: {
          grid: { color: "#232834" },
          ticks: { color: "#9aa3b2", maxTicksLimit: 5, callback: (value) => format.compactMoney(value) },
        },
      },
    };
    const datasets = compared ? [dataset, compared.dataset] : [dataset];
    this.chart = drawChart(Chart, this.chart, this.canvas, { type: "line", data: { datasets }, options });
  }

  /** With the benchmark `symbol` on: its return and the account's excess return written above
   * the chart, and its dataset and known points (null when it has none in this range). */
  compare(history, symbol) {
    this.benchmarkLine.hidden = !symbol;
    if (!symbol) {
      delete this.card.element.dataset.benchmarkPoints;
      return null;
    }
    const benchmark = history.benchmark || { symbol, values: [], return: null, excess_return: null };
    const known = benchmark.values
      .map((value, index) => ({ value, time: Date.parse(history.timestamps[index]) }))
      .filter((point) => point.value !== null);
    this.card.element.dataset.benchmarkPoints = String(known.length);
    document.getElementById("benchmark-label").textContent = benchmark.symbol;
    const own = document.getElementById("benchmark-return");
    setSigned(own, format.signedPercent(benchmark.return), format.direction(benchmark.return));
    const excess = document.getElementById("excess-return");
    setSigned(excess, format.signedPercent(benchmark.excess_return), format.direction(benchmark.excess_return));
    document.getElementById("excess-label").textContent = `You vs ${benchmark.symbol}`;
    if (!known.length) return null;
    const label = `${benchmark.symbol} (rebased)`;
    return {
      label,
      known,
      dataset: {
        label,
        data: known.map((point) => ({ x: point.time, y: Number(point.value) })),  // positions only
        borderColor: BENCHMARK,
        borderWidth: 1.5,
        borderDash: [6, 4],
        pointRadius: 0,
        pointHitRadius: 8,
        tension: 0.2,
        fill: false,
      },
    };
  }
}

function gradient(chart, colour) {
  const { ctx, chartArea } = chart;
  if (!chartArea) return "transparent";
  const fill = ctx.createLinearGradient(0, chartArea.top, 0, chartArea.bottom);
  fill.addColorStop(0, `${colour}55`);
  fill.addColorStop(1, `${colour}00`);
  return fill;
}
