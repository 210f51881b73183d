"""The whole production stack as child processes on loopback, for tests in a real browser.

Daphne and every long-running Procfile process (Celery worker, broker-event consumer, quote
consumer, calculator), over the test run's sandbox and Redis and a SQLite database of their own,
so a page sees what production would show: real sign-in, real sockets, prices that move. The
pytest process never opens that database; the children do everything in it.
"""

from __future__ import annotations

import json
import logging
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import IO

import redis

from clera.devstack.daphne_process import DaphneProcess
from clera.devstack.harness import HOST, django_env
from clera.devstack.local_server import ROOT, LocalServerError, poll_until, spawn
from clera.devstack.ports import free_port
from marketdata.book.keys import COLLECTION, SYMBOLS
from tests.stack import services

logger = logging.getLogger(__name__)

LOG_DIR = ROOT / "test-artifacts" / "site"
DEMO_USERNAME = "demo"
DEMO_PASSWORD = "demo"
LOGIN_PATH = "/accounts/login/"
COLLECTION_TIMEOUT = 60.0
STOP_TIMEOUT = 10.0

# Procfile's long-running processes besides web (daphne); beat is left out: the worker collects
# once as soon as it is ready (celery_app._collect_at_once), which is all a test needs.
PROCESSES: dict[str, list[str]] = {
    "worker": [sys.executable, "-m", "celery", "-A", "celery_app", "worker",
               "--pool", "solo", "--concurrency", "1", "--loglevel", "INFO"],
    "events": [sys.executable, "manage.py", "consume_events"],
    "quotes": [sys.executable, "manage.py", "consume_quotes"],
    "calculator": [sys.executable, "manage.py", "run_calculator"],
}  # fmt: skip

# Run in a child against the site's database: migrate, seed the demo users, and print each demo
# user's linked account ids (in the database's order) as the last line of output.
SETUP = """
import json, django
django.setup()
from django.core.management import call_command
from portfolio.models import BrokerageAccount
call_command("migrate", interactive=False, verbosity=0)
call_command("seed_demo")
logins = {}
for username, account_id in BrokerageAccount.objects.order_by("pk").values_list(
    "user__username", "account_id"
):
    logins.setdefault(username, []).append(str(account_id))
print(json.dumps(logins))
"""

_logs_started: set[Path] = set()


@dataclass(frozen=True)
class Site:
    """A running site: where it answers, whom to sign in as, and that user's accounts; also
    every seeded login's accounts (``demo-diversified``, ...; password ``password``)."""

    origin: str
    username: str
    password: str
    accounts: list[str]
    logins: dict[str, list[str]]


class SiteError(RuntimeError):
    """The site could not be started."""


def _open_log(name: str, label: str) -> IO[str]:
    """``test-artifacts/site/<name>.log``: emptied at its first use in this test run, appended
    to after that (one site per test module), so an earlier module's failure keeps its logs."""
    path = LOG_DIR / f"{name}.log"
    mode = "a" if path in _logs_started else "w"
    _logs_started.add(path)
    log = path.open(mode, buffering=1)
    log.write(f"===== {label}: {time.strftime('%H:%M:%S')} =====\n")
    return log


def _tail(path: Path, lines: int = 40) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return "(no log)"


def _setup(env: dict[str, str], label: str) -> dict[str, list[str]]:
    """Migrate and seed the site's database; each demo login's account ids."""
    with _open_log("setup", label) as log:
        done = subprocess.run(
            [sys.executable, "-c", SETUP], env=env, cwd=ROOT, stdout=subprocess.PIPE,
            stderr=log, text=True, timeout=120, check=False,
        )  # fmt: skip
        log.write(done.stdout)
    if done.returncode != 0:
        raise SiteError(f"setup failed ({done.returncode}):\n{_tail(LOG_DIR / 'setup.log')}")
    logins = json.loads(done.stdout.strip().splitlines()[-1])
    if not logins.get(DEMO_USERNAME):
        raise SiteError(f"seed_demo linked no accounts to {DEMO_USERNAME!r}")
    return logins


def _spawn(name: str, command: list[str], env: dict[str, str], label: str) -> subprocess.Popen:
    with _open_log(name, label) as log:  # The child keeps its own descriptor.
        return spawn(
            command, env=env, cwd=ROOT, stdout=log, stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
        )  # fmt: skip


def _stop(children: dict[str, subprocess.Popen], servers: list[DaphneProcess]) -> None:
    """SIGTERM to every child at once (each leads its own process group), as a process manager
    stops the services; SIGKILL to whichever has not exited within STOP_TIMEOUT."""
    for server in servers:
        server.terminate()
    for process in children.values():
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGTERM)
    deadline = time.monotonic() + STOP_TIMEOUT
    for name, process in children.items():
        try:
            process.wait(timeout=max(0.0, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            logger.warning("%s did not stop within %gs; killing it", name, STOP_TIMEOUT)
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()
    for server in servers:
        try:
            server.wait(timeout=max(0.0, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            logger.warning("daphne did not stop within %gs", STOP_TIMEOUT)
        server.stop()  # Reaps it (killing it if it still runs).


def _wait_for_collection(client: redis.Redis, children: dict[str, subprocess.Popen]) -> None:
    """Until the worker's first symbol collection is in Redis: before it nothing is streamed
    and no value moves."""

    def check_children() -> None:
        for name, process in children.items():
            if process.poll() is not None:
                raise SiteError(
                    f"{name} exited with code {process.returncode}:\n"
                    f"{_tail(LOG_DIR / f'{name}.log')}"
                )

    def collected() -> bool:
        return bool(client.exists(COLLECTION) and client.scard(SYMBOLS) > 0)

    if not poll_until(collected, COLLECTION_TIMEOUT, check_children, 0.1):
        raise SiteError(
            f"no symbol collection within {COLLECTION_TIMEOUT:g}s; worker log:\n"
            f"{_tail(LOG_DIR / 'worker.log')}"
        )


@contextmanager
def running_site(folder: Path, redis_url: str, label: str = "site") -> Iterator[Site]:
    """Start the stack with its database in ``folder`` and Redis at ``redis_url`` (emptied
    before and after), yield it once it serves and has collected, and stop every child."""
    LOG_DIR.mkdir(parents=True, exist_ok=True)
    started = time.monotonic()
    client = redis.Redis.from_url(redis_url)
    client.flushdb()
    run_settings = services().settings_env() | {"REDIS_URL": redis_url}
    env = django_env(folder / "site.sqlite3", **run_settings)
    children: dict[str, subprocess.Popen] = {}
    servers: list[DaphneProcess] = []
    with ExitStack() as cleanup:
        cleanup.callback(client.close)
        cleanup.callback(client.flushdb)
        logins = _setup(env, label)
        daphne_log = cleanup.enter_context(_open_log("daphne", label))
        cleanup.callback(_stop, children, servers)
        for name, command in PROCESSES.items():
            children[name] = _spawn(name, command, env, label)
        daphne = DaphneProcess(HOST, free_port(HOST), env, output=daphne_log)
        try:
            daphne.start()  # Blocks until /health answers 200; stops daphne itself if not.
        except LocalServerError as exc:
            raise SiteError(f"{exc}\n{_tail(LOG_DIR / 'daphne.log')}") from exc
        servers.append(daphne)
        _wait_for_collection(client, children)
        logger.info("site ready at %s in %.1fs", daphne.origin, time.monotonic() - started)
        yield Site(daphne.origin, DEMO_USERNAME, DEMO_PASSWORD, logins[DEMO_USERNAME], logins)
