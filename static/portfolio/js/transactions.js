// Orders, newest first, a page at a time ("Load more" follows the API's cursor), filtered by
// status (open, closed, all).

import { Card, EndpointWidget, el } from "./card.js";
import * as format from "./format.js";

const PAGE_SIZE = 15;
// Alpaca's "closed" orders (the API's status=closed); every other status is open.
const CLOSED = new Set(["filled", "canceled", "expired", "rejected", "replaced", "done_for_day"]);

export class Transactions extends EndpointWidget {
  constructor(source) {
    super(source);
    this.card = new Card("transactions", "your transactions");
    [this.body, this.status, this.more, this.empty] = this.card.parts("body", "status", "more", "empty");
    this.cursor = null;                          // where the next page starts; null: the first
    this.status.addEventListener("change", () => this.load());
    this.more.addEventListener("click", () => this.loadMore());
  }

  /** The first page for the chosen status, replacing what is shown. */
  load() {
    this.cursor = null;
    return this.fetch();
  }

  loadMore() {
    return this.fetch();
  }

  /** Order events from the socket: a shown order changes in place; a new one that passes
   * the filter goes on top. */
  orderEvents(events) {
    if (this.card.element.getAttribute("aria-busy") === "true") return;   // a page is on its way
    for (const { order } of events) {
      const fresh = row(order);
      const shown = this.body.querySelector(`tr[data-order-id="${CSS.escape(order.id)}"]`);
      const filter = this.status.value;
      const wanted = filter === "all" || (filter === "closed") === CLOSED.has(order.status);
      if (shown && wanted) shown.replaceWith(fresh);
      else if (shown) shown.remove();
      else if (wanted) this.body.prepend(fresh);
    }
    this.empty.hidden = this.body.children.length > 0;
  }

  async fetch() {
    this.more.disabled = true;
    this.more.textContent = "Loading…";
    const page = { status: this.status.value, limit: PAGE_SIZE, cursor: this.cursor };
    if (await this.read(page, () => this.fetch())) {
      this.more.disabled = false;
      this.more.textContent = "Load more";
    }
  }

  /** The latest fetch's page (an older one is dropped): the first replaces what is shown. */
  show(page) {
    const rows = page.orders.map(row);
    if (this.cursor === null) this.body.replaceChildren(...rows);
    else this.body.append(...rows);
    this.cursor = page.next_cursor;
    this.more.hidden = !this.cursor;
    this.empty.hidden = this.body.children.length > 0;
  }
}

function row(order) {
  const filled = order.filled_qty && order.filled_qty !== "0";
  const when = order.filled_at || order.submitted_at || order.created_at;
  const amount = order.qty ? format.quantity(filled ? order.filled_qty : order.qty)
    : format.money(order.notional);
  const priced = order.filled_avg_price || order.limit_price;
  return el("tr", { dataset: { orderId: order.id, status: order.status } },
    el("td", { title: format.moment(when) }, format.day(when)),
    el("td", { className: "ticker" }, order.symbol),
    el("td", {}, order.side === "buy" ? "Buy" : "Sell"),
    el("td", {}, order.type),
    el("td", { className: "num" }, amount),
    el("td", { className: "num" }, priced ? format.price(priced) : "Market"),
    el("td", {}, el("span", { className: `status ${order.status}` }, order.status.replaceAll("_", " "))),
  );
}
