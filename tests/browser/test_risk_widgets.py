"""The risk and return widgets in real Chromium over the whole stack: the statistics panel, the
risk contributions, the correlation heatmap and the efficient frontier show what the endpoints
answered for the sandbox's account, figure for figure; the history chart's benchmark line
toggles; a failing endpoint leaves the other cards working; a one-holding account is explained;
the keyboard reaches the heatmap; a phone's width holds. Screenshots in test-artifacts/browser/.
"""

from __future__ import annotations

import json
import re
from datetime import date
from decimal import ROUND_HALF_UP, Decimal

from playwright.sync_api import Page, expect

from tests.browser.conftest import SCREENSHOTS, sign_in
from tests.browser.pages import FIRST_LOADS, open_page
from tests.browser.site import Site

RISK_LOADS = (*FIRST_LOADS, "risk", "frontier", "performance")
NEW_CARDS = ("statistics", "risk-contributions", "correlation", "frontier")


def percent(value: str | None) -> str:
    """How the page writes a percentage string: "1,234.50 %"."""
    return "–" if value is None else f"{Decimal(value):,.2f} %"


def signed_percent(value: str | None) -> str:
    if value is None:
        return "–"
    amount = Decimal(value)
    return f"{'+' if amount > 0 else ''}{amount:,.2f} %" if amount else "0.00 %"


def ratio(value: str | None) -> str:
    """A ratio ("0.8123") to two places, half away from zero, as Intl rounds it."""
    if value is None:
        return "–"
    rounded = Decimal(value).quantize(Decimal("0.01"), rounding=ROUND_HALF_UP)
    return f"{rounded if rounded else abs(rounded):,.2f}"  # never "-0.00"


def day(iso: str) -> str:
    """ "Mar 1, 2026" from "2026-03-01"."""
    moment = date.fromisoformat(iso)
    return f"{moment:%b} {moment.day}, {moment.year}"


def wait_loaded(page: Page, *cards: str) -> None:
    for card in cards:
        expect(page.locator(f"#{card}")).to_have_attribute("aria-busy", "false")


def test_the_statistics_panel_shows_the_performance_answer(signed_in: Page) -> None:
    page = signed_in
    answer = open_page(page, RISK_LOADS)["performance"]
    wait_loaded(page, "statistics")

    def shows(stats: dict) -> None:
        expect(page.locator("#twr-value")).to_have_text(
            signed_percent(stats["time_weighted_return"])
        )
        expect(page.locator("#mwr-value")).to_have_text(
            signed_percent(stats["money_weighted_return"])
        )
        for key, tile in (("time_weighted_return", "twr"), ("money_weighted_return", "mwr")):
            expect(page.locator(f"#{tile}-text")).to_have_text(stats["explanations"][key])
            yearly = stats["annualized"][key]
            expect(page.locator(f"#{tile}-annualized")).to_have_text(
                "" if yearly is None else f"{signed_percent(yearly)} a year"
            )
        expect(page.locator("#stat-volatility")).to_have_text(
            "–" if stats["volatility"] is None else percent(stats["volatility"])
        )
        drawdown = stats["max_drawdown"]
        expect(page.locator("#stat-drawdown")).to_have_text(signed_percent(drawdown["percent"]))
        if drawdown["peak"]:
            dates = page.locator("#stat-drawdown-dates")
            expect(dates).to_contain_text(f"{day(drawdown['peak'])} to {day(drawdown['trough'])}")
            expect(dates).to_contain_text(
                f"recovered {day(drawdown['recovered'])}"
                if drawdown["recovered"]
                else "not yet recovered"
            )
        expect(page.locator("#stat-sharpe")).to_have_text(ratio(stats["sharpe"]))
        expect(page.locator("#stat-sortino")).to_have_text(ratio(stats["sortino"]))
        benchmark = stats["benchmark"]["symbol"]
        expect(page.locator("#stat-beta-label")).to_have_text(f"Beta vs {benchmark}")
        expect(page.locator("#stat-beta")).to_have_text(ratio(stats["beta"]))
        alpha = signed_percent(stats["alpha"])
        expect(page.locator("#stat-alpha")).to_have_text(
            alpha if stats["alpha"] is None else f"{alpha} a year"
        )
        expect(page.locator("#stat-benchmark")).to_have_text(
            signed_percent(stats["benchmark"]["return"])
        )
        expect(page.locator("#stat-excess")).to_have_text(signed_percent(stats["excess_return"]))
        conventions = page.locator("#statistics-conventions")
        expect(conventions).to_contain_text(f"{day(stats['start'])} to {day(stats['end'])}")
        expect(conventions).to_contain_text(
            f"risk-free rate {stats['conventions']['risk_free_rate']} % a year"
        )

    assert answer["period"] == "1Y"
    shows(answer)
    with page.expect_response(
        lambda r: "/api/portfolio/performance" in r.url and "period=3M" in r.url
    ) as later:
        page.locator("#statistics button[data-period='3M']").click()
    expect(page.locator("#statistics")).to_have_attribute("data-period", "3M")
    shows(later.value.json())
    assert page.console_errors == []


