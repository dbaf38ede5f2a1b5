"""The gallery in the browser: filters, infinite scroll, one image's details, rating, feedback, favorite, delete,
re-run, image to image from it, and a second user who sees none of it."""

from __future__ import annotations

import uuid
from collections.abc import Callable

from playwright.sync_api import Locator, Page, expect

from tests.web.conftest import Studio, StudioServer, axe_violations
from tests.web.test_generate import GENERATED, HOSTILE, expect_loaded, result


def make_images(server: StudioServer, user: str, prompt: str, n: int = 1, seed: int = 1) -> list[str]:
    """Images made through the API (what the Generate page does is tested there)."""
    body = {"model": "tiny-sd15", "prompt": prompt, "size": "64x64", "steps": 2, "n": n, "seed": seed}
    with server.client(user) as client:
        response = client.post("/v1/images/generations", json=body)
    assert response.status_code == 200, response.text
    return [item["id"] for item in response.json()["data"]]


def tiles(page: Page) -> Locator:
    return page.locator(".gallery-grid > li")


def search(page: Page, text: str) -> None:
    page.get_by_label("Search prompts").fill(text)


def test_rate_give_feedback_favorite_and_delete(
    studio_for: Callable[[str | None], Studio], studio_server: StudioServer
) -> None:
    token = uuid.uuid4().hex[:8]
    ids = make_images(studio_server, "alice", f"a lighthouse at dusk {token}", n=3, seed=10)
    studio = studio_for("alice")
    alerts: list[str] = []
    studio.page.on("dialog", lambda dialog: (alerts.append(dialog.message), dialog.dismiss()))
    page = studio.open("/gallery")
    search(page, token)
    expect(tiles(page)).to_have_count(3)
    expect(page.get_by_role("status").filter(has_text="3 images")).to_be_visible()
    for image in tiles(page).get_by_role("img").all():
        expect_loaded(image)
    studio.check_page("gallery")

    # Newest first: the last of the three (seed 12) is first; open it and see its parameters.
    tiles(page).first.get_by_role("button").click()
    dialog = page.get_by_role("dialog")
    expect(dialog.get_by_role("heading", name="Image details")).to_be_visible()
    expect(dialog.locator("xpath=.//dt[.='Seed']/following-sibling::dd[1]")).to_have_text("12")
    expect(dialog.locator("dl")).to_contain_text("tiny-sd15")
    expect(dialog.locator("dl")).to_contain_text("64×64")
    assert not axe_violations(page)  # the dialog too: rating, feedback and actions all have names
    dialog.get_by_label("4 stars").check()
    expect(dialog.get_by_role("status")).to_have_text("Rated 4 of 5.")
    dialog.get_by_label("Feedback").fill(HOSTILE[1] + " " + HOSTILE[0])
    dialog.get_by_role("button", name="Save feedback").click()
    expect(dialog.get_by_role("status")).to_have_text("Feedback saved.")
    dialog.get_by_role("button", name="Favorite").click()
    expect(dialog.get_by_role("button", name="Favorite")).to_have_attribute("aria-pressed", "true")
    dialog.get_by_role("button", name="Close").click()
    expect(dialog).to_be_hidden()

    # What was saved is what a fresh page shows, as text.
    page.reload()
    search(page, token)
    expect(tiles(page)).to_have_count(3)
    tiles(page).first.get_by_role("button").click()
    expect(dialog.get_by_label("Feedback")).to_have_value(HOSTILE[1] + " " + HOSTILE[0])
    expect(dialog.get_by_label("4 stars")).to_be_checked()
    page.keyboard.press("Escape")
    expect(dialog).to_be_hidden()

    page.get_by_label("Rating", exact=True).select_option("4")
    expect(tiles(page)).to_have_count(1)
    page.get_by_label("Rating", exact=True).select_option("")
    expect(tiles(page)).to_have_count(3)
    page.get_by_label("Favorites only").check()
    expect(tiles(page)).to_have_count(1)
    page.get_by_label("Favorites only").uncheck()
    expect(tiles(page)).to_have_count(3)

    # Delete asks once more, then the image is gone (from the page and the API).
    tiles(page).nth(1).get_by_role("button").click()
    dialog.get_by_role("button", name="Delete", exact=True).click()
    dialog.get_by_role("button", name="Delete for good").click()
    expect(dialog).to_be_hidden()
    expect(tiles(page)).to_have_count(2)
    with studio_server.client("alice") as client:
        assert client.get(f"/v1/generations/{ids[1]}").status_code == 404
    assert alerts == []


