// The what-if calculator: inputs -> exact projection (projection.js) -> value, breakdown and a
// growth chart. The initial amount starts at the account's current value.

import { Card, chartLibrary } from "./card.js";
import { toCents } from "./decimal.js";
import * as format from "./format.js";
import { project } from "./projection.js";

const MAX_CENTS = 10n ** 12n;            // $10 billion: beyond that it is a typo
const MAX_YEARS = 50;

export class WhatIf {
  constructor() {
    this.card = new Card("what-if");
    [this.form, this.initial, this.contribution, this.frequency, this.years] =
      this.card.parts("form", "initial", "contribution", "frequency", "years");
    [this.error, this.value, this.breakdown, this.canvas] = this.card.parts("error", "value", "breakdown", "chart");
    this.chart = null;
    this.initialEdited = false;
    this.initial.addEventListener("input", () => { this.initialEdited = true; });
    this.form.addEventListener("input", () => this.calculate());
    this.form.addEventListener("change", () => this.calculate());
    this.form.addEventListener("submit", (event) => event.preventDefault());
  }

  /** The current account value, used as the initial amount until the user types their own. */
  currentValue(total) {
    if (this.initialEdited || this.initial.value) return;
    this.initial.value = total;
    this.calculate();
  }

  inputs() {
    const problems = [];
    const money = (input, name) => {
      const cents = toCents(input.value.replaceAll(",", "").replace(/^\$/, ""));
      const bad = cents === null || cents < 0n || cents > MAX_CENTS;
      input.setAttribute("aria-invalid", String(bad));
      if (bad) problems.push(`${name}: enter dollars and cents, like 1000 or 250.50.`);
      return cents;
    };
    const initialCents = money(this.initial, "Initial amount");
    const contributionCents = money(this.contribution, "Contribution");
    const years = Number(this.years.value);
    const badYears = !Number.isInteger(years) || years < 1 || years > MAX_YEARS;
    this.years.setAttribute("aria-invalid", String(badYears));
    if (badYears) problems.push(`Years: a whole number from 1 to ${MAX_YEARS}.`);
    const ratePercent = Number(this.form.elements.strategy.value);
    return {
      problems,
      initialCents, contributionCents, years, ratePercent, frequency: this.frequency.value,
    };
  }

  calculate() {
    const { problems, ...inputs } = this.inputs();
    this.error.textContent = problems.join(" ");
    if (problems.length) {
      this.value.textContent = "–";
      this.breakdown.textContent = "";
      return;
    }
    const projection = project(inputs);
    this.value.textContent = format.money(projection.value);
    this.value.dataset.value = projection.value;
    this.breakdown.textContent = `You put in ${format.money(projection.contributed)}; growth `
      + `${format.signedMoney(projection.growth)} at ${inputs.ratePercent} % a year, `
      + `compounded ${inputs.frequency === "monthly" ? "monthly" : "yearly"}.`;
    this.draw(projection.path);
  }

  draw(path) {
    let Chart;
    try {
      Chart = chartLibrary();
    } catch {
      return;                                     // the figures above still stand
    }
    const labels = path.map((_, year) => (year === 0 ? "Now" : `Year ${year}`));
    const dataset = {
      label: "Projected value",
      data: path.map(Number),                      // bar heights only
      backgroundColor: "#6ea8fe88",
      borderColor: "#6ea8fe",
      borderWidth: 1,
    };
    const options = {
      animation: false,
      maintainAspectRatio: false,
      plugins: {
        legend: { display: false },
        tooltip: { callbacks: { label: (item) => format.money(path[item.dataIndex]) } },
      },
      scales: {
        x: { grid: { display: false }, ticks: { color: "#9aa3b2", maxTicksLimit: 6, maxRotation: 0 } },
        y: { grid: { color: "#232834" }, ticks: { color: "#9aa3b2", maxTicksLimit: 4, callback: (v) => format.compactMoney(v) } },
      },
    };
    if (this.chart) {
      this.chart.data = { labels, datasets: [dataset] };
      this.chart.update();
    } else {
      this.chart = new Chart(this.canvas, { type: "bar", data: { labels, datasets: [dataset] }, options });
    }
  }
}
