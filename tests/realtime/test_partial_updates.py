"""Partial updates: applied in order they rebuild the whole state; merged they do both.

States are drawn as the calculator pushes them: the same holdings with figures that move, now
and then a holding set that changes (a fill), which must travel whole.
"""

import json

from hypothesis import given
from hypothesis import strategies as st

from realtime import protocol

SYMBOLS = ("AAPL", "TSLA", "SPY", "BTC/USD")
figures = st.sampled_from(("1.00", "2.00", "3.50", None))


@st.composite
def states(draw: st.DrawFn) -> dict:
    symbols = draw(st.lists(st.sampled_from(SYMBOLS), unique=True, min_size=0, max_size=4))
    return {
        "account_id": "acct",
        "total_value": draw(figures),
        "cash": draw(figures),
        "today_return": draw(figures),
        "as_of": draw(st.sampled_from(("t1", "t2", "t3"))),
        "holdings": [
            {"symbol": s, "price": draw(figures), "weight_percent": draw(figures)} for s in symbols
        ],
    }


@st.composite
def paths(draw: st.DrawFn) -> list[dict]:
    """States one after another, mostly with the previous one's holdings (figures moved)."""
    path = [draw(states())]
    for _ in range(draw(st.integers(1, 8))):
        if draw(st.booleans()):
            path.append(draw(states()))
            continue
        before = path[-1]
        moved = {**before, "total_value": draw(figures), "as_of": draw(figures)}
        moved["holdings"] = [
            h if draw(st.booleans()) else {**h, "price": draw(figures)} for h in before["holdings"]
        ]
        path.append(moved)
    return path


@given(path=paths())
def test_partial_updates_applied_in_order_rebuild_the_whole_state(path) -> None:
    client = path[0]  # the snapshot
    for before, after in zip(path, path[1:], strict=False):
        data = json.loads(json.dumps(protocol.changes(before, after)))  # over the wire
        client = protocol.apply(client, data)
        assert client == after


@given(path=paths())
def test_unsent_updates_merged_are_one_update_doing_all(path) -> None:
    """What a slow socket's outbox sends: the merge of every update it could not send yet."""
    frames = [
        protocol.frame("update", seq, protocol.encode(protocol.changes(before, after)))
        for seq, (before, after) in enumerate(zip(path, path[1:], strict=False), start=2)
    ]
    merged = frames[0]
    for frame in frames[1:]:
        merged = protocol.merge_updates(merged, frame)
    message = json.loads(merged)
    assert message["seq"] == len(path)
    assert protocol.apply(path[0], message["data"]) == path[-1]


def test_a_first_push_and_a_new_holding_set_travel_whole() -> None:
    state = {"account_id": "a", "total_value": "1.00", "holdings": [{"symbol": "AAPL"}]}
    assert protocol.changes(None, state) is state
    bought = {**state, "holdings": [{"symbol": "AAPL"}, {"symbol": "TSLA"}]}
    assert protocol.changes(state, bought) is bought
    moved = {**state, "total_value": "2.00"}
    assert protocol.changes(state, moved) == {
        "partial": True,
        "account_id": "a",
        "total_value": "2.00",
    }


def test_frames_wrap_encoded_data_as_it_is() -> None:
    text = protocol.frame("update", 7, '{"partial":true,"total_value":"2.00"}')
    assert json.loads(text) == {
        "type": "update",
        "seq": 7,
        "data": {"partial": True, "total_value": "2.00"},
    }
