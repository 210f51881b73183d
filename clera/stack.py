"""`python -m clera.stack` (what `bin/run` starts): the whole app on one machine, no setup.

Order matters: Redis first (everything talks to it), then migrations, then the built-in sandbox
and demo users, then every Procfile process under honcho. Ctrl-C/SIGTERM unwinds in reverse.
"""

import logging
import logging.config
import os
import signal
import subprocess
import sys
from contextlib import ExitStack
from pathlib import Path
from types import FrameType

from django.conf import settings
from honcho.environ import parse_procfile
from honcho.manager import Manager

from clera.embedded_redis import EmbeddedRedis
from clera.sandbox_process import SandboxProcess

logger = logging.getLogger("clera.stack")

BASE_DIR = Path(__file__).resolve().parent.parent
DEFAULT_PORT = "8000"
# Run once before the long-lived processes, by us, not alongside them.
SKIPPED_PROCFILE_ENTRIES = {"release"}


def _child_env() -> dict[str, str]:
    """Our environment plus the venv's bin/ on PATH, so Procfile's `daphne`/`celery` resolve."""
    env = dict(os.environ)
    env["PATH"] = os.pathsep.join([str(Path(sys.executable).parent), env.get("PATH", "")])
    env["PYTHONUNBUFFERED"] = "1"
    env.setdefault("PORT", DEFAULT_PORT)
    return env


def _manage(*args: str) -> None:
    subprocess.run([sys.executable, "manage.py", *args], cwd=BASE_DIR, env=_child_env(), check=True)


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
        procfile = parse_procfile((BASE_DIR / "Procfile").read_text())
        manager = Manager()
        for name, command in procfile.processes.items():
            if name not in SKIPPED_PROCFILE_ENTRIES:
                manager.add_process(name, command, env=env, cwd=str(BASE_DIR))
        _banner(env["PORT"])
        manager.loop()
        return manager.returncode or 0


def main() -> None:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "clera.settings")
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
