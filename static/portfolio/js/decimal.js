// Exact decimal arithmetic for amounts, which arrive as decimal strings ("41251.97", "-0.30";
// see portfolio/money.py). Money never becomes a binary float on this page: values are
// compared, summed and rounded as BigInt counts of their smallest unit. Numbers are made only
// to place points on a chart.

const DECIMAL = /^([+-]?)(\d+)(?:\.(\d+))?$/;

/** The decimal string as [BigInt units, scale]: "12.345" -> [12345n, 3]; null if malformed. */
export function parseDecimal(text) {
  const match = DECIMAL.exec(String(text).trim());
  if (!match) return null;
  const [, sign, whole, fraction = ""] = match;
  const units = BigInt(whole + fraction);
  return [sign === "-" ? -units : units, fraction.length];
}

function rescale([units, scale], target) {
  return units * 10n ** BigInt(target - scale);
}

/** -1, 0 or 1 as a < b, a == b, a > b, exactly ("0.10" equals "0.1"). */
export function compareDecimal(a, b) {
  const x = parseDecimal(a);
  const y = parseDecimal(b);
  const scale = Math.max(x[1], y[1]);
  const left = rescale(x, scale);
  const right = rescale(y, scale);
  return left < right ? -1 : left > right ? 1 : 0;
}

/** Whole cents of a money string with at most two decimals ("250.5" -> 25050n), else null. */
export function toCents(text) {
  const parsed = parseDecimal(text);
  if (parsed === null || parsed[1] > 2) return null;
  return rescale(parsed, 2);
}

/** "1234.50" from 123450n cents. */
export function centsToString(cents) {
  const negative = cents < 0n;
  const digits = (negative ? -cents : cents).toString().padStart(3, "0");
  return `${negative ? "-" : ""}${digits.slice(0, -2)}.${digits.slice(-2)}`;
}

/** numerator / denominator rounded to the nearest integer, ties to even (as Python's
 * Decimal.quantize with ROUND_HALF_EVEN, which the server uses for money). */
export function divideHalfEven(numerator, denominator) {
  if (denominator < 0n) {
    numerator = -numerator;
    denominator = -denominator;
  }
  let quotient = numerator / denominator;
  let remainder = numerator % denominator;
  if (remainder < 0n) {
    quotient -= 1n;
    remainder += denominator;
  }
  const twice = 2n * remainder;
  if (twice > denominator || (twice === denominator && quotient % 2n !== 0n)) quotient += 1n;
  return quotient;
}
