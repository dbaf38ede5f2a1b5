"""Two `genfoundry serve` processes on one PostgreSQL database and one S3 store (moto), as replicas behind a load
balancer run: a job created on one runs once and streams from the other, an adapter imported on one serves on the
other, a URL signed by one opens on the other, a key revoked on one (or whose user is deleted) is refused by the other
at once."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
from sqlalchemy import delete

from genfoundry.config import Settings
from genfoundry.db.tables import User
from genfoundry.repo import jobs as jobs_repo
from genfoundry.repo import users as users_repo
from genfoundry.services.local import open_database
from tests.conftest import LoraFiles, free_port, image_bytes, make_home
from tests.helpers import make_zip, upload_zip
from tests.s3_server import S3_BUCKET, S3Server


@dataclass
class Replicas:
    urls: tuple[str, str]
    settings: Settings  # what both share (database, store); each has its own home
    admin: str
    user: str

    def client(self, index: int, key: str | None = None) -> httpx.Client:
        return httpx.Client(
            base_url=self.urls[index], headers={"Authorization": f"Bearer {key or self.user}"}, timeout=120
        )


def _serve(home: Path, port: int, env: dict[str, str]) -> subprocess.Popen[bytes]:
    with (home / "serve.log").open("wb") as log:
        return subprocess.Popen(
            [str(Path(sys.executable).parent / "genfoundry"), "serve", "--port", str(port), "--log-level", "warning"],
            env={**os.environ, "GENFOUNDRY_HOME": str(home), **env},
            stdout=log,
            stderr=subprocess.STDOUT,
        )


def _wait_ready(url: str, process: subprocess.Popen[bytes], log: Path) -> None:
    deadline = time.monotonic() + 240
    while True:
        try:
            if httpx.get(f"{url}/healthz", timeout=5).status_code == 200:
                return
        except httpx.TransportError:
            pass
        if process.poll() is not None or time.monotonic() > deadline:
            raise RuntimeError(f"replica at {url} did not start: {log.read_text()[-3000:]}")
        time.sleep(0.2)


@pytest.fixture(scope="module")
def replicas(
    postgres_url: str, s3: S3Server, tmp_path_factory: pytest.TempPathFactory, tiny_dir: Path
) -> Iterator[Replicas]:
    shared = {
        "GENFOUNDRY_DATABASE_URL": postgres_url,
        "GENFOUNDRY_STORAGE_URL": f"s3://{S3_BUCKET}/artifacts",
        "GENFOUNDRY_STORAGE_OPTIONS": json.dumps(s3.options()),
        "GENFOUNDRY_URL_SECRET": "replicas-share-this-signing-secret",
    }
    homes = [make_home(tmp_path_factory.mktemp(f"replica{i}"), tiny_dir) for i in range(2)]
    settings = Settings(home=homes[0], database_url=postgres_url)
    with open_database(settings) as session:  # migrates the shared database before either replica starts
        admin = users_repo.create_key(session=session, name="ops", is_admin=True).key
        user = users_repo.create_key(session=session, name="carol").key
        session.commit()
    ports = [free_port()]
    while len(ports) < 2:  # two calls may return the same free port, and one replica would not bind
        ports += [port for port in [free_port()] if port not in ports]
    processes = [_serve(home, port, shared) for home, port in zip(homes, ports, strict=True)]
    try:
        urls = (f"http://127.0.0.1:{ports[0]}", f"http://127.0.0.1:{ports[1]}")
        for url, process, home in zip(urls, processes, homes, strict=True):
            _wait_ready(url, process, home / "serve.log")
        yield Replicas(urls=urls, settings=settings, admin=admin, user=user)
    finally:
        for process in processes:
            process.terminate()
        for process in processes:
            process.wait(timeout=60)


def test_a_job_created_on_one_runs_once_and_streams_from_the_other(replicas: Replicas) -> None:
    with replicas.client(0) as one, replicas.client(1) as other:
        archive = make_zip({f"g{i}.png": image_bytes((20, 200 + i, 20), size=(64, 64)) for i in range(3)})
        dataset = upload_zip(one, archive, trigger_word="grn").json()
        hyper = {"max_steps": 4, "rank": 4, "resolution": 64}
        body = {"model": "tiny-sd15", "training_file": dataset["id"], "seed": 1, "method": lora(hyper)}
        job_id = one.post("/v1/fine_tuning/jobs", json=body).json()["id"]

        kinds = []
        with other.stream("GET", f"/v1/fine_tuning/jobs/{job_id}/events", params={"stream": "true"}) as events:
            assert events.status_code == 200
            for line in events.iter_lines():
                if line == "data: [DONE]":
                    break
                if line.startswith("data: "):
                    kinds.append(json.loads(line.removeprefix("data: "))["data"]["kind"])
        assert "metrics" in kinds, kinds
        job = other.get(f"/v1/fine_tuning/jobs/{job_id}").json()
        assert job["status"] == "succeeded", job
        with open_database(replicas.settings) as session:
            row = jobs_repo.get_job(session=session, job_id=job_id)
            assert row is not None and row.attempts == 1  # claimed by one replica, never by both

        made = other.post(
            "/v1/images/generations",
            json={"model": job["fine_tuned_model"], "prompt": "a leaf", "size": "64x64", "response_format": "url"},
        )
        assert made.status_code == 200, made.text
        image = one.get(made.json()["data"][0]["url"])  # signed by the other replica, read from the shared store
        assert image.status_code == 200 and image.headers["content-type"] == "image/png"


def test_an_adapter_imported_on_one_serves_on_the_other(replicas: Replicas, lora_files: LoraFiles) -> None:
    with replicas.client(0) as one, replicas.client(1) as other:
        imported = one.post(
            "/v1/models",
            files={"file": ("a.safetensors", lora_files.sd15_a.read_bytes())},
            data={"base": "tiny-sd15", "name": "imported-on-one"},
        )
        assert imported.status_code == 201, imported.text
        made = other.post(
            "/v1/images/generations",
            json={"model": imported.json()["id"], "prompt": "a cat", "size": "64x64", "steps": 2},
        )
        assert made.status_code == 200, made.text


def test_a_key_revoked_on_one_is_refused_by_the_other_at_once(replicas: Replicas) -> None:
    with replicas.client(0, replicas.admin) as admin_one:
        created = admin_one.post("/v1/keys", json={"name": "dave"}).json()
        with replicas.client(1, created["key"]) as dave_other:
            assert dave_other.get("/v1/models").status_code == 200
            assert admin_one.post(f"/v1/keys/{created['id']}/revoke").status_code == 200
            assert dave_other.get("/v1/models").status_code == 401


def test_a_user_deleted_in_the_database_is_refused_by_both_at_once(replicas: Replicas) -> None:
    with open_database(replicas.settings) as session:
        erin = users_repo.create_key(session=session, name="erin")
        session.commit()
    with replicas.client(0, erin.key) as one, replicas.client(1, erin.key) as other, replicas.client(1) as carol:
        assert one.get("/v1/models").status_code == 200
        assert other.get("/v1/models").status_code == 200
        with open_database(replicas.settings) as session:
            session.execute(delete(User).where(User.id == erin.record.user_id))  # its keys go with it (cascade)
            session.commit()
        assert one.get("/v1/models").status_code == 401
        assert other.get("/v1/models").status_code == 401
        assert carol.get("/v1/models").status_code == 200  # another key on the same replica is untouched


def lora(hyper: dict[str, object]) -> dict[str, object]:
    return {"type": "lora", "lora": {"hyperparameters": hyper}}
