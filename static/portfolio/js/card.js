// What every widget's card shares: busy while loading, a friendly message with a retry button
// when its part failed (the rest of the page carries on), and plain DOM building.

export class Card {
  constructor(id) {
    this.element = document.getElementById(id);
    this.errorBox = this.element.querySelector(".card-error");
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
