// How amounts, percentages, quantities and moments read on the page. Intl.NumberFormat is
// given the decimal strings themselves, which it formats exactly (no float in between).

import { compareDecimal } from "./decimal.js";

const LOCALE = "en-US";

const MONEY = new Intl.NumberFormat(LOCALE, { style: "currency", currency: "USD" });
const SIGNED_MONEY = new Intl.NumberFormat(LOCALE, {
  style: "currency", currency: "USD", signDisplay: "exceptZero",
});
const PRICE = new Intl.NumberFormat(LOCALE, {
  style: "currency", currency: "USD", minimumFractionDigits: 2, maximumFractionDigits: 6,
});
const SIGNED_PERCENT = new Intl.NumberFormat(LOCALE, {
  minimumFractionDigits: 2, maximumFractionDigits: 2, signDisplay: "exceptZero",
});
const PERCENT = new Intl.NumberFormat(LOCALE, { minimumFractionDigits: 2, maximumFractionDigits: 2 });
const QUANTITY = new Intl.NumberFormat(LOCALE, { maximumFractionDigits: 9 });
const COMPACT_MONEY = new Intl.NumberFormat(LOCALE, {
  style: "currency", currency: "USD", notation: "compact", maximumFractionDigits: 1,
});

const DASH = "–";

function present(value) {
  return value !== null && value !== undefined && value !== "";
}

/** "$41,251.97" */
export function money(value) {
  return present(value) ? MONEY.format(value) : DASH;
}

/** "+$12.34", "-$5.00", "$0.00": for returns and changes. */
export function signedMoney(value) {
  return present(value) ? SIGNED_MONEY.format(value) : DASH;
}

/** A per-share price: cents at least, up to six decimals for sub-dollar assets. */
export function price(value) {
  return present(value) ? PRICE.format(value) : DASH;
}

/** "+0.46 %" from the API's "0.46" (already in percent). */
export function signedPercent(value) {
  return present(value) ? `${SIGNED_PERCENT.format(value)} %` : DASH;
}

/** "8.11 %" */
export function percent(value) {
  return present(value) ? `${PERCENT.format(value)} %` : DASH;
}

export function quantity(value) {
  return present(value) ? QUANTITY.format(value) : DASH;
}

/** An axis tick: "$41.2K". A tick is a chart coordinate, so a Number is fine here. */
export function compactMoney(number) {
  return COMPACT_MONEY.format(number);
}

/** "up", "down" or "" by the sign of a decimal string: the class that colours it. */
export function direction(value) {
  if (!present(value)) return "";
  const sign = compareDecimal(value, "0");
  return sign > 0 ? "up" : sign < 0 ? "down" : "";
}

/** "+$189.16 (+0.46 %)" */
export function change(amount, pct) {
  return pct === null || pct === undefined
    ? signedMoney(amount)
    : `${signedMoney(amount)} (${signedPercent(pct)})`;
}

const MOMENT = new Intl.DateTimeFormat(LOCALE, {
  year: "numeric", month: "short", day: "numeric", hour: "numeric", minute: "2-digit",
});
const DAY = new Intl.DateTimeFormat(LOCALE, { year: "numeric", month: "short", day: "numeric" });
const CLOCK = new Intl.DateTimeFormat(LOCALE, { hour: "numeric", minute: "2-digit", second: "2-digit" });

/** "Nov 21, 2026, 3:04 PM" from an ISO timestamp. */
export function moment(iso) {
  return iso ? MOMENT.format(new Date(iso)) : DASH;
}

export function day(iso) {
  return iso ? DAY.format(new Date(iso)) : DASH;
}

export function clock(iso) {
  return iso ? CLOCK.format(new Date(iso)) : DASH;
}

// Axis ticks and tooltip titles of the history chart, by range: the clock within a day, the
// weekday and hour within a week, the day within months, the month over years.
const AXIS = {
  "1D": new Intl.DateTimeFormat(LOCALE, { hour: "numeric", minute: "2-digit" }),
  "1W": new Intl.DateTimeFormat(LOCALE, { weekday: "short", hour: "numeric" }),
  "1M": new Intl.DateTimeFormat(LOCALE, { month: "short", day: "numeric" }),
  "6M": new Intl.DateTimeFormat(LOCALE, { month: "short", day: "numeric" }),
  "1Y": new Intl.DateTimeFormat(LOCALE, { month: "short", year: "2-digit" }),
  MAX: new Intl.DateTimeFormat(LOCALE, { month: "short", year: "numeric" }),
};
const TOOLTIP = {
  "1D": MOMENT,
  "1W": MOMENT,
  "1M": MOMENT,
  "6M": DAY,
  "1Y": DAY,
  MAX: DAY,
};

export function axisTime(period, epochMs) {
  return (AXIS[period] || DAY).format(new Date(epochMs));
}

export function tooltipTime(period, epochMs) {
  return (TOOLTIP[period] || MOMENT).format(new Date(epochMs));
}
