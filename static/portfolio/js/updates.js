// The socket's updates, applied (realtime/protocol.py, "Updates"): an update's data is the
// account's whole state, or, with "partial": true, only what changed since the update before
// it — changed top-level figures and the changed holdings, each whole, matched by symbol. The
// same rule as realtime.protocol.apply, so the page holds exactly the state the server pushed.

/** The account's whole state after the update `data`, applied to `state` (neither changed). */
export function applyUpdate(state, data) {
  const { partial, holdings: changed, ...figures } = data;
  if (!partial) return data;
  const next = { ...state, ...figures };
  if (changed) {
    const holdings = [...(state.holdings || [])];
    const where = new Map(holdings.map((holding, index) => [holding.symbol, index]));
    for (const holding of changed) {
      if (where.has(holding.symbol)) holdings[where.get(holding.symbol)] = holding;
      else holdings.push(holding);
    }
    next.holdings = holdings;
  }
  return next;
}
