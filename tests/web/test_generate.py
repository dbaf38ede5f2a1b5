"""Generate in the browser: the form, results with their seeds, their actions, image to image, API errors."""

from __future__ import annotations

import io
import re
import uuid
from collections.abc import Callable

from PIL import Image
from playwright.sync_api import Locator, Page, expect

from tests.conftest import LoraFiles
from tests.web.conftest import Studio, axe_violations

HOSTILE = ("<script>alert(1)</script>", "<img src=x onerror=alert(1)>")
# How long a result may take to appear: generating is quick on the tiny models, but the first one loads the model
# and the machine may be busy (Playwright's expect waits 5 s by default).
GENERATED = 120_000


def fill_form(page: Page, prompt: str, *, seed: int | None = None, count: int = 1) -> None:
    page.get_by_label("Prompt", exact=True).fill(prompt)
    page.get_by_label("Model", exact=True).fill("tiny-sd15")
    page.get_by_label("Size", exact=True).fill("64x64")
    page.get_by_label("Steps", exact=True).fill("2")
    page.get_by_label("Count", exact=True).fill(str(count))
    if seed is not None:
        page.get_by_label("Random seed").uncheck()
        page.get_by_label("Seed", exact=True).fill(str(seed))


def expect_loaded(image: Locator) -> None:
    """The image is on screen and its pixels arrived (a broken image has a natural width of 0)."""
    expect(image).to_be_visible(timeout=GENERATED)
    image.page.wait_for_function("(img) => img.complete && img.naturalWidth > 0", arg=image.element_handle())


def result(page: Page, seed: int) -> Locator:
    return page.locator("li.result").filter(has_text=f"Seed {seed} ·")


def test_a_person_generates_sees_seeds_and_favorites(studio_for: Callable[[str | None], Studio]) -> None:
    studio = studio_for("alice")
    page = studio.open("/")
    prompt = f"a red fox in the snow {uuid.uuid4().hex[:8]}"
    fill_form(page, prompt, seed=4242, count=2)
    page.get_by_role("button", name="Generate", exact=True).click()

    for seed in (4242, 4243):  # each image appears with its own seed and time
        tile = result(page, seed)
        expect(tile).to_be_visible(timeout=GENERATED)
        expect(tile).to_contain_text(re.compile(r"\d+\.\d\d s"))
        expect_loaded(tile.get_by_role("img", name=prompt))
    expect(page.locator("li.result")).to_have_count(2)
    studio.check_page("generate")

    first = result(page, 4242)
    first.get_by_role("button", name="Favorite").click()
    expect(first.get_by_role("button", name="Favorite")).to_have_attribute("aria-pressed", "true")
    first.get_by_role("button", name="Use this seed").click()
    expect(page.get_by_label("Seed", exact=True)).to_have_value("4242")
    expect(first.get_by_role("link", name="Download")).to_have_attribute("download", re.compile(r"^img_.*\.png$"))

    # "Vary": one more image of the same settings with a new, random seed.
    first.get_by_role("button", name="Vary").click()
    expect(page.locator("li.result")).to_have_count(3, timeout=GENERATED)
    expect(page.get_by_label("Random seed")).to_be_checked()

    # The favorite is in the gallery, filtered by favorite; its sibling is not.
    page.get_by_role("link", name="Gallery").click()
    page.get_by_label("Search prompts").fill(prompt)
    expect(page.locator(".gallery-grid li")).to_have_count(3)
    page.get_by_label("Favorites only").check()
    expect(page.locator(".gallery-grid li")).to_have_count(1)
    expect_loaded(page.get_by_role("img", name=prompt))


def test_previews_show_while_an_image_is_made(studio_for: Callable[[str | None], Studio]) -> None:
    studio = studio_for("alice")
    page = studio.open("/")
    # Every src the preview takes, recorded as it changes (the preview is gone once the image is done).
    page.evaluate(
        """() => {
          window.previewSources = [];
          const image = document.querySelector(".generate-preview img");
          new MutationObserver(() => window.previewSources.push(image.getAttribute("src") || ""))
            .observe(image, { attributes: true, attributeFilter: ["src"] });
        }"""
    )
    fill_form(page, "a fox, previewed", seed=31)
    page.get_by_label("Steps", exact=True).fill("6")
    page.get_by_role("button", name="Generate", exact=True).click()
    expect_loaded(result(page, 31).get_by_role("img", name="a fox, previewed"))
    sources = page.evaluate("() => window.previewSources")
    assert any(source.startswith("data:image/png;base64,") for source in sources), sources
    expect(page.locator(".generate-preview")).to_be_hidden()


