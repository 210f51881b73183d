"""`python -m clera.devstack.stack` (what `bin/run` starts): the whole app on one machine.

Order matters: Redis first (everything talks to it), then migrations, then the built-in sandbox
and demo users, then every Procfile process under honcho. Ctrl-C/SIGTERM unwinds in reverse.
It needs no configuration: a random SECRET_KEY kept in var/ and plain http on 127.0.0.1 unless
given (clera/devstack/local_settings.py).
"""

import logging
import logging.config
import os
import signal
import subprocess
import sys
from contextlib import ExitStack
from types import FrameType

from django.conf import settings
from honcho.environ import parse_procfile
from honcho.manager import Manager

from clera.devstack.embedded_redis import EmbeddedRedis
from clera.devstack.local_server import ROOT, child_env
from clera.devstack.local_settings import demo_environment
from clera.devstack.sandbox_process import SandboxProcess

logger = logging.getLogger("clera.devstack.stack")

DEFAULT_PORT = "8000"
# Run once before the long-lived processes, by us, not alongside them.
SKIPPED_PROCFILE_ENTRIES = {"release"}
# The Procfile's web serves behind a platform's router: on every interface, trusting the
# router's headers. The demo has nothing in front of it: loopback only, the peer is the client.
LOCAL_WEB = "daphne -b 127.0.0.1 -p ${PORT} clera.asgi:application"


def processes() -> dict[str, str]:
    """The Procfile's long-lived processes as the demo runs them, by name."""
    procfile = parse_procfile((ROOT / "Procfile").read_text())
    commands = {
        name: command
        for name, command in procfile.processes.items()
        if name not in SKIPPED_PROCFILE_ENTRIES
    }
    return {**commands, "web": LOCAL_WEB}


def _child_env() -> dict[str, str]:
    """For every child: Procfile's commands resolve, and the app serves on PORT."""
    return child_env(PORT=os.environ.get("PORT", DEFAULT_PORT))


def _manage(*args: str) -> None:
    subprocess.run([sys.executable, "manage.py", *args], cwd=ROOT, env=_child_env(), check=True)


def _terminate(signum: int, frame: FrameType | None) -> None:
    # Until honcho installs its own handler, turn SIGTERM into an unwind so cleanup runs.
    raise SystemExit(128 + signum)


def _banner(port: str) -> None:
    login = (
        "demo / demo"
        if settings.USE_BUILTIN_SANDBOX
        else "your superuser (manage.py createsuperuser)"
    )
    logger.info(
        "\n\n    Clera Realtime: http://127.0.0.1:%s/\n    Log in with: %s\n"
        "    Ctrl-C stops everything.\n",
        port,
        login,
    )


def run() -> int:
    """Start the stack, block until it stops, and return honcho's exit code."""
    signal.signal(signal.SIGTERM, _terminate)
    settings.VAR_DIR.mkdir(exist_ok=True)
    with ExitStack() as running:
        if settings.REDIS_IS_EMBEDDED:
            redis = running.enter_context(EmbeddedRedis(port=settings.EMBEDDED_REDIS_PORT))
            os.environ["REDIS_URL"] = redis.url

        _manage("migrate", "--noinput")

        if settings.USE_BUILTIN_SANDBOX:
            running.enter_context(
                SandboxProcess(
                    settings.SANDBOX_HOST,
                    settings.SANDBOX_PORT,
                    accounts=settings.SANDBOX_ACCOUNTS,
                    symbols=settings.SANDBOX_SYMBOLS,
                    quotes_per_second=settings.SANDBOX_QUOTES_PER_SECOND,
                    seed=settings.SANDBOX_SEED,
                    env=_child_env(),
                )
            )
            _manage("seed_demo")
        else:
            logger.info("broker keys set: using Alpaca at %s", settings.ALPACA_BROKER_URL)

        env = _child_env()
        manager = Manager()
        for name, command in processes().items():
            manager.add_process(name, command, env=env, cwd=str(ROOT))
        _banner(env["PORT"])
        manager.loop()
        return manager.returncode or 0


def main() -> None:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "clera.settings")
    for name, value in demo_environment(ROOT / "var").items():
        os.environ.setdefault(name, value)  # Before the settings are read; children inherit.
    logging.config.dictConfig(settings.LOGGING)
    try:
        sys.exit(run())
    except KeyboardInterrupt:
        logger.info("interrupted; stopped")
        sys.exit(130)
    except (subprocess.CalledProcessError, RuntimeError) as exc:
        logger.error("stack failed to start: %s", exc)
        sys.exit(1)


if __name__ == "__main__":
    main()
