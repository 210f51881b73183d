"""Servers we run as child processes on loopback (Redis, the sandbox, daphne): start, wait,
stop; and the child-process helpers they share with the test site.

Imports nothing from Django: the test plugin starts these before settings are loaded.
"""

import ctypes
import http.client
import logging
import os
import signal
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable
from pathlib import Path
from types import TracebackType
from typing import IO, Any, Self

from clera.devstack.ports import port_is_free

logger = logging.getLogger(__name__)

#: The repository root: where ``manage.py`` is, the working folder of every child.
ROOT = Path(__file__).resolve().parents[2]

_PR_SET_PDEATHSIG = 1


def die_with_parent() -> None:
    """In the child before exec (``preexec_fn``): get SIGTERM when the parent dies, however it
    dies. Linux only.

    Without it a parent killed with SIGKILL (a CI timeout, say) leaves its Redis or sandbox
    running for ever, holding a port.
    """
    ctypes.CDLL(None, use_errno=True).prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)


def spawn(command: list[str], **options: Any) -> subprocess.Popen:
    """Start ``command`` in a session of its own (the terminal's Ctrl-C reaches us, and we stop
    our children in order), to be terminated when we die."""
    return subprocess.Popen(
        command,
        start_new_session=True,
        preexec_fn=die_with_parent if sys.platform == "linux" else None,
        **options,
    )


def child_env(**overrides: str) -> dict[str, str]:
    """Our environment with ``overrides`` for a child running this project's commands: our
    interpreter's bin/ first on PATH (so ``daphne`` and ``celery`` are the venv's), output
    unbuffered so logs arrive as they are written."""
    env = dict(os.environ)
    env.update(
        PATH=os.pathsep.join([str(Path(sys.executable).parent), env.get("PATH", "")]),
        PYTHONUNBUFFERED="1",
        **overrides,
    )
    return env


def poll_until(
    done: Callable[[], bool], timeout: float, check: Callable[[], None], interval: float
) -> bool:
    """Ask ``done`` every ``interval`` seconds: True once it says so, False after ``timeout``.
    ``check`` runs before each wait and raises when waiting is pointless (a child exited)."""
    deadline = time.monotonic() + timeout
    while not done():
        check()
        if time.monotonic() > deadline:
            return False
        time.sleep(interval)
    return True


def terminate(process: subprocess.Popen, timeout: float = 10.0) -> int:
    """SIGTERM, as a process manager stops a child; SIGKILL if it is still there after
    ``timeout`` seconds. The exit code."""
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
    return process.returncode


class Child:
    """A child process used as a context manager: started on entry, stopped on exit."""

    def start(self) -> Self:
        raise NotImplementedError

    def stop(self) -> object:
        raise NotImplementedError

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.stop()


class LocalServerError(RuntimeError):
    """A local server could not be started."""


class LocalServer(Child):
    """A child process that serves on ``host:port``; subclasses say how to run and probe it."""

    name = "server"
    port_hint = ""  # what to change when the port is taken

    def __init__(self, host: str, port: int, startup_timeout: float) -> None:
        self.host = host
        self.port = port
        self.startup_timeout = startup_timeout
        self._process: subprocess.Popen | None = None

    @property
    def pid(self) -> int:
        assert self._process is not None
        return self._process.pid

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
        self._process = spawn(self.command(), **self.popen_options())
        try:
            self._wait_until_ready()
        except BaseException:
            self.stop()
            raise
        logger.info("%s ready on port %s (pid %s)", self.name, self.port, self.pid)
        return self

    def _wait_until_ready(self) -> None:
        if not poll_until(self.ready, self.startup_timeout, self._check_running, 0.05):
            raise LocalServerError(
                f"{self.name} on port {self.port} did not answer within "
                f"{self.startup_timeout:g}s. {self.failure_detail()}"
            )

    def _check_running(self) -> None:
        if self._process.poll() is not None:
            raise LocalServerError(
                f"{self.name} exited with code {self._process.returncode}. {self.failure_detail()}"
            )

    def stop(self) -> None:
        """Terminate the server and clean up after it; safe to call twice."""
        if self._process is not None:
            if self._process.poll() is None:
                terminate(self._process)
                logger.info("%s on port %s stopped", self.name, self.port)
            self._process = None
        self.cleanup()


class HttpServer(LocalServer):
    """One of this repository's servers (the sandbox, daphne): run with our interpreter from
    :data:`ROOT` with ``env``, its output to ``output`` (else ours), ready once
    ``health_path`` answers 200."""

    health_path = "/health"

    def __init__(
        self,
        host: str,
        port: int,
        startup_timeout: float,
        env: dict[str, str] | None = None,
        output: IO | None = None,
    ) -> None:
        super().__init__(host, port, startup_timeout)
        self.env = env
        self.output = output

    @property
    def origin(self) -> str:
        return f"http://{self.host}:{self.port}"

    def popen_options(self) -> dict[str, Any]:
        return {
            "cwd": ROOT,
            "env": self.env,
            "stdout": self.output,
            "stderr": subprocess.STDOUT if self.output else None,
        }

    def ready(self) -> bool:
        try:
            with urllib.request.urlopen(self.origin + self.health_path, timeout=1) as answer:
                return answer.status == 200
        except (OSError, http.client.HTTPException):
            return False
