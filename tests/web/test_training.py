"""Training in the browser: the form built from the methods listing starts a tiny LoRA run, the job page follows
it live (chart points, samples), the checkpoint × prompt grid shows each checkpoint's images and promotes one to
a named model; cancel and resume; another user sees none of it. Hostile text stays text everywhere."""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path

import pytest
from playwright.sync_api import Page, expect

from tests.conftest import image_bytes
from tests.helpers import make_zip, upload_zip, write_pairs
from tests.web.conftest import Studio, StudioServer

SCRIPT = "<script>alert(1)</script> rdx shoe"
IMG = "<img src=x onerror=alert(2)>"
RUN_TIMEOUT = 180_000  # a tiny run on a busy 2-core CI machine; the page shows it when it ends
SERVER_TIMEOUT = 60_000  # what waits on the server's work (images on a busy CPU), not on the page


@pytest.fixture(scope="module")
def dataset_name(studio_server: StudioServer) -> str:
    """A ready 2-image dataset of alice's (the Datasets page is tested on its own)."""
    name = f"red shoes {IMG}"
    archive = make_zip({f"red{i}.png": image_bytes((220, 30 + i, 30), size=(64, 64)) for i in range(2)})
    with studio_server.client("alice") as alice:
        response = upload_zip(alice, archive, trigger_word="rdx", name=name)
        assert response.status_code == 201, response.text
    return name


def no_dialogs(page: Page) -> list[str]:
    """Every alert() a payload managed to run (none should)."""
    opened: list[str] = []

    def record(dialog: object) -> None:
        opened.append(str(getattr(dialog, "message", "")))
        dialog.dismiss()  # type: ignore[attr-defined]

    page.on("dialog", record)
    return opened


def test_a_person_trains_a_lora_watches_it_and_promotes_a_checkpoint(
    studio_for: Callable[[str | None], Studio], studio_server: StudioServer, dataset_name: str
) -> None:
    studio = studio_for("alice")
    page = studio.open("/training")
    dialogs = no_dialogs(page)

    expect(page.get_by_label("Method")).to_have_value("lora")
    # The form follows the method: supervised (SFT) takes text bases and its own hyperparameters.
    page.get_by_label("Method").select_option("supervised")
    expect(page.get_by_label("Base model").locator("option[value='tiny-llm']")).to_have_count(1)
    expect(page.get_by_label("Lora dropout")).to_be_visible()
    expect(page.get_by_label("Resolution")).to_have_count(0)
    expect(page.get_by_label("Validation dataset")).to_be_visible()
    page.get_by_label("Method").select_option("lora")
    expect(page.get_by_label("Validation dataset")).to_be_hidden()
    page.get_by_label("Base model").select_option("tiny-sd15")
    expect(page.locator("#hp-rank-hint")).to_have_text(re.compile(r"Default for sd15: 16\.$"))  # from the listing
    option = page.get_by_label("Dataset", exact=True).locator("option", has_text=dataset_name)
    page.get_by_label("Dataset", exact=True).select_option(option.get_attribute("value"))
    page.get_by_label("Name suffix").fill(IMG)
    page.get_by_label("Max steps").fill("4")
    page.get_by_label("Rank", exact=True).fill("4")
    page.get_by_label("Resolution").fill("64")
    page.get_by_label("Checkpoint every n steps").fill("2")
    page.get_by_label("Sample every n steps").fill("2")
    page.get_by_label("Validation prompts").fill(SCRIPT)

    # A bad value is the API's message next to its field, and nothing starts.
    page.get_by_label("Learning rate", exact=True).fill("5")
    page.get_by_role("button", name="Start training").click()
    expect(page.get_by_role("alert").filter(has_text="learning_rate must be")).to_be_visible(timeout=SERVER_TIMEOUT)
    page.get_by_label("Learning rate", exact=True).fill("")
    page.get_by_role("button", name="Start training").click()
    page.wait_for_url(re.compile(r"/training/job_\w+$"))
    job_id = page.url.rsplit("/", 1)[1]
    expect(page.locator(".job-title")).to_contain_text(IMG)

    # The chart gains points and a sample appears, live; the run ends and says so.
    summary = page.locator("figcaption")
    expect(summary).to_have_text(re.compile(r"^\d+ points? plotted; last loss \d"), timeout=RUN_TIMEOUT)
    sample = page.get_by_role("img", name=SCRIPT).first
    expect(sample).to_be_visible(timeout=RUN_TIMEOUT)
    expect(page.get_by_role("status").filter(has_text="succeeded")).to_be_visible(timeout=RUN_TIMEOUT)
    expect(summary).to_have_text(re.compile(r"^4 points plotted"))
    assert page.locator(".chart canvas").count() == 1
    page.wait_for_function("() => [...document.querySelectorAll('.samples img')].every((i) => i.naturalWidth > 0)")
    expect(page.locator("pre.log-tail")).to_contain_text("succeeded")

    # Checkpoint × prompt grid: each checkpoint's image for the run's validation prompt, on one seed.
    expect(page.get_by_label("Validation prompts (one per line)")).to_have_value(SCRIPT)
    page.get_by_role("button", name="Show grid").click()
    cells = page.locator("table.checkpoint-grid td img")
    for step in (2, 4):
        expect(page.get_by_role("img", name=f"{SCRIPT} (step {step})")).to_be_visible(timeout=SERVER_TIMEOUT)
    expect(cells).to_have_count(2)
    page.wait_for_function(
        "() => [...document.querySelectorAll('table.checkpoint-grid td img')].every((i) => i.naturalWidth > 0)"
    )
    studio.check_page("training_job")

    # One click keeps a checkpoint as a named model.
    page.get_by_label("Name of a promoted model").fill(f"best {IMG}")
    page.get_by_role("button", name="Promote step 2 to a model").click()
    promoted = page.get_by_role("status").filter(has_text=f"is now the model “best {IMG}”")
    expect(promoted).to_be_visible(timeout=SERVER_TIMEOUT)
    with studio_server.client("alice") as alice:
        names = [model.get("name") for model in alice.get("/v1/models").json()["data"]]
    assert f"best {IMG}" in names

    # The list of runs links to the job, its hostile suffix as text.
    page = studio.open("/training")
    expect(page.get_by_role("link", name=f"{IMG} ({job_id})")).to_be_visible()
    expect(page.get_by_role("row").filter(has_text=job_id).get_by_text("succeeded")).to_be_visible()
    # With a finished run on this base, the form estimates how long the next one takes.
    page.get_by_label("Base model").select_option("tiny-sd15")
    page.get_by_label("Max steps").fill("8")
    expect(page.get_by_role("status").filter(has_text="Estimated time: about")).to_contain_text("8 steps")
    studio.check_page("training")
    assert dialogs == []

    # Bob sees none of it: not in his list, and the job page says there is no such job among his.
    bob = studio_for("bob")
    page = bob.open("/training")
    expect(page.get_by_text("No training runs yet.")).to_be_visible()
    expect(page.get_by_role("link", name=re.compile(job_id))).to_have_count(0)
    page = bob.open(f"/training/{job_id}")
    expect(page.get_by_role("alert").filter(has_text="no such training job")).to_be_visible()
    expect(page.locator("img")).to_have_count(0)


