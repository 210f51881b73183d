"""The application's processes failing under an investor who keeps watching: the calculator
killed and restarted, the quote consumer's leader killed with a standby running, daphne stopped
with SIGTERM while clients are connected. Each asserts what the investor sees."""

from __future__ import annotations

from datetime import UTC, datetime

from tests.faults.live import consistent, streamed_since


async def test_a_killed_calculator_restarted_resumes_the_pushes(live, investor):
    socket = await investor.watch()
    await socket.next_of("snapshot", timeout=30)
    _, before = await socket.next_of("update", timeout=30)

    live.processes["calculator"].kill()
    live.start_process("calculator")

    _, after = await socket.next_of("update", timeout=30)
    assert after["seq"] > before["seq"]
    consistent(after["data"])


async def test_the_standby_quote_consumer_takes_over_from_a_killed_leader(live, investor):
    leader = live.processes["quotes"]
    live.start_process("quotes")  # the standby: waits on the leader's lock
    socket = await investor.watch()
    await socket.next_of("snapshot", timeout=30)

    leader.kill()
    killed = datetime.now(UTC)

    # Prices streamed after the kill reach the socket: the standby holds the stream now.
    while True:
        _, update = await socket.next_of("update", timeout=30)
        consistent(update["data"])
        if streamed_since(update["data"], killed):
            break


async def test_daphne_sigterm_closes_1001_and_every_client_resumes_without_a_gap(live):
    investors = [live.investor() for _ in range(3)]
    sockets = [await investor.watch() for investor in investors]
    seen = []
    for socket in sockets:
        await socket.next_of("snapshot", timeout=30)
        seen.append((await socket.next_of("update", timeout=30))[1]["seq"])

    live.daphne.terminate()
    for socket in sockets:
        _, closed = await socket.next_of("closed", timeout=30)
        assert closed["code"] == 1001
    assert live.daphne.wait(timeout=30) == 0
    live.start_daphne()

    for last_seq in seen:
        investor = live.investor()
        socket = await investor.watch(last_seq=last_seq)
        try:
            replayed = []
            while True:
                _, message = await socket.next_of("update", "system", "snapshot", timeout=30)
                assert message["type"] != "snapshot", "a resume within the replay window"
                if message["type"] == "system":
                    break
                replayed.append(message["seq"])
            # Every update since the client's last, in order, none missing.
            assert replayed == list(range(last_seq + 1, last_seq + 1 + len(replayed)))
            assert message["seq"] == (replayed[-1] if replayed else last_seq)
        finally:
            await investor.close()
    for investor in investors:
        await investor.close()
