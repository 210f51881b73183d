"""The Procfile's web process as a platform runs it: daphne on every interface at $PORT behind
one proxy, whose X-Forwarded-For entry (the last) is the client's address — an entry the client
made up in front of it changes nothing."""

from __future__ import annotations

import os
import shlex
import signal
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests
from honcho.environ import parse_procfile

from clera.devstack import stack
from clera.devstack.daphne_process import DaphneProcess
from clera.devstack.local_server import child_env
from clera.devstack.ports import free_port

ROOT = Path(__file__).resolve().parents[2]
PROCFILE = parse_procfile((ROOT / "Procfile").read_text())
WEB = PROCFILE.processes["web"]
#: Another loopback address: it answers only if web listens on every interface.
ELSEWHERE = "127.0.0.2"


def test_web_serves_every_interface_at_port_with_proxy_headers() -> None:
    words = shlex.split(WEB)

    assert "daphne" in words and "--proxy-headers" in words
    assert words[words.index("-b") + 1] == "0.0.0.0"
    assert words[words.index("-p") + 1].startswith("${PORT")
    assert "NUM_PROXIES=${NUM_PROXIES:-1}" in words  # consistent with the trusted headers


class ProcfileWeb(DaphneProcess):
    """The Procfile's ``web`` line run by a shell, as a platform does."""

    def command(self) -> list[str]:
        return ["/bin/sh", "-c", WEB]

    def stop(self) -> None:
        if self._process is not None and self._process.poll() is None:
            os.killpg(self.pid, signal.SIGTERM)  # the shell and daphne under it
        super().stop()


@pytest.fixture(scope="module")
def web(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    folder = tmp_path_factory.mktemp("procfile-web")
    port = free_port(ELSEWHERE)
    env = child_env(
        PORT=str(port),
        DATABASE_URL=f"sqlite:///{folder / 'db.sqlite3'}",
        ALLOWED_HOSTS=ELSEWHERE,
        API_THROTTLE_RATE="2/minute",
    )
    env.pop("NUM_PROXIES", None)
    with (folder / "web.log").open("w") as log, ProcfileWeb(ELSEWHERE, port, env, output=log):
        yield f"http://{ELSEWHERE}:{port}"


def test_the_proxys_entry_is_the_client_however_the_header_begins(web: str) -> None:
    def call(made_up: int, client: str) -> int:
        forwarded = {"X-Forwarded-For": f"10.0.0.{made_up}, {client}"}
        return requests.get(f"{web}/api/unknown", headers=forwarded, timeout=10).status_code

    assert [call(i, "198.51.100.7") for i in range(3)] == [404, 404, 429]
    assert call(9, "198.51.100.8") == 404


def test_the_demo_serves_loopback_only_without_trusting_proxy_headers() -> None:
    """bin/run has no proxy in front: its web binds 127.0.0.1, and X-Forwarded-For means
    nothing there (NUM_PROXIES stays 0)."""
    words = shlex.split(stack.processes()["web"])

    assert words[words.index("-b") + 1] == "127.0.0.1"
    assert "--proxy-headers" not in words and not any("NUM_PROXIES" in w for w in words)
    assert set(stack.processes()) == set(PROCFILE.processes) - stack.SKIPPED_PROCFILE_ENTRIES
