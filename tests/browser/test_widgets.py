"""Every widget of the portfolio page in real Chromium over the whole stack: the sandbox's data,
ranges, pie, what-if formula, sorting, "Load more", add funds once, a failing part, the 5-minute
refresh, the keyboard, and first paint (timings and screenshots in test-artifacts/browser/)."""

from __future__ import annotations

import json
import re
from decimal import Decimal
from fractions import Fraction

import pytest
from playwright.sync_api import Page, Route, expect

from tests.browser.conftest import SCREENSHOTS, sign_in
from tests.browser.pages import (
    api_path,
    decimal_of,
    holdings_table,
    money,
    open_page,
    tooltip,
    wait_live,
)
from tests.browser.site import Site

PERIODS = ("1D", "1W", "1M", "6M", "1Y", "MAX")


def test_every_widget_shows_the_accounts_data(signed_in: Page, site: Site, raw) -> None:
    page = signed_in
    loaded = open_page(page)
    account = site.accounts[0]
    wait_live(page)

    # Live value: on screen, in the API's currency form.
    total = page.locator("#total-value")
    expect(total).to_have_text(re.compile(r"^\$[\d,]+\.\d\d$"))
    expect(page.locator("#today-return")).to_contain_text("today")
    expect(page.locator("#live-latency")).to_have_text(re.compile(r"^· \d+ ms$"))

    # Holdings: the sandbox's own positions, symbol for symbol and share for share.
    positions = raw(f"/trading/accounts/{account}/positions")
    shown = holdings_table(page)
    assert {row["symbol"] for row in shown} == {p["symbol"] for p in positions}
    shares = {p["symbol"]: Decimal(p["qty"]) for p in positions}
    for row in shown:
        assert decimal_of(row["qty"]) == shares[row["symbol"]], row
        listed = next(p for p in loaded["positions"]["positions"] if p["symbol"] == row["symbol"])
        assert row["name"] == listed["name"]
        assert decimal_of(row["avg_entry_price"]) == Decimal(listed["avg_entry_price"])

    # Risk and diversification: the analytics the page fetched, number, label and sentence.
    analytics = loaded["analytics"]
    for name in ("risk", "diversification"):
        expect(page.locator(f"#{name}-score")).to_have_text(analytics[name]["score"])
        expect(page.locator(f"#{name}-label")).to_have_text(analytics[name]["label"])
        expect(page.locator(f"#{name}-text")).to_have_text(analytics[name]["explanation"])
        meter = page.locator(f"#{name}-meter")
        expect(meter).to_have_attribute("aria-valuenow", analytics[name]["score"])
        track, marker = meter.bounding_box(), meter.locator(".gauge-marker").bounding_box()
        centre = (marker["x"] + marker["width"] / 2 - track["x"]) / track["width"]
        assert abs(centre - float(analytics[name]["score"]) / 10) < 0.01, (name, centre)

    # Allocation: one legend line per asset class, with its share.
    legend = page.locator("#allocation-legend li")
    by_class = analytics["allocation"]["by_asset_class"]
    expect(legend).to_have_count(len(by_class))
    for line, slice_ in zip(legend.all(), by_class, strict=True):
        expect(line).to_contain_text(slice_["name"])
        expect(line).to_contain_text(f"{slice_['percent']} %")

    # Performance: the all-time change above the default range's chart.
    history = loaded["history"]
    expect(page.locator("#all-time")).to_contain_text(
        money(history["all_time_change"]["amount"]).lstrip("-")
    )
    known = [value for value in history["equity"] if value is not None]
    expect(page.locator("#history")).to_have_attribute("data-points", str(len(known)))

    # Transactions: the sandbox's newest orders, newest first.
    shown_orders = page.locator("#transactions-body tr").evaluate_all(
        "rows => rows.map(r => r.dataset.orderId)"
    )
    newest = [o["id"] for o in loaded["orders"]["orders"]]
    assert shown_orders == newest
    orders = raw(f"/trading/accounts/{account}/orders", status="all", limit=500)
    sandbox_ids = {o["id"] for o in orders}
    assert set(shown_orders) <= sandbox_ids

    # What if: starts from the account's value.
    initial = page.locator("#what-if-initial").input_value()
    assert Decimal(initial) > 0
    assert page.console_errors == []


