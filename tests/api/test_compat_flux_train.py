"""flux-train (seed 001) under /compat/flux-train through the real server: the seed document's example requests with
only the base URL changed, then hostile input. Images come from the tests' image server (127.0.0.2)."""

from __future__ import annotations

import socket
import time
import tomllib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import torch
from safetensors.torch import save_file

from genfoundry.config import Settings
from tests.conftest import LiveServer, free_port, image_bytes, make_home, start_server
from tests.helpers import assert_error, make_zip, upload_zip, wait_for_job
from tests.single_file_export import write_flux_share

BASE = "/compat/flux-train"

# The seed document's examples as written (its /train example is missing commas; the fields and values are its own).
DOWNLOAD = {"urls": ["https://example.com/image1.png", "https://example.com/image2.jpg"], "output_name": "my_dataset"}
CAPTION = {"output_name": "my_dataset", "trigger_word": "photo", "prompt": "Describe the main subject of this image"}
CONFIG = {"output_name": "my_dataset", "trigger_word": "landscape", "num_repeats": 5, "resolution": 512}
TRAIN = {
    "output_name": "my_model",
    "max_train_epochs": 5,
    "learning_rate": 8e-4,
    "pretrained_model": "flux1-dev.sft",
    "clip_l": "clip_l.safetensors",
    "t5xxl": "t5xxl_fp16.safetensors",
    "ae": "ae.sft",
    "network_dim": 4,
    "save_every_n_epochs": 1,
    "enable_bucket": True,
    "full_bf16": False,
}


def download(client: httpx.Client, image_server: str, name: str) -> dict[str, Any]:
    urls = [f"{image_server}/red.png", f"{image_server}/blue.jpg"]
    response = client.post(f"{BASE}/download-images", json={"urls": urls, "output_name": name})
    assert response.status_code == 200, response.text
    return dict(response.json())


def wait_for_run(client: httpx.Client, run_id: str, timeout: float = 300) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        status = client.get(f"{BASE}/status/{run_id}").json()
        if status["status"] not in ("queued", "running"):
            return dict(status)
        time.sleep(0.2)
    raise AssertionError(f"run {run_id} did not finish")


def test_seed_examples_download_caption_config(alice: httpx.Client, bob: httpx.Client, image_server: str) -> None:
    # Verbatim: example.com is outside the allowed networks here, so each URL says why it was refused.
    response = alice.post(f"{BASE}/download-images", json=DOWNLOAD)
    assert response.status_code == 200, response.text
    body = response.json()
    assert set(body["files"]) == set(DOWNLOAD["urls"])
    assert all(value.startswith("error: ") for value in body["files"].values()), body
    assert body["message"] == "No image could be downloaded"

    # The same request against images this test serves: the failed dataset's name is free again.
    body = download(alice, image_server, "my_dataset")
    assert body["message"] == "Download complete"
    assert body["status_url"] == f"/v1/jobs/{body['job_id']}"
    for path in body["files"].values():
        assert path.startswith(f"/v1/datasets/{body['dataset_id']}/items/"), body
        image = alice.get(path)
        assert image.status_code == 200 and image.content
    assert bob.get(next(iter(body["files"].values()))).status_code == 404
    # The name is taken now: a second download under it is refused, naming the field.
    assert_error(alice.post(f"{BASE}/download-images", json=DOWNLOAD), 409, param="output_name")

    response = alice.post(f"{BASE}/caption-images", json=CAPTION)
    assert response.status_code == 200, response.text
    captions = response.json()
    assert captions["message"] == "Captions generated and saved"
    assert len(captions["captions"]) == 2
    for file, caption in captions["captions"].items():
        assert file.endswith((".jpg", ".png"))
        assert caption.startswith("photo, ") and len(caption) > len("photo, ")
    items = alice.get(f"/v1/datasets/{body['dataset_id']}/items").json()["data"]
    assert {item["caption"] for item in items} == set(captions["captions"].values())  # the same dataset, native

    response = alice.post(f"{BASE}/create-dataset-config", json=CONFIG)
    assert response.status_code == 200, response.text
    config = response.json()
    assert config["message"] == "Dataset config created"
    toml = tomllib.loads(config["config"])
    assert toml["datasets"][0]["resolution"] == 512
    assert toml["datasets"][0]["batch_size"] == 1
    assert toml["datasets"][0]["subsets"][0]["num_repeats"] == 5
    assert toml["datasets"][0]["subsets"][0]["class_tokens"] == "landscape"
    fetched = alice.get(config["path"])  # `path` answers the same TOML through /v1
    assert fetched.status_code == 200 and fetched.text == config["config"]
    assert bob.get(config["path"]).status_code == 404

    # Another user's names are unknown names.
    assert_error(bob.post(f"{BASE}/caption-images", json=CAPTION), 404, param="output_name")
    assert_error(bob.post(f"{BASE}/create-dataset-config", json=CONFIG), 404, param="output_name")
    assert_error(bob.post(f"{BASE}/train", json={"output_name": "my_dataset"}), 404, param="output_name")


