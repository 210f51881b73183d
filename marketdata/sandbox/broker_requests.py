"""What every Broker API handler shares: Alpaca's error answers, JSON replies, parameter parsing.

* :func:`guarded` wraps each handler: an :class:`.errors.ApiError` answers its status and
  ``{"code", "message"}``; anything else is logged with its traceback and answers 500
  ``{"code": 50010000, "message": "internal server error"}``, and the server keeps serving.
* The parsers read a query or a JSON body and raise 422 (``invalid``) naming the parameter and
  what is valid. Lists accept repeated keys and comma lists alike.
* :class:`Endpoints` is the base of each area's handlers: the sandbox and the path's account,
  where an unknown or malformed account id is 401, as at Alpaca.
"""

from __future__ import annotations

import functools
import json
import logging
import uuid
from collections.abc import Iterable
from datetime import date, datetime
from decimal import Decimal, InvalidOperation
from typing import TYPE_CHECKING, Protocol, TypeVar

from aiohttp import web
from multidict import MultiMapping

from .errors import ApiError, invalid, not_found, unauthorized
from .faults import Handler
from .history import parse_moment

if TYPE_CHECKING:
    from .accounts import Account
    from .server import Sandbox

logger = logging.getLogger(__name__)

INTERNAL_ERROR = {"code": 50010000, "message": "internal server error"}
#: Sort orders a list accepts (``sort``, ``direction``), the default first.
DIRECTIONS = ("desc", "asc")


def raw_json(text: str, status: int = 200) -> web.Response:
    return web.Response(text=text, status=status, content_type="application/json")


def respond(body: object, status: int = 200) -> web.Response:
    return raw_json(json.dumps(body, separators=(",", ":")), status)


def guarded(handler: Handler) -> Handler:
    """Answer refusals as Alpaca's error bodies; never let one request's failure escape."""

    @functools.wraps(handler)
    async def guard(request: web.Request) -> web.StreamResponse:
        try:
            return await handler(request)
        except ApiError as error:
            return respond(error.body(), status=error.status)
        except Exception:
            logger.exception("broker API %s %s failed", request.method, request.path_qs)
            return respond(INTERNAL_ERROR, status=500)

    return guard


# -- query and body parsing ----------------------------------------------------------------------
def values(query: MultiMapping[str], name: str) -> list[str]:
    """Every value of a list parameter, whether repeated or comma-separated."""
    return [
        item.strip() for raw in query.getall(name, ()) for item in raw.split(",") if item.strip()
    ]


def choice(query: MultiMapping[str], name: str, allowed: tuple[str, ...], default: str) -> str:
    value = query.get(name) or default
    if value not in allowed:
        raise invalid(f"{name} must be one of {', '.join(allowed)}")
    return value


def optional_choice(query: MultiMapping[str], name: str, allowed: tuple[str, ...]) -> str | None:
    value = query.get(name)
    if value and value not in allowed:
        raise invalid(f"{name} must be one of {', '.join(allowed)}")
    return value or None


def integer(query: MultiMapping[str], name: str, default: int, low: int, high: int) -> int:
    raw = query.get(name)
    if not raw:
        return default
    try:
        value = int(raw)
    except ValueError:
        raise invalid(f"{name} must be an integer between {low} and {high}") from None
    if not low <= value <= high:
        raise invalid(f"{name} must be an integer between {low} and {high}")
    return value


def boolean(query: MultiMapping[str], name: str) -> bool | None:
    raw = query.get(name)
    if not raw:
        return None
    if raw.lower() not in ("true", "false"):
        raise invalid(f"{name} must be true or false")
    return raw.lower() == "true"


def moment(query: MultiMapping[str], name: str) -> datetime | None:
    raw = query.get(name)
    return parse_moment(name, raw) if raw else None


def day(query: MultiMapping[str], name: str) -> date | None:
    """A date, or the date part of a timestamp as written."""
    raw = query.get(name)
    if not raw:
        return None
    try:
        return date.fromisoformat(raw.strip()[:10])
    except ValueError:
        raise invalid(f"{name} must be a YYYY-MM-DD date") from None


def parse_uuid(raw: str) -> uuid.UUID | None:
    try:
        return uuid.UUID(raw)
    except ValueError:
        return None


async def json_body(request: web.Request) -> dict:
    try:
        body = await request.json()
    except json.JSONDecodeError:
        raise invalid("the request body must be JSON") from None
    if not isinstance(body, dict):
        raise invalid("the request body must be a JSON object")
    return body


def text_field(body: dict, name: str, required: bool = True) -> str | None:
    value = body.get(name)
    if value is None and not required:
        return None
    if not isinstance(value, str) or not value.strip():
        raise invalid(f"{name} is required and must be a non-empty string")
    return value.strip()


def amount_field(body: dict, name: str, required: bool = True) -> Decimal | None:
    """A positive decimal sent as a string or a number."""
    value = body.get(name)
    if value is None and not required:
        return None
    if isinstance(value, bool) or not isinstance(value, str | int | float):
        raise invalid(f"{name} must be a positive decimal number")
    try:
        amount = Decimal(str(value))
    except InvalidOperation:
        raise invalid(f"{name} must be a positive decimal number") from None
    if not amount.is_finite() or amount <= 0:
        raise invalid(f"{name} must be a positive decimal number")
    return amount


def body_choice(body: dict, name: str, allowed: tuple[str, ...], default: str | None = None) -> str:
    value = body.get(name, default)
    if value not in allowed:
        raise invalid(f"{name} must be one of {', '.join(allowed)}")
    return value


# -- lookups -------------------------------------------------------------------------------------
class _Identified(Protocol):
    id: uuid.UUID


Item = TypeVar("Item", bound=_Identified)


def by_path_id(items: Iterable[Item], request: web.Request, key: str, what: str) -> Item:
    """The item whose id the path's ``key`` names; 404 ``<what> not found`` when none has it."""
    wanted = parse_uuid(request.match_info[key])
    found = next((item for item in items if item.id == wanted), None)
    if found is None:
        raise not_found(what)
    return found


class Endpoints:
    """The base of each Broker API area's handlers: the sandbox, its world and market."""

    def __init__(self, sandbox: Sandbox) -> None:
        self.sandbox = sandbox
        self.world = sandbox.world
        self.market = sandbox.market

    def account(self, request: web.Request) -> Account:
        """The path's account; unknown or malformed ids are 401, as at Alpaca."""
        account_id = parse_uuid(request.match_info["account_id"])
        account = self.world.accounts.get(str(account_id)) if account_id else None
        if account is None:
            raise unauthorized()
        return account