def test_each_range_button_fetches_and_redraws(signed_in: Page) -> None:
    page = signed_in
    page.wait_for_selector("#history[data-points]")
    for period in PERIODS:
        button = page.locator(f'#history button[data-period="{period}"]')
        with page.expect_response(
            lambda r, p=period: "/api/portfolio/history" in r.url and f"period={p}" in r.url
        ) as answer:
            button.click()
        history = answer.value.json()
        card = page.locator("#history")
        expect(card).to_have_attribute("data-period", period)
        equity = [value for value in history["equity"] if value is not None]
        expect(card).to_have_attribute("data-points", str(len(equity)))
        expect(card).to_have_attribute("aria-busy", "false")
        expect(page.locator('#history button[aria-pressed="true"]')).to_have_text(period)
        rising = len(equity) < 2 or Decimal(equity[-1]) >= Decimal(equity[0])
        expect(card).to_have_attribute("data-trend", "up" if rising else "down")
        drawn = page.evaluate(
            """() => {
                const chart = Chart.getChart(document.getElementById('history-chart'));
                const data = chart.data.datasets[0];
                return {points: data.data.length, colour: data.borderColor,
                        ticks: chart.scales.y.ticks.map(t => t.label)};
            }"""
        )
        assert drawn["points"] == len(equity)
        assert drawn["colour"] == ("#3ddc97" if rising else "#ff6b6b")
        assert all(label.startswith("$") for label in drawn["ticks"]), drawn["ticks"]
        title, label = tooltip(page, "history-chart", 0.5)
        assert title and re.fullmatch(r"\$[\d,]+\.\d\d", label), (title, label)
    assert page.console_errors == []


def test_the_allocation_pie_toggles(signed_in: Page) -> None:
    page = signed_in
    allocation = open_page(page)["analytics"]["allocation"]
    page.wait_for_selector("#allocation[aria-busy=false]")
    for view, label in (("by_sector", "Sector"), ("by_industry", "Industry"),
                        ("by_asset_class", "Asset class")):  # fmt: skip
        page.get_by_role("button", name=label, exact=True).click()
        expect(page.locator("#allocation")).to_have_attribute("data-view", view)
        expect(page.get_by_role("button", name=label, exact=True)).to_have_attribute(
            "aria-pressed", "true"
        )
        names = page.locator("#allocation-legend .slice-name").all_inner_texts()
        shares = page.locator("#allocation-legend .share").all_inner_texts()
        assert names == [s["name"] for s in allocation[view]]
        assert shares == [f"{s['percent']} %" for s in allocation[view]]
        labels = page.evaluate(
            "() => Chart.getChart(document.getElementById('allocation-chart')).data.labels"
        )
        assert labels == names
    # The biggest slice starts at 12 o'clock: just right of the top, inside the ring.
    title, label = tooltip(page, "allocation-chart", 0.53, 0.1)
    assert label == f"{names[0]}: {shares[0]} ({money(allocation['by_asset_class'][0]['value'])})"
    assert page.console_errors == []


def compound(initial: str, contribution: str, per_year: int, years: int, rate: int) -> Decimal:
    """FV = P(1+i)^n + C((1+i)^n - 1)/i, i = rate/per_year, n = years*per_year, exactly,
    rounded to the cent half to even."""
    i = Fraction(rate, 100 * per_year)
    growth = (1 + i) ** (years * per_year)
    value = Fraction(initial) * growth + Fraction(contribution) * (growth - 1) / i
    return Decimal(round(value * 100)) / 100


