// The return and risk figures over a chosen range, from the performance endpoint: the
// time-weighted and the money-weighted return side by side, each explained in one sentence,
// then volatility, the worst drawdown with its dates, Sharpe, Sortino, beta and alpha against
// the benchmark, and the benchmark's own return. Definitions: docs/analytics.md.

import { Card, EndpointWidget, setSigned, toggleGroup } from "./card.js";
import * as figures from "./figures.js";
import * as format from "./format.js";

export class Statistics extends EndpointWidget {
  constructor(source) {
    super(source);
    this.card = new Card("statistics", "your return figures");
    this.period = toggleGroup(this.card.element, "period", (period) => {
      this.period = period;
      this.load();
    });
  }

  load() {
    this.card.clear();
    return this.read({ period: this.period });
  }

  show(statistics) {
    this.card.element.dataset.period = statistics.period;
    const annualized = statistics.annualized || {};
    const explanations = statistics.explanations || {};
    for (const [id, key] of [["twr", "time_weighted_return"], ["mwr", "money_weighted_return"]]) {
      signed(id + "-value", statistics[key]);
      text(`${id}-annualized`, annualized[key] === null || annualized[key] === undefined
        ? "" : `${format.signedPercent(annualized[key])} a year`);
      text(`${id}-text`, explanations[key] || "");
    }
    text("stat-volatility", format.percent(statistics.volatility));
    const drawdown = statistics.max_drawdown;
    signed("stat-drawdown", drawdown ? drawdown.percent : null);
    text("stat-drawdown-dates", drawdownDates(drawdown));
    text("stat-sharpe", figures.ratio(statistics.sharpe));
    text("stat-sortino", figures.ratio(statistics.sortino));
    const benchmark = statistics.benchmark || { symbol: statistics.conventions.benchmark, return: null };
    text("stat-beta-label", `Beta vs ${benchmark.symbol}`);
    text("stat-beta", figures.ratio(statistics.beta));
    signed("stat-alpha", statistics.alpha, " a year");
    text("stat-benchmark-label", `${benchmark.symbol} return`);
    signed("stat-benchmark", benchmark.return);
    signed("stat-excess", statistics.excess_return);
    // The figures are of the chosen range's daily returns: that is their window.
    text("statistics-conventions", figures.conventions({
      ...statistics.conventions, window_start: statistics.start, window_end: statistics.end,
    }));
  }
}

function text(id, value) {
  document.getElementById(id).textContent = value;
}

/** A signed percent, coloured by its sign. */
function signed(id, value, suffix = "") {
  const shown = format.signedPercent(value);
  setSigned(document.getElementById(id), value === null || value === undefined ? shown : shown + suffix,
    format.direction(value));
}

function drawdownDates(drawdown) {
  if (!drawdown || !drawdown.peak) return "";
  const fall = `${figures.date(drawdown.peak)} to ${figures.date(drawdown.trough)}`;
  return drawdown.recovered ? `${fall}, recovered ${figures.date(drawdown.recovered)}`
    : `${fall}, not yet recovered`;
}
