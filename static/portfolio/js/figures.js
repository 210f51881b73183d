// How the risk and return widgets write what the analytics endpoints answer: ratios (beta,
// Sharpe, correlation: "0.5312" on the wire), calendar dates ("2026-03-01"), the conventions
// every answer states, and the holdings an answer left out with the reason.

import { el } from "./card.js";

const LOCALE = "en-US";
const DASH = "–";

// Intl is given the decimal string itself and rounds it exactly (half away from zero); a
// value that rounds to zero reads "0.00", never "-0.00".
const RATIO = new Intl.NumberFormat(LOCALE, {
  minimumFractionDigits: 2, maximumFractionDigits: 2, signDisplay: "negative",
});
// A wire date is a calendar day, not a moment: read and written in UTC, so no time zone moves
// it to the day before.
const DATE = new Intl.DateTimeFormat(LOCALE, {
  year: "numeric", month: "short", day: "numeric", timeZone: "UTC",
});

function present(value) {
  return value !== null && value !== undefined && value !== "";
}

/** "0.81" from "0.8123". */
export function ratio(value) {
  return present(value) ? RATIO.format(value) : DASH;
}

/** "Mar 1, 2026" from "2026-03-01". */
export function date(iso) {
  return iso ? DATE.format(new Date(`${iso}T00:00:00Z`)) : DASH;
}

/** The sentence saying which data and assumptions produced the figures. */
export function conventions(stated) {
  if (!stated) return "";
  const window = stated.window_start
    ? `Daily returns from ${date(stated.window_start)} to ${date(stated.window_end)}`
    : `Daily returns over up to ${stated.window_days} trading days`;
  return `${window}, annualised over ${stated.annualization} trading days; `
    + `risk-free rate ${stated.risk_free_rate} % a year; benchmark ${stated.benchmark}.`;
}

/** Fill a box (a heading and a <ul>) with the holdings left out, each with the API's
 * sentence saying which and why; hidden when none. */
export function showExcluded(box, excluded) {
  const items = excluded || [];
  box.querySelector("ul").replaceChildren(...items.map((item) => el("li",
    { dataset: { symbol: item.symbol, reason: item.reason } }, item.message)));
  box.hidden = items.length === 0;
}
