"""The settings a run on this machine gives the application where production gives its own: a
secret key, and plain http on 127.0.0.1 (no redirect to https, no secure-only cookies, no HSTS).

``bin/run`` keeps its key in var/ (:func:`demo_environment`), so the demo's sign-ins outlive a
restart; a test run or a benchmark makes one per process (:func:`run_environment`). Imports
nothing from Django: these are set before the settings are read.
"""

from __future__ import annotations

import functools
import os
import secrets
from pathlib import Path

SECRET_KEY_FILE = "secret_key"
PLAIN_HTTP = {"HTTPS_ONLY": "false"}


def _new_key() -> str:
    return secrets.token_urlsafe(50)


def kept_secret_key(folder: Path) -> str:
    """The random key in ``folder``/secret_key, made (readable by its owner only) if missing."""
    path = folder / SECRET_KEY_FILE
    folder.mkdir(parents=True, exist_ok=True)
    try:
        descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return path.read_text().strip()
    key = _new_key()
    with os.fdopen(descriptor, "w") as kept:
        kept.write(key + "\n")
    return key


def demo_environment(var_dir: Path) -> dict[str, str]:
    """``bin/run``'s settings: the key kept in ``var_dir``, and plain http."""
    return {"SECRET_KEY": kept_secret_key(var_dir), **PLAIN_HTTP}


@functools.cache
def run_environment() -> dict[str, str]:
    """A test run's or a benchmark's settings: one key for this process and its children, and
    plain http."""
    return {"SECRET_KEY": _new_key(), **PLAIN_HTTP}
