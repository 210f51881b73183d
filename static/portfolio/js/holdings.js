// The holdings table: loaded from the positions endpoint (names, average cost), then kept
// live from the socket's valuations (price, value, return, weight), a price cell flashing
// green or red when it moves. Sortable by any column, exactly (decimal strings compared as
// decimals).

import { Card, EndpointWidget, el } from "./card.js";
import { compareDecimal } from "./decimal.js";
import * as format from "./format.js";

// Column key -> how its cell reads. Order matches the table's header.
const COLUMNS = [
  ["name", (h) => h.name || h.symbol, "name"],
  ["symbol", (h) => h.symbol, "ticker"],
  ["avg_entry_price", (h) => format.price(h.avg_entry_price), "num"],
  ["price", (h) => format.price(h.price), "num"],
  ["qty", (h) => format.quantity(h.qty), "num"],
  ["market_value", (h) => format.money(h.market_value), "num"],
  ["unrealized_pl", (h) => format.signedMoney(h.unrealized_pl), "num"],
  ["unrealized_pl_percent", (h) => format.signedPercent(h.unrealized_pl_percent), "num"],
  ["weight_percent", (h) => format.percent(h.weight_percent), "num"],
];
const SIGNED = new Set(["unrealized_pl", "unrealized_pl_percent"]);
const LIVE_FIELDS = [
  "price", "market_value", "unrealized_pl", "unrealized_pl_percent", "weight_percent",
  "day_change", "day_change_percent", "price_at", "qty",
];

export class Holdings extends EndpointWidget {
  constructor(source) {
    super(source);
    this.card = new Card("holdings", "your holdings");
    this.body = document.getElementById("holdings-body");
    this.headers = [...this.card.element.querySelectorAll("th[data-key]")];
    this.rows = new Map();                     // symbol -> {holding, tr}
    this.sortKey = "market_value";
    this.ascending = false;
    this.loaded = false;
    this.refetching = false;
    for (const th of this.headers) {
      th.querySelector("button").addEventListener("click", () => this.sortBy(th.dataset.key));
    }
  }

  show(positions) {
    this.rows.clear();
    for (const holding of positions.positions) this.rows.set(holding.symbol, { holding, tr: null });
    this.loaded = true;
    this.render();
    if (!this.marked) {
      this.marked = true;
      performance.mark("clera:holdings");
    }
  }

  /** A valuation from the socket: patch prices in place; a new or gone symbol reloads. */
  update(valuation) {
    if (!this.loaded || !valuation.holdings) return;
    const symbols = new Set(valuation.holdings.map((h) => h.symbol));
    const changedSet = symbols.size !== this.rows.size || [...symbols].some((s) => !this.rows.has(s));
    if (changedSet) {
      this.reload();
      return;
    }
    let resort = false;
    for (const live of valuation.holdings) {
      const row = this.rows.get(live.symbol);
      const before = row.holding.price;
      for (const field of LIVE_FIELDS) {
        if (field in live) row.holding[field] = live[field];
      }
      this.fill(row);
      if (before !== live.price && before !== undefined) {
        const cell = row.tr.querySelector('td[data-key="price"]');
        const moved = compareDecimal(live.price, before) > 0 ? "flash-up" : "flash-down";
        cell.classList.remove("flash-up", "flash-down");
        void cell.offsetWidth;                   // restart the animation
        cell.classList.add(moved);
        row.tr.dataset.moves = String(Number(row.tr.dataset.moves || 0) + 1);
        resort ||= LIVE_FIELDS.includes(this.sortKey);
      }
    }
    if (resort) this.order();
  }

  async reload() {
    if (this.refetching) return;
    this.refetching = true;
    try {
      await this.load();
    } finally {
      this.refetching = false;
    }
  }

  sortBy(key) {
    this.ascending = key === this.sortKey ? !this.ascending : key === "name" || key === "symbol";
    this.sortKey = key;
    this.order();
  }

  render() {
    if (!this.rows.size) {
      this.body.replaceChildren(el("tr", {}, el("td", { colSpan: COLUMNS.length },
        "No holdings yet. Add funds and place a trade to see them here.")));
      return;
    }
    for (const row of this.rows.values()) {
      row.tr = el("tr", { dataset: { symbol: row.holding.symbol } },
        ...COLUMNS.map(([key, , kind]) => el("td", { className: kind, dataset: { key } })));
      this.fill(row);
    }
    this.order();
  }

  fill({ holding, tr }) {
    COLUMNS.forEach(([key, read], index) => {
      const cell = tr.children[index];
      cell.textContent = read(holding);
      if (SIGNED.has(key)) {
        cell.classList.remove("up", "down");
        const dir = format.direction(holding[key]);
        if (dir) cell.classList.add(dir);
      }
    });
    tr.children[0].title = holding.name || "";
    tr.children[1].title = holding.name || "";
  }

  order() {
    const key = this.sortKey;
    const text = key === "name" || key === "symbol";
    const sign = this.ascending ? 1 : -1;
    const value = (row) => (key === "name" ? row.holding.name || row.holding.symbol : row.holding[key]);
    const sorted = [...this.rows.values()].sort((a, b) => {
      const x = value(a);
      const y = value(b);
      if (x === null || x === undefined) return 1;
      if (y === null || y === undefined) return -1;
      return sign * (text ? x.localeCompare(y) : compareDecimal(x, y));
    });
    this.body.replaceChildren(...sorted.map((row) => row.tr));
    for (const th of this.headers) {
      th.setAttribute("aria-sort", th.dataset.key !== key ? "none" : this.ascending ? "ascending" : "descending");
    }
  }
}