@pytest.mark.parametrize(
    ("initial", "contribution", "frequency", "years", "strategy", "rate"),
    [
        ("10000", "250", "monthly", 20, "Aggressive", 10),
        ("41251.59", "1200.50", "yearly", 7, "Conservative", 4),
        ("0", "100", "monthly", 50, "Moderate", 7),
    ],
)
def test_the_what_if_figure_is_the_compound_growth_formula(
    signed_in: Page, initial, contribution, frequency, years, strategy, rate
) -> None:
    page = signed_in
    page.get_by_label("Initial amount ($)").fill(initial)
    page.get_by_label("Contribution ($)").fill(contribution)
    page.get_by_label("Every").select_option(frequency)
    page.get_by_label("Years").fill(str(years))
    page.get_by_role("radio", name=re.compile(strategy)).check()
    expected = compound(initial, contribution, 12 if frequency == "monthly" else 1, years, rate)
    expect(page.locator("#what-if-value")).to_have_text(money(expected))
    expect(page.locator("#what-if-disclaimer")).to_contain_text("not a promise")
    bars = page.evaluate(
        "() => Chart.getChart(document.getElementById('what-if-chart'))"
        ".data.datasets[0].data.length"
    )
    assert bars == years + 1

    page.get_by_label("Years").fill("0")
    expect(page.locator("#what-if-error")).to_contain_text("Years")
    expect(page.locator("#what-if-value")).to_have_text("–")
    assert page.console_errors == []


def test_holdings_sort_by_any_column(signed_in: Page) -> None:
    page = signed_in
    page.wait_for_selector("#holdings-body tr[data-symbol]")
    header = page.locator("#holdings thead")

    def column(key: str) -> list[str]:
        return [row[key] for row in holdings_table(page)]

    expect(header.locator('th[data-key="market_value"]')).to_have_attribute(
        "aria-sort", "descending"
    )
    values = [decimal_of(v) for v in column("market_value")]
    assert values == sorted(values, reverse=True)

    header.get_by_role("button", name="Ticker").click()
    expect(header.locator('th[data-key="symbol"]')).to_have_attribute("aria-sort", "ascending")
    symbols = column("symbol")
    assert symbols == sorted(symbols)
    header.get_by_role("button", name="Ticker").click()
    expect(header.locator('th[data-key="symbol"]')).to_have_attribute("aria-sort", "descending")
    assert column("symbol") == sorted(symbols, reverse=True)

    header.get_by_role("button", name="Return %").click()
    returns = [decimal_of(v) for v in column("unrealized_pl_percent")]
    assert returns == sorted(returns, reverse=True)
    header.get_by_role("button", name="Avg cost").press("Enter")  # keyboard works too
    costs = [decimal_of(v) for v in column("avg_entry_price")]
    assert costs == sorted(costs, reverse=True)
    assert page.console_errors == []


def test_transactions_filter_and_load_more(signed_in: Page, site: Site, raw) -> None:
    page = signed_in
    rows = page.locator("#transactions-body tr[data-order-id]")
    page.wait_for_selector("#transactions[aria-busy=false]")
    first_page = rows.evaluate_all("rows => rows.map(r => r.dataset.orderId)")
    more = page.get_by_role("button", name="Load more")
    expect(more).to_be_visible()
    with page.expect_response(lambda r: "/api/portfolio/orders" in r.url and "cursor=" in r.url):
        more.click()
    expect(rows).not_to_have_count(len(first_page))
    both = rows.evaluate_all("rows => rows.map(r => r.dataset.orderId)")
    assert both[: len(first_page)] == first_page and len(set(both)) == len(both)
    sandbox = raw(f"/trading/accounts/{site.accounts[0]}/orders", status="all", limit=500)
    assert set(both) <= {o["id"] for o in sandbox}

    with page.expect_response(lambda r: "status=open" in r.url) as answer:
        page.get_by_label("Status").select_option("open")
    expect(page.locator("#transactions")).to_have_attribute("aria-busy", "false")
    listed = answer.value.json()["orders"]
    shown = rows.evaluate_all("rows => rows.map(r => [r.dataset.orderId, r.dataset.status])")
    assert shown == [[o["id"], o["status"]] for o in listed]
    assert all(status not in ("filled", "canceled", "expired", "rejected") for _, status in shown)
    assert page.console_errors == []


