// What every widget's card shares: busy while loading, a friendly message with a retry button
// when its part failed (the rest of the page carries on), loading from one endpoint, and plain
// DOM building.

import { getJSON } from "./api.js";

export class Card {
  /** The card `id`; `subject` says what it shows when loading failed ("Couldn't load <subject>"). */
  constructor(id, subject = "") {
    this.element = document.getElementById(id);
    this.errorBox = this.element.querySelector(".card-error");
    this.subject = subject;
  }

  /** The card's parts by name: the elements with ids `<card id>-<name>`, in order. */
  parts(...names) {
    return byId(...names.map((name) => `${this.element.id}-${name}`));
  }

  busy(on) {
    this.element.setAttribute("aria-busy", on ? "true" : "false");
  }

  /** Show `message` and a Retry button that calls `retry`; the card's content stays. */
  fail(message, retry) {
    this.busy(false);
    if (!this.errorBox) return;
    const retryButton = el("button", { type: "button", className: "button quiet" }, "Retry");
    retryButton.addEventListener("click", () => {
      this.clear();
      retry();
    });
    this.errorBox.replaceChildren(el("span", {}, message), retryButton);
    this.errorBox.hidden = false;
  }

  clear() {
    if (this.errorBox) {
      this.errorBox.hidden = true;
      this.errorBox.replaceChildren();
    }
  }
}

/** A widget showing one endpoint's answer (`path`, for `accountId`) in its views, each an
 * object with a `card` and `show(answer)` (by default the widget itself, a subclass with both).
 * One read fills them all or fails them all, each card with a Retry; `start` reads again every
 * `refreshMs`. Only the latest read counts, so a slower answer to an older click is dropped. */
export class EndpointWidget {
  constructor({ path, accountId, refreshMs }, ...views) {
    this.path = path;
    this.accountId = accountId;
    this.refreshMs = refreshMs;
    this.views = views.length ? views : [this];
    this.request = 0;
  }

  start() {
    this.load();
    setInterval(() => this.load(), this.refreshMs);
  }

  load() {
    return this.read();
  }

  /** Read with `query` added, the cards busy meanwhile; a failure's Retry calls `retry`.
   * Resolves false when a newer read took over. */
  async read(query = {}, retry = () => this.load()) {
    const request = ++this.request;
    for (const { card } of this.views) card.busy(true);
    try {
      const answer = await getJSON(this.path, { account_id: this.accountId, ...query });
      if (request !== this.request) return false;
      for (const view of this.views) {
        view.card.clear();
        view.show(answer);
        view.card.busy(false);
      }
    } catch (error) {
      if (request !== this.request) return false;
      for (const { card } of this.views) card.fail(`Couldn't load ${card.subject}: ${error.message}`, retry);
    }
    return true;
  }
}

/** The elements with these ids, in order, for one-line destructuring. */
export function byId(...ids) {
  return ids.map((id) => document.getElementById(id));
}

/** document.createElement with properties and children (strings become text, never HTML). */
export function el(tag, properties = {}, ...children) {
  const node = document.createElement(tag);
  for (const [name, value] of Object.entries(properties)) {
    if (name === "dataset") Object.assign(node.dataset, value);
    else if (name in node) node[name] = value;
    else node.setAttribute(name, value);
  }
  node.append(...children.filter((child) => child !== null && child !== undefined));
  return node;
}

/** Set an element's text and its up/down colour class. */
export function setSigned(node, text, direction) {
  node.textContent = text;
  node.classList.remove("up", "down");
  if (direction) node.classList.add(direction);
}

/** `chart`, the chart drawn on `canvas` before (null: none yet), redrawn in place with `type`,
 * `data` and `options`; or, the first time, a new one made with the chart library `Chart`. */
export function drawChart(Chart, chart, canvas, { type, data, options }) {
  if (!chart) return new Chart(canvas, { type, data, options });
  chart.data = data;
  chart.options = options;
  chart.update();
  return chart;
}

/** The chart library, or an Error to show in the card when it did not load. */
export function chartLibrary() {
  if (typeof window.Chart !== "function") {
    throw new Error("The chart couldn't load. Reload the page to try again.");
  }
  return window.Chart;
}

/** Toggle buttons carrying `data-<name>`, one pressed (aria-pressed) at a time: a click
 * presses it and calls `onSelect(value)`. Returns the value pressed in the markup. */
export function toggleGroup(container, name, onSelect) {
  const buttons = [...container.querySelectorAll(`button[data-${name}]`)];
  for (const button of buttons) {
    button.addEventListener("click", () => {
      for (const other of buttons) other.setAttribute("aria-pressed", String(other === button));
      onSelect(button.dataset[name]);
    });
  }
  return buttons.find((button) => button.getAttribute("aria-pressed") === "true").dataset[name];
}
