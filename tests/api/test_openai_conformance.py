"""Every answer of every route OpenAI also has, validated against OpenAI's published OpenAPI schema for that
operation (tests/openai_schema.py): success, list, stream chunk and error answers, through the real server with
the tiny models. Routes other modules own validate their own new answers with the same helper (image streaming
events, embeddings, batches)."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from typing import Any

import httpx

from tests.conftest import LiveServer, LoraFiles, image_bytes
from tests.helpers import JSONL_OK, make_zip
from tests.openai_schema import assert_matches_openai

CHAT = {"model": "tiny-llm", "messages": [{"role": "user", "content": "A user logs in"}], "max_tokens": 4, "seed": 1}


def conforming(response: httpx.Response, method: str, path: str, status: int = 200) -> Any:
    """The answer's JSON, after checking its status and that it matches OpenAI's schema for it."""
    assert response.status_code == status, response.text
    body = response.json()
    assert_matches_openai(body, method, path, status)
    return body


def stream_events(client: httpx.Client, path: str, body: dict[str, Any]) -> Iterator[Any]:
    """Each SSE `data` payload of a streamed POST as JSON, up to `[DONE]` (which must come)."""
    with client.stream("POST", path, json=body) as response:
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("text/event-stream")
        for line in response.iter_lines():
            if not line.startswith("data: "):
                continue
            if line == "data: [DONE]":
                return
            yield json.loads(line.removeprefix("data: "))
    raise AssertionError("the stream ended without data: [DONE]")


def wait_until_ended(client: httpx.Client, job_id: str) -> dict[str, Any]:
    deadline = time.monotonic() + 240
    while time.monotonic() < deadline:
        job = conforming(client.get(f"/v1/fine_tuning/jobs/{job_id}"), "GET", f"/v1/fine_tuning/jobs/{job_id}")
        if job["status"] not in ("validating_files", "queued", "running"):
            return job
        time.sleep(0.2)
    raise AssertionError(f"job {job_id} did not end")


def test_chat_completions(alice: httpx.Client) -> None:
    answer = conforming(alice.post("/v1/chat/completions", json={**CHAT, "n": 2}), "POST", "/v1/chat/completions")
    assert answer["choices"][0]["message"]["refusal"] is None and "system_fingerprint" not in answer

    chunks = list(
        stream_events(
            alice, "/v1/chat/completions", {**CHAT, "stream": True, "stream_options": {"include_usage": True}}
        )
    )
    for chunk in chunks:
        assert_matches_openai(chunk, "POST", "/v1/chat/completions", stream_event=True)
    reasons = [choice["finish_reason"] for chunk in chunks for choice in chunk["choices"]]
    assert reasons[-1] in ("stop", "length") and set(reasons[:-1]) == {None}
    assert chunks[-1]["choices"] == [] and chunks[-1]["usage"]["total_tokens"] > 0

    for body, status in [({**CHAT, "model": "no-such-model"}, 404), ({**CHAT, "temperature": 9}, 400)]:
        conforming(alice.post("/v1/chat/completions", json=body), "POST", "/v1/chat/completions", status)


def test_auto_chat_completion(alice: httpx.Client) -> None:
    body = {"model": "auto", "messages": [{"role": "user", "content": "hello there"}], "route": "chat"}
    conforming(alice.post("/v1/chat/completions", json={**body, "max_tokens": 4}), "POST", "/v1/chat/completions")
    for chunk in stream_events(alice, "/v1/chat/completions", {**body, "max_tokens": 4, "stream": True}):
        assert_matches_openai(chunk, "POST", "/v1/chat/completions", stream_event=True)


def test_completions(alice: httpx.Client) -> None:
    body = {"model": "tiny-llm", "prompt": ["@startuml", "Alice"], "max_tokens": 3}
    conforming(alice.post("/v1/completions", json=body), "POST", "/v1/completions")
    conforming(alice.post("/v1/completions", json={**body, "model": "auto"}), "POST", "/v1/completions", 400)


def test_models(alice: httpx.Client, lora_files: LoraFiles) -> None:
    listed = conforming(alice.get("/v1/models"), "GET", "/v1/models")
    assert {"auto", "tiny-llm", "tiny-sd15"} <= {model["id"] for model in listed["data"]}
    chat_only = conforming(alice.get("/v1/models", params={"capability": "chat"}), "GET", "/v1/models")
    assert chat_only["data"] and all("chat" in model["capabilities"] for model in chat_only["data"])
    for model_id in ("auto", "tiny-llm", "tiny-sd15"):
        conforming(alice.get(f"/v1/models/{model_id}"), "GET", f"/v1/models/{model_id}")
    conforming(alice.get("/v1/models/no-such-model"), "GET", "/v1/models/no-such-model", 404)
    conforming(alice.delete("/v1/models/tiny-llm"), "DELETE", "/v1/models/tiny-llm", 400)

    upload = alice.post(
        "/v1/models",
        files={"file": ("lora.safetensors", lora_files.sd15_a.read_bytes(), "application/octet-stream")},
        data={"base": "tiny-sd15", "name": "conformance"},
    )
    assert upload.status_code == 201, upload.text
    adapter_id = upload.json()["id"]
    conforming(alice.delete(f"/v1/models/{adapter_id}"), "DELETE", f"/v1/models/{adapter_id}")


def test_files(alice: httpx.Client) -> None:
    created = conforming(
        alice.post("/v1/files", files={"file": ("train.jsonl", JSONL_OK)}, data={"purpose": "fine-tune"}),
        "POST",
        "/v1/files",
    )
    file_id = created["id"]
    listed = conforming(alice.get("/v1/files", params={"limit": 2}), "GET", "/v1/files")
    assert listed["first_id"] == listed["data"][0]["id"] and listed["last_id"] == listed["data"][-1]["id"]
    conforming(alice.get(f"/v1/files/{file_id}"), "GET", f"/v1/files/{file_id}")
    content = alice.get(f"/v1/files/{file_id}/content")
    assert content.status_code == 200 and content.content == JSONL_OK
    assert_matches_openai(content.text, "GET", f"/v1/files/{file_id}/content")
    conforming(alice.delete(f"/v1/files/{file_id}"), "DELETE", f"/v1/files/{file_id}")
    for method in ("GET", "DELETE"):
        conforming(alice.request(method, f"/v1/files/{file_id}"), method, f"/v1/files/{file_id}", 404)
    conforming(alice.get(f"/v1/files/{file_id}/content"), "GET", f"/v1/files/{file_id}/content", 404)
    bad = alice.post("/v1/files", files={"file": ("t.jsonl", JSONL_OK)}, data={"purpose": "assistants"})
    conforming(bad, "POST", "/v1/files", 400)


def test_supervised_fine_tuning_job(alice: httpx.Client) -> None:
    file_id = alice.post("/v1/files", files={"file": ("t.jsonl", JSONL_OK)}, data={"purpose": "fine-tune"}).json()["id"]
    hyper = {"n_epochs": 1, "batch_size": 2, "learning_rate_multiplier": 2}
    body = {
        "model": "tiny-llm",
        "training_file": file_id,
        "method": {"type": "supervised", "supervised": {"hyperparameters": hyper}},
    }
    job = conforming(alice.post("/v1/fine_tuning/jobs", json=body), "POST", "/v1/fine_tuning/jobs")
    assert job["method"]["type"] == "supervised"
    job = wait_until_ended(alice, job["id"])
    assert job["status"] == "succeeded", job
    base = f"/v1/fine_tuning/jobs/{job['id']}"
    conforming(alice.get("/v1/fine_tuning/jobs", params={"limit": 2}), "GET", "/v1/fine_tuning/jobs")
    events = conforming(alice.get(f"{base}/events", params={"limit": 100}), "GET", f"{base}/events")
    assert events["data"]
    conforming(alice.get(f"{base}/checkpoints"), "GET", f"{base}/checkpoints")
    conforming(alice.post(f"{base}/cancel"), "POST", f"{base}/cancel", 409)
    conforming(alice.post(f"{base}/resume"), "POST", f"{base}/resume", 409)  # OpenAI's resume is of a paused job
    missing = "/v1/fine_tuning/jobs/ftjob-nope"
    for method, path in [("GET", missing), ("POST", f"{missing}/cancel"), ("GET", f"{missing}/events")]:
        conforming(alice.request(method, path), method, path, 404)
    conforming(
        alice.post("/v1/fine_tuning/jobs", json={**body, "model": "tiny-sd15"}), "POST", "/v1/fine_tuning/jobs", 400
    )


def test_image_fine_tuning_job_and_cancel(alice: httpx.Client) -> None:
    archive = make_zip({f"red{i}.png": image_bytes((230, 20 + i, 20), size=(64, 64)) for i in range(2)})
    upload = alice.post("/v1/files", files={"file": ("shots.zip", archive)}, data={"purpose": "fine-tune"})
    file_id = conforming(upload, "POST", "/v1/files")["id"]
    hyper = {"max_steps": 50, "rank": 2, "resolution": 64, "checkpoint_every_n_steps": 1}
    body = {
        "model": "tiny-sd15",
        "training_file": file_id,
        "method": {"type": "lora", "lora": {"hyperparameters": hyper}},
    }
    job = conforming(alice.post("/v1/fine_tuning/jobs", json=body), "POST", "/v1/fine_tuning/jobs")
    base = f"/v1/fine_tuning/jobs/{job['id']}"
    conforming(alice.post(f"{base}/cancel"), "POST", f"{base}/cancel")
    job = wait_until_ended(alice, job["id"])
    assert job["status"] == "cancelled", job
    conforming(alice.get(f"{base}/checkpoints"), "GET", f"{base}/checkpoints")
    conforming(alice.get(f"{base}/events"), "GET", f"{base}/events")


def test_images(alice: httpx.Client) -> None:
    body = {"model": "tiny-sd15", "prompt": "a lighthouse", "size": "64x64", "steps": 2}
    for response_format in ("b64_json", "url"):
        generated = alice.post("/v1/images/generations", json={**body, "response_format": response_format})
        conforming(generated, "POST", "/v1/images/generations")
    conforming(alice.post("/v1/images/generations", json={**body, "n": 0}), "POST", "/v1/images/generations", 400)
    edit = alice.post(
        "/v1/images/edits",
        files={"image": ("in.png", image_bytes((20, 90, 200), size=(64, 64)), "image/png")},
        data={"model": "tiny-sd15", "prompt": "a boat", "size": "64x64", "response_format": "b64_json"},
    )
    conforming(edit, "POST", "/v1/images/edits")
    missing = alice.post("/v1/images/edits", data={"model": "tiny-sd15", "prompt": "a boat"})
    conforming(missing, "POST", "/v1/images/edits", 400)


def test_errors_of_every_kind_use_openais_envelope(live: LiveServer, alice: httpx.Client) -> None:
    with live.client() as anonymous:
        conforming(anonymous.get("/v1/models"), "GET", "/v1/models", 401)
    with live.client("sk-not-a-key") as wrong:
        conforming(wrong.post("/v1/chat/completions", json=CHAT), "POST", "/v1/chat/completions", 401)
    conforming(alice.post("/v1/chat/completions", content=b"{not json"), "POST", "/v1/chat/completions", 400)
    # OpenAI endpoints genfoundry does not serve answer in OpenAI's envelope: 404, or 405 where the path is one of
    # ours for another method (/v1/images/{image_id} answers GET).
    conforming(alice.post("/v1/moderations", json={"input": "hello"}), "POST", "/v1/moderations", 404)
    conforming(alice.post("/v1/images/variations"), "POST", "/v1/images/variations", 405)
