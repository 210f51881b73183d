"""Daphne serving clera.asgi as a child process, for tests and benchmarks that need the real
server: its handshakes, its Origin and cookie handling, its signals, its memory."""

from __future__ import annotations

import os
import signal
import sys
from typing import IO

from clera.devstack.local_server import HttpServer

APPLICATION = "clera.asgi:application"


class DaphneProcess(HttpServer):
    """``daphne <application>`` (ours unless told) on ``host:port`` with ``env``; ready once
    /health answers 200 (database and Redis reachable)."""

    name = "daphne"

    def __init__(
        self,
        host: str,
        port: int,
        env: dict[str, str],
        output: IO | None = None,
        startup: float = 60.0,
        application: str = APPLICATION,
    ) -> None:
        super().__init__(host, port, startup, env, output)
        self.application = application

    def command(self) -> list[str]:
        return [sys.executable, "-m", "daphne", "-b", self.host, "-p", str(self.port),
                self.application]  # fmt: skip

    def terminate(self) -> None:
        """Send SIGTERM, as a process manager stopping the service does."""
        os.kill(self.pid, signal.SIGTERM)

    def wait(self, timeout: float) -> int:
        """The exit code, once it has exited (subprocess.TimeoutExpired after ``timeout``)."""
        assert self._process is not None
        return self._process.wait(timeout=timeout)