def test_hostile_prompts_show_as_text(studio_for: Callable[[str | None], Studio]) -> None:
    studio = studio_for("alice")
    alerts: list[str] = []
    studio.page.on("dialog", lambda dialog: (alerts.append(dialog.message), dialog.dismiss()))
    page = studio.open("/")
    for number, payload in enumerate(HOSTILE):
        fill_form(page, payload, seed=77 + number)
        page.get_by_role("button", name="Generate", exact=True).click()
        expect_loaded(result(page, 77 + number).get_by_role("img", name=payload, exact=True))
    page.goto(studio.server.url + "/gallery")
    for payload in HOSTILE:
        expect(page.locator(".tile-prompt").filter(has_text=payload).first).to_have_text(payload)
    assert alerts == []
    assert page.locator(".gallery-grid script").count() == 0


def test_api_errors_show_next_to_their_control(studio_for: Callable[[str | None], Studio]) -> None:
    page = studio_for("alice").open("/")
    fill_form(page, "a cat")
    page.get_by_label("Size", exact=True).fill("65x65")
    page.get_by_role("button", name="Generate", exact=True).click()
    size_error = page.locator("#size ~ p[role=alert]").first
    expect(size_error).to_contain_text("multiples of 8", timeout=GENERATED)
    page.get_by_label("Size", exact=True).fill("64x64")
    page.get_by_label("Model", exact=True).fill("no-such-model")
    page.get_by_role("button", name="Generate", exact=True).click()
    expect(size_error).to_be_hidden()
    expect(page.locator("#model ~ p[role=alert]").first).to_contain_text("no-such-model", timeout=GENERATED)
    expect(page.locator("li.result")).to_have_count(0)


def test_image_to_image_from_a_file(studio_for: Callable[[str | None], Studio]) -> None:
    studio = studio_for("alice")
    page = studio.open("/")
    buffer = io.BytesIO()
    Image.new("RGB", (48, 40), (200, 30, 30)).save(buffer, format="PNG")
    page.get_by_label("Start from an image on this computer").set_input_files(
        {"name": "red.png", "mimeType": "image/png", "buffer": buffer.getvalue()}
    )
    expect_loaded(page.get_by_role("img", name="Starting image"))
    page.get_by_label("Strength").fill("0.5")
    fill_form(page, "a red square, repainted", seed=5)
    page.get_by_label("Steps", exact=True).fill("4")
    page.get_by_role("button", name="Generate", exact=True).click()
    expect_loaded(result(page, 5).get_by_role("img", name="a red square, repainted"))
    with studio.server.client("alice") as client:
        latest = client.get("/v1/generations", params={"limit": 1}).json()["data"][0]
    assert latest["kind"] == "edit" and latest["params"]["strength"] == 0.5


def test_an_extra_adapter_with_its_weight_and_the_gallery_filter(
    studio_for: Callable[[str | None], Studio], lora_files: LoraFiles
) -> None:
    studio = studio_for("alice")
    token = uuid.uuid4().hex[:8]
    with studio.server.client("alice") as client:
        made = client.post(
            "/v1/models",
            files={"file": ("fox.safetensors", lora_files.sd15_a.read_bytes(), "application/octet-stream")},
            data={"base": "tiny-sd15", "name": f"fox style {token}"},
        )
    assert made.status_code == 201, made.text
    adapter = made.json()["id"]
    page = studio.open("/")
    prompt = f"a fox, in its style {token}"
    fill_form(page, prompt, seed=31)
    page.get_by_role("button", name="Add adapter").click()
    page.get_by_label("Adapter 1", exact=True).select_option(adapter)
    page.get_by_label("Weight of adapter 1").fill("0.5")
    assert not axe_violations(page)  # the adapter's row too
    page.get_by_role("button", name="Generate", exact=True).click()
    expect_loaded(result(page, 31).get_by_role("img", name=prompt))
    with studio.server.client("alice") as client:
        latest = client.get("/v1/generations", params={"q": token}).json()["data"][0]
    assert latest["params"]["loras"] == [{"id": adapter, "weight": 0.5}]

    page.goto(studio.server.url + "/gallery")
    page.get_by_label("Search prompts").fill(token)
    expect(page.locator(".gallery-grid > li")).to_have_count(1)
    page.get_by_label("Adapter", exact=True).select_option(adapter)
    expect(page.locator(".gallery-grid > li")).to_have_count(1)
    page.get_by_label("Search prompts").fill("")
    expect(page.locator(".gallery-grid > li")).to_have_count(1)
    expect(page.get_by_role("img", name=prompt)).to_be_visible()