def test_risk_contributions_and_correlation_show_the_risk_answer(signed_in: Page) -> None:
    page = signed_in
    risk = open_page(page, RISK_LOADS)["risk"]
    wait_loaded(page, "risk-contributions", "correlation")
    assert len(risk["holdings"]) >= 2, "the demo account should hold several positions"

    # Contributions: one row per holding (and cash), figures as the API wrote them.
    expect(page.locator("#portfolio-volatility")).to_have_text(percent(risk["volatility"]))
    rows = page.locator("#risk-body tr[data-symbol]")
    expect(rows).to_have_count(len(risk["holdings"]))
    shown = page.evaluate(
        """() => [...document.querySelectorAll('#risk-body tr[data-symbol]')].map(tr => ({
            symbol: tr.dataset.symbol,
            ...Object.fromEntries([...tr.querySelectorAll('td[data-key]')]
                .map(td => [td.dataset.key, td.textContent])),
            bars: [...tr.querySelectorAll('.bar')].map(bar => parseFloat(bar.style.width)),
        }))"""
    )
    assert [row["symbol"] for row in shown] == [h["symbol"] for h in risk["holdings"]]
    cash = Decimal(risk["cash"]["weight"] or 0)
    longest = max(
        abs(cash), *(abs(Decimal(h[k])) for h in risk["holdings"] for k in ("weight", "risk_share"))
    )
    for row, holding in zip(shown, risk["holdings"], strict=True):
        assert row["weight"] == percent(holding["weight"]), row
        assert row["risk_share"] == percent(holding["risk_share"]), row
        assert row["volatility"] == percent(holding["volatility"]), row
        assert row["beta"] == ratio(holding["beta"]), row
        # Bars: weight and share of risk, as lengths relative to the longest.
        for width, key in zip(row["bars"], ("weight", "risk_share"), strict=True):
            expected = float(abs(Decimal(holding[key])) / longest * 100)
            assert abs(width - expected) < 0.01, (row, key)
    expect(page.locator("#risk-body tr[data-cash]")).to_have_count(0 if cash == 0 else 1)
    warnings = page.locator("#risk-warnings li")
    expect(warnings).to_have_text([w["message"] for w in risk["warnings"]])
    expect(page.locator("#risk-excluded li")).to_have_text([x["message"] for x in risk["excluded"]])
    expect(page.locator("#risk-conventions")).to_contain_text(
        f"benchmark {risk['conventions']['benchmark']}"
    )

    # Heatmap: the matrix, each cell's value in its title, red below zero and green above.
    symbols, matrix = risk["correlation"]["symbols"], risk["correlation"]["matrix"]
    grid = page.locator("#correlation table[role=grid]")
    expect(grid.locator("thead th")).to_have_text(symbols)
    cells = grid.evaluate(
        """table => [...table.querySelectorAll('td[data-row]')].map(td => ({
            text: td.textContent, title: td.title,
            rgb: getComputedStyle(td).backgroundColor.match(/\\d+/g).map(Number) }))"""
    )
    assert len(cells) == len(symbols) ** 2
    for index, cell in enumerate(cells):
        row, column = divmod(index, len(symbols))
        value = matrix[row][column]
        assert cell["text"] == ratio(value)
        assert cell["title"] == f"{symbols[row]} and {symbols[column]}: {value}"
        red, green, _ = cell["rgb"]
        if Decimal(value) > Decimal("0.05"):
            assert green > red, cell
        elif Decimal(value) < Decimal("-0.05"):
            assert red > green, cell
    expect(page.locator("#correlation-legend")).to_contain_text("rise and fall together")

    # The keyboard: one tab stop into the grid, arrows move, the readout says what a cell means.
    first = grid.locator("td[tabindex='0']")
    first.focus()
    expect(page.locator("#correlation-readout")).to_contain_text(
        f"{symbols[0]} and {symbols[1]}: {matrix[0][1]}"
    )
    page.keyboard.press("ArrowDown")
    expect(grid.locator("td[data-row='1'][data-column='1']")).to_be_focused()
    page.keyboard.press("End")
    last = len(symbols) - 1
    expect(grid.locator(f"td[data-row='1'][data-column='{last}']")).to_be_focused()
    expect(page.locator("#correlation-readout")).to_contain_text(
        f"{symbols[1]} and {symbols[last]}: {matrix[1][last]}"
    )
    assert grid.locator("td[tabindex='0']").count() == 1
    assert page.console_errors == []


