"""The book's Redis layout: key names, the account hash's fields and the Lua scripts.

The one module that knows how the book is laid out in Redis (the package docstring states the
contract); the rest of the package reads and writes through these names, and every other
module through the package's functions.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

ACCOUNT_PREFIX = "clera:account:"
HOLDERS_PREFIX = "clera:holders:"
SYMBOLS = "clera:symbols"
ACCOUNTS = "clera:accounts"
COLLECTION = "clera:collection"
DAY = "clera:day"
LASTDAY = "clera:lastday"
BALANCES_DUE = "clera:balances:due"
EVENT_DONE_PREFIX = "clera:events:done:"
EVENT_DONE_SECONDS = 3 * 86_400
SYMBOLS_CHANNEL = "clera:symbols:changed"

#: The account hash's fields, in the order reads ask for them.
FIELDS = (
    "holdings",
    "marks",
    "cash",
    "last_equity",
    "balances_at",
    "balances_day",
    "balances_roll",
    "positions_as_of",
    "event_at",
    "revision",
)

# Replace (or drop) one account's holdings from a collection, with its index entries, unless
# something changed it since it was read or a fill newer than the snapshot was applied.
# KEYS: account hash, clera:accounts, holders sets (the first ARGV[5] to join, the rest to leave)
# ARGV: revision read ('' if none), snapshot as_of, holdings JSON ('' = drop), marks JSON,
#       account id, sets to join. Returns 0 skipped, 1 stored (same holdings), 2 holdings changed.
STORE = """
local revision = redis.call('HGET', KEYS[1], 'revision') or ''
if revision ~= ARGV[1] then return 0 end
local event_at = redis.call('HGET', KEYS[1], 'event_at')
if event_at and event_at >= ARGV[2] then return 0 end
local joins = tonumber(ARGV[6])
for i = 3, #KEYS do
  if i - 2 <= joins then
    redis.call('SADD', KEYS[i], ARGV[5])
  else
    redis.call('SREM', KEYS[i], ARGV[5])
  end
end
if ARGV[3] == '' then
  redis.call('DEL', KEYS[1])
  redis.call('SREM', KEYS[2], ARGV[5])
  return 2
end
redis.call('SADD', KEYS[2], ARGV[5])
redis.call('HSET', KEYS[1], 'marks', ARGV[4], 'positions_as_of', ARGV[2])
if redis.call('HGET', KEYS[1], 'holdings') == ARGV[3] then return 1 end
redis.call('HSET', KEYS[1], 'holdings', ARGV[3])
redis.call('HINCRBY', KEYS[1], 'revision', 1)
return 2
"""

# Set an account's balances if nothing changed it since the fetch began.
# KEYS: account hash, clera:balances:due. ARGV: revision read, cash, last_equity, balances_at,
# balances_day, balances_roll, account id.
BALANCES = """
if redis.call('EXISTS', KEYS[1]) == 0 then return 0 end
if (redis.call('HGET', KEYS[1], 'revision') or '') ~= ARGV[1] then return 0 end
redis.call('HSET', KEYS[1], 'cash', ARGV[2], 'last_equity', ARGV[3], 'balances_at', ARGV[4],
  'balances_day', ARGV[5], 'balances_roll', ARGV[6])
redis.call('HINCRBY', KEYS[1], 'revision', 1)
redis.call('SREM', KEYS[2], ARGV[7])
return 1
"""

# Stop tracking a symbol once nobody holds it (atomic, so a concurrent buyer is never lost).
UNTRACK = """
if redis.call('SCARD', KEYS[1]) == 0 then return redis.call('SREM', KEYS[2], ARGV[1]) end
return 0
"""


def account_key(account_id: str) -> str:
    return ACCOUNT_PREFIX + account_id


def holders_key(symbol: str) -> str:
    return HOLDERS_PREFIX + symbol


def dump(value: Mapping[str, Any]) -> str:
    """JSON with sorted keys, so equal holdings are equal strings (the scripts compare them)."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"))