def test_add_funds_checks_the_amount_and_submits_once(page: Page, site: Site, raw) -> None:
    # Another login's account: deposits are writes, and demo's accounts are read elsewhere.
    username = "demo-diversified"
    account = site.logins[username][0]
    sign_in(page, username, site.password)
    posts: list[str] = []
    page.on(
        "request",
        lambda r: (
            posts.append(r.headers.get("idempotency-key", ""))
            if r.method == "POST" and "/api/portfolio/funds" in r.url
            else None
        ),
    )
    page.get_by_role("button", name="Add funds").click()
    dialog = page.get_by_role("dialog")
    expect(dialog).to_be_visible()
    amount = dialog.get_by_label("Amount (USD)")
    expect(amount).to_be_focused()
    expect(page.locator("#add-funds-outcome")).to_be_hidden()

    for wrong, says in (("-5", "above $0"), ("12.345", "dollars and cents"),
                        ("50000.01", "most you can add")):  # fmt: skip
        amount.fill(wrong)
        amount.press("Enter")
        expect(dialog.get_by_role("alert")).to_contain_text(says)
    assert posts == []

    before = {t["id"] for t in raw(f"/accounts/{account}/transfers")}
    amount.fill("137.42")
    with page.expect_response(lambda r: "/api/portfolio/funds" in r.url) as answer:
        # Two submits in the same tick, as a double click or Enter + click would make.
        page.evaluate(
            "() => { const f = document.getElementById('add-funds-form');"
            " f.requestSubmit(); f.requestSubmit(); }"
        )
    assert answer.value.status == 201
    expect(page.locator("#add-funds-outcome-text")).to_contain_text("$137.42 is on its way")
    expect(page.locator("#add-funds-form")).to_be_hidden()
    assert len(posts) == 1 and posts[0]
    new = [t for t in raw(f"/accounts/{account}/transfers") if t["id"] not in before]
    assert [Decimal(t["amount"]) for t in new] == [Decimal("137.42")]

    page.get_by_role("button", name="Done").click()
    expect(dialog).to_be_hidden()
    assert page.console_errors == []


def test_a_deposit_whose_answer_was_lost_is_retried_without_paying_twice(
    page: Page, site: Site, raw
) -> None:
    username = "demo-diversified"
    account = site.logins[username][0]
    sign_in(page, username, site.password)
    keys: list[str] = []

    def lose_the_first_answer(route: Route) -> None:
        keys.append(route.request.headers["idempotency-key"])
        if len(keys) == 1:
            route.fetch()  # the server takes the deposit...
            route.abort("connectionreset")  # ...and the browser never hears back
        else:
            route.continue_()

    page.route(re.compile(r"/api/portfolio/funds"), lose_the_first_answer)
    before = {t["id"] for t in raw(f"/accounts/{account}/transfers")}
    page.get_by_role("button", name="Add funds").click()
    amount = page.get_by_role("dialog").get_by_label("Amount (USD)")
    amount.fill("58.21")
    amount.press("Enter")
    expect(page.get_by_role("dialog").get_by_role("alert")).to_contain_text("Trying again is safe")
    with page.expect_response(lambda r: "/api/portfolio/funds" in r.url) as answer:
        page.get_by_role("dialog").get_by_role("button", name="Add funds").click()
    assert answer.value.headers.get("idempotent-replayed") == "true"
    expect(page.locator("#add-funds-outcome-text")).to_contain_text("$58.21 is on its way")
    assert len(keys) == 2 and keys[0] == keys[1]
    new = [t for t in raw(f"/accounts/{account}/transfers") if t["id"] not in before]
    assert [Decimal(t["amount"]) for t in new] == [Decimal("58.21")]
    # The lost request's failure is the browser's own console line; nothing else.
    assert [e for e in page.console_errors if "ERR_CONNECTION_RESET" not in e] == []


def test_a_failing_widget_says_so_and_the_rest_carry_on(signed_in: Page) -> None:
    page = signed_in
    failing = json.dumps({"error": {"code": "broker_unavailable", "message": "Alpaca is down.",
                                    "details": {}}})  # fmt: skip
    page.route(
        re.compile(r"/api/portfolio/history"),
        lambda route: route.fulfill(
            status=503, body=failing, content_type="application/json", headers={"Retry-After": "7"}
        ),
    )
    page.goto("/")
    problem = page.locator("#history .card-error")
    expect(problem).to_contain_text(
        "Couldn't load your performance: Alpaca is down. Try again in 7 s."
    )
    page.wait_for_selector("#holdings-body tr[data-symbol]")
    expect(page.locator("#risk-score")).not_to_have_text("–")
    wait_live(page)

    page.unroute(re.compile(r"/api/portfolio/history"))
    problem.get_by_role("button", name="Retry").click()
    expect(problem).to_be_hidden()
    page.wait_for_selector("#history[data-points]")
    # The browser logs the 503 itself; nothing else may have gone wrong.
    assert [e for e in page.console_errors if "503" not in e] == []


