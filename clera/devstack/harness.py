"""What a test run or a benchmark starts before it measures anything, in one place.

An embedded Redis and the built-in sandbox on free loopback ports (:func:`start_services`,
:func:`start_sandbox`), the settings that point the application at them (and never at real
Alpaca: :data:`REAL_ALPACA_ENV` is dropped), the environment of a child process that runs the
application over them with a database of its own (:func:`django_env`), and Django set up in
this process over a given Redis (:func:`setup_django`). The pytest plugin ``tests.stack`` and
every ``bench`` module use it; benches run as ``python -m bench.<name>`` from the repository
root, so nothing edits ``sys.path``.
"""

import logging
import os
import time
from collections.abc import Mapping
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path
from typing import IO

import django
import requests

from clera.devstack.embedded_redis import EmbeddedRedis
from clera.devstack.local_server import child_env
from clera.devstack.local_settings import run_environment
from clera.devstack.ports import free_port
from clera.devstack.sandbox_process import SandboxProcess

logger = logging.getLogger(__name__)

HOST = "127.0.0.1"
#: Settings that would reach the real Alpaca: never passed on to what a run starts.
REAL_ALPACA_ENV = (
    "BROKER_API_KEY",
    "BROKER_SECRET_KEY",
    "APCA_API_KEY_ID",
    "APCA_API_SECRET_KEY",
    "ALPACA_BROKER_URL",
    "ALPACA_DATA_URL",
    "ALPACA_STREAM_URL",
)
#: The sandbox's Basic credentials, read as the settings read them.
SANDBOX_CREDENTIALS = (
    os.environ.get("SANDBOX_API_KEY", "sandbox-key"),
    os.environ.get("SANDBOX_SECRET_KEY", "sandbox-secret"),
)

#: A sandbox world: ``accounts``, ``symbols``, ``quotes_per_second``, ``seed`` (the same
#: world for the same values).
World = Mapping[str, int]


@dataclass(frozen=True)
class Services:
    """A run's Redis and sandbox."""

    redis_url: str
    sandbox: SandboxProcess
    world: World

    def settings_env(self) -> dict[str, str]:
        """The environment that points the application's settings at these services (with
        this run's secret key, over plain http)."""
        sandbox = self.sandbox
        return {
            **run_environment(),
            "REDIS_URL": self.redis_url,
            "SANDBOX_HOST": sandbox.host,
            "SANDBOX_PORT": str(sandbox.port),
            **{f"SANDBOX_{name.upper()}": str(value) for name, value in self.world.items()},
            "ALPACA_BROKER_URL": sandbox.origin,
            "ALPACA_DATA_URL": sandbox.origin,
            "ALPACA_STREAM_URL": sandbox.stream_origin,
        }

    def accounts(self) -> list[dict]:
        """Every sandbox account with its shape (diversified, crypto, cash_only, ...), in order."""
        listing = requests.get(f"{self.sandbox.origin}/_sandbox/accounts", timeout=60)
        return listing.json()["accounts"]


def without_real_alpaca(environ: Mapping[str, str]) -> dict[str, str]:
    """A copy of ``environ`` without :data:`REAL_ALPACA_ENV`."""
    return {name: value for name, value in environ.items() if name not in REAL_ALPACA_ENV}


def start_sandbox(
    running: ExitStack, world: World, *, log: Path | None = None, startup_timeout: float = 60.0
) -> SandboxProcess:
    """The sandbox serving ``world`` on a free port, its output to ``log`` (else ours), until
    ``running`` closes."""
    started = time.monotonic()
    output: IO | None = log.open("w") if log else None
    try:
        sandbox = SandboxProcess(
            HOST,
            free_port(HOST),
            env={**without_real_alpaca(os.environ), **run_environment()},
            output=output,
            startup_timeout=startup_timeout,
            **world,
        )
        running.enter_context(sandbox)
    finally:
        if output:
            output.close()  # The child holds its own descriptor.
    logger.info("sandbox up in %.1fs at %s", time.monotonic() - started, sandbox.origin)
    return sandbox


def start_services(
    running: ExitStack,
    world: World,
    *,
    log: Path,
    redis_url: str | None = None,
    startup_timeout: float = 60.0,
) -> Services:
    """An embedded Redis (unless ``redis_url`` names a Redis to use) and the sandbox serving
    ``world`` (its output to ``log``), until ``running`` closes."""
    if redis_url is None:
        redis_url = running.enter_context(EmbeddedRedis(port=0)).url
    sandbox = start_sandbox(running, world, log=log, startup_timeout=startup_timeout)
    return Services(redis_url, sandbox, world)


def django_env(database: Path, **overrides: str) -> dict[str, str]:
    """The environment of a child process running the application: ours without real Alpaca,
    ``clera.settings`` over a SQLite database of its own at ``database``, then ``overrides``
    (a run's :meth:`Services.settings_env`, say)."""
    env = without_real_alpaca(
        child_env(DJANGO_SETTINGS_MODULE="clera.settings", DATABASE_URL=f"sqlite:///{database}")
    )
    env.update(overrides)
    return env


def setup_django(redis_url: str) -> None:
    """Set Django up in this process over the Redis at ``redis_url`` (a bench and each of its
    child processes)."""
    os.environ["REDIS_URL"] = redis_url
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "clera.settings")
    for name, value in run_environment().items():
        os.environ.setdefault(name, value)
    django.setup()
