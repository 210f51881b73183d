"""Pytest plugin (`-p tests.stack`): real Redis and the real built-in sandbox for the test run.

It runs before pytest-django loads settings, so everything it exports to the environment is
what settings read. Real Alpaca keys are removed so no test can reach Alpaca.
"""

import os
from pathlib import Path

import pytest

from clera.embedded_redis import EmbeddedRedis
from clera.ports import free_port
from clera.sandbox_process import SandboxProcess

ROOT = Path(__file__).resolve().parent.parent
SANDBOX_LOG = ROOT / "test-artifacts" / "sandbox.log"
SANDBOX_HOST = "127.0.0.1"
SANDBOX_OPTIONS = {"accounts": 40, "symbols": 120, "quotes_per_second": 200, "seed": 7}
REAL_ALPACA_ENV = (
    "BROKER_API_KEY",
    "BROKER_SECRET_KEY",
    "APCA_API_KEY_ID",
    "APCA_API_SECRET_KEY",
    "ALPACA_BROKER_URL",
    "ALPACA_DATA_URL",
    "ALPACA_STREAM_URL",
)

_redis: EmbeddedRedis | None = None
_sandbox: SandboxProcess | None = None


def sandbox_origin() -> str:
    """The running test sandbox's HTTP origin."""
    assert _sandbox is not None, "the tests.stack plugin did not start the sandbox"
    return _sandbox.origin


def _start_sandbox() -> SandboxProcess:
    SANDBOX_LOG.parent.mkdir(exist_ok=True)
    log = SANDBOX_LOG.open("w")
    sandbox = SandboxProcess(
        SANDBOX_HOST, free_port(SANDBOX_HOST), env=dict(os.environ), output=log, **SANDBOX_OPTIONS
    )
    try:
        sandbox.start()
    except RuntimeError as exc:
        raise pytest.UsageError(f"{exc} (see {SANDBOX_LOG})") from exc
    finally:
        log.close()  # The child holds its own descriptor.
    os.environ.update(
        SANDBOX_HOST=sandbox.host,
        SANDBOX_PORT=str(sandbox.port),
        SANDBOX_ACCOUNTS=str(SANDBOX_OPTIONS["accounts"]),
        SANDBOX_SYMBOLS=str(SANDBOX_OPTIONS["symbols"]),
        SANDBOX_QUOTES_PER_SECOND=str(SANDBOX_OPTIONS["quotes_per_second"]),
        SANDBOX_SEED=str(SANDBOX_OPTIONS["seed"]),
        ALPACA_BROKER_URL=sandbox.origin,
        ALPACA_DATA_URL=sandbox.origin,
        ALPACA_STREAM_URL=sandbox.stream_origin,
    )
    return sandbox


@pytest.hookimpl(tryfirst=True)
def pytest_load_initial_conftests(
    early_config: pytest.Config, parser: pytest.Parser, args: list[str]
) -> None:
    global _redis, _sandbox
    for name in REAL_ALPACA_ENV:
        os.environ.pop(name, None)
    try:
        if "REDIS_URL" not in os.environ:
            _redis = EmbeddedRedis(port=0).start()
            os.environ["REDIS_URL"] = _redis.url
        _sandbox = _start_sandbox()
    except BaseException:
        pytest_unconfigure(early_config)
        raise


def pytest_unconfigure(config: pytest.Config) -> None:
    global _redis, _sandbox
    if _sandbox is not None:
        _sandbox.stop()
        _sandbox = None
    if _redis is not None:
        _redis.stop()
        _redis = None
