"""Datasets in the browser: a ZIP upload and its report, captions fixed by hand, in bulk and by a captioning job,
image URLs fetched live, the kohya config, deletion, and a second user who sees none of it."""

from __future__ import annotations

import io
import re
import tomllib
import zipfile
from collections.abc import Callable
from pathlib import Path

from playwright.sync_api import Dialog, Locator, Page, expect

from tests.conftest import image_bytes
from tests.web.conftest import Studio, StudioServer

SCRIPT = "<script>alert(1)</script>"
IMG = "<img src=x onerror=alert(1)>"


def make_zip(entries: dict[str, bytes | str]) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for name, data in entries.items():
            archive.writestr(name, data)
    return buffer.getvalue()


def api_dataset(server: StudioServer, user: str, name: str, entries: dict[str, bytes | str], **form: str) -> str:
    """A dataset made through the API, for tests whose subject is not the upload form."""
    with server.client(user) as client:
        made = client.post(
            "/v1/datasets", files={"file": ("d.zip", make_zip(entries), "application/zip")}, data={"name": name, **form}
        )
    assert made.status_code == 201, made.text
    return str(made.json()["id"])


def no_dialogs(page: Page) -> list[str]:
    """Every alert()/confirm() the page opens: an escaped payload never runs, so this stays empty."""
    opened: list[str] = []

    def record(dialog: Dialog) -> None:
        opened.append(dialog.message)
        dialog.dismiss()

    page.on("dialog", record)
    return opened


def test_upload_a_zip_see_the_report_and_fix_a_caption(studio_for: Callable[[str | None], Studio]) -> None:
    studio = studio_for("alice")
    page = studio.open("/datasets")
    dialogs = no_dialogs(page)
    zip_file = page.get_by_label("ZIP file")
    useless = make_zip({"a.png": b"not a picture", "b.jpg": b""})
    zip_file.set_input_files({"name": "useless.zip", "mimeType": "application/zip", "buffer": useless})
    page.get_by_role("button", name="Upload").click()
    expect(page.get_by_role("alert").filter(has_text="valid")).to_be_visible()  # the API's own message
    refused = page.get_by_role("status").filter(has_text="Nothing kept:")
    expect(refused).to_contain_text("0 accepted · 2 rejected")
    expect(refused.get_by_role("row").filter(has_text="a.png")).to_contain_text("not an image")

    archive = make_zip(
        {
            "red.png": image_bytes((255, 0, 0)),
            "blue.png": image_bytes((0, 0, 255)),
            "green.png": image_bytes((0, 255, 0)),
            "green.txt": SCRIPT,
            "copy-of-red.png": image_bytes((255, 0, 0)),
            "notes.png": b"this is text, not an image",
        }
    )
    page.get_by_label("Name", exact=True).first.fill("")
    zip_file.set_input_files({"name": "shoes.zip", "mimeType": "application/zip", "buffer": archive})
    expect(page.get_by_label("Name", exact=True).first).to_have_value("shoes")  # taken from the file's name
    page.get_by_label("Name", exact=True).first.fill(IMG)
    page.get_by_label("Trigger word (optional)").first.fill("sks")
    page.get_by_role("button", name="Upload").click()

    report = page.get_by_role("status").filter(has_text="Uploaded:")
    expect(report).to_contain_text("3 accepted · 1 rejected · 1 duplicate")
    expect(report.get_by_role("row").filter(has_text="notes.png")).to_contain_text("rejected")
    expect(report.get_by_role("row").filter(has_text="copy-of-red.png")).to_contain_text("same image as red.png")
    listed = page.get_by_role("table", name="Your datasets").get_by_role("link", name=IMG, exact=True)
    expect(listed).to_be_visible()  # the name is text, not markup
    studio.check_page("datasets")

    report.get_by_role("link", name="Open the dataset").click()
    expect(page.get_by_role("heading", level=1)).to_have_text(IMG)
    green = page.get_by_label("Caption of green.png", exact=True)
    expect(green).to_have_value(f"sks, {SCRIPT}")
    green_image = page.get_by_role("img", name=f"sks, {SCRIPT}", exact=True)
    expect(green_image).to_be_visible()
    page.wait_for_function("() => [...document.querySelectorAll('.dataset-items img')].every(i => i.naturalWidth > 0)")
    expect(page.get_by_role("row").filter(has_text="notes.png")).to_be_visible()  # left out, with its reason

    red = page.get_by_label("Caption of red.png", exact=True)
    red.fill("sks, a red square")
    red.press("Tab")  # leaving the field saves it
    expect(page.locator("li", has=red).get_by_role("status")).to_have_text("Saved")
    studio.check_page("dataset")
    page.reload()
    expect(page.get_by_label("Caption of red.png", exact=True)).to_have_value("sks, a red square")
    expect(page.get_by_role("row", name=re.compile("Captioned"))).to_contain_text("2 (67 %)")
    assert dialogs == []


