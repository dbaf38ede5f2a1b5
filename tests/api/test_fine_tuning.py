"""LoRA fine-tuning through the openai client and the real server: dataset → job → adapter → images."""

from __future__ import annotations

import base64
import io
import time

import httpx
import openai
import pytest
from PIL import Image

from tests.conftest import Keys, LiveServer, image_bytes
from tests.helpers import JSONL_OK, assert_error, make_zip, upload_zip


@pytest.fixture
def client(live: LiveServer, keys: Keys) -> openai.OpenAI:
    return openai.OpenAI(base_url=f"{live.url}/v1", api_key=keys.alice, max_retries=0)


def test_fine_tune_then_generate(client: openai.OpenAI, alice: httpx.Client, bob: httpx.Client) -> None:
    archive = make_zip({f"red{i}.png": image_bytes((230, 20 + i, 20), size=(64, 64)) for i in range(4)})
    dataset_id = upload_zip(alice, archive, trigger_word="rdx").json()["id"]
    job = client.fine_tuning.jobs.create(
        model="tiny-sd15",
        training_file=dataset_id,
        suffix="red",
        seed=3,
        method={"type": "lora", "lora": {"hyperparameters": {"max_steps": 4, "rank": 4, "resolution": 64}}},
    )
    assert job.status == "queued"
    deadline = time.monotonic() + 240
    while job.status in ("queued", "running") and time.monotonic() < deadline:
        time.sleep(0.5)
        job = client.fine_tuning.jobs.retrieve(job.id)
    assert job.status == "succeeded", job
    assert job.fine_tuned_model
    assert job.id in [j.id for j in client.fine_tuning.jobs.list()]
    events = client.fine_tuning.jobs.list_events(job.id, limit=1000).data
    assert any(event.type == "metrics" for event in events)
    assert bob.get(f"/v1/fine_tuning/jobs/{job.id}").status_code == 404

    result = client.images.generate(
        model=job.fine_tuned_model, prompt="a shoe", size="64x64", response_format="b64_json"
    )
    assert result.data[0].revised_prompt == "rdx, a shoe"
    assert Image.open(io.BytesIO(base64.b64decode(result.data[0].b64_json or ""))).size == (64, 64)
    assert_error(alice.post(f"/v1/fine_tuning/jobs/{job.id}/cancel"), 409)


def test_bad_fine_tuning_requests(alice: httpx.Client) -> None:
    images = upload_zip(alice, make_zip({"a.png": image_bytes((1, 2, 3))})).json()["id"]
    text = alice.post("/v1/files", files={"file": ("t.jsonl", JSONL_OK)}, data={"purpose": "fine-tune"}).json()["id"]

    def create(**overrides: object) -> httpx.Response:
        body = {"model": "tiny-sd15", "training_file": images, "method": {"type": "lora"}, **overrides}
        return alice.post("/v1/fine_tuning/jobs", json=body)

    def lora(**hyper: object) -> dict:
        return {"type": "lora", "lora": {"hyperparameters": hyper}}

    assert_error(create(model="nope"), 404, param="model")
    assert_error(create(training_file="ds_nope"), 404, param="training_file")
    assert_error(create(training_file=text), 400, param="training_file")
    assert_error(create(method={"type": "telepathy"}), 400)
    assert_error(create(method=lora(rank=0)), 400, param="rank")
    assert_error(create(method=lora(rank=10000)), 400, param="rank")
    assert_error(create(method=lora(learning_rate=-1)), 400, param="learning_rate")
    assert_error(create(method=lora(max_steps=10**9)), 400, param="max_steps")
    assert_error(create(method=lora(resolution=500)), 400, param="resolution")
    assert_error(create(method=lora(warp_speed=9)), 400)
    assert_error(alice.get("/v1/fine_tuning/jobs/job_nope"), 404)


def test_job_log_tail(alice: httpx.Client, bob: httpx.Client) -> None:
    from tests.helpers import wait_for_job

    dataset = alice.post("/v1/datasets/from-urls", json={"name": "log", "urls": ["http://127.0.0.1:9/x.png"]}).json()
    wait_for_job(alice, dataset["job_id"])
    log = alice.get(f"/v1/jobs/{dataset['job_id']}/log", params={"tail": 10})
    assert log.status_code == 200
    assert log.headers["content-type"].startswith("text/plain")
    lines = log.text.splitlines()
    assert 1 <= len(lines) <= 10
    assert lines[-1].endswith("failed")
    assert len(alice.get(f"/v1/jobs/{dataset['job_id']}/log", params={"tail": 1}).text.splitlines()) == 1
    assert_error(alice.get(f"/v1/jobs/{dataset['job_id']}/log", params={"tail": 0}), 400)
    assert_error(bob.get(f"/v1/jobs/{dataset['job_id']}/log"), 404)
