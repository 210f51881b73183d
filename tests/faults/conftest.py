"""The fault suite's application: one live stack per test module (see :mod:`tests.faults.live`)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator

import pytest

from tests.faults.live import Investor, Live


@pytest.fixture(scope="module")
def live(tmp_path_factory: pytest.TempPathFactory, sandbox_accounts: list[dict]) -> Iterator[Live]:
    # A diversified account (stocks that stream all day: its value moves every second) and the
    # last cash-only one, which simulated customers never trade and these tests may fund.
    watched = next(a["id"] for a in sandbox_accounts if a["shape"] == "diversified")
    traded = [a["id"] for a in sandbox_accounts if a["shape"] == "cash_only"][-1]
    app = Live(
        tmp_path_factory.mktemp("live"),
        [watched, traded],
        # Operators' knobs, turned down so each fault shows within seconds.
        QUOTE_LOCK_SECONDS="3",
        QUOTE_STREAM_SILENCE_SECONDS="3",
    )
    try:
        yield app.start()
    finally:
        app.close()


@pytest.fixture
async def investor(live: Live) -> AsyncIterator[Investor]:
    investor = live.investor()
    yield investor
    await investor.close()