def test_the_frontier_marks_the_current_and_optimal_portfolios(signed_in: Page) -> None:
    page = signed_in
    frontier = open_page(page, RISK_LOADS)["frontier"]
    wait_loaded(page, "frontier")
    assert len(frontier["points"]) >= 2, frontier.get("explanation")
    expect(page.locator("#frontier")).to_have_attribute("data-points", str(len(frontier["points"])))
    expect(page.locator("#frontier-empty")).to_be_hidden()
    drawn = page.evaluate(
        """() => Chart.getChart(document.getElementById('frontier-chart')).data.datasets
            .map(d => ({label: d.label, data: d.data}))"""
    )

    def at(point: dict) -> dict:
        return {"x": float(point["volatility"]), "y": float(point["return"])}

    assert drawn[0] == {
        "label": "Efficient frontier",
        "data": [at(point) for point in frontier["points"]],
    }
    marks = {"Your portfolio": "current", "Minimum volatility": "min_volatility",
             "Maximum Sharpe": "max_sharpe"}  # fmt: skip
    assert {d["label"]: d["data"] for d in drawn[1:]} == {
        label: [at(frontier[key])] for label, key in marks.items() if frontier[key]
    }

    figures = page.locator("#frontier-figures")
    current = frontier["current"]
    expect(figures).to_contain_text(
        f"Your portfolio: {percent(current['return'])} a year at "
        f"{percent(current['volatility'])} volatility, Sharpe {ratio(current['sharpe'])}."
    )
    better = frontier["improvement"]
    if better["return_at_current_volatility"] is not None:
        expect(figures).to_contain_text(
            f"best mix returned {percent(better['return_at_current_volatility'])} a year"
        )
    if better["volatility_at_current_return"] is not None:
        expect(figures).to_contain_text(
            f"with your return had {percent(better['volatility_at_current_return'])} volatility"
        )
    best = frontier["max_sharpe"]
    expect(figures).to_contain_text(
        f"Maximum Sharpe: {percent(best['return'])} a year at {percent(best['volatility'])}"
    )
    expect(page.locator("#frontier-disclaimer")).to_have_text(frontier["disclaimer"])
    assert "past returns do not predict" in frontier["disclaimer"].lower()
    assert page.console_errors == []


def test_the_benchmark_line_toggles_on_the_history_chart(signed_in: Page) -> None:
    page = signed_in
    page.wait_for_selector("#history[data-points]")
    toggle = page.get_by_role("button", name="Compare with SPY")
    expect(toggle).to_have_attribute("aria-pressed", "false")
    expect(page.locator("#benchmark-line")).to_be_hidden()

    def datasets() -> list[dict]:
        return page.evaluate(
            """() => Chart.getChart(document.getElementById('history-chart')).data.datasets
                .map(d => ({label: d.label, points: d.data.length}))"""
        )

    for period in ("1M", "1Y"):
        with page.expect_response(
            lambda r, p=period: "/api/portfolio/history" in r.url and f"period={p}" in r.url
        ) as answer:
            if period == "1M":
                toggle.click()
            else:  # the benchmark stays on across ranges
                page.locator("#history button[data-period='1Y']").click()
        assert "benchmark=SPY" in answer.value.url
        history = answer.value.json()
        benchmark = history["benchmark"]
        expect(toggle).to_have_attribute("aria-pressed", "true")
        known = [value for value in benchmark["values"] if value is not None]
        expect(page.locator("#history")).to_have_attribute("data-benchmark-points", str(len(known)))
        assert datasets()[1] == {"label": "SPY (rebased)", "points": len(known)}
        expect(page.locator("#benchmark-return")).to_have_text(signed_percent(benchmark["return"]))
        expect(page.locator("#excess-return")).to_have_text(
            signed_percent(benchmark["excess_return"])
        )
        expect(page.locator("#excess-label")).to_have_text("You vs SPY")

    toggle.focus()
    with page.expect_response(lambda r: "/api/portfolio/history" in r.url) as answer:
        page.keyboard.press("Enter")  # off again, from the keyboard
    assert "benchmark=" not in answer.value.url
    expect(toggle).to_have_attribute("aria-pressed", "false")
    expect(page.locator("#benchmark-line")).to_be_hidden()
    expect(page.locator("#history")).not_to_have_attribute("data-benchmark-points", re.compile("."))
    assert [d["label"] for d in datasets()] == ["Account value"]
    assert page.console_errors == []