def test_scores_refresh_every_five_minutes(page: Page, site: Site) -> None:
    page.clock.install()
    sign_in(page, site.username, site.password)
    page.wait_for_selector("#scores[aria-busy=false]")
    with page.expect_response(api_path("/api/portfolio/analytics")):
        page.clock.fast_forward("05:00")
    expect(page.locator("#scores-updated")).to_contain_text("Updated")


def test_keyboard_reaches_and_works_every_control(signed_in: Page) -> None:
    page = signed_in
    page.wait_for_selector("#history[data-points]")
    named = page.evaluate(
        """() => [...document.querySelectorAll(
                'main input, main select, main button, dialog input, dialog button')]
            .filter(e => !e.closest('[hidden]'))
            .filter(e => !(e.labels && e.labels.length) && !e.getAttribute('aria-label')
                         && !e.textContent.trim())
            .map(e => e.outerHTML)"""
    )
    assert named == [], "controls without a label"
    page.locator("#history button[data-period='1W']").focus()
    with page.expect_response(lambda r: "period=1W" in r.url):
        page.keyboard.press("Enter")
    page.keyboard.press("Tab")  # on to the next range, 1M
    with page.expect_response(lambda r: "period=1M" in r.url):
        page.keyboard.press("Space")
    page.get_by_role("button", name="Add funds").focus()
    page.keyboard.press("Enter")
    expect(page.get_by_role("dialog")).to_be_visible()
    page.keyboard.press("Escape")
    expect(page.get_by_role("dialog")).to_be_hidden()
    assert page.console_errors == []


def test_first_paint_and_screenshots(signed_in: Page) -> None:
    """Measured, not asserted: when the live value and the holdings reached the screen after
    navigation, against when the HTML arrived and the document was parsed (the baselines), and
    how much the layout shifted on the way. Written to test-artifacts/browser/ (BENCHMARKS.md)."""
    page = signed_in
    page.add_init_script(
        """window.__shift = 0;
        new PerformanceObserver(list => { for (const e of list.getEntries())
            if (!e.hadRecentInput) window.__shift += e.value; })
          .observe({type: 'layout-shift', buffered: true});"""
    )
    samples = []
    for _ in range(10):
        page.goto("/")
        page.wait_for_function(
            "() => performance.getEntriesByName('clera:live-value').length"
            " && performance.getEntriesByName('clera:holdings').length"
        )
        page.wait_for_selector("#history[data-points]")
        samples.append(page.evaluate(
            """() => { const nav = performance.getEntriesByType('navigation')[0]; return {
                html_ms: nav.responseEnd,
                dom_ready_ms: nav.domContentLoadedEventEnd,
                live_value_ms: performance.getEntriesByName('clera:live-value')[0].startTime,
                holdings_ms: performance.getEntriesByName('clera:holdings')[0].startTime,
                layout_shift: window.__shift,
            }; }"""
        ))  # fmt: skip
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    wait_live(page)
    page.screenshot(path=str(SCREENSHOTS / "page-desktop.png"), full_page=True)
    page.set_viewport_size({"width": 375, "height": 812})
    page.wait_for_function(  # the charts take the new width (Chart.js resizes on its own)
        "() => Chart.getChart(document.getElementById('history-chart')).width < 375"
    )
    page.screenshot(path=str(SCREENSHOTS / "page-phone.png"), full_page=True)
    width = page.evaluate("document.documentElement.scrollWidth")
    assert width <= 375, "the page scrolls sideways on a phone"
    (SCREENSHOTS / "page-timings.json").write_text(json.dumps(samples, indent=2) + "\n")
    assert all(s["live_value_ms"] > 0 and s["holdings_ms"] > 0 for s in samples)
    # Skeletons hold each widget's place: below 0.1 is "good" cumulative layout shift.
    assert max(s["layout_shift"] for s in samples) < 0.1, samples
    assert page.console_errors == []
