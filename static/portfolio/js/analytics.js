// Risk and diversification gauges and the allocation pie: both from the analytics endpoint,
// fetched together and refreshed every few minutes (page.js; scores move slowly; definitions
// and worked examples in docs/analytics.md).

import { Card, chartLibrary, drawChart, el, toggleGroup } from "./card.js";
import * as format from "./format.js";

const PALETTE = [
  "#6ea8fe", "#3ddc97", "#f5c451", "#ff8fab", "#b197fc", "#63e6be", "#ffa94d",
  "#4dabf7", "#e599f7", "#a9e34b", "#ff6b6b", "#74c0fc", "#ffd8a8", "#96f2d7",
];

export class Scores {
  constructor() {
    this.card = new Card("scores", "your scores");
    this.updated = document.getElementById("scores-updated");
  }

  show(analytics) {
    this.gauge("risk", analytics.risk, (score) => 120 - score * 12);           // green -> red
    this.gauge("diversification", analytics.diversification, (score) => score * 12);
    this.updated.textContent = `Updated ${format.clock(analytics.as_of)}`;
  }

  gauge(name, { score, label, explanation }, hue) {
    const value = score === null ? null : Number(score);      // a 0-10 score, not money
    const number = document.getElementById(`${name}-score`);
    number.textContent = score === null ? "–" : score;
    number.style.color = value === null ? "" : `hsl(${hue(value)} 75% 55%)`;
    document.getElementById(`${name}-label`).textContent = label || "";
    document.getElementById(`${name}-text`).textContent = explanation || "";
    const meter = document.getElementById(`${name}-meter`);
    meter.setAttribute("aria-valuenow", score === null ? "0" : score);
    meter.setAttribute("aria-valuetext", score === null ? "Not enough data" : `${score} of 10, ${label}`);
    meter.style.setProperty("--score", String(value || 0));
  }
}

export class Allocation {
  constructor() {
    this.card = new Card("allocation", "your allocation");
    [this.canvas, this.cover, this.legend] = this.card.parts("chart", "cover", "legend");
    this.data = null;
    this.chart = null;
    this.view = toggleGroup(this.card.element, "view", (view) => {
      this.view = view;
      if (this.data) this.draw();
    });
  }

  show(analytics) {
    this.data = analytics.allocation;
    try {
      this.draw();
    } catch (error) {
      this.card.fail(error.message, () => this.draw());
    }
  }

  draw() {
    const slices = this.data[this.view] || [];
    this.card.element.dataset.view = this.view;
    this.legend.replaceChildren(...slices.map((slice, index) => el("li", {},
      el("span", { className: "swatch", dataset: { colour: PALETTE[index % PALETTE.length] } }),
      el("span", { className: "slice-name" }, slice.name),
      el("span", { className: "share" }, format.percent(slice.percent)),
    )));
    for (const swatch of this.legend.querySelectorAll(".swatch")) {
      swatch.style.background = swatch.dataset.colour;
    }
    if (!slices.length) {
      this.legend.replaceChildren(el("li", {}, "Nothing to show yet: add funds to get started."));
    }
    const Chart = chartLibrary();
    const dataset = {
      data: slices.map((slice) => Number(slice.value)),          // arc sizes only
      backgroundColor: slices.map((_, index) => PALETTE[index % PALETTE.length]),
      borderColor: "#171a21",
      borderWidth: 2,
    };
    const options = {
      animation: false,
      maintainAspectRatio: false,
      cutout: "55%",
      plugins: {
        legend: { display: false },
        tooltip: {
          callbacks: {
            label: (item) => {
              const slice = slices[item.dataIndex];
              return `${slice.name}: ${format.percent(slice.percent)} (${format.money(slice.value)})`;
            },
          },
        },
      },
    };
    const labels = slices.map((slice) => slice.name);
    const data = { labels, datasets: [dataset] };
    this.chart = drawChart(Chart, this.chart, this.canvas, { type: "doughnut", data, options });
    this.cover.hidden = true;
  }
}
