// The portfolio page: reads what the server rendered (#page-config: the account and where its
// API and socket are) and starts every widget. Each widget loads and fails on its own.

import { getJSON } from "./api.js";
import { AddFunds } from "./add-funds.js";
import { Allocation, Scores } from "./analytics.js";
import { EndpointWidget } from "./card.js";
import { LiveConnection } from "./connection.js";
import { Frontier } from "./frontier.js";
import { HistoryChart } from "./history.js";
import { Holdings } from "./holdings.js";
import { LiveValue } from "./live-value.js";
import { Statistics } from "./performance.js";
import { CorrelationHeatmap, RiskContributions } from "./risk.js";
import { Transactions } from "./transactions.js";
import { WhatIf } from "./what-if.js";

const config = JSON.parse(document.getElementById("page-config").textContent);
const accountId = config.account_id;

const live = new LiveValue({ pollMs: config.poll_ms, loginUrl: config.login_url });
const holdings = new Holdings({ path: config.api.positions, accountId });
const whatIf = new WhatIf();
const history = new HistoryChart({ path: config.api.history, accountId });
// Scores and allocation share the analytics answer, the risk cards the risk answer; both are
// read again every few minutes (scores move slowly, risk weights with prices).
const refreshMs = config.analytics_refresh_ms;
const analytics = new EndpointWidget(
  { path: config.api.analytics, accountId, refreshMs }, new Scores(), new Allocation(),
);
const transactions = new Transactions({ path: config.api.orders, accountId });
const statistics = new Statistics({ path: config.api.performance, accountId });
const risk = new EndpointWidget(
  { path: config.api.risk, accountId, refreshMs }, new RiskContributions(), new CorrelationHeatmap(),
);
const frontier = new Frontier({ path: config.api.frontier, accountId, refreshMs });

function valued(valuation, source) {
  if (!live.show(valuation)) return;
  whatIf.currentValue(valuation.total_value);
  if (source === "socket") holdings.update(valuation);
}

const connection = new LiveConnection({
  socketPath: config.socket_path,
  summaryPath: config.api.summary,
  accountId,
  pollMs: config.poll_ms,
  onData: valued,
  onState: (state, detail) => live.state(state, detail),
  onOrders: (events) => transactions.orderEvents(events),
});

new AddFunds({
  path: config.api.funds,
  accountId,
  maxAmount: config.funds_max,
});

// Choosing another account shows it at once (the form's button serves without script).
const accountSelect = document.getElementById("account-select");
if (accountSelect) accountSelect.addEventListener("change", () => accountSelect.form.submit());

// The socket's snapshot usually wins, but one summary read in parallel puts the value on
// screen even when the socket is slow or blocked.
getJSON(config.api.summary, { account_id: accountId })
  .then((summary) => valued(summary, "rest"))
  .catch(() => {});                             // the connection's own fallback reports failures
connection.start();
holdings.load();
history.load();
analytics.start();
transactions.load();
statistics.load();
risk.start();
frontier.start();
whatIf.calculate();
