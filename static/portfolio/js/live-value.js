// Total value and today's return, and the badge saying how fresh they are.

import { Card, byId, el, setSigned } from "./card.js";
import * as format from "./format.js";

const STATE_TEXT = {
  connecting: "CONNECTING",
  live: "LIVE",
  reconnecting: "RECONNECTING",
  offline: "OFFLINE",
};

export class LiveValue {
  constructor({ pollMs, loginUrl }) {
    this.card = new Card("live");
    [this.total, this.today] = byId("total-value", "today-return");
    [this.note, this.asOf, this.badge, this.badgeText, this.latency] =
      this.card.parts("note", "as-of", "status", "status-text", "latency");
    this.pollSeconds = Math.round(pollMs / 1000);
    this.loginUrl = loginUrl;
    this.shownAsOf = 0;
  }

  /** A valuation (socket snapshot/update or REST summary); older than what is shown: ignored. */
  show(valuation) {
    const asOf = Date.parse(valuation.as_of);
    if (asOf < this.shownAsOf) return false;
    this.shownAsOf = asOf;
    this.total.textContent = format.money(valuation.total_value);
    setSigned(
      this.today,
      `${format.change(valuation.today_return, valuation.today_return_percent)} today`,
      format.direction(valuation.today_return),
    );
    this.total.dataset.value = valuation.total_value;
    this.asOf.textContent = `As of ${format.clock(valuation.as_of)}.`;
    document.title = `${format.money(valuation.total_value)} · Clera`;
    this.card.busy(false);
    if (!this.firstShown) {
      this.firstShown = true;
      performance.mark("clera:live-value");
    }
    return true;
  }

  state(state, { latencyMs, reason, polling }) {
    this.badge.dataset.state = state;
    this.badgeText.textContent = STATE_TEXT[state];
    this.latency.textContent = state === "live" && latencyMs !== null ? `· ${latencyMs} ms` : "";
    this.latency.title = state === "live" ? "Round trip to the server, measured on the socket" : "";
    this.note.replaceChildren(...this.explain(state, reason, polling));
  }

  explain(state, reason, polling) {
    if (reason === "signed_out") {
      return ["Your session ended. ", el("a", { href: this.loginUrl }, "Sign in again"), " to see live values."];
    }
    if (reason === "forbidden") return ["This account isn't linked to your login."];
    if (reason === "disabled") return [`Live updates are switched off; refreshing every ${this.pollSeconds} s.`];
    if (state === "reconnecting") {
      return [polling ? `Live updates paused; refreshing every ${this.pollSeconds} s while reconnecting.` : "Reconnecting…"];
    }
    if (state === "offline") return ["Can't reach Clera. Values may be out of date; retrying."];
    return [];
  }
}
