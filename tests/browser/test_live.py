"""The live value in real Chromium: it moves with the sandbox; a blocked socket falls back to
polling the summary and comes back resuming from its last sequence; offline and back; a session
that ended stops the feed and offers to sign in again."""

from __future__ import annotations

import re
from decimal import Decimal

import pytest
import requests
from django.conf import settings
from playwright.sync_api import Page, WebSocketRoute, expect
from playwright.sync_api import TimeoutError as PlaywrightTimeout

from tests.browser.conftest import sign_in
from tests.browser.pages import LIVE_TIMEOUT, api_path, money, wait_live
from tests.browser.site import Site


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
