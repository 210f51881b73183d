"""Daphne serving clera.asgi as a child process, for tests and benchmarks that need the real
server: its handshakes, its Origin and cookie handling, its signals, its memory."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

import requests

from clera.local_server import LocalServer

ROOT = Path(__file__).resolve().parent.parent


class DaphneProcess(LocalServer):
    """``daphne clera.asgi:application`` on ``host:port`` with ``env``; ready once /health
    answers 200 (database and Redis reachable)."""

    name = "daphne"

    def __init__(
        self, host: str, port: int, env: dict[str, str], output: Any = None, startup: float = 60.0
    ) -> None:
        super().__init__(host, port, startup_timeout=startup)
        self.env = env
        self.output = output

    @property
    def origin(self) -> str:
        return f"http://{self.host}:{self.port}"

    @property
    def pid(self) -> int:
        assert self._process is not None
        return self._process.pid

    def command(self) -> list[str]:
        return [sys.executable, "-m", "daphne", "-b", self.host, "-p", str(self.port),
                "clera.asgi:application"]  # fmt: skip

    def popen_options(self) -> dict[str, Any]:
        output = self.output or subprocess.DEVNULL
        return {"env": self.env, "cwd": ROOT, "stdout": output, "stderr": output}

    def ready(self) -> bool:
        try:
            return requests.get(f"{self.origin}/health", timeout=1).status_code == 200
        except requests.RequestException:
            return False

    def terminate(self) -> None:
        """Send SIGTERM, as a process manager stopping the service does."""
        assert self._process is not None
        os.kill(self._process.pid, signal.SIGTERM)

    def wait(self, timeout: float) -> int:
        """The exit code, once it has exited (subprocess.TimeoutExpired after ``timeout``)."""
        assert self._process is not None
        return self._process.wait(timeout=timeout)
