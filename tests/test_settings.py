"""Settings derived from the environment, checked in a fresh interpreter per environment."""

import json
import logging
import os
import subprocess
import sys
from pathlib import Path

import pytest

from clera.logging import RedactSecrets

ROOT = Path(__file__).resolve().parent.parent

DUMP_SETTINGS = """
import json
from clera import settings as s
print(json.dumps({
    "USE_BUILTIN_SANDBOX": s.USE_BUILTIN_SANDBOX,
    "ALPACA_BROKER_URL": s.ALPACA_BROKER_URL,
    "ALPACA_DATA_URL": s.ALPACA_DATA_URL,
    "ALPACA_STREAM_URL": s.ALPACA_STREAM_URL,
    "ALPACA_BROKER_CREDENTIALS": s.ALPACA_BROKER_CREDENTIALS,
    "ALPACA_DATA_CREDENTIALS": s.ALPACA_DATA_CREDENTIALS,
    "REDIS_URL": s.REDIS_URL,
    "REDIS_IS_EMBEDDED": s.REDIS_IS_EMBEDDED,
    "CONN_MAX_AGE": s.DATABASES["default"]["CONN_MAX_AGE"],
    "CONN_HEALTH_CHECKS": s.DATABASES["default"]["CONN_HEALTH_CHECKS"],
}))
"""

LOG_A_SECRET = """
import logging, logging.config
from clera import settings
logging.config.dictConfig(settings.LOGGING)
logging.getLogger("clera.test").warning("calling broker with %s", "key=broker-secret-value")
"""

KEYS = {"BROKER_API_KEY": "broker-key-value", "BROKER_SECRET_KEY": "broker-secret-value"}


def _python(code: str, **env: str) -> subprocess.CompletedProcess:
    # Only PATH is inherited: the parent's REDIS_URL, keys and sandbox overrides must not leak in.
    # A secret key of its own: without DEBUG the development key is refused.
    clean_env = {
        "PATH": os.environ["PATH"],
        "DATABASE_URL": "sqlite:///:memory:",
        "SECRET_KEY": "settings-test-key-not-the-development-one",
        **env,
    }
    return subprocess.run(
        [sys.executable, "-c", code],
        cwd=ROOT,
        env=clean_env,
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    )


def _settings(**env: str) -> dict:
    return json.loads(_python(DUMP_SETTINGS, **env).stdout)


def test_no_keys_uses_builtin_sandbox_and_embedded_redis():
    s = _settings(SANDBOX_HOST="127.0.0.9", SANDBOX_PORT="6123", EMBEDDED_REDIS_PORT="6999")

    assert s["USE_BUILTIN_SANDBOX"] is True
    assert s["ALPACA_BROKER_URL"] == "http://127.0.0.9:6123"
    assert s["ALPACA_DATA_URL"] == "http://127.0.0.9:6123"
    assert s["ALPACA_STREAM_URL"] == "ws://127.0.0.9:6123"
    assert s["ALPACA_BROKER_CREDENTIALS"] == ["sandbox-key", "sandbox-secret"]
    assert s["ALPACA_DATA_CREDENTIALS"] == ["sandbox-key", "sandbox-secret"]
    assert s["REDIS_IS_EMBEDDED"] is True
    assert s["REDIS_URL"] == "redis://127.0.0.1:6999/0"
    # A thread keeps its database connection (a socket's handshake makes three calls).
    assert (s["CONN_MAX_AGE"], s["CONN_HEALTH_CHECKS"]) == (60, True)


def test_keys_with_alpaca_sandbox_use_hosted_sandbox():
    s = _settings(**KEYS, ALPACA_SANDBOX="true", REDIS_URL="redis://example:6379/1")

    assert s["USE_BUILTIN_SANDBOX"] is False
    assert s["ALPACA_BROKER_URL"] == "https://broker-api.sandbox.alpaca.markets"
    assert s["ALPACA_DATA_URL"] == "https://data.sandbox.alpaca.markets"
    assert s["ALPACA_STREAM_URL"] == "wss://stream.data.sandbox.alpaca.markets"
    assert s["ALPACA_BROKER_CREDENTIALS"] == ["broker-key-value", "broker-secret-value"]
    assert s["ALPACA_DATA_CREDENTIALS"] == ["broker-key-value", "broker-secret-value"]
    assert s["REDIS_IS_EMBEDDED"] is False
    assert s["REDIS_URL"] == "redis://example:6379/1"


def test_keys_without_alpaca_sandbox_go_live_with_separate_data_keys():
    s = _settings(
        **KEYS, ALPACA_SANDBOX="false", APCA_API_KEY_ID="data-id", APCA_API_SECRET_KEY="data-sec"
    )

    assert s["ALPACA_BROKER_URL"] == "https://broker-api.alpaca.markets"
    assert s["ALPACA_DATA_URL"] == "https://data.alpaca.markets"
    assert s["ALPACA_STREAM_URL"] == "wss://stream.data.alpaca.markets"
    assert s["ALPACA_DATA_CREDENTIALS"] == ["data-id", "data-sec"]


def test_configured_logging_redacts_secrets():
    stderr = _python(LOG_A_SECRET, **KEYS).stderr

    assert "broker-secret-value" not in stderr
    assert "calling broker with key=***" in stderr
    assert "clera.test" in stderr


@pytest.mark.parametrize(
    ("msg", "args"),
    [("token %s", ("s3cr3t",)), ("token s3cr3t", ()), ("token %(t)s", ({"t": "s3cr3t"},))],
)
def test_redact_filter_covers_message_and_args(msg, args):
    record = logging.LogRecord("x", logging.INFO, __file__, 1, msg, args, None)

    assert RedactSecrets(["s3cr3t", ""]).filter(record) is True
    assert record.getMessage() == "token ***"