def test_seed_example_train_and_status(alice: httpx.Client, bob: httpx.Client, image_server: str) -> None:
    download(alice, image_server, "my_model")
    captioned = alice.post(f"{BASE}/caption-images", json={"output_name": "my_model", "trigger_word": "mdl"})
    assert captioned.status_code == 200, captioned.text
    # Verbatim: the share's files need a models folder (GENFOUNDRY_MODELS_DIR), which this server has none of
    # (test_seed_example_trains_from_the_share runs the same request on a server that has one).
    error = assert_error(alice.post(f"{BASE}/train", json=TRAIN), 400, param="pretrained_model")
    assert "GENFOUNDRY_MODELS_DIR" in error["message"]
    # A catalog base brings its own encoders and VAE, so clip_l / t5xxl / ae are refused with it, not ignored.
    catalog = {**TRAIN, "pretrained_model": "tiny-flux"}
    assert_error(alice.post(f"{BASE}/train", json=catalog), 400, param="clip_l")

    # The example on the tiny FLUX base, at 64 px and 2 epochs instead of the base's default side and 5 epochs.
    body = {k: v for k, v in catalog.items() if k not in ("clip_l", "t5xxl", "ae")}
    body |= {"resolution": 64, "max_train_epochs": 2}
    response = alice.post(f"{BASE}/train", json=body)
    assert response.status_code == 200, response.text
    started = response.json()
    assert started["message"] == "Training started"
    run_id = started["run_id"]
    native = alice.get(f"/v1/fine_tuning/jobs/{run_id}").json()  # a native job, the mapping applied
    hyper = native["method"]["lora"]["hyperparameters"] if "lora" in native["method"] else native["hyperparameters"]
    assert native["model"] == "tiny-flux"
    assert native["user_provided_suffix"] == "my_model"
    flat = str(hyper)
    for name in ("rank", "save_every_n_epochs", "bucketing", "learning_rate"):
        assert name in flat, (name, hyper)

    assert_error(bob.get(f"{BASE}/status/{run_id}"), 404)
    final = wait_for_run(alice, run_id)
    assert final["status"] == "succeeded", final["error"]
    assert final["fine_tuned_model"]
    assert 0 < len(final["logs"]) <= 10
    assert final["progress"]["step"] == final["progress"]["total"] > 0
    checkpoints = alice.get(f"/v1/fine_tuning/jobs/{run_id}/checkpoints").json()["data"]
    assert len(checkpoints) >= 2  # save_every_n_epochs=1 over 2 epochs


def test_bad_requests(alice: httpx.Client, image_server: str) -> None:
    for path in ("download-images", "caption-images", "create-dataset-config", "train"):
        assert "output_name" in assert_error(alice.post(f"{BASE}/{path}", json={}), 400)["message"]
    assert_error(alice.post(f"{BASE}/download-images", json={"output_name": "x"}), 400, param="urls")
    assert_error(alice.post(f"{BASE}/download-images", json={"output_name": "x", "urls": []}), 400, param="urls")
    assert_error(alice.post(f"{BASE}/download-images", json={"output_name": "x", "urls": "http://a"}), 400)
    assert_error(alice.post(f"{BASE}/download-images", json={"output_name": 5, "urls": ["http://a"]}), 400)
    assert_error(alice.post(f"{BASE}/caption-images", json={"output_name": "nope"}), 404, param="output_name")
    assert_error(alice.post(f"{BASE}/create-dataset-config", json={"output_name": "nope"}), 404, param="output_name")
    assert_error(alice.post(f"{BASE}/train", json={"output_name": "nope"}), 404, param="output_name")
    assert_error(alice.get(f"{BASE}/status/ftjob_nope"), 404)

    download(alice, image_server, "hostile")
    train = {"output_name": "hostile", "resolution": 64}
    for field, value in [
        ("network_dim", 0),
        ("network_dim", 100_000),
        ("max_train_epochs", 10**6),
        ("max_train_epochs", "five"),
        ("learning_rate", -1),
        ("enable_bucket", "sometimes"),
        ("save_every_n_epochs", 0),
    ]:
        assert_error(alice.post(f"{BASE}/train", json={**train, field: value}), 400, param=field)
    for field in ("pretrained_model", "clip_l", "t5xxl", "ae"):
        for value, words in [("../flux1-dev.sft", ".."), ("a/../../b.sft", ".."), ("/etc/passwd", "absolute")]:
            error = assert_error(alice.post(f"{BASE}/train", json={**train, field: value}), 400, param=field)
            assert words in error["message"], error
    config = {"output_name": "hostile", "resolution": 100}
    assert_error(alice.post(f"{BASE}/create-dataset-config", json=config), 400, param="resolution")
    assert_error(alice.post(f"{BASE}/create-dataset-config", json={**config, "resolution": "big"}), 400)


