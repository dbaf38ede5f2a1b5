"""The Models page in the browser: bases with their weights' whereabouts, importing an adapter by choosing its file,
its preview, renaming, exporting and deleting it, and a second user who sees none of it. Names, trigger words and
tags carry script payloads, which must show as text."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from playwright.sync_api import Dialog, expect
from safetensors.torch import load_file

from genfoundry.models.random_lora import make_lora_file
from tests.web.conftest import Studio, StudioServer

SCRIPT = "<script>alert(1)</script>"
IMG = "<img src=x onerror=alert(1)>"


def test_bases_show_whether_their_weights_are_here(
    studio_for: Callable[[str | None], Studio], studio_server: StudioServer
) -> None:
    page = studio_for("alice").open("/models")
    bases = page.get_by_role("table").filter(has=page.get_by_role("cell", name="tiny-sd15"))
    for tiny in ("tiny-sd15", "tiny-sdxl", "tiny-flux", "tiny-llm"):
        expect(bases.locator(f'tr[data-model="{tiny}"]')).to_contain_text("On this machine")
    with studio_server.client("alice") as client:
        listed = {m["id"]: m for m in client.get("/v1/models").json()["data"]}
    sd15 = bases.locator('tr[data-model="stable-diffusion-v1-5"]')
    if listed["stable-diffusion-v1-5"]["weights_present"]:  # a machine with the snapshot in its HF cache
        expect(sd15).to_contain_text("On this machine")
    else:
        expect(sd15).to_contain_text("Not downloaded")
        expect(sd15.locator("code").last).to_have_text("hf download stable-diffusion-v1-5/stable-diffusion-v1-5")
    classifiers = page.get_by_role("table").filter(has_text="prompt router")
    expect(classifiers.get_by_role("cell", name="chat, diagram, image")).to_be_visible()


def test_import_preview_rename_export_and_delete_an_adapter(
    studio_for: Callable[[str | None], Studio], studio_server: StudioServer, tiny_dir: Path, tmp_path: Path
) -> None:
    lora = make_lora_file(tiny_dir / "sd15", "sd15", tmp_path / "lora", seed=1)
    studio = studio_for("alice")
    dialogs: list[str] = []

    def on_dialog(dialog: Dialog) -> None:  # an alert() would mean a payload ran
        dialogs.append(dialog.message)
        dialog.dismiss()

    studio.page.on("dialog", on_dialog)
    page = studio.open("/models")

    # Import: choose the file, give it a hostile name, trigger word and tag; the upload shows its result.
    page.get_by_label("LoRA file").set_input_files(lora)
    expect(page.get_by_text(f"Chosen: {lora.name}")).to_be_visible()
    page.get_by_label("Base model", exact=True).select_option("tiny-sd15")
    page.get_by_label("Name", exact=True).fill(SCRIPT)
    # exact labels: the page also lists adapters other tests made, whose names may hold these words
    page.get_by_label("Trigger word (optional)", exact=True).fill(IMG)
    page.get_by_label("Industry (optional)", exact=True).fill(IMG)
    page.get_by_label("Style (optional)", exact=True).fill("flat")
    page.get_by_role("button", name="Import").click()
    expect(page.get_by_role("status").filter(has_text="Imported")).to_have_text(f"Imported {SCRIPT}.", timeout=60_000)
    card = page.get_by_role("listitem", name=f"Adapter {SCRIPT}")
    expect(card.get_by_role("heading", name=SCRIPT)).to_be_visible()  # shown as text, not run
    expect(card.get_by_text(IMG, exact=True)).to_be_visible()
    expect(card.get_by_text(f"industry: {IMG}")).to_be_visible()
    expect(card.get_by_text("style: flat")).to_be_visible()
    expect(card.get_by_text("No image yet")).to_be_visible()
    with studio_server.client("alice") as client:
        adapter = next(m for m in client.get("/v1/models").json()["data"] if m["name"] == SCRIPT)
        assert adapter["trigger_word"] == IMG and adapter["tags"] == {"industry": IMG, "style": "flat"}
        # An image made with the adapter becomes its preview.
        made = client.post(
            "/v1/images/generations",
            json={"model": adapter["id"], "prompt": "a cat", "size": "64x64", "steps": 2},
        )
        assert made.status_code == 200, made.text
    page.reload()
    preview = card.get_by_role("img", name=f"Latest image made with {SCRIPT}")
    expect(preview).to_be_visible()
    assert preview.evaluate("(img) => img.complete && img.naturalWidth") > 0
    studio.check_page("models")

    # Rename and change the trigger word.
    card.get_by_role("button", name=f"Edit {SCRIPT}").click()
    form = page.get_by_role("form", name=f"Edit {SCRIPT}")
    expect(form.get_by_label("Name")).to_be_focused()  # keyboard users land in the form
    form.get_by_label("Name").fill("Flat icons")
    form.get_by_label("Trigger word").fill("ohwx")
    form.get_by_role("button", name="Save").click()
    card = page.get_by_role("listitem", name="Adapter Flat icons")
    expect(card.get_by_role("heading", name="Flat icons")).to_be_visible()
    expect(card.get_by_text("ohwx", exact=True)).to_be_visible()
    expect(card.get_by_text(f"industry: {IMG}")).to_be_visible()  # tags not edited stay

    # Export in kohya format: the file arrives and holds kohya keys.
    with page.expect_download() as download_info:
        card.get_by_role("button", name="Export Flat icons for kohya").click()
    download = download_info.value
    assert download.suggested_filename == f"{adapter['id']}-kohya.safetensors"
    saved = tmp_path / download.suggested_filename
    download.save_as(saved)
    assert any(key.startswith("lora_unet_") for key in load_file(saved))

    # Bob sees none of alice's adapters.
    bob = studio_for("bob").open("/models")
    expect(bob.get_by_text("No adapters yet")).to_be_visible()
    expect(bob.get_by_role("listitem", name="Adapter Flat icons")).to_have_count(0)
    expect(bob.get_by_text(adapter["id"])).to_have_count(0)

    # Delete, after a confirmation; "Keep it" keeps it.
    card.get_by_role("button", name="Delete Flat icons").click()
    card.get_by_role("button", name="Keep it").click()
    expect(card).to_be_visible()
    card.get_by_role("button", name="Delete Flat icons").click()
    expect(card.get_by_role("button", name="Yes, delete")).to_be_focused()
    card.get_by_role("button", name="Yes, delete").click()
    expect(page.get_by_role("listitem", name="Adapter Flat icons")).to_have_count(0)
    with studio_server.client("alice") as client:
        assert client.get(f"/v1/models/{adapter['id']}").status_code == 404
    assert dialogs == []


def test_a_dropped_file_that_is_no_lora_gets_the_api_message_next_to_the_file(
    studio_for: Callable[[str | None], Studio],
) -> None:
    page = studio_for("alice").open("/models")
    dropped = page.evaluate_handle(
        """() => {
            const transfer = new DataTransfer();
            transfer.items.add(new File(["not a safetensors file"], "junk.safetensors"));
            return transfer;
        }"""
    )
    page.locator(".dropzone").dispatch_event("drop", {"dataTransfer": dropped})
    expect(page.get_by_text("Chosen: junk.safetensors")).to_be_visible()
    page.get_by_label("Base model", exact=True).select_option("tiny-sd15")
    page.get_by_label("Name", exact=True).fill("junk")
    page.get_by_role("button", name="Import").click()
    file_error = page.locator(".dropzone + p.error")  # the file's own error, right under the drop zone
    expect(file_error).to_be_visible()
    expect(file_error).to_have_attribute("role", "alert")
    expect(page.get_by_role("listitem", name="Adapter junk")).to_have_count(0)
