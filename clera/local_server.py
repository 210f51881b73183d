"""Servers we run as child processes on loopback (Redis, the sandbox): start, wait, stop.

Shared by `clera.stack` and the test plugin; imports nothing from Django because the test
plugin starts these before settings are loaded.
"""

import ctypes
import logging
import signal
import subprocess
import sys
import time
from types import TracebackType
from typing import Any, Self

from clera.ports import port_is_free

logger = logging.getLogger(__name__)


_PR_SET_PDEATHSIG = 1


def die_with_parent() -> None:
    """In the child before exec (``preexec_fn``): get SIGTERM when the parent dies, however it
    dies. Linux only.

    Without it a parent killed with SIGKILL (a CI timeout, say) leaves its Redis or sandbox
    running for ever, holding a port.
    """
    ctypes.CDLL(None, use_errno=True).prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)


class LocalServerError(RuntimeError):
    """A local server could not be started."""


class LocalServer:
    """A child process that serves on ``host:port``; subclasses say how to run and probe it."""

    name = "server"
    port_hint = ""  # what to change when the port is taken

    def __init__(self, host: str, port: int, startup_timeout: float) -> None:
        self.host = host
        self.port = port
        self.startup_timeout = startup_timeout
        self._process: subprocess.Popen | None = None

    def command(self) -> list[str]:
        raise NotImplementedError

    def popen_options(self) -> dict[str, Any]:
        return {}

    def ready(self) -> bool:
        """One probe: does the server answer yet?"""
        raise NotImplementedError

    def failure_detail(self) -> str:
        """What to add to a start error (a log tail, say)."""
        return ""

    def cleanup(self) -> None:
        """Remove what the server left behind once it has stopped."""

    def start(self) -> Self:
        """Launch the server and block until it answers, or raise LocalServerError."""
        if not port_is_free(self.host, self.port):
            raise LocalServerError(
                f"{self.name}: port {self.port} on {self.host} is already in use. {self.port_hint}"
            )
        # Own session: the terminal's Ctrl-C reaches us, and we stop our servers in order.
        self._process = subprocess.Popen(
            self.command(),
            start_new_session=True,
            preexec_fn=die_with_parent if sys.platform == "linux" else None,
            **self.popen_options(),
        )
        try:
            self._wait_until_ready()
        except BaseException:
            self.stop()
            raise
        logger.info("%s ready on port %s (pid %s)", self.name, self.port, self._process.pid)
        return self

    def _wait_until_ready(self) -> None:
        deadline = time.monotonic() + self.startup_timeout
        while not self.ready():
            if self._process.poll() is not None:
                raise LocalServerError(
                    f"{self.name} exited with code {self._process.returncode}. "
                    f"{self.failure_detail()}"
                )
            if time.monotonic() > deadline:
                raise LocalServerError(
                    f"{self.name} on port {self.port} did not answer within "
                    f"{self.startup_timeout:g}s. {self.failure_detail()}"
                )
            time.sleep(0.05)

    def stop(self) -> None:
        """Terminate the server and clean up after it; safe to call twice."""
        if self._process is not None:
            if self._process.poll() is None:
                self._process.terminate()
                try:
                    self._process.wait(timeout=10)
                except subprocess.TimeoutExpired:
                    self._process.kill()
                    self._process.wait()
                logger.info("%s on port %s stopped", self.name, self.port)
            self._process = None
        self.cleanup()

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.stop()
