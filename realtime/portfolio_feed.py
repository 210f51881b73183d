"""What /ws/portfolio/<account_id> sends besides live pushes: the snapshot and a resume.

* **Snapshot** — ``{"type": "snapshot", "seq": S, "data": ...}``: the account valued now by
  :func:`portfolio.selectors.account_valuation` (the REST summary's function, so both show the
  same figures), with its holdings, in :func:`portfolio.presenters.valuation_json`'s form. ``S``
  is the account's sequence number read *before* valuing, so every update numbered above it
  is at least as new and is sent after it; updates at or below it are not sent.
* **Resume** — a client that saw update ``N`` (``{"type": "resume", "last_seq": N}`` or
  ``?last_seq=N`` on connect) gets exactly the updates numbered after ``N``, in order, from
  :func:`realtime.fanout.updates_since`; when those are no longer all kept (or ``N`` is not a
  number this account has had, e.g. Redis lost its data), a fresh snapshot instead.
"""

from __future__ import annotations

from typing import Any

from asgiref.sync import sync_to_async

from portfolio.presenters import valuation_json
from portfolio.selectors import account_valuation

from . import fanout
from . import protocol as p


def _valued(account_id: str) -> dict[str, Any]:
    return valuation_json(account_valuation(account_id))


async def snapshot(account_id: str) -> dict[str, Any]:
    """The snapshot message (may raise the broker's errors when the book lacks the account)."""
    seq = await fanout.current_seq(account_id)
    # Off the event loop and off Channels' single sync thread: valuing may ask the broker.
    data = await sync_to_async(_valued, thread_sensitive=False)(account_id)
    return p.snapshot(seq, data)


async def missed_updates(account_id: str, last_seq: int) -> list[dict[str, Any]] | None:
    """The update messages after ``last_seq``, or None when a snapshot must replace them."""
    kept = await fanout.updates_since(account_id, last_seq)
    return None if kept is None else [p.update(seq, data) for seq, data in kept]
