"""The live value in real Chromium: it moves with the sandbox; a partial update changes only
what it names; a blocked socket falls back to polling the summary and comes back resuming from
its last sequence; offline and back; a session that ended stops the feed and offers to sign in
again."""

from __future__ import annotations

import asyncio
import json
import re
from collections.abc import Coroutine
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any, TypeVar

import pytest
import requests
from django.conf import settings
from playwright.sync_api import Page, WebSocketRoute, expect
from playwright.sync_api import TimeoutError as PlaywrightTimeout

from marketdata import moments
from realtime import fanout
from realtime.protocol import apply
from realtime.redis_loop import forget_loop_client
from tests.browser.conftest import sign_in
from tests.browser.pages import LIVE_TIMEOUT, api_path, holdings_table, money, wait_live
from tests.browser.site import Site

T = TypeVar("T")


def test_the_live_value_and_prices_move_with_the_sandbox(signed_in: Page) -> None:
    page = signed_in
    wait_live(page)
    total = page.locator("#total-value")
    first = total.get_attribute("data-value")
    page.wait_for_function(
        "first => document.querySelector('#total-value').dataset.value !== first",
        arg=first,
        timeout=LIVE_TIMEOUT,
    )
    # A holding's price moved in place, and its cell flashed.
    page.wait_for_selector("#holdings-body tr[data-moves]", timeout=LIVE_TIMEOUT)
    page.wait_for_selector("#holdings-body td.flash-up, #holdings-body td.flash-down")
    expect(total).to_have_text(money(total.get_attribute("data-value")))
    assert page.console_errors == []


def _run(coroutine: Coroutine[Any, Any, T]) -> T:
    """Await ``coroutine`` on an event loop of its own in another thread: Playwright's sync API
    counts this thread as running one (see conftest)."""

    async def run() -> T:
        try:
            return await coroutine
        finally:
            await forget_loop_client()

    with ThreadPoolExecutor(max_workers=1) as pool:
        return pool.submit(asyncio.run, run()).result()


def test_a_partial_update_changes_only_what_it_names(page: Page, site: Site) -> None:
    """Updates published as the calculator publishes them (realtime.fanout): a whole state, then
    a partial one naming the total and one holding. The page applies the partial to the whole
    state: the total and that holding move, the other holdings and figures keep theirs."""
    username = "demo-etf-heavy"  # several holdings; no other test reads this login's page
    account = site.logins[username][0]
    frames: dict[int, dict] = {}  # the snapshot and updates that reached the page, by seq
    mine: set[int] | None = None  # once set, only these updates reach the page

    def route(socket: WebSocketRoute) -> None:
        server = socket.connect_to_server()

        def relay(message: str | bytes) -> None:
            frame = json.loads(message)
            if frame["type"] == "update" and mine is not None and frame["seq"] not in mine:
                return  # the calculator's own pushes would move the figures under test
            if frame["type"] in ("snapshot", "update"):
                frames[frame["seq"]] = frame
            socket.send(message)

        server.on_message(relay)

    page.route_web_socket(re.compile(r"/ws/portfolio/"), route)
    sign_in(page, username, site.password)
    wait_live(page)
    page.wait_for_selector("#holdings-body tr[data-symbol]")
    mine = set()
    snapshot = next(frame["data"] for frame in frames.values() if frame["type"] == "snapshot")
    assert len(snapshot["holdings"]) > 1, snapshot
    total = page.locator("#total-value")

    whole = {
        **snapshot,
        "total_value": str(Decimal(snapshot["total_value"]) + 1000),
        "as_of": moments.iso(datetime.now(UTC)),
    }
    mine.add(_run(fanout.publish(account, whole)))
    expect(total).to_have_attribute("data-value", whole["total_value"])
    before = {row["symbol"]: row for row in holdings_table(page)}
    today = page.locator("#today-return").text_content()

    moved = whole["holdings"][0]
    price = Decimal("123.45")
    value = (Decimal(moved["qty"]) * price).quantize(Decimal("0.01"))
    moved = {**moved, "price": str(price), "market_value": str(value)}
    partial = {
        "partial": True,
        "account_id": account,
        "total_value": str(Decimal(whole["total_value"]) + 1000),
        "as_of": moments.iso(datetime.now(UTC)),
        "holdings": [moved],
    }
    seq = _run(fanout.publish(account, partial))
    mine.add(seq)
    expect(total).to_have_attribute("data-value", partial["total_value"])
    expect(total).to_have_text(money(partial["total_value"]))
    assert frames[seq]["data"] == partial  # it reached the page as a partial update
    after = {row["symbol"]: row for row in holdings_table(page)}
    symbol = moved["symbol"]
    assert after[symbol]["price"] == money(price)
    assert after[symbol]["market_value"] == money(value)
    unchanged = ("price", "market_value")
    assert {k: v for k, v in after.pop(symbol).items() if k not in unchanged} == {
        k: v for k, v in before.pop(symbol).items() if k not in unchanged
    }
    assert after == before
    assert page.locator("#today-return").text_content() == today
    assert page.console_errors == []


