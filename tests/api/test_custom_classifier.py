"""Custom classifiers: a {"text","label"} file → a fine-tuning job (method "classifier") → a model its owner can
use in /v1/classify, listed in /v1/models; bad datasets are refused before anything is queued."""

from __future__ import annotations

import json
import math
import time
from typing import Any

import httpx

from tests.conftest import image_bytes
from tests.helpers import JSONL_OK, TICKETS, assert_error, make_zip, upload_zip

ENCODER = "all-MiniLM-L6-v2"


def jsonl(rows: list[tuple[str, str]]) -> bytes:
    return "".join(json.dumps({"text": text, "label": label}) + "\n" for text, label in rows).encode()


def upload(client: httpx.Client, data: bytes, name: str = "tickets.jsonl") -> str:
    response = client.post("/v1/files", files={"file": (name, data)}, data={"purpose": "fine-tune"})
    assert response.status_code == 200, response.text
    file_id: str = response.json()["id"]
    return file_id


def create_job(client: httpx.Client, training_file: str, **overrides: Any) -> httpx.Response:
    body = {"model": ENCODER, "training_file": training_file, "method": {"type": "classifier"}, **overrides}
    return client.post("/v1/fine_tuning/jobs", json=body)


def wait_for(client: httpx.Client, job_id: str, timeout: float = 240) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        job: dict[str, Any] = client.get(f"/v1/fine_tuning/jobs/{job_id}").json()
        if job["status"] not in ("validating_files", "queued", "running"):
            return job
        time.sleep(0.3)
    raise AssertionError(f"job {job_id} did not finish")


def test_custom_classifier_end_to_end(alice: httpx.Client, bob: httpx.Client) -> None:
    rows = [(text, label) for label, texts in TICKETS.items() for text in texts]
    file_id = upload(alice, jsonl(rows))
    method = {"type": "classifier", "classifier": {"hyperparameters": {"c": "auto", "validation_fraction": 0.25}}}
    created = create_job(alice, file_id, suffix="tickets", seed=1, method=method)
    assert created.status_code == 200, created.text
    job = wait_for(alice, created.json()["id"])
    assert job["status"] == "succeeded", job
    model = job["fine_tuned_model"]
    assert model
    events = alice.get(f"/v1/fine_tuning/jobs/{job['id']}/events", params={"limit": 1000}).json()["data"]
    metrics = [event["data"] for event in events if event["type"] == "metrics"]
    assert metrics and all(0.0 <= m["val_accuracy"] <= 1.0 for m in metrics), events

    texts = ["the checkout charged my card three times", "thanks, you folks are wonderful", "the page crashes"]
    response = alice.post("/v1/classify", json={"input": texts, "model": model})
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["model"] == model
    for item in body["data"]:
        assert set(item["scores"]) == set(TICKETS)
        assert math.isclose(sum(item["scores"].values()), 1.0, abs_tol=1e-6)
    assert [item["label"] for item in body["data"]] == ["billing", "praise", "bug"]

    listed = {m["id"]: m for m in alice.get("/v1/models").json()["data"]}
    assert listed[model]["kind"] == "classifier"
    assert sorted(listed[model]["labels"]) == sorted(TICKETS)
    assert alice.get(f"/v1/models/{model}").json()["labels"] == listed[model]["labels"]

    # Another user cannot see or use it.
    assert_error(bob.post("/v1/classify", json={"input": "refund please", "model": model}), 404, param="model")
    assert model not in [m["id"] for m in bob.get("/v1/models").json()["data"]]
    assert_error(bob.get(f"/v1/models/{model}"), 404)
    assert_error(bob.delete(f"/v1/models/{model}"), 404)

    # The default router is untouched, and the owner can delete the classifier.
    assert alice.post("/v1/classify", json={"input": "draw a cat"}).json()["data"][0]["label"] == "image"
    assert alice.delete(f"/v1/models/{model}").json()["deleted"] is True
    assert_error(alice.post("/v1/classify", json={"input": "refund please", "model": model}), 404, param="model")


def test_bad_classifier_datasets(alice: httpx.Client, bob: httpx.Client) -> None:
    good = [(text, label) for label, texts in TICKETS.items() for text in texts]
    one_label = upload(alice, jsonl([(text, "bug") for text, _ in good]))
    error = assert_error(create_job(alice, one_label), 422, param="training_file")
    assert "at least 2 labels" in error["message"]

    few = upload(alice, jsonl([*good, ("where is my parcel", "shipping"), ("parcel lost", "shipping")]))
    error = assert_error(create_job(alice, few), 422, param="training_file")
    assert "'shipping' (2)" in error["message"]

    prompts = upload(alice, JSONL_OK)
    assert_error(create_job(alice, prompts), 400, param="training_file")
    images = upload_zip(alice, make_zip({"a.png": image_bytes((1, 2, 3))})).json()["id"]
    assert_error(create_job(alice, images), 400, param="training_file")

    fine = upload(alice, jsonl(good))
    assert_error(create_job(alice, "file_nope"), 404, param="training_file")
    assert_error(create_job(bob, fine), 404, param="training_file")
    assert_error(create_job(alice, fine, model="tiny-sd15"), 404, param="model")
    hyper = {"type": "classifier", "classifier": {"hyperparameters": {"n_epochs": 3}}}
    assert_error(create_job(alice, fine, method=hyper), 400, param="n_epochs")
    hyper = {"type": "classifier", "classifier": {"hyperparameters": {"validation_fraction": 0.9}}}
    assert_error(create_job(alice, fine, method=hyper), 400)
    hyper = {"type": "classifier", "classifier": {"hyperparameters": {"c": -1}}}
    assert_error(create_job(alice, fine, method=hyper), 400)

    # A bad {"text","label"} line is refused at upload, naming the line.
    error = assert_error(
        alice.post(
            "/v1/files",
            files={"file": ("t.jsonl", b'{"text": "a", "label": "x"}\n{"text": "", "label": "y"}\n')},
            data={"purpose": "fine-tune"},
        ),
        422,
    )
    assert "line 2" in error["message"]
    jobs = alice.get("/v1/fine_tuning/jobs", params={"limit": 100}).json()["data"]
    assert not any(job["training_file"] in (one_label, few, prompts, images) for job in jobs)
