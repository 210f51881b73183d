"""What the settings refuse and default to, read in a fresh interpreter per environment: the
development SECRET_KEY only with DEBUG, and HTTPS-only defaults with which Django's deployment
check finds nothing to say."""

from __future__ import annotations

import json
import os
import secrets
import subprocess
import sys
from pathlib import Path

from clera.devstack import local_settings

ROOT = Path(__file__).resolve().parents[2]
PRODUCTION = {
    "SECRET_KEY": secrets.token_urlsafe(50),
    "ALLOWED_HOSTS": "portfolio.example.com",
    "CSRF_TRUSTED_ORIGINS": "https://portfolio.example.com",
}
DUMP = """
import json
from django.conf import settings as s
print(json.dumps({name: getattr(s, name) for name in (
    "DEBUG", "SESSION_COOKIE_SECURE", "CSRF_COOKIE_SECURE", "SECURE_SSL_REDIRECT",
    "SECURE_HSTS_SECONDS", "SECURE_HSTS_INCLUDE_SUBDOMAINS", "SECURE_HSTS_PRELOAD",
    "SECURE_PROXY_SSL_HEADER", "NUM_PROXIES", "SECRET_KEY",
)}))
print(json.dumps(s.REST_FRAMEWORK.get("NUM_PROXIES")))
"""


def _run(*args: str, **env: str) -> subprocess.CompletedProcess:
    """``python <args>`` from the repository root with only ``env`` (and PATH, a database)."""
    clean = {"PATH": os.environ["PATH"], "DATABASE_URL": "sqlite:///:memory:", **env}
    clean.setdefault("DJANGO_SETTINGS_MODULE", "clera.settings")
    return subprocess.run(
        [sys.executable, *args], cwd=ROOT, env=clean, capture_output=True, text=True, timeout=60
    )


def _settings(**env: str) -> tuple[dict, object]:
    done = _run("-c", DUMP, **env)
    assert done.returncode == 0, done.stderr
    values, drf_proxies = done.stdout.strip().splitlines()
    return json.loads(values), json.loads(drf_proxies)


def test_the_development_key_is_refused_without_debug() -> None:
    done = _run("-c", "from django.conf import settings; settings.SECRET_KEY")

    assert done.returncode != 0
    last_line = done.stderr.strip().splitlines()[-1]
    assert last_line.startswith("django.core.exceptions.ImproperlyConfigured: SECRET_KEY")
    assert "DEBUG" in last_line


def test_the_development_key_is_accepted_with_debug() -> None:
    values, _ = _settings(DEBUG="true")

    assert values["DEBUG"] is True and values["SECRET_KEY"]
    assert values["SESSION_COOKIE_SECURE"] is False and values["SECURE_SSL_REDIRECT"] is False


def test_without_debug_the_defaults_are_https_only() -> None:
    values, drf_proxies = _settings(**PRODUCTION)

    assert values["SESSION_COOKIE_SECURE"] is True
    assert values["CSRF_COOKIE_SECURE"] is True
    assert values["SECURE_SSL_REDIRECT"] is True
    assert values["SECURE_HSTS_SECONDS"] >= 31536000
    assert values["SECURE_HSTS_INCLUDE_SUBDOMAINS"] is True
    assert values["SECURE_HSTS_PRELOAD"] is True
    assert values["NUM_PROXIES"] == 0 and drf_proxies == 0
    assert values["SECURE_PROXY_SSL_HEADER"] is None  # no proxy: nobody to trust


def test_behind_a_proxy_its_scheme_header_is_trusted() -> None:
    values, drf_proxies = _settings(**PRODUCTION, NUM_PROXIES="1")

    assert values["NUM_PROXIES"] == 1 and drf_proxies == 1
    assert values["SECURE_PROXY_SSL_HEADER"] == ["HTTP_X_FORWARDED_PROTO", "https"]


def test_plain_http_turns_the_https_defaults_off_and_each_setting_can_be_given() -> None:
    values, _ = _settings(**PRODUCTION, HTTPS_ONLY="false", CSRF_COOKIE_SECURE="true")

    assert values["SESSION_COOKIE_SECURE"] is False
    assert values["SECURE_SSL_REDIRECT"] is False
    assert values["SECURE_HSTS_SECONDS"] == 0
    assert values["CSRF_COOKIE_SECURE"] is True


def test_the_deployment_check_is_clean_with_production_settings() -> None:
    done = _run("manage.py", "check", "--deploy", "--fail-level", "WARNING", **PRODUCTION)

    assert done.returncode == 0, done.stderr
    assert "System check identified no issues" in done.stdout


def test_the_demo_keeps_one_random_key_and_serves_plain_http(tmp_path: Path) -> None:
    """bin/run starts with no configuration: the devstack makes a key once, keeps it in var/,
    and gives its children the settings of plain http on 127.0.0.1."""
    first = local_settings.demo_environment(tmp_path)
    second = local_settings.demo_environment(tmp_path)
    kept = tmp_path / local_settings.SECRET_KEY_FILE

    assert first == second
    assert len(first["SECRET_KEY"]) >= 50
    assert kept.read_text().strip() == first["SECRET_KEY"]
    assert kept.stat().st_mode & 0o777 == 0o600
    values, _ = _settings(**first)
    assert values["SECRET_KEY"] == first["SECRET_KEY"]
    assert values["SECURE_SSL_REDIRECT"] is False and values["SESSION_COOKIE_SECURE"] is False