def test_a_person_cancels_and_resumes_a_run(
    studio_for: Callable[[str | None], Studio], studio_server: StudioServer, dataset_name: str
) -> None:
    with studio_server.client("alice") as alice:
        datasets = alice.get("/v1/datasets").json()["data"]
        dataset_id = next(d["id"] for d in datasets if d["name"] == dataset_name)
        body = {
            "model": "tiny-sd15",
            "training_file": dataset_id,
            "suffix": "long",
            "method": {"type": "lora", "lora": {"hyperparameters": {"max_steps": 5000, "rank": 4, "resolution": 64}}},
        }
        job = alice.post("/v1/fine_tuning/jobs", json=body).json()
    page = studio_for("alice").open(f"/training/{job['id']}")
    status = page.locator(".job-facts").get_by_role("status")
    page.get_by_role("button", name="Cancel").click()
    expect(status).to_have_text("cancelled", timeout=SERVER_TIMEOUT)
    expect(page.get_by_role("button", name="Cancel")).to_be_hidden()
    page.get_by_role("button", name="Resume").click()
    expect(status).to_have_text(re.compile("queued|running"), timeout=SERVER_TIMEOUT)
    page.get_by_role("button", name="Cancel").click()
    expect(status).to_have_text("cancelled", timeout=SERVER_TIMEOUT)
    with studio_server.client("alice") as alice:
        assert alice.get(f"/v1/fine_tuning/jobs/{job['id']}").json()["status"] == "cancelled"


def test_an_sft_run_charts_eval_loss_and_token_accuracy(
    studio_for: Callable[[str | None], Studio], studio_server: StudioServer, tmp_path: Path
) -> None:
    with studio_server.client("alice") as alice:
        data = write_pairs(tmp_path / "pairs.jsonl", 12).read_bytes()
        file_id = alice.post("/v1/files", files={"file": ("t.jsonl", data)}, data={"purpose": "fine-tune"}).json()["id"]
        hyper = {"max_steps": 2, "batch_size": 4, "rank": 4, "validation_fraction": 0.25, "checkpoint_every_n_steps": 2}
        body = {
            "model": "tiny-llm",
            "training_file": file_id,
            "method": {"type": "sft", "sft": {"hyperparameters": hyper}},
        }
        response = alice.post("/v1/fine_tuning/jobs", json=body)
        assert response.status_code == 200, response.text
        job_id = response.json()["id"]
    page = studio_for("alice").open(f"/training/{job_id}")
    expect(page.locator(".job-facts").get_by_role("status")).to_have_text("succeeded", timeout=RUN_TIMEOUT)
    expect(page.locator("figcaption")).to_contain_text("token accuracy", timeout=SERVER_TIMEOUT)
    expect(page.get_by_role("button", name="Show grid")).to_be_hidden()  # no images to compare for a text model
    page.get_by_role("button", name="Promote step 2 to a model").click()
    expect(page.get_by_role("status").filter(has_text="is now the model")).to_be_visible(timeout=SERVER_TIMEOUT)
    with studio_server.client("alice") as alice:
        kinds = {m.get("name"): m.get("family") for m in alice.get("/v1/models").json()["data"]}
    assert kinds.get("tiny-llm-fine-tune") == "text"
