"""What /ws/portfolio/<account_id> sends besides live pushes: the snapshot and a resume.

* **Snapshot** — ``{"type": "snapshot", "seq": S, "data": ...}``: the account's whole state in
  :func:`portfolio.presenters.valuation_json`'s form (holdings included). While the calculator
  pushes the account, that is the state after its newest update ``S``: the newest whole update
  with the partial ones kept after it applied (:func:`realtime.fanout.latest_state`), so the
  partial updates after ``S`` apply to exactly what they were computed from. Otherwise the
  account valued now by :func:`portfolio.selectors.account_valuation` (the REST summary's
  function), ``S`` read *before* valuing; the calculator's first update of an account it starts
  pushing is a whole state, so nothing is applied to a state it did not compute.
* **Resume** — a client that saw update ``N`` (``{"type": "resume", "last_seq": N}`` or
  ``?last_seq=N`` on connect) gets exactly the updates numbered after ``N``, in order, from
  :func:`realtime.fanout.updates_since`; when those are no longer all kept (or ``N`` is not a
  number this account has had, e.g. Redis lost its data), a fresh snapshot instead.

Both are frame text (:func:`realtime.protocol.frame`) with their numbers.
"""

from __future__ import annotations

from asgiref.sync import sync_to_async

from portfolio.presenters import valuation_json
from portfolio.selectors import account_valuation

from . import fanout
from . import protocol as p


def _valued(account_id: str) -> str:
    return p.encode(valuation_json(account_valuation(account_id)))


async def snapshot(account_id: str) -> tuple[int, str]:
    """The snapshot's number and frame (may raise the broker's errors when the book lacks the
    account)."""
    kept = await fanout.latest_state(account_id)
    if kept is not None:
        seq, data = kept
    else:
        seq = await fanout.current_seq(account_id)
        # Off the event loop and off Channels' single sync thread: valuing may ask the broker.
        data = await sync_to_async(_valued, thread_sensitive=False)(account_id)
    return seq, p.frame("snapshot", seq, data)


async def missed_updates(account_id: str, last_seq: int) -> list[tuple[int, str]] | None:
    """The updates after ``last_seq`` (numbers and frames), or None when a snapshot must
    replace them."""
    kept = await fanout.updates_since(account_id, last_seq)
    if kept is None:
        return None
    return [(seq, p.frame("update", seq, data)) for seq, data in kept]
