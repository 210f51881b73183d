"""A long-lived ``manage.py`` command (the calculator, the quote and event consumers) as a child
process, for tests and benchmarks that need the real thing: its own interpreter, its signals,
its crash. It serves no port, so it counts as started once it is running; what it does is
observed through what it writes (Redis, sockets), never assumed."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from typing import IO, Self

from clera.devstack.local_server import ROOT, Child, spawn, terminate


class CommandProcess(Child):
    """``python manage.py <args>`` from :data:`ROOT` with ``env``, output to ``output``."""

    def __init__(self, *args: str, env: dict[str, str], output: IO | None = None) -> None:
        self.args = args
        self.env = env
        self.output = output
        self._process: subprocess.Popen | None = None

    @property
    def running(self) -> bool:
        return self._process is not None and self._process.poll() is None

    def start(self) -> Self:
        self._process = spawn(
            [sys.executable, "manage.py", *self.args],
            cwd=ROOT,
            env=self.env,
            stdout=self.output,
            stderr=subprocess.STDOUT if self.output else None,
        )
        return self

    def kill(self) -> None:
        """SIGKILL: the process dies as a crash or the OOM killer would end it, saying nothing."""
        if self.running:
            os.kill(self._process.pid, signal.SIGKILL)
            self._process.wait()

    def stop(self, timeout: float = 10.0) -> int | None:
        """SIGTERM, as a process manager stops it; the exit code (None if it was not running)."""
        if self._process is None:
            return None
        code, self._process = terminate(self._process, timeout), None
        return code