def test_the_page_applies_updates_as_the_server_does(signed_in: Page) -> None:
    """The page's applyUpdate against realtime.protocol.apply: whole, partial, chained."""
    page = signed_in
    holding = {"symbol": "AAA", "price": "10.00", "market_value": "100.00"}
    other = {"symbol": "BBB", "price": "5.00", "market_value": "50.00"}
    state = {"account_id": "a", "total_value": "150.00", "cash": "0.00", "as_of": "t0",
             "holdings": [holding, other]}  # fmt: skip
    moved = {**holding, "price": "11.00", "market_value": "110.00"}
    partial = {"partial": True, "account_id": "a", "total_value": "160.00", "holdings": [moved]}
    figures_only = {"partial": True, "account_id": "a", "as_of": "t1"}
    cases = [
        (state, {**state, "total_value": "1.00", "holdings": [other]}),  # whole: replaces
        (state, figures_only),  # no holdings key: every holding kept
        (state, partial),  # one holding replaced in place, the other kept
        (state, {**partial, "holdings": [{"symbol": "CCC", "price": "1.00"}]}),  # appended
        (figures_only, partial),  # two partial updates as one
    ]
    results = page.evaluate(
        """async cases => {
            const page = document.querySelector('script[type="module"]').src;
            const { applyUpdate } = await import(new URL("updates.js", page));
            return cases.map(([state, data]) => {
                const before = JSON.stringify(state);
                return [applyUpdate(state, data), JSON.stringify(state) === before];
            });
        }""",
        cases,
    )
    assert results == [[apply(state, data), True] for state, data in cases]


def test_a_blocked_socket_falls_back_to_polling_and_resumes(signed_in: Page) -> None:
    page = signed_in
    blocked = False
    opened: list[WebSocketRoute] = []

    def route(socket: WebSocketRoute) -> None:
        opened.append(socket)
        if blocked:
            socket.close(code=1013, reason="blocked by the test")
        else:
            socket.connect_to_server()

    page.route_web_socket(re.compile(r"/ws/portfolio/"), route)
    page.goto("/")
    wait_live(page)

    blocked = True
    opened[-1].close(code=1001, reason="the test drops the socket")
    badge = page.locator("#live-status")
    expect(badge).to_have_attribute("data-state", "reconnecting")
    expect(page.locator("#live-note")).to_contain_text("refreshing every 5 s")
    total = page.locator("#total-value")
    seen = {total.get_attribute("data-value")}
    for polls in range(1, 5):  # every 5 s; two at least, until one has moved the value
        with page.expect_response(api_path("/api/portfolio/summary"), timeout=LIVE_TIMEOUT):
            pass
        seen.add(total.get_attribute("data-value"))
        if polls >= 2 and len(seen) > 1:
            break
    assert len(seen) > 1, "polling the summary did not move the value"
    expect(badge).to_have_attribute("data-state", "reconnecting")
    assert len(opened) >= 2  # it kept trying the socket meanwhile (first retry within 1 s)

    blocked = False
    wait_live_again = 40_000  # the backoff has grown while blocked (at most 15 s by now)
    expect(badge).to_have_attribute("data-state", "live", timeout=wait_live_again)
    assert re.search(r"[?&]last_seq=\d+", opened[-1].url), opened[-1].url
    # Resumed, not just reopened: heartbeats again (the latency shows) and polling has stopped.
    expect(page.locator("#live-latency")).to_have_text(re.compile(r"\d+ ms"))
    with (  # a poll would be due within 5 s
        pytest.raises(PlaywrightTimeout),
        page.expect_request(lambda r: "/api/portfolio/summary" in r.url, timeout=6_000),
    ):
        pass
    assert page.console_errors == []