def test_a_failing_risk_endpoint_leaves_the_other_cards_working(signed_in: Page) -> None:
    page = signed_in
    failing = json.dumps({"error": {"code": "broker_unavailable", "message": "Alpaca is down.",
                                    "details": {}}})  # fmt: skip
    route = re.compile(r"/api/portfolio/risk")
    page.route(
        route,
        lambda r: r.fulfill(
            status=503, body=failing, content_type="application/json", headers={"Retry-After": "4"}
        ),
    )
    page.goto("/")
    failures = {
        "risk-contributions": "Couldn't load your risk breakdown",
        "correlation": "Couldn't load how your holdings move together",
    }
    for card, says in failures.items():
        expect(page.locator(f"#{card} .card-error")).to_contain_text(
            f"{says}: Alpaca is down. Try again in 4 s."
        )
    wait_loaded(page, "frontier", "statistics", "history", "holdings")
    expect(page.locator("#frontier .card-error")).to_be_hidden()
    expect(page.locator("#twr-value")).to_have_text(re.compile(r"%$"))
    page.wait_for_selector("#holdings-body tr[data-symbol]")

    page.unroute(route)
    page.locator("#correlation .card-error").get_by_role("button", name="Retry").click()
    wait_loaded(page, "risk-contributions", "correlation")
    expect(page.locator("#risk-contributions .card-error")).to_be_hidden()
    expect(page.locator("#correlation .card-error")).to_be_hidden()
    page.wait_for_selector("#correlation table[role=grid]")
    # The browser logs the 503 itself; nothing else may have gone wrong.
    assert [e for e in page.console_errors if "503" not in e] == []


def test_one_holding_gets_an_explained_answer(page: Page, site: Site) -> None:
    sign_in(page, "demo-one-stock", site.password)
    loaded = open_page(page, RISK_LOADS)
    frontier, risk = loaded["frontier"], loaded["risk"]
    wait_loaded(page, *NEW_CARDS)
    assert frontier["points"] == []
    empty = page.locator("#frontier-empty")
    expect(empty).to_be_visible()
    expect(empty).to_have_text(frontier["explanation"])
    assert page.evaluate("() => Chart.getChart(document.getElementById('frontier-chart'))") is None
    expect(page.locator("#correlation")).to_contain_text("needs at least two holdings")
    expect(page.locator("#risk-body tr[data-symbol]")).to_have_count(len(risk["holdings"]))
    assert page.console_errors == []


def test_the_new_cards_fit_a_phone_and_screenshots(signed_in: Page) -> None:
    page = signed_in
    page.get_by_role("button", name="Compare with SPY").click()
    page.wait_for_selector("#history[data-benchmark-points]")
    wait_loaded(page, *NEW_CARDS)
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SCREENSHOTS / "risk-widgets-desktop.png"), full_page=True)
    for card in ("history", *NEW_CARDS):
        page.locator(f"#{card}").screenshot(path=str(SCREENSHOTS / f"card-{card}.png"))
    page.set_viewport_size({"width": 375, "height": 812})
    page.wait_for_function(
        "() => Chart.getChart(document.getElementById('frontier-chart')).width < 375"
    )
    assert page.evaluate("document.documentElement.scrollWidth") <= 375, "sideways scroll"
    for card in NEW_CARDS:
        box = page.locator(f"#{card}").bounding_box()
        assert box["x"] >= 0 and box["x"] + box["width"] <= 375, (card, box)
    page.screenshot(path=str(SCREENSHOTS / "risk-widgets-phone.png"), full_page=True)
    assert page.console_errors == []
