"""Fine-tuning as OpenAI's clients ask for it: `method.type: "supervised"` with OpenAI's hyperparameter names (and
`sft` as its alias), no `method` at all (the openai CLI, older SDKs: the base decides), and the pairings that cannot
work refused with a 400 that says why, nothing queued."""

from __future__ import annotations

from typing import Any

import httpx
import openai
import pytest

from tests.conftest import Keys, LiveServer, image_bytes
from tests.helpers import JSONL_OK, assert_error, make_zip, upload_zip
from tests.openai_schema import assert_matches_openai


@pytest.fixture(scope="module")
def files(live: LiveServer, keys: Keys) -> dict[str, str]:
    """Alice's text file and image dataset."""
    with live.client(keys.alice) as alice:
        text = alice.post("/v1/files", files={"file": ("t.jsonl", JSONL_OK)}, data={"purpose": "fine-tune"})
        images = upload_zip(alice, make_zip({f"r{i}.png": image_bytes((200, 30, 30), size=(64, 64)) for i in range(2)}))
    return {"text": text.json()["id"], "images": images.json()["id"]}


def created(client: httpx.Client, body: dict[str, Any]) -> dict[str, Any]:
    """Creates the job, checks it against OpenAI's schema, and cancels it (only its creation is under test)."""
    response = client.post("/v1/fine_tuning/jobs", json=body)
    assert response.status_code == 200, response.text
    job = response.json()
    assert_matches_openai(job, "POST", "/v1/fine_tuning/jobs")
    client.post(f"/v1/fine_tuning/jobs/{job['id']}/cancel")
    return dict(job)


def job_ids(client: httpx.Client) -> set[str]:
    return {job["id"] for job in client.get("/v1/fine_tuning/jobs", params={"limit": 100}).json()["data"]}


def test_supervised_takes_openais_hyperparameter_names(alice_openai: openai.OpenAI, files: dict[str, str]) -> None:
    job = alice_openai.fine_tuning.jobs.create(
        model="tiny-llm",
        training_file=files["text"],
        method={
            "type": "supervised",
            "supervised": {"hyperparameters": {"n_epochs": 1, "batch_size": 2, "learning_rate_multiplier": 2}},
        },
    )
    alice_openai.fine_tuning.jobs.cancel(job.id)
    assert job.method is not None and job.method.type == "supervised"
    assert (job.method.model_extra or {})["id"] == "supervised"
    # n_epochs and batch_size are the recipe's own; the multiplier scales SFT's default learning rate (2e-4).
    assert job.hyperparameters.n_epochs == 1 and job.hyperparameters.batch_size == 2
    assert (job.hyperparameters.model_extra or {})["learning_rate"] == pytest.approx(4e-4)


def test_sft_is_an_alias_reported_as_supervised(alice: httpx.Client, files: dict[str, str]) -> None:
    hyper = {"hyperparameters": {"max_steps": 1}}
    job = created(alice, {"model": "tiny-llm", "training_file": files["text"], "method": {"type": "sft", "sft": hyper}})
    assert job["method"] == {
        "type": "supervised",
        "id": "supervised",
        "supervised": {"hyperparameters": {"max_steps": 1}},
    }
    before = job_ids(alice)
    both = {"type": "supervised", "supervised": hyper, "sft": hyper}
    error = assert_error(
        alice.post("/v1/fine_tuning/jobs", json={"model": "tiny-llm", "training_file": files["text"], "method": both}),
        400,
    )
    assert "alias" in error["message"]
    assert job_ids(alice) == before


def test_no_method_follows_the_base(alice_openai: openai.OpenAI, alice: httpx.Client, files: dict[str, str]) -> None:
    text = alice_openai.fine_tuning.jobs.create(model="tiny-llm", training_file=files["text"])  # as the openai CLI does
    alice_openai.fine_tuning.jobs.cancel(text.id)
    assert text.method is not None and (text.method.model_extra or {})["id"] == "supervised"
    image = created(
        alice, {"model": "tiny-sd15", "training_file": files["images"], "hyperparameters": {"max_steps": 1}}
    )
    assert image["method"]["id"] == "lora" and image["method"]["type"] == "supervised"
    assert_error(
        alice.post("/v1/fine_tuning/jobs", json={"model": "no-such-base", "training_file": files["text"]}),
        404,
        param="model",
    )


@pytest.mark.parametrize(
    ("model", "file", "method", "says"),
    [
        ("tiny-llm", "text", {"type": "lora"}, "'tiny-llm' is a text model; method 'lora' trains image models"),
        ("tiny-llm", "text", {"type": "dreambooth"}, "'tiny-llm' is a text model; method 'dreambooth'"),
        ("tiny-sd15", "images", {"type": "supervised"}, "'tiny-sd15' is an image model; method 'supervised'"),
        ("tiny-sd15", "images", {"type": "sft"}, "'tiny-sd15' is an image model; method 'supervised'"),
        ("tiny-sd15", "text", None, "lora training needs an image dataset"),
        ("tiny-llm", "images", None, "holds images"),
    ],
)
def test_impossible_pairings_are_a_400_that_says_why(
    alice: httpx.Client, files: dict[str, str], model: str, file: str, method: dict[str, str] | None, says: str
) -> None:
    before = job_ids(alice)
    body: dict[str, Any] = {"model": model, "training_file": files[file]}
    if method is not None:
        body["method"] = method
    response = alice.post("/v1/fine_tuning/jobs", json=body)
    error = assert_error(response, 400)
    assert_matches_openai(response.json(), "POST", "/v1/fine_tuning/jobs", 400)
    assert says in error["message"] and error["param"] in ("model", "training_file")
    assert job_ids(alice) == before
