"""The API's docs under the site's Content-Security-Policy, in real headless Chromium: Swagger UI
draws every operation and the browser refuses nothing.

A plain (sync) test in a module of its own, as tests/browser/conftest.py explains; the server is
pytest-django's live server (this process, the test database), reached with the operations
bearer token.
"""

from __future__ import annotations

from playwright.sync_api import sync_playwright

from tests.browser.conftest import CHROMIUM, CHROMIUM_ARGS

OPS_TOKEN = "ops-token-for-the-docs-browser-test"


def test_swagger_ui_works_under_the_policy(live_server, settings) -> None:
    settings.OPS_TOKEN = OPS_TOKEN
    problems: list[str] = []
    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(
            executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS
        )
        try:
            context = chromium.new_context(
                extra_http_headers={"Authorization": f"Bearer {OPS_TOKEN}"}
            )
            page = context.new_page()
            page.on("console", lambda m: m.type in ("error", "warning") and problems.append(m.text))
            page.on("pageerror", lambda error: problems.append(error.message))
            answer = page.goto(f"{live_server.url}/api/docs")
            assert answer is not None and answer.ok
            assert "default-src 'self'" in answer.headers["content-security-policy"]
            page.locator(".opblock-summary").first.wait_for(timeout=15_000)
            operations = page.locator(".opblock-summary").count()
        finally:
            chromium.close()

    assert operations >= 10
    assert problems == []
