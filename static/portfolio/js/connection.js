// The account's live feed: /ws/portfolio/<account> first (protocol: realtime/protocol.py),
// the summary endpoint every few seconds whenever the socket is down, and back to the socket
// with backoff, resuming from the last sequence number seen so nothing is missed. It keeps the
// account's whole state as of that number: a snapshot replaces it, each update (partial or
// whole, replayed ones too) is applied to it in turn, and the page is given the whole state.
//
// States, shown by the badge:
//   connecting    the first socket is opening
//   live          the socket delivers snapshots and updates
//   reconnecting  the socket is down; the summary is polled meanwhile
//   offline       nothing answers (or the socket was refused for good: signed out, disabled)

import { ApiError, getJSON } from "./api.js";
import { applyUpdate } from "./updates.js";

const HEARTBEAT_MS = 15000;          // client heartbeats: keep-alive, latency, dead-link probe
const BACKOFF_MS = [1000, 2000, 4000, 8000, 15000, 30000];
const SIGNED_OUT = 4401;
const FORBIDDEN = 4403;
const DISABLED = 4503;

export class LiveConnection {
  /**
   * @param {object} options
   * @param {string} options.socketPath   /ws/portfolio/<account_id>
   * @param {string} options.summaryPath  the summary endpoint
   * @param {string} options.accountId
   * @param {number} options.pollMs
   * @param {(data: object, source: string) => void} options.onData  whole valuations, newest last
   * @param {(state: string, detail: object) => void} options.onState
   * @param {(events: object[]) => void} options.onOrders  order events (the API's order JSON)
   */
  constructor({ socketPath, summaryPath, accountId, pollMs, onData, onState, onOrders }) {
    Object.assign(this, { socketPath, summaryPath, accountId, pollMs, onData, onState, onOrders });
    this.socket = null;
    this.socketLive = false;
    this.lastSeq = null;
    this.valuation = null;         // the account's whole state as of update lastSeq
    this.attempts = 0;
    this.state = "connecting";
    this.latencyMs = null;
    this.pollTimer = null;
    this.reconnectTimer = null;
    this.heartbeatTimer = null;
    this.heartbeatSentAt = null;
    this.refused = null;           // why the server refused us for good, if it did
  }

  start() {
    window.addEventListener("online", () => this.reconnectNow());
    window.addEventListener("offline", () => this.setState("offline", { reason: "offline" }));
    this.open();
  }

  socketUrl() {
    const url = new URL(this.socketPath, window.location.href);
    url.protocol = url.protocol === "https:" ? "wss:" : "ws:";
    if (this.lastSeq !== null) url.searchParams.set("last_seq", String(this.lastSeq));
    return url;
  }

  open() {
    clearTimeout(this.reconnectTimer);
    this.reconnectTimer = null;
    let socket;
    try {
      socket = new WebSocket(this.socketUrl());
    } catch {
      this.dropped(1006);
      return;
    }
    this.socket = socket;
    socket.addEventListener("message", (event) => this.received(event.data));
    socket.addEventListener("close", (event) => {
      if (this.socket === socket) this.dropped(event.code);
    });
  }

  received(text) {
    let message;
    try {
      message = JSON.parse(text);
    } catch {
      return;
    }
    switch (message.type) {
      case "snapshot":                 // a fresh valuation: always taken, its seq restarts ours
        this.lastSeq = message.seq;
        this.valuation = message.data;
        this.established();
        this.onData(this.valuation, "socket");
        break;
      case "update":                   // also what a resume replays first
        this.established();
        if (this.lastSeq !== null && message.seq <= this.lastSeq) return;
        this.lastSeq = message.seq;
        this.valuation = applyUpdate(this.valuation, message.data);
        this.onData(this.valuation, "socket");
        break;
      case "system":                   // "resumed after update N" carries a seq
        if (typeof message.seq === "number") this.established();
        break;
      case "orders":
        this.onOrders(message.events);
        break;
      case "ping":
        this.send({ type: "pong" });
        break;
      case "heartbeat":
        if (this.heartbeatSentAt !== null) {
          this.latencyMs = Math.round(performance.now() - this.heartbeatSentAt);
          this.heartbeatSentAt = null;
          this.setState(this.state);
        }
        break;
      default:
        break;
    }
  }

