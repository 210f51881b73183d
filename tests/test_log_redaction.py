"""Every process's logs go through the secret-redaction filter, URL passwords included.

Each case runs in a fresh interpreter with only the environment given, and reads what the
process wrote to stderr, where its log handler writes.
"""

import logging
import os
import secrets
import subprocess
import sys
from pathlib import Path

import pytest

from clera.logging import RedactSecrets, url_passwords

ROOT = Path(__file__).resolve().parent.parent

REDIS_PASSWORD = "redis-pass-4f1c"
DATABASE_PASSWORD = "db/pass-9e2a"  # percent-encoded in its URL
BROKER_SECRET = "broker-secret-77d0"
OPS_TOKEN = "ops-token-5b3e"
ENV = {
    "REDIS_URL": f"redis://:{REDIS_PASSWORD}@redis.example:6379/0",
    "DATABASE_URL": "postgres://clera:db%2Fpass-9e2a@db.example:5432/clera",
    "BROKER_SECRET_KEY": BROKER_SECRET,
    "OPS_TOKEN": OPS_TOKEN,
}
SECRETS = (REDIS_PASSWORD, "db%2Fpass-9e2a", DATABASE_PASSWORD, BROKER_SECRET, OPS_TOKEN)

#: As manage.py commands and daphne start: django.setup() applies LOGGING.
DJANGO_PROCESS = """
import logging, os
import django
django.setup()
log = logging.getLogger("realtime.collection")
log.warning("redis at %s", os.environ["REDIS_URL"])
log.warning("database at %s", os.environ["DATABASE_URL"])
log.warning("database password %s", "db/pass-9e2a")
log.warning("ops token %s", os.environ["OPS_TOKEN"])
"""

#: As ``celery -A celery_app worker`` and ``beat`` set up their logging: the worker after the
#: Django fixup ran django.setup() (at worker_init), with what Worker.setup_logging calls; beat
#: through Beat.setup_logging itself, before Django is set up.
CELERY_PROCESS = """
import logging, os, sys
from celery.apps.beat import Beat
from celery.utils.log import get_task_logger
from celery_app import app
if sys.argv[1] == "worker":
    import django
    django.setup()
    app.log.setup(logging.INFO, None, redirect_stdouts=False, hostname="celery@test")
else:
    Beat(app=app, loglevel="INFO").setup_logging()
for logger in (
    logging.getLogger("realtime.tasks"), get_task_logger("realtime.tasks"),
    logging.getLogger("celery.beat"),
):
    logger.warning("%s at %s with %s", logger.name, os.environ["REDIS_URL"],
                   os.environ["BROKER_SECRET_KEY"])
"""


def stderr_of(code: str, *args: str) -> str:
    env = {
        "PATH": os.environ["PATH"],
        "DJANGO_SETTINGS_MODULE": "clera.settings",
        "SECRET_KEY": secrets.token_urlsafe(50),
        **ENV,
    }
    done = subprocess.run(
        [sys.executable, "-c", code, *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    return done.stderr


def assert_redacted(stderr: str) -> None:
    leaked = [secret for secret in SECRETS if secret in stderr]
    assert leaked == [], stderr


def test_url_passwords_are_redacted_in_a_django_process():
    stderr = stderr_of(DJANGO_PROCESS)

    assert_redacted(stderr)
    assert "redis at redis://:***@redis.example:6379/0" in stderr
    assert "database at postgres://clera:***@db.example:5432/clera" in stderr
    assert "database password ***" in stderr


@pytest.mark.parametrize("process", ["worker", "beat"])
def test_celery_logs_go_through_the_redaction(process):
    stderr = stderr_of(CELERY_PROCESS, process)

    assert_redacted(stderr)
    for logger in ("realtime.tasks", "celery.beat"):
        assert f"{logger} at redis://:***@redis.example:6379/0 with ***" in stderr


def test_url_passwords_are_taken_as_written_and_decoded():
    urls = ("rediss://:p%40ss@host:6380/0", "postgres://user:plain@host/db", "redis://host/0", "")

    assert sorted(url_passwords(*urls)) == ["p%40ss", "p@ss", "plain"]


def test_a_traceback_quoting_a_url_is_redacted():
    try:
        raise ConnectionError("Error connecting to redis://:hunter2@10.0.0.1:6379/0")
    except ConnectionError:
        record = logging.LogRecord(
            "x", logging.ERROR, __file__, 1, "redis down", (), sys.exc_info()
        )

    RedactSecrets(url_passwords("redis://:hunter2@10.0.0.1:6379/0")).filter(record)

    assert "hunter2" not in record.exc_text
    assert "redis://:***@10.0.0.1:6379/0" in record.exc_text
