// The what-if calculator's compound growth, exact: the future value is a fraction of BigInts,
// rounded to the cent (half to even) only at the end.
//
//   m periods a year (12 monthly, 1 yearly), rate r % a year, i = r / (100 m) per period,
//   n = years x m periods, contributions C at the end of each period:
//
//   FV = P (1 + i)^n + C ((1 + i)^n - 1) / i
//
// With A = 100 m + r and B = 100 m, (1 + i)^n = A^n / B^n, so with P and C in cents
//   FV = (P A^n r + C (A^n - B^n) B) / (B^n r)          (r > 0)

import { centsToString, divideHalfEven } from "./decimal.js";

export const PERIODS_PER_YEAR = { monthly: 12, yearly: 1 };

/** Future value in cents after `years` whole years. */
export function futureValueCents({ initialCents, contributionCents, frequency, years, ratePercent }) {
  const m = BigInt(PERIODS_PER_YEAR[frequency]);
  const r = BigInt(ratePercent);
  const n = BigInt(years) * m;
  if (r === 0n) return initialCents + contributionCents * n;
  const b = 100n * m;
  const a = b + r;
  const an = a ** n;
  const bn = b ** n;
  return divideHalfEven(initialCents * an * r + contributionCents * (an - bn) * b, bn * r);
}

/** The projection the widget shows: the final value, what was put in, and one point a year
 * (year 0 = the initial amount) as decimal strings. */
export function project({ initialCents, contributionCents, frequency, years, ratePercent }) {
  const perYear = PERIODS_PER_YEAR[frequency];
  const path = [];
  for (let year = 0; year <= years; year += 1) {
    path.push(centsToString(futureValueCents({
      initialCents, contributionCents, frequency, years: year, ratePercent,
    })));
  }
  const contributedCents = initialCents + contributionCents * BigInt(perYear * years);
  const finalCents = futureValueCents({ initialCents, contributionCents, frequency, years, ratePercent });
  return {
    value: centsToString(finalCents),
    contributed: centsToString(contributedCents),
    growth: centsToString(finalCents - contributedCents),
    path,
  };
}
