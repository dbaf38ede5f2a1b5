"""Seed 004 (the DreamBooth TFG) under /compat/dreambooth, through the real server: its curl example (only the base
URL changed) answers an image; its "custom model management" lists and deletes the caller's own image models."""

from __future__ import annotations

import io

import httpx
from PIL import Image

from tests.conftest import LiveServer, LoraFiles
from tests.helpers import assert_error, snapshot

PREFIX = "/compat/dreambooth"


def test_the_documented_curl_answers_an_image(alice: httpx.Client) -> None:
    # curl -X POST "http://localhost:8000/generate" -H "Content-Type: application/json" -d '{"prompt": "..."}'
    response = alice.post(
        f"{PREFIX}/generate",
        headers={"Content-Type": "application/json"},
        content=b'{"prompt": "un perro golden retriever en la playa"}',
    )
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == "image/png"
    assert Image.open(io.BytesIO(response.content)).format == "PNG"
    generation = alice.get(f"/v1/generations/{response.headers['x-generation-id']}").json()
    assert (generation["model"], generation["prompt"]) == ("tiny-sd15", "un perro golden retriever en la playa")


def test_custom_models_are_listed_used_and_deleted_by_their_owner_only(
    alice: httpx.Client, bob: httpx.Client, lora_files: LoraFiles
) -> None:
    imported = alice.post(
        "/v1/models",
        files={"file": ("lora.safetensors", lora_files.sd15_a.read_bytes(), "application/octet-stream")},
        data={"base": "tiny-sd15", "name": "golden retriever", "trigger_word": "sks"},
    )
    assert imported.status_code in (200, 201), imported.text
    model_id = imported.json()["id"]

    listed = alice.get(f"{PREFIX}/models").json()["data"]
    assert model_id in {model["id"] for model in listed}
    assert not {"tiny-sd15", "tiny-llm", "router-default"} & {model["id"] for model in listed}  # own image models
    assert model_id not in {model["id"] for model in bob.get(f"{PREFIX}/models").json()["data"]}

    response = alice.post(f"{PREFIX}/generate", json={"prompt": "a dog on the beach", "model": model_id})
    assert response.status_code == 200, response.text
    generation = alice.get(f"/v1/generations/{response.headers['x-generation-id']}").json()
    assert generation["model"] == model_id
    assert generation["revised_prompt"].startswith("sks")

    assert_error(bob.post(f"{PREFIX}/generate", json={"prompt": "a dog", "model": model_id}), 404, param="model")
    assert_error(bob.delete(f"{PREFIX}/models/{model_id}"), 404)
    assert alice.get(f"/v1/models/{model_id}").status_code == 200  # bob changed nothing

    deleted = alice.delete(f"{PREFIX}/models/{model_id}")
    assert deleted.status_code == 200, deleted.text
    assert deleted.json()["id"] == model_id
    assert model_id not in {model["id"] for model in alice.get(f"{PREFIX}/models").json()["data"]}
    assert_error(alice.get(f"/v1/models/{model_id}"), 404)
    assert_error(alice.delete(f"{PREFIX}/models/{model_id}"), 404)


def test_bad_input_is_refused_and_changes_nothing(live: LiveServer, alice: httpx.Client) -> None:
    before = snapshot(live, alice)
    assert_error(alice.post(f"{PREFIX}/generate", json={}), 400, param="prompt")
    assert_error(alice.post(f"{PREFIX}/generate", json={"prompt": None}), 400, param="prompt")
    assert_error(alice.post(f"{PREFIX}/generate", json={"prompt": {"a": 1}}), 400, param="prompt")
    assert_error(alice.post(f"{PREFIX}/generate", json={"prompt": "x", "model": "no-such-model"}), 404, param="model")
    assert_error(alice.post(f"{PREFIX}/generate", json={"prompt": "x", "model": "tiny-llm"}), 400, param="model")
    assert_error(alice.post(f"{PREFIX}/generate", content=b'{"prompt": '), 400)
    assert_error(alice.delete(f"{PREFIX}/models/tiny-sd15"), 400)  # a catalog base is not a custom model
    assert_error(alice.delete(f"{PREFIX}/models/router-default"), 404)
    assert_error(alice.delete(f"{PREFIX}/models/{'x' * 500}"), 404)
    assert_error(httpx.post(f"{live.url}{PREFIX}/generate", json={"prompt": "x"}), 401)
    assert_error(httpx.get(f"{live.url}{PREFIX}/models"), 401)
    assert snapshot(live, alice) == before
