"""Fixtures for the web-entry security tests."""

import pytest


@pytest.fixture
def fast_passwords(settings) -> None:
    """A cheap password hasher: these tests sign in wrongly dozens of times, and Django's real
    hasher costs half a second per attempt (the limits under test do not depend on it)."""
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
