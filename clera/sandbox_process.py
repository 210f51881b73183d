"""Run `manage.py sandbox` as a child process and wait until it serves requests."""

import subprocess
import sys
import urllib.request
from pathlib import Path
from typing import IO, Any

from clera.local_server import LocalServer

BASE_DIR = Path(__file__).resolve().parent.parent


class SandboxProcess(LocalServer):
    """The built-in Alpaca stand-in, started with an explicit universe so runs are repeatable."""

    name = "built-in sandbox"
    port_hint = "Is another sandbox running? Set SANDBOX_PORT to another port."

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
        super().__init__(host, port, startup_timeout)
        self.arguments = [
            "--host", host,
            "--port", str(port),
            "--accounts", str(accounts),
            "--symbols", str(symbols),
            "--quotes-per-second", str(quotes_per_second),
            "--seed", str(seed),
        ]  # fmt: skip
        self.env = env
        self.output = output

    @property
    def origin(self) -> str:
        return f"http://{self.host}:{self.port}"

    @property
    def stream_origin(self) -> str:
        return f"ws://{self.host}:{self.port}"

    def command(self) -> list[str]:
        return [sys.executable, "manage.py", "sandbox", *self.arguments]

    def popen_options(self) -> dict[str, Any]:
        return {
            "cwd": BASE_DIR,
            "env": self.env,
            "stdout": self.output,
            "stderr": subprocess.STDOUT if self.output else None,
        }

    def ready(self) -> bool:
        try:
            with urllib.request.urlopen(f"{self.origin}/_sandbox/health", timeout=1) as answer:
                return answer.status == 200
        except OSError:
            return False
