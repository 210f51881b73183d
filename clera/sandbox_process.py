"""Run `manage.py sandbox` as a child process and wait until it serves requests.

Shared by `clera.stack` and the test plugin; imports nothing from Django because the test
plugin uses it before settings are loaded.
"""

import logging
import subprocess
import sys
import time
import urllib.request
from pathlib import Path
from types import TracebackType
from typing import IO

from clera.ports import port_is_free

logger = logging.getLogger(__name__)

BASE_DIR = Path(__file__).resolve().parent.parent


class SandboxStartError(RuntimeError):
    """The built-in sandbox did not become healthy."""


class SandboxProcess:
    """The built-in Alpaca stand-in, started with an explicit universe so runs are repeatable."""

    def __init__(
        self,
        host: str,
        port: int,
        *,
        accounts: int,
        symbols: int,
        quotes_per_second: int,
        seed: int,
        env: dict[str, str] | None = None,
        output: IO | None = None,
        startup_timeout: float = 60.0,
    ) -> None:
        self.host = host
        self.port = port
        self.command = [
            sys.executable, "manage.py", "sandbox",
            "--host", host,
            "--port", str(port),
            "--accounts", str(accounts),
            "--symbols", str(symbols),
            "--quotes-per-second", str(quotes_per_second),
            "--seed", str(seed),
        ]  # fmt: skip
        self.env = env
        self.output = output
        self.startup_timeout = startup_timeout
        self._process: subprocess.Popen | None = None

    @property
    def origin(self) -> str:
        return f"http://{self.host}:{self.port}"

    @property
    def stream_origin(self) -> str:
        return f"ws://{self.host}:{self.port}"

    def start(self) -> "SandboxProcess":
        """Launch the sandbox and block until `/_sandbox/health` answers 200."""
        if not port_is_free(self.host, self.port):
            raise SandboxStartError(
                f"port {self.port} on {self.host} is already in use; is another sandbox running? "
                "Set SANDBOX_PORT to another port."
            )
        # Own session: the terminal's Ctrl-C goes to us, and we stop the sandbox in order.
        self._process = subprocess.Popen(
            self.command,
            cwd=BASE_DIR,
            env=self.env,
            stdout=self.output,
            stderr=subprocess.STDOUT if self.output else None,
            start_new_session=True,
        )
        try:
            self._wait_until_healthy()
        except BaseException:
            self.stop()
            raise
        logger.info("built-in sandbox ready at %s (pid %s)", self.origin, self._process.pid)
        return self

    def _wait_until_healthy(self) -> None:
        url = f"{self.origin}/_sandbox/health"
        deadline = time.monotonic() + self.startup_timeout
        while True:
            if self._process.poll() is not None:
                raise SandboxStartError(
                    f"`{' '.join(self.command[1:])}` exited with code {self._process.returncode}"
                )
            try:
                with urllib.request.urlopen(url, timeout=1) as response:
                    if response.status == 200:
                        return
            except OSError:
                pass
            if time.monotonic() > deadline:
                raise SandboxStartError(
                    f"built-in sandbox did not answer {url} within {self.startup_timeout:g}s"
                )
            time.sleep(0.1)

    def stop(self) -> None:
        """Terminate the sandbox; safe to call twice."""
        if self._process is None:
            return
        if self._process.poll() is None:
            self._process.terminate()
            try:
                self._process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self._process.kill()
                self._process.wait()
            logger.info("built-in sandbox on port %s stopped", self.port)
        self._process = None

    def __enter__(self) -> "SandboxProcess":
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.stop()
