// "Add funds": a dialog that checks the amount, then submits it exactly once. One
// Idempotency-Key per deposit attempt: a retry after a network failure reuses it (the server
// answers the first result instead of moving money twice); a different amount gets a new one.

import { postJSON } from "./api.js";
import { byId } from "./card.js";
import { centsToString, toCents } from "./decimal.js";
import * as format from "./format.js";

export class AddFunds {
  constructor({ path, accountId, maxAmount }) {
    this.path = path;
    this.accountId = accountId;
    this.maxCents = toCents(maxAmount);
    this.maxAmount = maxAmount;
    [this.dialog, this.form, this.amount, this.message] =
      byId("add-funds", "add-funds-form", "add-funds-amount", "add-funds-message");
    [this.submit, this.outcome, this.outcomeText] =
      byId("add-funds-submit", "add-funds-outcome", "add-funds-outcome-text");
    document.getElementById("add-funds-hint").textContent =
      `From your linked bank, up to ${format.money(maxAmount)} at a time.`;
    document.getElementById("add-funds-open").addEventListener("click", () => this.open());
    document.getElementById("add-funds-cancel").addEventListener("click", () => this.dialog.close());
    document.getElementById("add-funds-done").addEventListener("click", () => this.dialog.close());
    this.form.addEventListener("submit", (event) => {
      event.preventDefault();
      this.send();
    });
    this.sending = false;
    this.attempt = null;                         // {cents, key} of the deposit being made
  }

  open() {
    this.form.hidden = false;
    this.outcome.hidden = true;
    this.amount.value = "";
    this.amount.removeAttribute("aria-invalid");
    this.message.textContent = "";
    this.attempt = null;
    this.dialog.showModal();
    this.amount.focus();
  }

  validCents() {
    const cents = toCents(this.amount.value.trim().replaceAll(",", "").replace(/^\$/, ""));
    let problem = "";
    if (cents === null) problem = "Enter an amount in dollars and cents, like 250 or 99.95.";
    else if (cents <= 0n) problem = "Enter an amount above $0.";
    else if (cents > this.maxCents) problem = `The most you can add at once is ${format.money(this.maxAmount)}.`;
    this.amount.setAttribute("aria-invalid", String(Boolean(problem)));
    this.message.textContent = problem;
    return problem ? null : cents;
  }

  async send() {
    if (this.sending) return;                    // a second click or Enter while in flight
    const cents = this.validCents();
    if (cents === null) {
      this.amount.focus();
      return;
    }
    if (!this.attempt || this.attempt.cents !== cents) this.attempt = { cents, key: newKey() };
    const amount = centsToString(cents);
    this.sending = true;
    this.submit.disabled = true;
    this.submit.textContent = "Adding…";
    try {
      const transfer = await postJSON(
        this.path, { account_id: this.accountId }, { amount }, { "Idempotency-Key": this.attempt.key },
      );
      this.form.hidden = true;
      this.outcome.hidden = false;
      this.outcomeText.textContent = `${format.money(transfer.amount)} is on its way from your bank `
        + `(${transfer.status.toLowerCase()}). Your cash goes up as soon as it arrives.`;
      this.outcome.dataset.transferId = transfer.id;
      document.getElementById("add-funds-done").focus();
    } catch (error) {
      // Unsure whether it went through: say that retrying is safe (the same key is resent).
      const unsure = error.status === 0 || error.status >= 500;
      this.message.textContent = unsure
        ? `${error.message} Trying again is safe: it can't add the money twice.`
        : error.message;
    } finally {
      this.sending = false;
      this.submit.disabled = false;
      this.submit.textContent = "Add funds";
    }
  }
}

/** A random v4 UUID; crypto.randomUUID needs a secure context, getRandomValues does not. */
function newKey() {
  const bytes = crypto.getRandomValues(new Uint8Array(16));
  bytes[6] = (bytes[6] & 0x0f) | 0x40;
  bytes[8] = (bytes[8] & 0x3f) | 0x80;
  const hex = [...bytes].map((b) => b.toString(16).padStart(2, "0")).join("");
  return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-${hex.slice(12, 16)}-${hex.slice(16, 20)}-${hex.slice(20)}`;
}
