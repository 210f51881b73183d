"""What a page load costs at Alpaca: a bounded number of calls, however many holdings.

Counted by the recording pass-through the gateway talks to, so every real request counts.
"""

from __future__ import annotations

import pytest

from clera.devstack.api_calls import PAGE

pytestmark = pytest.mark.django_db

#: summary, positions and analytics: account + positions each (3 x 2); the asset list once;
#: history: creation time, positions, the period and the all-time history; orders; activities.
COLD_CALLS = 3 * 2 + 1 + 4 + 1 + 1
#: Warm: the asset list and the histories come from the cache.
WARM_CALLS = 3 * 2 + 1 + 1


def load_page(client) -> None:
    for path in PAGE:
        assert client.get(path).status_code == 200, path


@pytest.mark.parametrize("shape", ["one_stock", "diversified", "option"])
def test_a_page_load_makes_a_bounded_number_of_calls(
    recorder, link, client_for, shape_account, raw, shape
):
    account = shape_account[shape]
    holdings = len(raw(f"/trading/accounts/{account}/positions"))
    client = client_for(link(account))

    load_page(client)
    cold = [(call.method, call.path) for call in recorder.calls]
    recorder.clear()
    load_page(client)
    warm = [(call.method, call.path) for call in recorder.calls]

    assert len(cold) == COLD_CALLS, cold
    assert len(warm) == WARM_CALLS, warm
    # Names and classes of every holding came from ONE call for the asset list.
    assert [path for _, path in cold if path.startswith("/v1/assets")] == ["/v1/assets"]
    assert holdings >= 1
