"""Fixtures for tests in real headless Chromium (the machine's, /usr/bin/chromium) driven by
Playwright's sync API, against the whole stack running as child processes (tests.browser.site).

Write these tests as plain (sync) functions, in modules of their own: Playwright's sync API
refuses to run inside a running asyncio loop, and while it runs (a module's tests, see
``browser``) the thread counts as running one, so async tests and Django's ORM (which refuses
sync queries then) do not work there either. Neither is needed: the site runs in child processes
with its own database.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from django.conf import settings
from playwright.sync_api import Browser, ConsoleMessage, Error, Page, sync_playwright

from tests.browser.site import LOGIN_PATH, ROOT, Site, running_site

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox",  # CI containers run as root, where Chromium's sandbox cannot start.
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
VIEWPORT = {"width": 1280, "height": 900}
SCREENSHOTS = ROOT / "test-artifacts" / "browser"


@pytest.hookimpl(wrapper=True, tryfirst=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo) -> pytest.TestReport:
    """Keep each phase's report on the item (``rep_setup``, ``rep_call``, ``rep_teardown``), so
    the ``page`` fixture knows at teardown whether the test failed."""
    report = yield
    setattr(item, f"rep_{report.when}", report)
    return report


@pytest.fixture(scope="package")
def site(
    tmp_path_factory: pytest.TempPathFactory, request: pytest.FixtureRequest
) -> Iterator[Site]:
    """The whole stack (daphne, Celery worker, both consumers, calculator) over the test
    sandbox and Redis, with its own database, once it serves and has collected symbols. One
    for all the browser test modules (they run one after another): it takes seconds to start.

    Yields a :class:`~tests.browser.site.Site`: ``origin`` ("http://127.0.0.1:PORT"),
    ``username``/``password`` ("demo"/"demo"), ``accounts`` (demo's account ids, in
    database order) and ``logins`` (every seeded login's). Logs in test-artifacts/site/.
    """
    with running_site(tmp_path_factory.mktemp("site"), settings.REDIS_URL, request.node.name) as up:
        yield up


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    """Headless Chromium, one per test module (launching takes well under a second).

    Not one per session: after each call Playwright's sync API leaves its event loop marked as
    this thread's running loop, so every async test run later in the session would fail
    ("Cannot run the event loop while another loop is running") until Playwright stops.
    """
    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(
            executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS
        )
        yield chromium
        chromium.close()


@pytest.fixture
def page(browser: Browser, site: Site, request: pytest.FixtureRequest) -> Iterator[Page]:
    """A Playwright ``Page`` in a fresh context (no cookies; 1280×900; relative URLs resolve
    against ``site.origin``).

    ``page.console_errors`` is a list of strings, one per console message of type "error"
    ("console: <text> (<url>:<line>)") and per uncaught exception ("pageerror: <message>"),
    in order; clear it to look at what a later step logs.
    If the test fails, a screenshot goes to test-artifacts/browser/<test name>-failure.png.
    """
    context = browser.new_context(viewport=VIEWPORT, base_url=site.origin)
    tab = context.new_page()
    errors: list[str] = []

    def on_console(message: ConsoleMessage) -> None:
        where = message.location
        if message.type == "error":
            errors.append(f"console: {message.text} ({where['url']}:{where['lineNumber']})")

    def on_page_error(error: Error) -> None:
        errors.append(f"pageerror: {error.message}")

    tab.on("console", on_console)
    tab.on("pageerror", on_page_error)
    tab.console_errors = errors  # type: ignore[attr-defined]
    try:
        yield tab
    finally:
        report = getattr(request.node, "rep_call", None)
        if report is not None and report.failed:
            _screenshot(tab, request.node.name)
        context.close()


def _screenshot(tab: Page, test_name: str) -> None:
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    path: Path = SCREENSHOTS / f"{re.sub(r'[^A-Za-z0-9_.-]+', '_', test_name)}-failure.png"
    try:
        tab.screenshot(path=str(path), full_page=True)
    except Error as exc:  # A crashed or closed page: the test's own failure says more.
        path.with_suffix(".txt").write_text(f"no screenshot: {exc}\n")


def sign_in(page: Page, username: str, password: str) -> Page:
    """Through the real sign-in form; returns once the browser has left it."""
    page.goto(LOGIN_PATH)
    page.fill("#id_username", username)
    page.fill("#id_password", password)
    page.get_by_role("button", name="Sign in", exact=True).click()
    page.wait_for_url(lambda url: LOGIN_PATH not in url)
    return page


@pytest.fixture
def signed_in(page: Page, site: Site) -> Page:
    """The ``page``, signed in as the demo user through the real sign-in form."""
    return sign_in(page, site.username, site.password)
