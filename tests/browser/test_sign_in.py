"""Signing in, in real Chromium: the demo logins (one click each), a wrong password said
plainly, and every demo account shape's page filling every widget without an error."""

from __future__ import annotations

from playwright.sync_api import Page, expect

from tests.browser.conftest import sign_in
from tests.browser.pages import wait_live
from tests.browser.site import LOGIN_PATH, Site


def test_signing_in_as_the_demo_user(page: Page, site: Site) -> None:
    answer = page.goto(LOGIN_PATH)
    assert answer is not None and answer.ok
    demo_logins = page.locator('section[aria-label="Demo logins"] button')
    assert set(demo_logins.all_inner_texts()) == set(site.logins)
    expect(page.get_by_role("alert")).to_have_count(0)

    page.fill("#id_username", site.username)
    page.fill("#id_password", "not-the-password")
    page.get_by_role("button", name="Sign in", exact=True).click()
    expect(page.get_by_role("alert")).to_contain_text("didn't match")
    assert page.url.endswith(LOGIN_PATH)

    page.fill("#id_username", site.username)
    page.fill("#id_password", site.password)
    with page.expect_navigation(url=lambda url: LOGIN_PATH not in url) as landed:
        page.get_by_role("button", name="Sign in", exact=True).click()
    answer = landed.value
    assert answer is not None and answer.ok, f"{answer and answer.status} at {page.url}"
    expect(page.get_by_role("heading", name="Total value")).to_be_visible()
    wait_live(page)

    page.get_by_role("button", name="Sign out").click()
    page.wait_for_url(f"**{LOGIN_PATH}")
    demo_logins.get_by_text(site.username, exact=True).click()  # one click, no typing
    wait_live(page)
    assert page.console_errors == []


def test_every_demo_account_shape_renders_cleanly(browser, site: Site, raw) -> None:
    """Empty, cash only, one stock, crypto, shorts, options...: each demo login's page fills
    every widget without a failure message or a console error."""
    for username, accounts in site.logins.items():
        context = browser.new_context(base_url=site.origin, viewport={"width": 1280, "height": 900})
        page = context.new_page()
        errors: list[str] = []
        page.on("console", lambda m, e=errors: m.type == "error" and e.append(m.text))
        page.on("pageerror", lambda exc, e=errors: e.append(str(exc)))
        try:
            sign_in(page, username, site.password)
            wait_live(page)
            for card in ("live", "history", "scores", "allocation", "holdings", "transactions"):
                expect(page.locator(f"#{card}")).to_have_attribute("aria-busy", "false")
            expect(page.locator(".card-error:visible")).to_have_count(0)
            held = raw(f"/trading/accounts/{accounts[0]}/positions")
            expect(page.locator("#holdings-body tr[data-symbol]")).to_have_count(len(held))
            if not held:
                expect(page.locator("#holdings-body")).to_contain_text("No holdings yet")
            empty_range = page.locator("#history").get_attribute("data-points") == "0"
            expect(page.locator("#history-empty")).to_be_visible(visible=empty_range)
            assert errors == [], (username, errors)
        finally:
            context.close()
