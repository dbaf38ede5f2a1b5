"""Honest availability through the real server: bases whose weights are not on this machine say so in /v1/models
and /readyz, with the command that fetches them and their size; a model that is not cached, asked for while the
Hub does not answer, fails at once with a message naming it and that command (not after minutes of retries)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from huggingface_hub import constants

from genfoundry.config import RouterSettings, Settings
from tests.conftest import LoraFiles, free_port, image_bytes, make_home, start_server
from tests.helpers import assert_error, make_zip, upload_zip, wait_for_job
from tests.openai_schema import assert_matches_openai

SD15_FETCH = "hf download stable-diffusion-v1-5/stable-diffusion-v1-5"


@pytest.fixture
def empty_hf_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """An empty Hugging Face cache for the server (in this process) and the job processes it starts."""
    cache = tmp_path / "hf-cache"
    cache.mkdir()
    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(cache))
    monkeypatch.setenv("HF_HUB_CACHE", str(cache))
    return cache


@pytest.fixture
def unreachable_hub(monkeypatch: pytest.MonkeyPatch, empty_hf_cache: Path) -> Iterator[str]:
    """The Hub's endpoint is a loopback port nothing listens on, and offline mode is off, as on a machine whose
    network is down: only the quick probe stands between a load and huggingface_hub's retries."""
    endpoint = f"http://127.0.0.1:{free_port()}"
    monkeypatch.setenv("HF_ENDPOINT", endpoint)
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", False)
    yield endpoint


def test_uncached_bases_are_unavailable_with_their_fetch_command_and_size(
    alice: httpx.Client, lora_files: LoraFiles, empty_hf_cache: Path
) -> None:
    response = alice.get("/v1/models")
    assert_matches_openai(response.json(), "GET", "/v1/models")
    by_id = {model["id"]: model for model in response.json()["data"]}
    sd15 = by_id["stable-diffusion-v1-5"]
    assert (sd15["available"], sd15["fetch_command"], sd15["size_gb"]) == (False, SD15_FETCH, 4.3)
    qwen = by_id["qwen2.5-0.5b-instruct"]
    assert (qwen["available"], qwen["fetch_command"]) == (False, "hf download Qwen/Qwen2.5-0.5B-Instruct")
    assert by_id["tiny-sd15"]["available"] is True and by_id["tiny-sd15"]["fetch_command"] is None
    assert by_id["auto"]["available"] is True and by_id["router-default"]["available"] is True
    assert alice.get("/v1/models/stable-diffusion-v1-5").json()["available"] is False

    images = {m["id"]: m for m in alice.get("/v1/models", params={"capability": "images"}).json()["data"]}
    assert images["stable-diffusion-v1-5"]["available"] is False and images["mini-sd15"]["available"] is True

    upload = alice.post(
        "/v1/models",
        files={"file": ("lora.safetensors", lora_files.sd15_a.read_bytes(), "application/octet-stream")},
        data={"base": "tiny-sd15", "name": "on a base that is here"},
    )
    assert upload.status_code == 201, upload.text
    adapter_id = upload.json()["id"]
    listed = {m["id"]: m for m in alice.get("/v1/models").json()["data"]}
    assert listed[adapter_id]["available"] is True
    assert alice.get(f"/v1/models/{adapter_id}").json()["available"] is True
    assert alice.delete(f"/v1/models/{adapter_id}").status_code == 200


def test_readyz_lists_usable_and_missing_bases_and_the_defaults(alice: httpx.Client, empty_hf_cache: Path) -> None:
    ready = alice.get("/readyz").json()
    assert ready["status"] == "ready"
    assert {"tiny-sd15", "mini-sd15", "tiny-llm"} <= set(ready["models"])
    missing = {item["id"]: item for item in ready["unavailable"]}
    assert missing["stable-diffusion-v1-5"] == {
        "id": "stable-diffusion-v1-5",
        "fetch_command": SD15_FETCH,
        "size_gb": 4.3,
    }
    assert not set(missing) & set(ready["models"])
    # The server started without a real base in its cache, so its defaults are the shipped models it has.
    defaults = ready["defaults"]
    assert defaults["image_model"] == "mini-sd15" and defaults["router"] == "router-default"
    assert defaults["text_model"] in ready["models"] and defaults["text_model"] in ("mini-llm", "tiny-llm")
    assert defaults["captioner"] in ("mini-captioner", "tiny-captioner")


def test_an_uncached_image_base_fails_at_once_when_the_hub_does_not_answer(
    alice: httpx.Client, unreachable_hub: str
) -> None:
    body = {"model": "stable-diffusion-v1-5", "prompt": "a red circle", "size": "64x64", "steps": 2}
    error = assert_error(alice.post("/v1/images/generations", json=body), 503)
    message = error["message"]
    assert "stable-diffusion-v1-5" in message and SD15_FETCH in message
    assert f"Hugging Face Hub ({unreachable_hub}) did not answer" in message
    assert alice.get("/healthz").status_code == 200


def test_a_caption_job_with_an_uncached_captioner_fails_at_once_when_the_hub_does_not_answer(
    alice: httpx.Client, unreachable_hub: str
) -> None:
    dataset = upload_zip(alice, make_zip({"a.png": image_bytes((200, 30, 30))})).json()
    started = alice.post(f"/v1/datasets/{dataset['id']}/caption", json={"model": "florence-2-base"})
    assert started.status_code == 202, started.text
    job = wait_for_job(alice, started.json()["id"], timeout=300)  # a job process on a busy CPU starts slowly
    assert job["status"] == "failed", job
    message = job["error"]
    assert "florence-2-base" in message and "hf download florence-community/Florence-2-base" in message
    assert f"Hugging Face Hub ({unreachable_hub}) did not answer" in message
    assert alice.get(f"/v1/datasets/{dataset['id']}").json()["status"] == "ready"  # the dataset is usable again


def test_the_server_logs_the_default_models_it_picked_at_start_up(
    tmp_path: Path, tiny_dir: Path, caplog: pytest.LogCaptureFixture
) -> None:
    settings = Settings(home=make_home(tmp_path, tiny_dir), port=free_port(), router=RouterSettings(preload=False))
    with caplog.at_level("INFO", logger="genfoundry"):
        server = start_server(settings)
    server.stop()
    [line] = [record.message for record in caplog.records if record.message.startswith("default models:")]
    assert "image model mini-sd15 (on this machine)" in line, line
    assert "captioner " in line and "text model for model=auto " in line and "router router-default" in line


def test_model_ids_with_path_characters_are_unknown_models(alice: httpx.Client, unreachable_hub: str) -> None:
    for model_id in ("../../etc/passwd", "/tmp/x", "org/../../repo", "~/models/x"):
        body = {"model": model_id, "prompt": "a red circle", "size": "64x64", "steps": 2}
        assert_error(alice.post("/v1/images/generations", json=body), 404, param="model")
        caption = alice.post("/v1/datasets/ds_nope/caption", json={"model": model_id})
        assert caption.status_code == 404, caption.text
    assert alice.get("/readyz").json()["status"] == "ready"
