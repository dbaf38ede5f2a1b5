"""Every artifact in S3: a real server (`GENFOUNDRY_STORAGE_URL=s3://…`) against an S3 protocol server (moto) on a
loopback port — dataset upload, LoRA training in a job process, generation with the adapter, the image's URL, SFT and
chat with a text adapter, deletion — and the store's faults: a missing bucket, an endpoint that does not answer."""

from __future__ import annotations

import io
import json
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from PIL import Image

from genfoundry.config import Settings
from genfoundry.errors import StorageUnavailable
from genfoundry.services import build_services
from tests.conftest import LiveServer, free_port, image_bytes, make_home, start_server
from tests.helpers import make_zip, run_cli, upload_zip, write_pairs
from tests.s3_server import S3_BUCKET, S3Server, running_s3

PREFIX = "artifacts"


@pytest.fixture(scope="module")
def s3_live(tmp_path_factory: pytest.TempPathFactory, tiny_dir: Path, s3: S3Server) -> Iterator[LiveServer]:
    home = make_home(tmp_path_factory.mktemp("s3"), tiny_dir)
    settings = Settings(
        home=home, port=free_port(), storage_url=f"s3://{S3_BUCKET}/{PREFIX}", storage_options=s3.options()
    )
    server = start_server(settings)
    yield server
    server.stop()


def wait_for_fine_tune(client: httpx.Client, job_id: str, timeout: float = 300) -> dict:
    deadline = time.monotonic() + timeout
    while True:
        job = client.get(f"/v1/fine_tuning/jobs/{job_id}").json()
        if job["status"] not in ("validating_files", "queued", "running") or time.monotonic() > deadline:
            return dict(job)
        time.sleep(0.5)


def test_dataset_lora_generation_and_deletion_live_in_s3(s3_live: LiveServer, s3: S3Server) -> None:
    with s3_live.client() as client:
        archive = make_zip({f"red{i}.png": image_bytes((230, 20 + i, 20), size=(64, 64)) for i in range(4)})
        dataset = upload_zip(client, archive, trigger_word="rdx").json()
        dataset_keys = s3.keys(S3_BUCKET, f"{PREFIX}/datasets/{dataset['id']}/")
        assert len([key for key in dataset_keys if "/images/img_" in key]) == 4, dataset_keys

        body = {
            "model": "tiny-sd15",
            "training_file": dataset["id"],
            "seed": 3,
            "method": {"type": "lora", "lora": {"hyperparameters": {"max_steps": 4, "rank": 4, "resolution": 64}}},
        }
        job = client.post("/v1/fine_tuning/jobs", json=body).json()
        job = wait_for_fine_tune(client, job["id"])  # trained in its own process, reading the dataset from S3
        assert job["status"] == "succeeded", job
        adapter = job["fine_tuned_model"]
        assert any(key.endswith(".safetensors") for key in s3.keys(S3_BUCKET, f"{PREFIX}/adapters/")), "no adapter"

        response = client.post(
            "/v1/images/generations",
            json={"model": adapter, "prompt": "a shoe", "size": "64x64", "response_format": "url"},
        )
        assert response.status_code == 200, response.text
        image = client.get(response.json()["data"][0]["url"])  # the signed URL, served from the S3 object
        assert image.status_code == 200
        assert Image.open(io.BytesIO(image.content)).size == (64, 64)
        assert s3.keys(S3_BUCKET, f"{PREFIX}/images/"), "the generated image is not in S3"
        local = s3_live.settings.home / "artifacts"
        assert not local.exists() or not any(p.is_file() for p in local.rglob("*")), "artifacts written locally"

        assert client.delete(f"/v1/models/{adapter}").status_code == 200
        assert not [key for key in s3.keys(S3_BUCKET, f"{PREFIX}/adapters/") if adapter.split(":")[-1] in key]
        assert client.delete(f"/v1/datasets/{dataset['id']}").status_code == 200
        assert s3.keys(S3_BUCKET, f"{PREFIX}/datasets/{dataset['id']}/") == []


