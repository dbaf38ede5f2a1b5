"""The whole text loop through the real server: JSONL upload via /v1/files -> SFT job (its own process) ->
adapter -> chat completion with it; and the bad inputs of the SFT path."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.conftest import Keys, LiveServer
from tests.helpers import assert_error


def upload_jsonl(client: httpx.Client, content: bytes, name: str = "train.jsonl") -> httpx.Response:
    return client.post("/v1/files", files={"file": (name, content)}, data={"purpose": "fine-tune"})


def sft_body(file_id: str, model: str = "tiny-llm", **hyper: Any) -> dict[str, Any]:
    hyperparameters = {"max_steps": 3, "batch_size": 4, "rank": 4, "learning_rate": 3e-3, **hyper}
    return {
        "model": model,
        "training_file": file_id,
        "seed": 1,
        "method": {"type": "sft", "sft": {"hyperparameters": hyperparameters}},
    }


@pytest.fixture(scope="module")
def file_id(
    live: LiveServer, keys: Keys, make_pairs: Callable[..., Path], tmp_path_factory: pytest.TempPathFactory
) -> str:
    data = make_pairs(tmp_path_factory.mktemp("api") / "pairs.jsonl", 12).read_bytes()
    with live.client(keys.alice) as alice:
        response = upload_jsonl(alice, data)
    assert response.status_code in (200, 201), response.text
    return str(response.json()["id"])


def test_a_line_without_completion_is_refused_at_upload(alice: httpx.Client) -> None:
    lines = [json.dumps({"prompt": "a", "completion": "@startuml\nA -> B\n@enduml"}), json.dumps({"prompt": "b"})]
    error = assert_error(upload_jsonl(alice, ("\n".join(lines) + "\n").encode()), 422, param="file")
    assert "line 2" in error["message"] and "completion" in error["message"]
    assert error["details"]["errors"] == [{"line": 2, "message": "missing 'completion'"}]


def test_jsonl_to_adapter_to_chat(live: LiveServer, alice: httpx.Client, file_id: str) -> None:
    response = alice.post(
        "/v1/fine_tuning/jobs", json=sft_body(file_id, validation_fraction=0.25, checkpoint_every_n_steps=2)
    )
    assert response.status_code == 200, response.text
    job = response.json()
    assert job["method"]["type"] == job["method"]["id"] == "supervised" and job["model"] == "tiny-llm"
    deadline = time.monotonic() + 300
    while job["status"] in ("validating_files", "queued", "running") and time.monotonic() < deadline:
        time.sleep(0.5)
        job = alice.get(f"/v1/fine_tuning/jobs/{job['id']}").json()
    assert job["status"] == "succeeded", job
    adapter_id = job["fine_tuned_model"]
    events = alice.get(f"/v1/fine_tuning/jobs/{job['id']}/events", params={"limit": 1000}).json()["data"]
    metrics = [e["data"] for e in events if e["type"] == "metrics"]
    assert metrics and "eval_loss" in metrics[-1] and "token_accuracy" in metrics[-1]
    checkpoints = alice.get(f"/v1/fine_tuning/jobs/{job['id']}/checkpoints").json()["data"]
    assert [c["step_number"] for c in checkpoints] == [2]
    assert checkpoints[0]["fine_tuned_model_checkpoint"].startswith("ft-tiny-llm-step-2-")
    measured = checkpoints[0]["metrics"]  # OpenAI's checkpoint metric names, the validation split's included
    assert set(measured) == {"step", "train_loss", "valid_loss", "valid_mean_token_accuracy"}, measured
    assert measured["valid_loss"] > 0 and 0 <= measured["valid_mean_token_accuracy"] <= 1
    answer = alice.post(
        "/v1/chat/completions",
        json={"model": adapter_id, "messages": [{"role": "user", "content": "A user logs in"}], "max_tokens": 8},
    )
    assert answer.status_code == 200, answer.text
    assert answer.json()["model"] == adapter_id and answer.json()["usage"]["completion_tokens"] >= 1


@pytest.mark.parametrize(
    ("model", "hyper", "status", "param"),
    [
        ("tiny-sd15", {}, 400, "model"),
        ("no-such-llm", {}, 404, "model"),
        ("tiny-llm", {"rank": 0}, 400, "rank"),
        ("tiny-llm", {"quantization": "2bit"}, 400, "quantization"),
    ],
)
def test_bad_sft_requests(
    alice: httpx.Client, file_id: str, model: str, hyper: dict[str, Any], status: int, param: str
) -> None:
    response = alice.post("/v1/fine_tuning/jobs", json=sft_body(file_id, model=model, **hyper))
    assert_error(response, status, param=param)


def test_unknown_hyperparameter_names_the_field(alice: httpx.Client, file_id: str) -> None:
    response = alice.post("/v1/fine_tuning/jobs", json=sft_body(file_id, learning_rat=1e-4))
    error = assert_error(response, 400)
    assert "learning_rat" in (error["param"] or "") + error["message"]
