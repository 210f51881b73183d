// Where the portfolio's risk comes from and how its holdings move together: one answer of the
// risk endpoint feeds two cards, the risk contributions (bars of each holding's share of the
// volatility against its weight, its volatility and beta, the warnings) and the correlation
// heatmap. Methods and a worked example: docs/analytics.md.

import { Card, byId, el } from "./card.js";
import * as figures from "./figures.js";
import * as format from "./format.js";

export class RiskContributions {
  constructor() {
    this.card = new Card("risk-contributions", "your risk breakdown");
    [this.volatility, this.explanation, this.warnings, this.body, this.excluded, this.conventions] = byId(
      "portfolio-volatility", "risk-explanation", "risk-warnings", "risk-body", "risk-excluded", "risk-conventions");
  }

  show(risk) {
    this.volatility.textContent = format.percent(risk.volatility);
    this.explanation.textContent = risk.explanation || "";
    this.warnings.replaceChildren(...risk.warnings.map((warning) => el("li",
      { dataset: { kind: warning.kind, subject: warning.subject } }, warning.message)));
    this.warnings.hidden = risk.warnings.length === 0;
    this.rows(risk);
    figures.showExcluded(this.excluded, risk.excluded);
    this.conventions.textContent = figures.conventions(risk.conventions);
  }

  rows(risk) {
    const rows = risk.holdings.map((holding) => ({ ...holding, label: holding.symbol }));
    if (risk.cash && risk.cash.weight !== null && Number(risk.cash.weight) !== 0) {
      rows.push({
        symbol: null, label: "Cash", weight: risk.cash.weight, risk_share: "0.00",
        volatility: "0.00", beta: null, contribution: "0.00",
      });
    }
    if (!rows.length) {
      this.body.replaceChildren(el("tr", {}, el("td", { colSpan: 6 },
        "Nothing to break down yet: add funds and buy something to see where your risk comes from.")));
      return;
    }
    // Bar lengths are positions on screen, relative to the largest weight or share shown.
    const size = (value) => Math.abs(Number(value || 0));
    const longest = Math.max(...rows.flatMap((row) => [size(row.weight), size(row.risk_share)])) || 1;
    const bar = (kind, value) => {
      const span = el("span", { className: `bar ${kind}${Number(value) < 0 ? " negative" : ""}` });
      span.style.width = `${(size(value) / longest) * 100}%`;
      return span;
    };
    this.body.replaceChildren(...rows.map((row) => el("tr",
      { dataset: row.symbol ? { symbol: row.symbol } : { cash: "" } },
      el("th", { scope: "row", className: "ticker" }, row.label),
      el("td", {
        className: "bars",
        title: `${row.label}: ${format.percent(row.weight)} of the portfolio, `
          + `${format.percent(row.risk_share)} of its risk`
          + ` (${row.contribution} points of ${format.percent(risk.volatility)} volatility)`,
      }, bar("weight", row.weight), bar("share", row.risk_share)),
      el("td", { className: "num", dataset: { key: "weight" } }, format.percent(row.weight)),
      el("td", { className: "num", dataset: { key: "risk_share" } }, format.percent(row.risk_share)),
      el("td", { className: "num", dataset: { key: "volatility" } }, format.percent(row.volatility)),
      el("td", { className: "num", dataset: { key: "beta" } }, figures.ratio(row.beta)),
    )));
  }
}

// Correlation colours: red at -1, the card's own edge colour at 0, green at +1.
const NEUTRAL = [38, 43, 54];
const NEGATIVE = [178, 40, 40];
const POSITIVE = [28, 128, 84];

function heat(value) {
  const strength = Math.min(1, Math.abs(value));
  const far = value < 0 ? NEGATIVE : POSITIVE;
  const mixed = NEUTRAL.map((channel, index) => Math.round(channel + (far[index] - channel) * strength));
  return `rgb(${mixed.join(" ")})`;
}

function meaning(value) {
  const size = Math.abs(value);
  if (size < 0.2) return "they barely move together";
  const strength = size >= 0.7 ? "strongly" : size >= 0.4 ? "moderately" : "weakly";
  return value > 0 ? `they tend to move together (${strength})`
    : `they tend to move in opposite directions (${strength})`;
}

export class CorrelationHeatmap {
  constructor() {
    this.card = new Card("correlation", "how your holdings move together");
    [this.box, this.readout, this.conventions] = this.card.parts("box", "readout", "conventions");
    this.drawn = null;
  }

  show(risk) {
    const { symbols, matrix } = risk.correlation;
    this.conventions.textContent = figures.conventions(risk.conventions);
    const drawn = JSON.stringify(risk.correlation);
    if (drawn === this.drawn) return;         // a refresh with the same matrix keeps focus
    this.drawn = drawn;
    this.readout.hidden = symbols.length < 2;
    if (symbols.length < 2) {
      this.box.replaceChildren(el("p", { className: "fine heatmap-empty" },
        "Correlation needs at least two holdings with enough daily history."));
      return;
    }
    const table = el("table", { className: "heatmap", role: "grid", "aria-readonly": "true",
      "aria-label": "Correlation of daily returns between your holdings" });
    const head = el("tr", {}, el("td", { className: "corner" }),
      ...symbols.map((symbol) => el("th", { scope: "col" }, symbol)));
    const rows = symbols.map((rowSymbol, row) => el("tr", {},
      el("th", { scope: "row" }, rowSymbol),
      ...symbols.map((columnSymbol, column) => {
        const value = matrix[row][column];
        const cell = el("td", {
          tabIndex: row === 0 && column === 1 ? 0 : -1,
          title: `${rowSymbol} and ${columnSymbol}: ${value}`,
          dataset: { row: String(row), column: String(column), value },
        }, figures.ratio(value));
        cell.style.background = heat(Number(value));
        return cell;
      })));
    table.append(el("thead", {}, head), el("tbody", {}, ...rows));
    table.addEventListener("keydown", (event) => this.move(event, symbols.length));
    table.addEventListener("focusin", (event) => this.explain(event.target));
    table.addEventListener("mouseover", (event) => this.explain(event.target));
    this.box.replaceChildren(table);
  }

  /** Arrow keys, Home and End move between cells (one tab stop for the whole grid). */
  move(event, size) {
    const cell = event.target.closest("td[data-row]");
    if (!cell) return;
    let row = Number(cell.dataset.row);
    let column = Number(cell.dataset.column);
    const steps = {
      ArrowRight: [0, 1], ArrowLeft: [0, -1], ArrowDown: [1, 0], ArrowUp: [-1, 0],
      Home: [0, -size], End: [0, size],
    };
    if (!(event.key in steps)) return;
    event.preventDefault();
    row = Math.max(0, Math.min(size - 1, row + steps[event.key][0]));
    column = Math.max(0, Math.min(size - 1, column + steps[event.key][1]));
    const next = this.box.querySelector(`td[data-row="${row}"][data-column="${column}"]`);
    cell.tabIndex = -1;
    next.tabIndex = 0;
    next.focus();
  }

  explain(target) {
    const cell = target.closest && target.closest("td[data-row]");
    if (!cell) return;
    this.readout.textContent = `${cell.title} — ${meaning(Number(cell.dataset.value))}.`;
  }
}
