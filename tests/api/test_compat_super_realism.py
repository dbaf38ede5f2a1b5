"""Seed 000 (super-realism) under /compat/super-realism, through the real server: its requests as its document
describes them (only the base URL changed), and what a hostile caller gets."""

from __future__ import annotations

import io

import httpx
from PIL import Image

from tests.conftest import LiveServer, LoraFiles, image_bytes
from tests.helpers import assert_error, make_zip, snapshot

PREFIX = "/compat/super-realism"


def test_generate_answers_a_png_from_the_configured_base_and_trigger_word(
    alice: httpx.Client, bob: httpx.Client
) -> None:
    response = alice.post(f"{PREFIX}/generate/", json={"prompt": "a portrait of an old fisherman"})
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == "image/png"
    assert Image.open(io.BytesIO(response.content)).size == (64, 64)  # compat.super_realism_size here
    generation_id = response.headers["x-generation-id"]
    # the same generation as /v1 makes: in the history (and the studio's gallery), the caller's own
    generation = alice.get(f"/v1/generations/{generation_id}").json()
    assert generation["model"] == "tiny-flux"
    assert generation["prompt"].startswith("Super Realism")
    assert "old fisherman" in generation["prompt"]
    assert_error(bob.get(f"/v1/generations/{generation_id}"), 404)


def test_trigger_word_already_in_the_prompt_is_not_repeated(alice: httpx.Client) -> None:
    response = alice.post(f"{PREFIX}/generate/", json={"prompt": "Super Realism, a red barn"})
    assert response.status_code == 200, response.text
    generation = alice.get(f"/v1/generations/{response.headers['x-generation-id']}").json()
    assert generation["revised_prompt"].lower().count("super realism") == 1


def test_classify_tells_image_requests_from_conversation(alice: httpx.Client) -> None:
    cases = {
        "draw a watercolor painting of a fox in the snow": "image request",
        "hi, how are you doing today?": "casual conversation",
    }
    for prompt, expected_class in cases.items():
        response = alice.post(f"{PREFIX}/classify/", json={"prompt": prompt})
        assert response.status_code == 200, response.text
        body = response.json()
        native = alice.post("/v1/classify", json={"input": prompt}).json()
        assert body["prompt"] == prompt
        assert body["label"] == native["data"][0]["label"]  # our router's answer, word for word
        expected = {"image": "image request", "chat": "casual conversation", "diagram": "diagram"}
        assert body["classification"] == expected[body["label"]] == expected_class
        assert body["is_image_request"] == (body["label"] == "image")
        assert abs(sum(body["scores"].values()) - 1) < 1e-4


def test_train_creates_the_dataset_and_starts_a_lora_job(alice: httpx.Client, bob: httpx.Client) -> None:
    archive = make_zip(
        {"a.png": image_bytes((200, 30, 30), (64, 64)), "b.png": image_bytes((30, 200, 30), (64, 64)), "b.txt": b"x"}
    )
    response = alice.post(
        f"{PREFIX}/train/",
        data={"prompt": "zqx style"},
        files={"file": ("dataset.zip", archive, "application/zip")},
    )
    assert response.status_code == 202, response.text
    started = response.json()
    assert started["message"] == "Training started"
    assert (started["trigger_word"], started["base_model"], started["images"]) == ("zqx style", "tiny-flux", 2)
    dataset = alice.get(f"/v1/datasets/{started['dataset_id']}").json()
    assert dataset["trigger_word"] == "zqx style"
    captions = {item["caption"] for item in alice.get(f"/v1/datasets/{started['dataset_id']}/items").json()["data"]}
    assert "zqx style, x" in captions  # the keywords lead every caption the ZIP brought
    job = alice.get(f"/v1/fine_tuning/jobs/{started['job_id']}").json()
    assert job["model"] == "tiny-flux"
    assert job["training_file"] == started["dataset_id"]
    assert job["status"] in ("queued", "running", "validating_files")
    assert_error(bob.get(f"/v1/datasets/{started['dataset_id']}"), 404)
    assert_error(bob.get(f"/v1/fine_tuning/jobs/{started['job_id']}"), 404)
    alice.post(f"/v1/fine_tuning/jobs/{started['job_id']}/cancel")  # the test needs no trained adapter


def test_bad_input_is_refused_and_changes_nothing(live: LiveServer, alice: httpx.Client) -> None:
    before = snapshot(live, alice)
    datasets = len(alice.get("/v1/datasets").json()["data"])
    assert_error(alice.post(f"{PREFIX}/generate/", json={}), 400, param="prompt")
    assert_error(alice.post(f"{PREFIX}/generate/", json={"prompt": 7}), 400, param="prompt")
    assert_error(alice.post(f"{PREFIX}/generate/", json={"prompt": ""}), 400, param="prompt")
    assert_error(alice.post(f"{PREFIX}/generate/", content=b"not json"), 400)
    assert_error(alice.post(f"{PREFIX}/classify/", json={"text": "hello"}), 400)
    assert_error(alice.post(f"{PREFIX}/classify/", json={"prompt": ["a", "b"]}), 400, param="prompt")
    assert_error(httpx.post(f"{live.url}{PREFIX}/generate/", json={"prompt": "x"}), 401)
    not_a_zip = {"file": ("dataset.zip", b"this is not a zip file at all", "application/zip")}
    assert_error(alice.post(f"{PREFIX}/train/", data={"prompt": "zq"}, files=not_a_zip), 422)
    no_images = {"file": ("dataset.zip", make_zip({"notes.txt": b"hello"}), "application/zip")}
    assert_error(alice.post(f"{PREFIX}/train/", data={"prompt": "zq"}, files=no_images), 422, param="file")
    assert_error(alice.post(f"{PREFIX}/train/", data={"prompt": "zq"}), 400, param="file")
    zip_ok = {"file": ("dataset.zip", make_zip({"a.png": image_bytes((1, 2, 3), (64, 64))}), "application/zip")}
    assert_error(alice.post(f"{PREFIX}/train/", files=zip_ok), 400, param="prompt")
    assert_error(alice.post(f"{PREFIX}/train/", data={"prompt": "   "}, files=zip_ok), 400, param="prompt")
    assert len(alice.get("/v1/datasets").json()["data"]) == datasets
    assert snapshot(live, alice) == before


def test_the_configured_adapter_applies_to_its_owner_and_is_a_404_for_others(
    live: LiveServer, alice: httpx.Client, bob: httpx.Client, lora_files: LoraFiles
) -> None:
    imported = alice.post(
        "/v1/models",
        files={"file": ("lora.safetensors", lora_files.flux.read_bytes(), "application/octet-stream")},
        data={"base": "tiny-flux", "name": "super realism", "trigger_word": "Super Realism"},
    )
    assert imported.status_code in (200, 201), imported.text
    adapter_id = imported.json()["id"]
    live.settings.compat.super_realism_adapter = adapter_id  # the server's own settings object
    try:
        response = alice.post(f"{PREFIX}/generate/", json={"prompt": "a quiet harbour"})
        assert response.status_code == 200, response.text
        generation = alice.get(f"/v1/generations/{response.headers['x-generation-id']}").json()
        assert [lora["id"] for lora in generation["params"]["loras"]] == [adapter_id]
        assert generation["revised_prompt"].count("Super Realism") == 1
        before = snapshot(live, bob)
        assert_error(bob.post(f"{PREFIX}/generate/", json={"prompt": "a quiet harbour"}), 404, param="loras")
        assert snapshot(live, bob) == before
    finally:
        live.settings.compat.super_realism_adapter = None
        alice.delete(f"/v1/models/{adapter_id}")