def test_bulk_edits_and_a_captioning_job_fill_in_captions(
    studio_for: Callable[[str | None], Studio], studio_server: StudioServer
) -> None:
    entries: dict[str, bytes | str] = {f"img{i}.png": image_bytes((i * 60, 200 - i * 50, 90)) for i in range(3)}
    dataset_id = api_dataset(
        studio_server, "alice", "to caption", entries | {"img0.txt": "a shoe"}, trigger_word="ohwx"
    )
    page = studio_for("alice").open(f"/datasets/{dataset_id}")

    expect(page.get_by_label("Trigger word to put first")).to_have_value("ohwx")  # the dataset's own
    expect(page.get_by_label("Caption of img1.png", exact=True)).to_have_value("")
    page.get_by_role("button", name="Prepend to every caption").click()
    expect(page.get_by_role("status").filter(has_text="captions changed")).to_have_text("2 captions changed.")
    expect(page.get_by_label("Caption of img0.png", exact=True)).to_have_value("ohwx, a shoe")  # already had it
    expect(page.get_by_label("Caption of img1.png", exact=True)).to_have_value("ohwx")

    page.get_by_label("Find").fill("a shoe")
    page.get_by_label("Replace with").fill("a boot")
    page.get_by_role("button", name="Replace in every caption").click()
    expect(page.get_by_role("status").filter(has_text="changed")).to_have_text("1 caption changed.")
    expect(page.get_by_label("Caption of img0.png", exact=True)).to_have_value("ohwx, a boot")

    expect(page.locator("#captioner-hint")).to_have_text("Leave empty for the server's default (mini-captioner).")
    page.get_by_label("Captioning model").fill("tiny-captioner")
    page.get_by_label("Overwrite existing captions").check()
    page.get_by_role("button", name="Caption images").click()
    expect(page.get_by_role("status").filter(has_text="Captioning done")).to_have_text(
        "Captioning done: 3 captioned.", timeout=120_000
    )
    for i in range(3):  # filled in from the job's events, trigger word first
        expect(page.get_by_label(f"Caption of img{i}.png", exact=True)).to_have_value(re.compile(r"^ohwx, \S"))
    expect(page.get_by_role("row", name=re.compile("Captioned"))).to_contain_text("3 (100 %)")


def test_a_dataset_from_image_urls_shows_each_url_live(
    studio_for: Callable[[str | None], Studio], image_server: str
) -> None:
    page = studio_for("alice").open("/datasets")
    urls = [f"{image_server}/red.png", f"{image_server}/red-again.png", f"{image_server}/missing.png"]
    page.get_by_label("Name", exact=True).nth(1).fill("from the web")
    page.get_by_label("Image URLs, one per line").fill("\n".join(urls))
    page.get_by_role("button", name="Download images").click()
    table = page.get_by_role("table", name="Each URL's download")
    expect(page.get_by_role("status").filter(has_text="URLs fetched")).to_contain_text("3 of 3 URLs fetched")

    def row(url: str) -> Locator:  # by its URL cell: the duplicate's row names the first URL too
        return table.get_by_role("row").filter(has=page.get_by_role("cell", name=url, exact=True))

    expect(row(urls[0])).to_contain_text("accepted")
    expect(row(urls[1])).to_contain_text(f"same image as {urls[0]}")
    expect(row(urls[2])).to_contain_text("404")
    page.get_by_role("link", name="Open the dataset").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("from the web")
    expect(page.get_by_role("img")).to_have_count(1)


