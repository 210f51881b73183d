"""Sign-in in a real browser: the demo logins are listed, a wrong password is said plainly,
and the demo login gets past the form."""

from playwright.sync_api import Page, expect

from tests.browser.site import LOGIN_PATH, Site


def test_signing_in_as_the_demo_user(page: Page, site: Site) -> None:
    answer = page.goto(LOGIN_PATH)
    assert answer is not None and answer.ok
    listed = page.locator('section[aria-label="Demo logins"] code').all_inner_texts()
    assert site.username in listed and any(name.startswith("demo-") for name in listed), listed
    expect(page.get_by_role("alert")).to_have_count(0)

    page.fill("#id_username", site.username)
    page.fill("#id_password", "not-the-password")
    page.click("button[type=submit]")
    expect(page.get_by_role("alert")).to_contain_text("didn't match")
    assert page.url.endswith(LOGIN_PATH)
    assert page.console_errors == []  # Only the sign-in page: what follows is not ours yet.

    page.fill("#id_username", site.username)
    page.fill("#id_password", site.password)
    with page.expect_navigation(url=lambda url: LOGIN_PATH not in url) as landed:
        page.click("button[type=submit]")
    answer = landed.value
    assert answer is not None and answer.ok, f"{answer and answer.status} at {page.url}"
    assert LOGIN_PATH not in page.url