def test_sft_adapter_in_s3_chats(s3_live: LiveServer, s3: S3Server, tmp_path: Path) -> None:
    data = write_pairs(tmp_path / "pairs.jsonl", 8).read_bytes()
    with s3_live.client() as client:
        uploaded = client.post("/v1/files", files={"file": ("t.jsonl", data)}, data={"purpose": "fine-tune"}).json()
        hyper = {"max_steps": 2, "batch_size": 4, "rank": 4, "learning_rate": 3e-3}
        method = {"type": "sft", "sft": {"hyperparameters": hyper}}
        body = {"model": "tiny-llm", "training_file": uploaded["id"], "seed": 1, "method": method}
        job = wait_for_fine_tune(client, client.post("/v1/fine_tuning/jobs", json=body).json()["id"])
        assert job["status"] == "succeeded", job
        assert any(key.endswith(".safetensors") for key in s3.keys(S3_BUCKET, f"{PREFIX}/adapters/")), "no adapter"
        reply = client.post(
            "/v1/chat/completions",
            json={"model": job["fine_tuned_model"], "messages": [{"role": "user", "content": "a"}], "max_tokens": 4},
        )
        assert reply.status_code == 200, reply.text
        assert reply.json()["choices"][0]["message"]["content"] is not None


def test_a_store_that_cannot_be_used_fails_at_start_naming_it(tmp_path: Path, tiny_dir: Path, s3: S3Server) -> None:
    missing = Settings(
        home=make_home(tmp_path / "a", tiny_dir), storage_url="s3://no-such-bucket/x", storage_options=s3.options()
    )
    with pytest.raises(StorageUnavailable, match="s3://no-such-bucket/x"):
        build_services(missing)
    closed = s3.options() | {"endpoint_url": f"http://127.0.0.1:{free_port()}"}
    down = Settings(home=make_home(tmp_path / "b", tiny_dir), storage_url=f"s3://{S3_BUCKET}/x", storage_options=closed)
    with pytest.raises(StorageUnavailable, match=f"s3://{S3_BUCKET}/x"):
        build_services(down)
    env = {"GENFOUNDRY_STORAGE_URL": "s3://no-such-bucket/x", "GENFOUNDRY_STORAGE_OPTIONS": json.dumps(s3.options())}
    result = run_cli(missing.home, "serve", "--port", str(free_port()), check=False, env=env)
    assert result.returncode == 1
    assert "s3://no-such-bucket/x" in result.stderr + result.stdout


def test_store_going_down_mid_job_fails_the_job_and_registers_nothing(
    tmp_path_factory: pytest.TempPathFactory, tiny_dir: Path
) -> None:
    with running_s3(free_port()) as s3:
        s3.client().create_bucket(Bucket=S3_BUCKET)
        home = make_home(tmp_path_factory.mktemp("s3-down"), tiny_dir)
        settings = Settings(
            home=home, port=free_port(), storage_url=f"s3://{S3_BUCKET}/{PREFIX}", storage_options=s3.options()
        )
        settings.jobs.max_attempts = 1
        live = start_server(settings)
        try:
            with live.client() as client:
                archive = make_zip({f"b{i}.png": image_bytes((20, 20, 230 - i), size=(64, 64)) for i in range(2)})
                dataset = upload_zip(client, archive, trigger_word="blx").json()
                hyper = {"max_steps": 400, "rank": 4, "resolution": 64, "checkpoint_every_n_steps": 2}
                body = {"model": "tiny-sd15", "training_file": dataset["id"], "method": lora(hyper)}
                job = client.post("/v1/fine_tuning/jobs", json=body).json()
                deadline = time.monotonic() + 300
                while not _has_checkpoint(client, job["id"]):  # training, and writing to S3
                    job = client.get(f"/v1/fine_tuning/jobs/{job['id']}").json()
                    assert job["status"] in ("validating_files", "queued", "running"), job["error"]
                    assert time.monotonic() < deadline, "no checkpoint"
                    time.sleep(0.2)
                s3.process.terminate()
                s3.process.wait(timeout=30)
                job = wait_for_fine_tune(client, job["id"])
                assert job["status"] == "failed", job
                assert f"artifact store s3://{S3_BUCKET}/{PREFIX} is not usable" in job["error"]["message"], job
                assert job["fine_tuned_model"] is None
                models = client.get("/v1/models").json()["data"]
                assert not [m for m in models if m["id"].startswith("ft:") and "step" not in m["id"]], models
                assert client.get("/healthz").status_code == 200
        finally:
            live.stop()


def lora(hyper: dict[str, object]) -> dict[str, object]:
    return {"type": "lora", "lora": {"hyperparameters": hyper}}


def _has_checkpoint(client: httpx.Client, job_id: str) -> bool:
    response = client.get(f"/v1/fine_tuning/jobs/{job_id}/checkpoints")
    return bool(response.status_code == 200 and response.json()["data"])