def test_infinite_scroll_and_filters_by_model_and_adapter(
    studio_for: Callable[[str | None], Studio], studio_server: StudioServer
) -> None:
    token = uuid.uuid4().hex[:8]
    for start in range(0, 30, 8):
        make_images(studio_server, "alice", f"a field of tulips {token}", n=min(8, 30 - start), seed=start)
    studio = studio_for("alice")
    studio.page.set_viewport_size({"width": 800, "height": 400})  # a first page taller than the screen
    pages: list[str] = []  # the list requests the gallery makes; a next page is asked for with the `after` cursor
    studio.page.on("request", lambda request: pages.append(request.url) if "/v1/generations?" in request.url else None)
    page = studio.open("/gallery")
    search(page, token)
    # 30 images are more than one page (24): scrolling to the list's end brings the rest, through the cursor.
    # (When the next page starts loading depends on how fast the first one renders, so only the end is asserted.)
    expect(tiles(page).first).to_be_visible()
    page.locator(".sentinel").scroll_into_view_if_needed()
    expect(tiles(page)).to_have_count(30)
    assert any(token in url and "after=" in url for url in pages), pages
    expect(page.get_by_role("status").filter(has_text="30 images")).to_be_visible()
    page.get_by_label("Model", exact=True).select_option("tiny-sdxl")
    expect(page.get_by_text("No images here yet.")).to_be_visible()
    page.get_by_label("Model", exact=True).select_option("tiny-sd15")
    expect(tiles(page).first).to_be_visible()
    page.locator(".sentinel").scroll_into_view_if_needed()
    expect(tiles(page)).to_have_count(30)


def test_rerun_and_image_to_image_from_the_gallery(
    studio_for: Callable[[str | None], Studio], studio_server: StudioServer
) -> None:
    prompt = f"a teapot on a table {uuid.uuid4().hex[:8]}"
    make_images(studio_server, "alice", prompt, seed=321)
    page = studio_for("alice").open("/gallery")
    search(page, prompt)
    page.get_by_role("button", name=prompt).click()
    page.get_by_role("dialog").get_by_role("button", name="Re-run").click()
    expect(page).to_have_url(studio_server.url + "/")
    expect(page.get_by_label("Prompt", exact=True)).to_have_value(prompt)
    expect(page.get_by_label("Model", exact=True)).to_have_value("tiny-sd15")
    expect(page.get_by_label("Seed", exact=True)).to_have_value("321")
    expect(page.get_by_label("Random seed")).not_to_be_checked()
    expect(page.get_by_label("Size", exact=True)).to_have_value("64x64")
    expect(page.get_by_label("Steps", exact=True)).to_have_value("2")

    page.goto(studio_server.url + "/gallery")
    search(page, prompt)
    page.get_by_role("button", name=prompt).click()
    page.get_by_role("dialog").get_by_role("button", name="Use for image-to-image").click()
    expect_loaded(page.get_by_role("img", name="Starting image"))
    page.get_by_label("Prompt", exact=True).fill(prompt + ", in watercolor")
    page.get_by_label("Model", exact=True).fill("tiny-sd15")
    page.get_by_label("Size", exact=True).fill("64x64")
    page.get_by_label("Steps", exact=True).fill("4")
    page.get_by_label("Random seed").uncheck()
    page.get_by_label("Seed", exact=True).fill("9")
    page.get_by_role("button", name="Generate", exact=True).click()
    expect_loaded(result(page, 9).get_by_role("img", name=prompt + ", in watercolor"))

    # Choosing from the gallery on the Generate page works the same way.
    page.get_by_role("button", name="Remove starting image").click()
    page.get_by_role("button", name="Choose from the gallery").click()
    page.locator("#gallery-picker").get_by_role("button", name=prompt, exact=True).click()
    expect_loaded(page.get_by_role("img", name="Starting image"))
    with studio_server.client("alice") as client:
        latest = client.get("/v1/generations", params={"limit": 1}).json()["data"][0]
    assert latest["kind"] == "edit"


def test_a_second_user_sees_none_of_the_first_users_images(
    studio_for: Callable[[str | None], Studio], studio_server: StudioServer
) -> None:
    token = uuid.uuid4().hex[:8]
    make_images(studio_server, "alice", f"alice's secret {token}")
    page = studio_for("bob").open("/gallery")
    expect(page.get_by_text("No images here yet.")).to_be_visible(timeout=GENERATED)
    expect(tiles(page)).to_have_count(0)
    page.goto(studio_server.url + "/")
    page.get_by_role("button", name="Choose from the gallery").click()
    expect(page.locator("#gallery-picker").get_by_text("No images yet.")).to_be_visible()
