"""Run `manage.py sandbox` as a child process and wait until it serves requests."""

import sys
from typing import IO

from clera.devstack.local_server import HttpServer


class SandboxProcess(HttpServer):
    """The built-in Alpaca stand-in, started with an explicit universe so runs are repeatable."""

    name = "built-in sandbox"
    port_hint = "Is another sandbox running? Set SANDBOX_PORT to another port."
    health_path = "/_sandbox/health"

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
        super().__init__(host, port, startup_timeout, env, output)
        self.arguments = [
            "--host", host,
            "--port", str(port),
            "--accounts", str(accounts),
            "--symbols", str(symbols),
            "--quotes-per-second", str(quotes_per_second),
            "--seed", str(seed),
        ]  # fmt: skip

    @property
    def stream_origin(self) -> str:
        return f"ws://{self.host}:{self.port}"

    def command(self) -> list[str]:
        return [sys.executable, "manage.py", "sandbox", *self.arguments]