def test_the_kohya_config_takes_its_resolution_from_the_images_unless_one_is_chosen(
    studio_for: Callable[[str | None], Studio], studio_server: StudioServer, tmp_path: Path
) -> None:
    small = {f"s{i}.png": image_bytes((i * 50, 80, 160), size=(300, 300)) for i in range(3)}
    dataset_id = api_dataset(studio_server, "alice", "small images", small, trigger_word="zq")
    page = studio_for("alice").open(f"/datasets/{dataset_id}")
    expect(page.get_by_label("Resolution")).to_have_value("auto")
    with page.expect_download() as downloading:
        page.get_by_role("button", name="Download kohya config").click()
    target = tmp_path / "config.toml"
    downloading.value.save_as(target)
    text = target.read_text()
    assert tomllib.loads(text)["datasets"][0]["resolution"] == 256  # 300 px images: not upscaled to 1024
    assert text.startswith("# resolution 256 from the 3 images")


def test_download_the_kohya_config_then_delete_the_dataset(
    studio_for: Callable[[str | None], Studio], studio_server: StudioServer, tmp_path: Path
) -> None:
    dataset_id = api_dataset(studio_server, "alice", "to delete", {"a.png": image_bytes((1, 2, 3))}, trigger_word="zq")
    page = studio_for("alice").open(f"/datasets/{dataset_id}")
    expect(page.get_by_role("heading", level=1)).to_have_text("to delete")
    page.get_by_label("Resolution").select_option("512")
    with page.expect_download() as downloading:
        page.get_by_role("button", name="Download kohya config").click()
    download = downloading.value
    assert download.suggested_filename == "to_delete.toml"
    target = tmp_path / "config.toml"
    download.save_as(target)
    config = tomllib.loads(target.read_text())
    [entry] = config["datasets"]
    assert entry["resolution"] == 512
    assert entry["subsets"][0]["class_tokens"] == "zq"

    page.get_by_role("button", name="Delete dataset").click()
    dialog = page.get_by_role("dialog", name="Delete this dataset?")
    expect(dialog).to_be_visible()
    dialog.get_by_role("button", name="Keep it").click()
    expect(dialog).to_be_hidden()
    page.get_by_role("button", name="Delete dataset").click()
    dialog.get_by_role("button", name="Delete for good").click()
    expect(page).to_have_url(re.compile(r"/datasets$"))
    expect(page.get_by_role("table", name="Your datasets").get_by_role("link", name="to delete")).to_have_count(0)
    with studio_server.client("alice") as client:
        assert client.get(f"/v1/datasets/{dataset_id}").status_code == 404


def test_bob_sees_none_of_alices_datasets(
    studio_for: Callable[[str | None], Studio], studio_server: StudioServer
) -> None:
    alices = api_dataset(studio_server, "alice", "alice's secret shoes", {"a.png": image_bytes((5, 5, 5))})
    api_dataset(studio_server, "bob", "bob's own", {"b.png": image_bytes((6, 6, 6))})
    page = studio_for("bob").open("/datasets")
    datasets = page.get_by_role("table", name="Your datasets")
    expect(datasets.get_by_role("link", name="bob's own")).to_be_visible()
    expect(datasets.get_by_role("link", name="alice's secret shoes")).to_have_count(0)

    page = studio_for("bob").open(f"/datasets/{alices}")
    expect(page.get_by_role("alert").filter(has_text="Not found")).to_be_visible()
    expect(page.get_by_role("heading", level=1)).to_have_text("Dataset not found")
    expect(page.get_by_role("img")).to_have_count(0)