def test_offline_then_back_online(signed_in: Page) -> None:
    page = signed_in
    wait_live(page)
    badge = page.locator("#live-status")
    page.context.set_offline(True)
    expect(badge).to_have_attribute("data-state", "offline")
    expect(page.locator("#live-note")).to_contain_text("Can't reach Clera")
    page.context.set_offline(False)
    wait_live(page)
    first = page.locator("#total-value").get_attribute("data-value")
    page.wait_for_function(
        "first => document.querySelector('#total-value').dataset.value !== first",
        arg=first,
        timeout=LIVE_TIMEOUT,
    )


def test_a_session_that_ended_stops_the_live_feed_and_offers_sign_in(signed_in: Page) -> None:
    page = signed_in
    opened: list[WebSocketRoute] = []

    def route(socket: WebSocketRoute) -> None:
        opened.append(socket)
        socket.connect_to_server()

    page.route_web_socket(re.compile(r"/ws/portfolio/"), route)
    page.goto("/")
    wait_live(page)
    page.context.clear_cookies()  # signed out elsewhere, or the session expired
    opened[-1].close(code=1001, reason="the server restarts")
    badge = page.locator("#live-status")
    expect(badge).to_have_attribute("data-state", "offline", timeout=LIVE_TIMEOUT)
    expect(page.get_by_role("link", name="Sign in again")).to_be_visible()


def test_an_order_appears_in_transactions_as_it_happens(
    page: Page, site: Site, raw, sandbox_url: str
) -> None:
    # Another login's account: an order is a write, and demo's accounts are read elsewhere.
    username = "demo-diversified"
    account = site.logins[username][0]
    sign_in(page, username, site.password)
    wait_live(page)
    page.wait_for_selector("#transactions[aria-busy=false]")
    held = next(p for p in raw(f"/trading/accounts/{account}/positions")
                if p["asset_class"] == "us_equity")  # fmt: skip
    placed = requests.post(
        f"{sandbox_url}/v1/trading/accounts/{account}/orders",
        json={"symbol": held["symbol"], "qty": "1", "side": "buy", "type": "market",
              "time_in_force": "day"},
        auth=(settings.SANDBOX_API_KEY, settings.SANDBOX_SECRET_KEY),
        timeout=10,
    )  # fmt: skip
    placed.raise_for_status()
    order = placed.json()
    first = page.locator("#transactions-body tr").first
    expect(first).to_have_attribute("data-order-id", order["id"], timeout=LIVE_TIMEOUT)
    expect(first).to_have_attribute("data-status", "filled", timeout=LIVE_TIMEOUT)
    filled = raw(f"/trading/accounts/{account}/orders/{order['id']}")
    expect(first).to_contain_text(money(Decimal(filled["filled_avg_price"])))
    assert page.locator(f'#transactions-body tr[data-order-id="{order["id"]}"]').count() == 1
    assert page.console_errors == []


def test_a_socket_that_stops_answering_is_replaced(signed_in: Page) -> None:
    """A half-open connection (the server's side gone without a close) never closes by itself:
    a heartbeat left unanswered for an interval gives it up, and a new socket takes over."""
    page = signed_in
    page.clock.install()
    hung = False
    opened: list[WebSocketRoute] = []

    def route(socket: WebSocketRoute) -> None:
        opened.append(socket)
        server = socket.connect_to_server()
        # While hung, nothing the server says reaches the page.
        server.on_message(lambda message: None if hung else socket.send(message))

    page.route_web_socket(re.compile(r"/ws/portfolio/"), route)
    page.goto("/")
    wait_live(page)
    expect(page.locator("#live-latency")).to_have_text(re.compile(r"\d+ ms"))
    hung = True
    badge = page.locator("#live-status")
    page.clock.fast_forward("00:16")  # a heartbeat goes out, and is not answered
    expect(badge).to_have_attribute("data-state", "live")
    page.clock.fast_forward("00:16")  # the next finds it unanswered
    expect(badge).to_have_attribute("data-state", "reconnecting")
    hung = False
    page.clock.fast_forward("00:02")  # the first retry is due within 1 s
    wait_live(page)
    assert len(opened) == 2
