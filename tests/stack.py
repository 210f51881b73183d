"""Pytest plugin (`-p tests.stack`): real Redis and the real built-in sandbox for the test run.

It runs before pytest-django loads settings, so everything it exports to the environment is
what settings read. Real Alpaca keys are removed so no test can reach Alpaca.
"""

import os
from contextlib import ExitStack

import pytest

from clera.devstack.harness import REAL_ALPACA_ENV, Services, start_services
from clera.devstack.local_server import ROOT

SANDBOX_LOG = ROOT / "test-artifacts" / "sandbox.log"
SANDBOX_OPTIONS = {"accounts": 40, "symbols": 120, "quotes_per_second": 200, "seed": 7}

_running = ExitStack()
_services: Services | None = None


def services() -> Services:
    """The test run's Redis and sandbox."""
    assert _services is not None, "the tests.stack plugin did not start the sandbox"
    return _services


@pytest.hookimpl(tryfirst=True)
def pytest_load_initial_conftests(
    early_config: pytest.Config, parser: pytest.Parser, args: list[str]
) -> None:
    global _services
    for name in REAL_ALPACA_ENV:
        os.environ.pop(name, None)
    SANDBOX_LOG.parent.mkdir(exist_ok=True)
    try:
        _services = start_services(
            _running, SANDBOX_OPTIONS, log=SANDBOX_LOG, redis_url=os.environ.get("REDIS_URL")
        )
    except RuntimeError as exc:
        _running.close()
        raise pytest.UsageError(f"{exc} (sandbox log: {SANDBOX_LOG})") from exc
    except BaseException:
        _running.close()
        raise
    os.environ.update(_services.settings_env())
    # The test database is dropped when the run ends, which PostgreSQL refuses while any
    # thread or daphne child still keeps a connection: here each call closes its own.
    # (Production keeps them, DATABASE_CONN_MAX_AGE; tests/test_settings.py checks that.)
    os.environ.setdefault("DATABASE_CONN_MAX_AGE", "0")


def pytest_unconfigure(config: pytest.Config) -> None:
    global _services
    _running.close()
    _services = None
