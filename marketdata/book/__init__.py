"""The account book in Redis: every account's holdings, cash and last_equity, and who holds what.

It mirrors broker state, so it lives in the lowest layer and knows nothing of valuation or
push: ``keys`` (the layout below and its Lua scripts), ``reads``, ``collection`` (what the bulk
positions call and balance fetches say) and ``events`` (fills and transfers). Every other module
uses the functions this package exports, never the key layout.

Contract (values encoded as :mod:`marketdata.store` says; every key below is written only here):

``clera:account:<account_id>`` — a hash per account:

===================  ===========================================================================
``holdings``         JSON ``{symbol: {"qty", "avg_entry_price", "multiplier", "asset_class",
                     "day_basis"}}``, ``qty`` signed (short < 0), amounts as decimal strings,
                     ``multiplier`` 100 for ``us_option`` else 1; symbols as the streams name
                     them (``BTC/USD``); ``{}`` for an account that holds nothing. Sorted keys,
                     so equal books are equal strings. ``day_basis`` is what the day change is
                     measured from (:mod:`marketdata.types`), set only for a holding today's
                     fills touched — the broker's at a collection, carried through fills since
                     — and null for one measured from its previous close (untouched today, or
                     unknown).
``marks``            JSON ``{symbol: {"last_price", "lastday_price"}}``: the broker's
                     ``current_price`` at the last collection (or the fill price since), and the
                     previous close (null if unknown) — the fallback prices of
                     :func:`portfolio.pricing.valuation_price`.
``cash``             decimal string; absent until the account's balances were first fetched.
``last_equity``      decimal string (equity at the previous close); absent likewise.
``balances_at``      moment the balances were fetched (the request's start): trade and transfer
                     events at or before it are already in ``cash``.
``balances_day``     New York date of that fetch; ``balances_roll`` the day-roll counter then.
``positions_as_of``  the broker's ``as_of`` of the collection that last wrote ``holdings``:
                     fills at or before it are already in them.
``event_at``         moment of the last fill applied to ``holdings`` from the event stream.
``revision``         integer, incremented whenever ``holdings``, ``cash`` or ``last_equity``
                     change; writers compare it to apply a write only over what they read.
===================  ===========================================================================

``clera:holders:<symbol>`` — set of the account ids holding the symbol (empty sets vanish).
``clera:symbols`` — set of every symbol some account in the book holds: what the quote consumer
streams (options included in the set; the consumer skips them).
``clera:accounts`` — set of every account id in the book.
``clera:collection`` — hash about the last symbol collection: ``at``, ``as_of``, ``accounts``,
``symbols``, ``seconds``. Its absence means the book has not been collected since Redis lost its
data, so ``clera:symbols`` may be incomplete.
``clera:day`` — hash ``roll`` (count of broker day rolls seen), ``rolled_at``; ``clera:lastday``
— the previous collection's ``lastday_price`` per symbol, to notice the next roll.
``clera:balances:due`` — set of account ids whose balances must be fetched again (a gap in the
event stream, a transfer we could not size, a busted trade).
``clera:events:done:<event_id>`` — marks a processed broker event (three days), so replays and
duplicates change nothing.

Pub/sub ``clera:symbols:changed`` — JSON ``{"added": [...], "removed": [...]}`` whenever the
tracked set changes. A hint: a subscriber that missed one re-reads ``clera:symbols``.

Every account write is atomic (one Lua script, or WATCH/MULTI/EXEC): a reader never sees an
account's holdings half-written, nor its holdings index out of step with its hash.
"""


from .collection import (
    CollectionDiff,
    forget_balances_due,
    mark_balances_due,
    mark_collected,
    note_lastday_prices,
    store_balances,
    store_collection,
)
from .events import Fill, apply_cash, apply_fill
from .reads import (
    CachedAccount,
    CachedHolding,
    DayRoll,
    TrackedSymbols,
    account_ids,
    accounts_holding,
    balances_due,
    cash_only_accounts,
    collected,
    day_roll,
    holder_counts,
    last_collection,
    load,
    revisions,
    tracked_among,
    tracked_symbols,
)

__all__ = [
    "CachedAccount",
    "CachedHolding",
    "CollectionDiff",
    "DayRoll",
    "Fill",
    "TrackedSymbols",
    "account_ids",
    "accounts_holding",
    "apply_cash",
    "apply_fill",
    "balances_due",
    "cash_only_accounts",
    "collected",
    "day_roll",
    "forget_balances_due",
    "holder_counts",
    "last_collection",
    "load",
    "mark_balances_due",
    "mark_collected",
    "note_lastday_prices",
    "revisions",
    "store_balances",
    "store_collection",
    "tracked_among",
    "tracked_symbols",
]