  /** The server accepted this socket (a snapshot, or a resume): live again, polling stops,
   * heartbeats start and order events are asked for. Once per socket. */
  established() {
    if (this.socketLive) return;
    this.socketLive = true;
    this.attempts = 0;
    this.stopPolling();
    this.setState("live");
    this.startHeartbeats();
    this.send({ type: "subscribe", channels: ["orders"] });
  }

  send(message) {
    if (this.socket && this.socket.readyState === WebSocket.OPEN) {
      this.socket.send(JSON.stringify(message));
    }
  }

  startHeartbeats() {
    clearInterval(this.heartbeatTimer);
    const beat = () => {
      if (this.heartbeatSentAt !== null) {
        this.abandon();                  // the last heartbeat went unanswered: a dead link
        return;
      }
      this.heartbeatSentAt = performance.now();
      this.send({ type: "heartbeat", timestamp: Date.now() });
    };
    beat();
    this.heartbeatTimer = setInterval(beat, HEARTBEAT_MS);
  }

  /** Give up on a socket that stopped answering (a half-open connection never closes by
   * itself): reconnect now; its close, whenever it comes, is ignored. */
  abandon() {
    const socket = this.socket;
    this.dropped(1006);
    if (socket) socket.close(4000, "no answer to heartbeats");
  }

  dropped(code) {
    clearInterval(this.heartbeatTimer);
    this.heartbeatSentAt = null;
    this.socket = null;
    this.socketLive = false;
    this.latencyMs = null;
    if (code === SIGNED_OUT || code === FORBIDDEN) {
      this.refused = code === SIGNED_OUT ? "signed_out" : "forbidden";
      this.stopPolling();
      this.setState("offline", { reason: this.refused });
      return;
    }
    if (code === DISABLED) this.refused = "disabled";
    if (this.state !== "offline") {
      this.setState("reconnecting", { reason: this.refused || "dropped" });
    }
    this.startPolling();
    this.scheduleReconnect(code === DISABLED);
  }

  scheduleReconnect(slowly) {
    const base = slowly ? BACKOFF_MS[BACKOFF_MS.length - 1]
      : BACKOFF_MS[Math.min(this.attempts, BACKOFF_MS.length - 1)];
    this.attempts += 1;
    const delay = base / 2 + Math.random() * (base / 2);   // jitter: no reconnect stampede
    clearTimeout(this.reconnectTimer);
    this.reconnectTimer = setTimeout(() => this.open(), delay);
  }

  /** Back online: the socket may have survived (then it is live again), else open one now. */
  reconnectNow() {
    if (this.refused === "signed_out" || this.refused === "forbidden") return;
    if (this.socketLive) {
      this.setState("live");
      return;
    }
    if (!this.socket) this.open();
  }

  startPolling() {
    if (this.pollTimer !== null) return;
    const poll = async () => {
      try {
        const summary = await getJSON(this.summaryPath, { account_id: this.accountId });
        if (this.pollTimer === null) return;             // the socket came back meanwhile
        if (this.state === "offline" && !this.refused) this.setState("reconnecting");
        this.onData(summary, "poll");
      } catch (error) {
        if (this.pollTimer === null) return;
        if (error instanceof ApiError && error.signedOut) {
          this.refused = "signed_out";
          this.stopPolling();
          clearTimeout(this.reconnectTimer);
        }
        this.setState("offline", { reason: this.refused || "unreachable" });
      }
    };
    this.pollTimer = setInterval(poll, this.pollMs);
    poll();
  }

  stopPolling() {
    clearInterval(this.pollTimer);
    this.pollTimer = null;
  }

  setState(state, detail = {}) {
    this.state = state;
    this.onState(state, { latencyMs: this.latencyMs, polling: this.pollTimer !== null, ...detail });
  }
}
