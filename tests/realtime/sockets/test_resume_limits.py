"""What a resume may cost: snapshots forced by resuming are limited per socket, and ``last_seq``
is a whole number in ASCII digits — anything else is refused in the protocol, never a 1011."""

from __future__ import annotations

import logging
from urllib.parse import quote

import pytest

from realtime import fanout

pytestmark = pytest.mark.django_db(transaction=True)


async def test_snapshots_forced_by_resuming_are_limited_per_socket(connect, owner, settings):
    settings.WS_MAX_RESUME_SNAPSHOTS = 2
    settings.WS_MAX_BAD_FRAMES = 3
    socket = await connect(f"/ws/portfolio/{owner.account_id}", cookie=owner.cookie)
    seq = (await socket.next_of("snapshot"))["seq"]
    never = seq + 1000  # a number this account never had: only a snapshot can answer it

    for _ in range(2):
        await socket.send({"type": "resume", "last_seq": never})
        assert (await socket.next_of("snapshot"))["data"]["account_id"] == owner.account_id
    await socket.send({"type": "resume", "last_seq": never})
    limited = await socket.next_of("error")
    assert limited["code"] == "resume_limited"
    assert 0 < limited["retry_after"] <= 30  # two a minute: the next in at most 30 s

    # Still open, and a resume the kept updates can answer costs nothing.
    published = await fanout.publish(owner.account_id, {"n": 1})
    await socket.send({"type": "resume", "last_seq": seq})
    assert (await socket.next_of("update"))["seq"] == published
    assert (await socket.next_of("system"))["seq"] == published

    # Going on is abuse: each refusal is a strike, and WS_MAX_BAD_FRAMES close the socket.
    for _ in range(2):
        await socket.send({"type": "resume", "last_seq": never})
    code, said = await socket.closed()
    assert code == 1008
    assert [m["code"] for m in said if m["type"] == "error"][-2:] == [
        "resume_limited",
        "policy_violation",
    ]


@pytest.mark.parametrize(
    "last_seq", ["²", "٣", "-1", "+5", " 5", "1e3", "5.0", "0x10", "9" * 20, "9" * 5000]
)
async def test_a_last_seq_that_is_not_ascii_digits_is_refused_not_a_crash(
    connect, owner, last_seq, caplog
):
    path = f"/ws/portfolio/{owner.account_id}?last_seq={quote(last_seq)}"
    with caplog.at_level(logging.INFO):
        socket = await connect(path, cookie=owner.cookie)
        code, said = await socket.closed()

    assert code == 1008
    assert said[-1]["code"] == "invalid_message"
    assert '"last_seq" must be a whole number' in said[-1]["message"]
    assert "ASCII digits" in said[-1]["message"]
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR]


async def test_a_resume_frame_names_a_whole_number_within_range(connect, owner):
    socket = await connect(f"/ws/portfolio/{owner.account_id}", cookie=owner.cookie)
    await socket.next_of("snapshot")

    for bad in (-1, 2**63, "5", True):  # four strikes: one short of the close
        await socket.send({"type": "resume", "last_seq": bad})
        refused = await socket.next_of("error")
        assert refused["code"] == "invalid_message" and refused["field"] == "last_seq", bad
    await socket.send({"type": "resume", "last_seq": 2**63 - 1})
    assert (await socket.next_of("snapshot"))["data"]["account_id"] == owner.account_id
