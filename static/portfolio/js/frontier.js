// The efficient frontier of the current holdings (long only, fully invested, from their past
// daily returns): the curve, the current portfolio, the minimum-volatility and maximum-Sharpe
// mixes on a scatter chart, and in words what the frontier offers at the current volatility
// and return. Method and a worked example: docs/analytics.md.

import { Card, EndpointWidget, chartLibrary, drawChart, el } from "./card.js";
import { compareDecimal } from "./decimal.js";
import * as figures from "./figures.js";
import * as format from "./format.js";

const MARKS = [
  // [answer key, label, colour, point style, radius]
  ["current", "Your portfolio", "#f5c451", "circle", 7],
  ["min_volatility", "Minimum volatility", "#63e6be", "triangle", 8],
  ["max_sharpe", "Maximum Sharpe", "#e599f7", "rectRot", 8],
];
const CURVE = "#6ea8fe";
const MUTED = "#9aa3b2";

export class Frontier extends EndpointWidget {
  constructor(source) {
    super(source);
    this.card = new Card("frontier", "your efficient frontier");
    [this.canvas, this.cover, this.empty, this.figures, this.excluded, this.disclaimer] =
      this.card.parts("chart", "cover", "empty", "figures", "excluded", "disclaimer");
    this.chart = null;
  }

  async load() {
    await this.read();
    this.cover.hidden = true;
  }

  show(frontier) {
    const curve = frontier.points.length > 0;
    this.card.element.dataset.points = String(frontier.points.length);
    this.empty.textContent = curve ? "" : frontier.explanation;
    this.empty.hidden = curve;
    this.figures.replaceChildren(...this.sentences(frontier).map((line) => el("li", {}, line)));
    figures.showExcluded(this.excluded, frontier.excluded);
    if (frontier.disclaimer) this.disclaimer.textContent = frontier.disclaimer;
    if (curve) this.draw(frontier);
    else if (this.chart) {
      this.chart.destroy();
      this.chart = null;
    }
  }

  sentences(frontier) {
    const { current, improvement } = frontier;
    const curve = frontier.points.length > 0;
    const lines = [];
    if (curve && frontier.explanation) lines.push(frontier.explanation);
    if (current) {
      lines.push(`Your portfolio: ${format.percent(current.return)} a year at `
        + `${format.percent(current.volatility)} volatility, Sharpe ${figures.ratio(current.sharpe)}.`);
    }
    if (curve && current && improvement) {
      lines.push(improvement.return_at_current_volatility === null
        ? "No mix on the frontier has your volatility."
        : `At your volatility the best mix returned ${format.percent(improvement.return_at_current_volatility)} a year.`);
      lines.push(improvement.volatility_at_current_return === null
        ? "No mix on the frontier reaches your return."
        : `The least volatile mix with your return had ${format.percent(improvement.volatility_at_current_return)} volatility.`);
    }
    for (const [key, label] of MARKS.slice(1)) {
      const mark = frontier[key];
      if (!mark) continue;
      const mix = mark.weights
        .filter((part) => compareDecimal(part.weight, "0") !== 0)
        .map((part) => `${part.symbol} ${format.percent(part.weight)}`)
        .join(", ");
      lines.push(`${label}: ${format.percent(mark.return)} a year at ${format.percent(mark.volatility)} `
        + `volatility, Sharpe ${figures.ratio(mark.sharpe)} (${mix}).`);
    }
    return lines;
  }

  draw(frontier) {
    const Chart = chartLibrary();
    const at = (point) => ({ x: Number(point.volatility), y: Number(point.return) });  // positions only
    const sources = [frontier.points];
    const datasets = [{
      label: "Efficient frontier",
      data: frontier.points.map(at),
      showLine: true,
      borderColor: CURVE,
      backgroundColor: CURVE,
      borderWidth: 2,
      pointRadius: 2,
      tension: 0.2,
    }];
    for (const [key, label, colour, pointStyle, radius] of MARKS) {
      if (!frontier[key]) continue;
      sources.push([frontier[key]]);
      datasets.push({
        label, data: [at(frontier[key])], pointStyle, pointRadius: radius, pointHoverRadius: radius + 2,
        backgroundColor: colour, borderColor: "#171a21", borderWidth: 1,
      });
    }
    const axis = (title) => ({
      title: { display: true, text: title, color: MUTED },
      grid: { color: "#232834" },
      ticks: { color: MUTED, maxTicksLimit: 6, callback: (value) => `${value} %` },
    });
    const options = {
      animation: false,
      maintainAspectRatio: false,
      plugins: {
        legend: { labels: { color: MUTED, usePointStyle: true, boxHeight: 8 } },
        tooltip: {
          callbacks: {
            label: (item) => {
              const point = sources[item.datasetIndex][item.dataIndex];
              return `${item.dataset.label}: ${format.percent(point.return)} a year at `
                + `${format.percent(point.volatility)} volatility`;
            },
          },
        },
      },
      scales: { x: axis("Volatility (a year)"), y: axis("Return (a year)") },
    };
    this.chart = drawChart(Chart, this.chart, this.canvas, { type: "scatter", data: { datasets }, options });
  }
}
