"""Settings in the browser: pasting a key, the admin's key management, the offline API docs."""

from __future__ import annotations

from collections.abc import Callable

from playwright.sync_api import expect

from tests.web.conftest import Studio, StudioServer, axe_violations


def test_a_person_pastes_their_key_and_the_banner_goes(studio_for: Callable[[str | None], Studio]) -> None:
    studio = studio_for(None)
    page = studio.open("/")
    expect(page.get_by_role("alert").filter(has_text="needs an API key")).to_be_visible()
    page.get_by_role("link", name="Paste your key in Settings").click()
    page.get_by_label("API key", exact=True).fill(studio.server.keys["alice"])
    page.get_by_role("button", name="Save key").click()
    expect(page.get_by_text("Key accepted.")).to_be_visible()
    expect(page.get_by_text("Only an admin key can create and revoke keys.")).to_be_visible()
    studio.check_page("settings")


def test_an_admin_creates_and_revokes_a_key(studio_for: Callable[[str | None], Studio]) -> None:
    page = studio_for("admin").open("/settings")
    page.get_by_label("Name of the new key").fill("<img src=x onerror=alert(1)>")
    page.get_by_role("button", name="Create key").click()
    created = page.get_by_role("status").filter(has_text="New key")
    expect(created).to_be_visible()
    assert created.locator("pre").inner_text().startswith("gf-")
    row = page.get_by_role("row").filter(has_text="<img src=x onerror=alert(1)>")
    expect(row).to_be_visible()  # the name is shown as text, not parsed as HTML
    row.get_by_role("button").click()
    expect(row.get_by_role("cell", name="revoked")).to_be_visible()


def test_api_docs_load_offline_from_vendored_assets(
    studio_for: Callable[[str | None], Studio], studio_server: StudioServer
) -> None:
    studio = studio_for(None)
    requested: list[str] = []
    studio.page.on("request", lambda request: requested.append(request.url))
    page = studio.open("/docs")
    expect(page.get_by_role("heading", name="genfoundry")).to_be_visible()
    expect(page.get_by_text("/v1/images/generations").first).to_be_visible()
    assert all(url.startswith(studio_server.url) or url.startswith("data:") for url in requested), requested


def test_the_dark_theme_is_kept_and_readable(studio_for: Callable[[str | None], Studio]) -> None:
    studio = studio_for("alice")
    page = studio.open("/gallery")
    theme = page.locator("html")
    expect(theme).to_have_attribute("data-theme", "light")  # the system's choice (headless chromium: light)
    page.get_by_role("button", name="Switch between light and dark theme").click()
    expect(theme).to_have_attribute("data-theme", "dark")
    page.get_by_role("link", name="Datasets").click()
    expect(theme).to_have_attribute("data-theme", "dark")  # kept from page to page
    assert not axe_violations(page)  # contrast included
    page.get_by_role("button", name="Switch between light and dark theme").click()
    expect(theme).to_have_attribute("data-theme", "light")


def test_the_keyboard_reaches_the_content_with_a_visible_focus(studio_for: Callable[[str | None], Studio]) -> None:
    page = studio_for("alice").open("/settings")
    page.keyboard.press("Tab")
    skip = page.get_by_role("link", name="Skip to content")
    expect(skip).to_be_focused()
    assert skip.evaluate("(link) => getComputedStyle(link).outlineStyle") == "solid"  # the focus ring shows
    page.keyboard.press("Enter")
    expect(page.locator("main")).to_be_focused()
    page.keyboard.press("Tab")
    expect(page.get_by_label("API key", exact=True)).to_be_focused()  # the first control of the page
    page.keyboard.type("not-a-key")
    page.keyboard.press("Enter")  # submits the form, as a person expects
    expect(page.get_by_role("alert").filter(has_text="invalid or revoked API key")).to_be_visible()
