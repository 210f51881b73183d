"""What the browser tests share: how the page writes amounts, reading what it shows and what it
loaded, and waiting until it is live."""

from __future__ import annotations

import re
from collections.abc import Callable
from contextlib import ExitStack
from decimal import Decimal

from playwright.sync_api import Page, Response, expect

LIVE_TIMEOUT = 20_000  # ms: the sandbox moves a demo holding's price every second or so


def money(value: Decimal | str) -> str:
    """How the page writes an amount: "$1,234.56", "-$5.00"."""
    amount = Decimal(value)
    return f"{'-' if amount < 0 else ''}${abs(amount):,.2f}"


def decimal_of(text: str) -> Decimal:
    """The number in a cell ("+$2,163.84", "-8.51 %", "46") as a Decimal."""
    return Decimal(re.sub(r"[^0-9.\-]", "", text.replace("+", "")))


def api_path(path: str) -> Callable[[Response], bool]:
    return lambda response: response.url.split("?")[0].endswith(path) and response.ok


FIRST_LOADS = ("summary", "positions", "analytics", "history", "orders")


def open_page(page: Page, names: tuple[str, ...] = FIRST_LOADS) -> dict[str, dict]:
    """Navigate to the page and return the JSON the widgets loaded from the endpoints
    ``/api/portfolio/<name>`` named, by name."""
    page.goto("about:blank")  # so no answer to an earlier load of the page is caught below
    with ExitStack() as waiting:
        answers = {
            name: waiting.enter_context(page.expect_response(api_path(f"/api/portfolio/{name}")))
            for name in names
        }
        page.goto("/")
    return {name: answer.value.json() for name, answer in answers.items()}


def wait_live(page: Page) -> None:
    expect(page.locator("#live-status")).to_have_attribute("data-state", "live", timeout=10_000)


def holdings_table(page: Page) -> list[dict[str, str]]:
    """The holdings rows as shown, read in one go (live updates may reorder between reads)."""
    return page.evaluate(
        """() => [...document.querySelectorAll('#holdings-body tr[data-symbol]')].map(tr => {
            const cells = Object.fromEntries(
                [...tr.children].map(td => [td.dataset.key, td.textContent]));
            return {symbol: tr.dataset.symbol, ...cells};
        })"""
    )


def tooltip(page: Page, canvas: str, x: float, y: float = 0.5) -> tuple[str, str]:
    """Hover the chart at (x, y), as fractions of its canvas; the tooltip's title and first
    line, as Chart.js drew them."""
    box = page.locator(f"#{canvas}").bounding_box()
    page.mouse.move(box["x"] + box["width"] * x, box["y"] + box["height"] * y)
    return page.evaluate(
        """id => { const tip = Chart.getChart(document.getElementById(id)).tooltip;
            return [(tip.title || [])[0] || '', tip.body[0].lines[0]]; }""",
        canvas,
    )
