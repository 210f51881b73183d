"""Logging helpers that must stay free of Django imports (used from LOGGING in settings)."""

import logging
from collections.abc import Iterable
from urllib.parse import unquote, urlsplit

REDACTED = "***"


class RedactSecrets(logging.Filter):
    """Replace configured secret values in log messages so credentials never reach log sinks."""

    def __init__(self, secrets: Iterable[str] = (), name: str = "") -> None:
        super().__init__(name)
        # Longest first so a secret containing another is redacted whole; empty values are unset.
        self._secrets = sorted({s for s in secrets if s}, key=len, reverse=True)

    def filter(self, record: logging.LogRecord) -> bool:
        if not self._secrets:
            return True
        message = record.getMessage()
        redacted = self._redact(message)
        if redacted != message:
            record.msg = redacted
            record.args = None
        if record.exc_info and not record.exc_text:
            # Tracebacks can quote URLs or headers: format now so they are redacted too.
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = self._redact(record.exc_text)
        return True

    def _redact(self, text: str) -> str:
        for secret in self._secrets:
            text = text.replace(secret, REDACTED)
        return text


def url_passwords(*urls: str) -> list[str]:
    """The passwords in connection URLs (Redis, the database, Celery's broker), for
    :class:`RedactSecrets`: each as written (percent-encoded, as a logged URL shows it) and
    decoded (as a client's error message may). Empty or password-less URLs give none."""
    found: dict[str, None] = {}
    for url in urls:
        password = urlsplit(url).password if url else None
        if password:
            found.update(dict.fromkeys([password, unquote(password)]))
    return list(found)