def test_private_urls_are_refused_without_contact(alice: httpx.Client) -> None:
    with socket.socket() as listener:  # a loopback service that must never see a connection
        listener.bind(("127.0.0.1", 0))
        listener.listen()
        listener.setblocking(False)
        port = listener.getsockname()[1]
        urls = [f"http://127.0.0.1:{port}/x.png", f"http://localhost:{port}/y.png", "http://10.0.0.1/z.png"]
        urls.append("http://169.254.169.254/latest/meta-data")
        response = alice.post(f"{BASE}/download-images", json={"urls": urls, "output_name": "private"})
        assert response.status_code == 200, response.text
        files = response.json()["files"]
        assert set(files) == set(urls)
        assert all(value.startswith("error: ") for value in files.values()), files
        try:
            listener.accept()
            raise AssertionError("the loopback service was contacted")
        except BlockingIOError:
            pass


def test_long_url_list_answers_the_job(alice: httpx.Client, image_server: str) -> None:
    urls = [f"{image_server}/red.png"] + [
        f"{image_server}/missing-{i}.png" for i in range(20)
    ]  # past the 20 waited for
    response = alice.post(f"{BASE}/download-images", json={"urls": urls, "output_name": "many"})
    assert response.status_code == 202, response.text
    body = response.json()
    assert body["files"] == {} and body["status_url"] == f"/v1/jobs/{body['job_id']}"
    job = wait_for_job(alice, body["job_id"])
    assert job["status"] == "succeeded", job
    assert alice.get(f"/v1/datasets/{body['dataset_id']}").json()["stats"]["accepted"] == 1


@pytest.fixture(scope="module")
def share_server(tmp_path_factory: pytest.TempPathFactory, tiny_dir: Path) -> Iterator[LiveServer]:
    """A keyless loopback server whose models folder is seed 001's share (flux1-dev.sft, ae.sft, clip_l,
    t5xxl_fp16 written from the tiny FLUX), plus a symlink from it to a checkpoint outside it."""
    base = tmp_path_factory.mktemp("flux-share")
    share = base / "share"
    write_flux_share(tiny_dir / "flux", share)
    save_file({"x": torch.zeros(1)}, str(base / "outside.sft"))
    (share / "escape.sft").symlink_to(base / "outside.sft")
    settings = Settings(home=make_home(base, tiny_dir), port=free_port(), models_dir=share)
    server = start_server(settings)
    yield server
    server.stop()


def test_seed_example_trains_from_the_share(share_server: LiveServer) -> None:
    with share_server.client() as client:
        archive = make_zip({f"m{i}.png": image_bytes((20, 30 + i, 220), size=(64, 64)) for i in range(2)})
        uploaded = upload_zip(client, archive, name="my_model", trigger_word="mdl")
        assert uploaded.status_code == 201, uploaded.text
        # The seed's /train example with its file names, at 64 px and 2 epochs instead of 1024 px and 5.
        body = {**TRAIN, "resolution": 64, "max_train_epochs": 2}
        for field, value in [("pretrained_model", "escape.sft"), ("clip_l", "escape.sft")]:
            error = assert_error(client.post(f"{BASE}/train", json={**body, field: value}), 400, param=field)
            assert "outside the models folder" in error["message"], error
        assert_error(client.post(f"{BASE}/train", json={**body, "t5xxl": "t5xxl_fp8.safetensors"}), 404, param="t5xxl")

        response = client.post(f"{BASE}/train", json=body)
        assert response.status_code == 200, response.text
        assert response.json()["message"] == "Training started"
        run_id = response.json()["run_id"]
        native = client.get(f"/v1/fine_tuning/jobs/{run_id}").json()
        assert native["model"] == "tiny-flux"  # the configured FLUX base whose configs the files are read with
        final = wait_for_run(client, run_id)
        assert final["status"] == "succeeded", final
        assert any("flux1-dev.sft" in line for line in client_logs(client, run_id)), final
        tuned = final["fine_tuned_model"]
        generated = client.post(
            "/v1/images/generations", json={"model": tuned, "prompt": "a cup", "size": "64x64", "n": 1}
        )
        assert generated.status_code == 200, generated.text


def client_logs(client: httpx.Client, run_id: str) -> list[str]:
    events = client.get(f"/v1/fine_tuning/jobs/{run_id}/events", params={"limit": 100}).json()["data"]
    return [event["message"] for event in events]
