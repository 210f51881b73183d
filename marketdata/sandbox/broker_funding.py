"""The Broker API's funding area: ACH relationships and transfers of one account.

* ``GET``/``POST /v1/accounts/{id}/ach_relationships``, ``DELETE .../ach_relationships/{id}``:
  bank details only (no Plaid token); deleting removes the relationship (alpaca-py has no
  status for a deleted one).
* ``GET``/``POST /v1/accounts/{id}/transfers``, ``DELETE .../transfers/{id}``: ACH only,
  ``immediate`` timing; a transfer without ``relationship_id`` uses the account's first
  approved relationship. Transfers are listed newest first and page with
  ``offset``/``limit`` (default 100, max 500). Settlement is :mod:`.funding`'s.
"""

from __future__ import annotations

import re

from aiohttp import web

from . import wire
from .broker_requests import (
    Endpoints,
    amount_field,
    body_choice,
    by_path_id,
    integer,
    json_body,
    optional_choice,
    parse_uuid,
    respond,
    text_field,
    values,
)
from .errors import invalid

TRANSFERS_DEFAULT, TRANSFERS_MAX = 100, 500
ROUTING_NUMBER = re.compile(r"[0-9]{9}")
BANK_ACCOUNT_NUMBER = re.compile(r"[0-9]{4,17}")
BANK_ACCOUNT_TYPES = ("CHECKING", "SAVINGS")
TRANSFER_DIRECTIONS = ("INCOMING", "OUTGOING")


class FundingEndpoints(Endpoints):
    """Handlers for one account's bank relationships and transfers."""

    async def list_transfers(self, request: web.Request) -> web.Response:
        account = self.account(request)
        query = request.query
        direction = optional_choice(query, "direction", TRANSFER_DIRECTIONS)
        limit = integer(query, "limit", TRANSFERS_DEFAULT, 1, TRANSFERS_MAX)
        offset = integer(query, "offset", 0, 0, 10**9)
        found = sorted(
            (t for t in account.transfers if direction is None or t.direction == direction),
            key=lambda transfer: transfer.created_at,
            reverse=True,
        )
        return respond([wire.transfer(t) for t in found[offset : offset + limit]])

    async def create_transfer(self, request: web.Request) -> web.Response:
        account = self.account(request)
        body = await json_body(request)
        if body.get("transfer_type", "ach") != "ach":
            raise invalid("transfer_type must be ach: the sandbox moves money by ACH only")
        relationship_id = None
        if body.get("relationship_id") is not None:
            relationship_id = parse_uuid(str(body["relationship_id"]))
            if relationship_id is None:
                raise invalid("relationship_id must be the UUID of an ACH relationship")
        amount = amount_field(body, "amount")
        direction = body_choice(body, "direction", TRANSFER_DIRECTIONS)
        body_choice(body, "timing", ("immediate",), "immediate")
        transfer = self.sandbox.exchange.funding.submit_transfer(
            account, relationship_id, amount, direction
        )
        return respond(wire.transfer(transfer))

    async def cancel_transfer(self, request: web.Request) -> web.Response:
        account = self.account(request)
        transfer = by_path_id(account.transfers, request, "transfer_id", "transfer")
        self.sandbox.exchange.funding.cancel_transfer(account, transfer)
        return web.Response(status=204)

    async def list_relationships(self, request: web.Request) -> web.Response:
        account = self.account(request)
        statuses = set(values(request.query, "statuses"))
        return respond(
            [
                wire.ach_relationship(relationship)
                for relationship in account.relationships
                if not statuses or relationship.status in statuses
            ]
        )

    async def create_relationship(self, request: web.Request) -> web.Response:
        account = self.account(request)
        body = await json_body(request)
        if "processor_token" in body:
            raise invalid("Plaid relationships are not supported: send the bank account details")
        owner_name = text_field(body, "account_owner_name")
        account_type = body_choice(body, "bank_account_type", BANK_ACCOUNT_TYPES)
        number = text_field(body, "bank_account_number")
        if not BANK_ACCOUNT_NUMBER.fullmatch(number):
            raise invalid("bank_account_number must be 4 to 17 digits")
        routing = text_field(body, "bank_routing_number")
        if not ROUTING_NUMBER.fullmatch(routing):
            raise invalid("bank_routing_number must be 9 digits")
        nickname = text_field(body, "nickname", required=False)
        relationship = self.sandbox.exchange.funding.create_relationship(
            account, owner_name, account_type, number, routing, nickname
        )
        return respond(wire.ach_relationship(relationship))

    async def delete_relationship(self, request: web.Request) -> web.Response:
        account = self.account(request)
        relationships = account.relationships
        relationship = by_path_id(relationships, request, "relationship_id", "ach relationship")
        relationships.remove(relationship)
        return web.Response(status=204)
