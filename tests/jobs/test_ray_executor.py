"""Jobs on a Ray cluster of three nodes on this machine (a head and two worker nodes with a fake GPU each), with
PostgreSQL and an S3 server (moto): a LoRA job and a captioning job run on the worker nodes and write to S3, and a
job whose node is killed resumes from its checkpoint on the other node."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import psutil
import pytest

from genfoundry.config import JobSettings, RaySettings, Settings
from genfoundry.jobs.ray_executor import RayUnavailable
from genfoundry.services import build_services
from tests.conftest import LiveServer, free_port, image_bytes, make_home, start_server
from tests.helpers import make_zip, upload_zip, wait_for_job
from tests.s3_server import S3_BUCKET, S3Server

PREFIX = "artifacts"
RAY = str(Path(sys.executable).parent / "ray")


@dataclass
class Cluster:
    address: str
    temp_dir: Path
    processes: list[subprocess.Popen[bytes]]  # the head, then the worker nodes (`ray start --block` each)
    node_ports: list[int]  # each worker node's node-manager port, to find its id


def _distinct_ports(count: int) -> list[int]:
    """Free ports, no two alike (two free_port() calls may return the same one)."""
    ports: list[int] = []
    while len(ports) < count:
        ports += [port for port in [free_port()] if port not in ports]
    return ports


def _ray_start(temp_dir: Path, log: str, ports: list[int], *args: str) -> subprocess.Popen[bytes]:
    """`ray start --block` on its own ports, logging to `temp_dir/log`; returns once the node is up."""
    names = ["--node-manager-port", "--object-manager-port", "--dashboard-agent-listen-port"]
    names += ["--dashboard-agent-grpc-port", "--metrics-export-port", "--runtime-env-agent-port"]
    command = [RAY, "start", "--block", "--disable-usage-stats", "--object-store-memory=100000000"]
    command += [f"--temp-dir={temp_dir}", *args, *(f"{name}={port}" for name, port in zip(names, ports, strict=True))]
    # Ray 2.60's `ray start --head` turns on token auth, which the other nodes and the driver then need; on
    # loopback the test keeps it off (docs/deploy.md says how to run with it). On a loaded machine a node's agents
    # can take longer to start than Ray waits for them by default.
    env = {**os.environ, "RAY_AUTH_MODE": "disabled", "RAY_agent_register_timeout_ms": "300000"}
    with (temp_dir / log).open("wb") as out:
        process = subprocess.Popen(command, env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
    deadline = time.monotonic() + 300
    while "Ray runtime started" not in (temp_dir / log).read_text(errors="replace"):
        text = (temp_dir / log).read_text(errors="replace")
        assert process.poll() is None and time.monotonic() < deadline, text[-3000:]
        time.sleep(0.2)
    return process


def _stop(processes: list[subprocess.Popen[bytes]], temp_dir: Path) -> None:
    for process in processes:
        if process.poll() is None:
            process.terminate()
    for process in processes:
        try:
            process.wait(timeout=60)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()
    # Whatever of this cluster outlived its `ray start` (its command lines name the temp dir) goes too.
    for leftover in psutil.process_iter(["cmdline"]):
        if any(str(temp_dir) in part for part in leftover.info["cmdline"] or []):
            leftover.kill()


@pytest.fixture(scope="module")
def cluster() -> Iterator[Cluster]:
    temp_dir = Path(tempfile.mkdtemp(prefix="gfray", dir="/tmp"))  # Ray's socket paths must stay short
    gcs, *ports = _distinct_ports(1 + 3 * 6)
    processes: list[subprocess.Popen[bytes]] = []
    try:
        head = ["--head", f"--port={gcs}", "--include-dashboard=false", "--num-cpus=0", "--num-gpus=0"]
        processes.append(_ray_start(temp_dir, "head.log", ports[:6], *head))
        for index in (1, 2):  # one at a time: nodes starting together race for ports
            worker = [f"--address=127.0.0.1:{gcs}", "--num-cpus=1", "--num-gpus=1"]  # a fake GPU each
            worker += [f"--min-worker-port={20000 + index * 500}", f"--max-worker-port={20499 + index * 500}"]
            processes.append(_ray_start(temp_dir, f"node{index}.log", ports[6 * index : 6 * index + 6], *worker))
        yield Cluster(f"127.0.0.1:{gcs}", temp_dir, processes, [ports[6], ports[12]])
    finally:
        _stop(processes, temp_dir)
        shutil.rmtree(temp_dir, ignore_errors=True)


@pytest.fixture(scope="module")
def ray_live(
    cluster: Cluster,
    s3: S3Server,
    postgres_url: str,
    tmp_path_factory: pytest.TempPathFactory,
    tiny_dir: Path,
) -> Iterator[LiveServer]:
    settings = Settings(
        home=make_home(tmp_path_factory.mktemp("ray"), tiny_dir),
        port=free_port(),
        database_url=postgres_url,
        storage_url=f"s3://{S3_BUCKET}/{PREFIX}",
        storage_options=s3.options(),
        jobs=JobSettings(executor="ray", device_slots=2),
        ray=RaySettings(address=cluster.address),
    )
    server = start_server(settings)
    try:
        yield server
    finally:
        server.stop()


def _worker_node_ids(cluster: Cluster) -> list[str]:
    """The worker nodes' ids, in the order of `cluster.processes[1:]`, once both have joined."""
    import ray  # the server's process is the cluster's driver: ask it

    deadline = time.monotonic() + 300
    while True:
        nodes = {node["NodeManagerPort"]: node["NodeID"] for node in ray.nodes() if node["Alive"]}
        if all(port in nodes for port in cluster.node_ports):
            return [nodes[port] for port in cluster.node_ports]
        assert time.monotonic() < deadline, f"worker nodes did not join: {nodes}"
        time.sleep(0.5)


def _started_on(client: httpx.Client, job_id: str) -> list[tuple[str, str | None]]:
    """(node, resume_from) of each attempt's start event, in order (every page: a job's steps make hundreds)."""
    events: list[dict] = []
    params: dict[str, object] = {"limit": 1000}
    while True:
        page = client.get(f"/v1/jobs/{job_id}/events", params=params).json()
        events += page["data"]
        if not page.get("has_more") or not page["data"]:
            break
        params["after"] = page["data"][-1]["id"]
    starts = [e for e in events if e["type"] == "log" and e["message"].startswith("attempt ")]
    starts.sort(key=lambda e: e["data"]["attempt"])
    return [(e["data"]["node"], e["data"]["resume_from"]) for e in starts]


def _lora(dataset_id: str, **hyper: int) -> dict[str, object]:
    hyperparameters = {"rank": 4, "resolution": 64, **hyper}
    method = {"type": "lora", "lora": {"hyperparameters": hyperparameters}}
    return {"model": "tiny-sd15", "training_file": dataset_id, "seed": 5, "method": method}


def test_an_address_nothing_listens_on_fails_fast_naming_it(tmp_path: Path, tiny_dir: Path) -> None:
    address = f"127.0.0.1:{free_port()}"
    settings = Settings(
        home=make_home(tmp_path, tiny_dir), jobs=JobSettings(executor="ray"), ray=RaySettings(address=address)
    )
    with pytest.raises(RayUnavailable, match=f"the Ray cluster at {address} does not answer"):
        build_services(settings)


@pytest.mark.timeout(1800)  # three Ray nodes, a server and three training jobs on a loaded 2-core machine
def test_jobs_run_on_the_worker_nodes_and_resume_on_another_when_theirs_dies(
    cluster: Cluster, ray_live: LiveServer, s3: S3Server
) -> None:
    nodes = _worker_node_ids(cluster)
    with ray_live.client() as client:
        archive = make_zip({f"c{i}.png": image_bytes((200, 30 + i * 40, 20), size=(64, 64)) for i in range(3)})
        dataset = upload_zip(client, archive, trigger_word="rsx").json()
        lora = client.post("/v1/fine_tuning/jobs", json=_lora(dataset["id"], max_steps=4, checkpoint_every_n_steps=2))
        assert lora.status_code in (200, 201), lora.text
        caption = client.post(f"/v1/datasets/{dataset['id']}/caption", json={"model": "tiny-captioner"})
        assert caption.status_code == 202, caption.text

        for job_id in (lora.json()["id"], caption.json()["id"]):
            job = wait_for_job(client, job_id, timeout=600)
            assert job["status"] == "succeeded", job
            [(node, _)] = _started_on(client, job_id)
            assert node in nodes, (node, nodes)
        tuned = client.get(f"/v1/fine_tuning/jobs/{lora.json()['id']}").json()["fine_tuned_model"]
        adapters = s3.keys(S3_BUCKET, f"{PREFIX}/adapters/")
        assert any(key.endswith(".safetensors") for key in adapters), adapters
        assert tuned is not None
        captions = [key for key in s3.keys(S3_BUCKET, f"{PREFIX}/datasets/{dataset['id']}/") if key.endswith(".txt")]
        assert len(captions) == 3, captions

        # A longer job: once it has a checkpoint, its node dies; it resumes from there on the other node. Long enough
        # that its process cannot finish before it sees its parent gone (within a heartbeat).
        long = client.post(
            "/v1/fine_tuning/jobs", json=_lora(dataset["id"], max_steps=400, checkpoint_every_n_steps=20)
        )
        job_id = long.json()["id"]
        deadline = time.monotonic() + 600
        while not client.get(f"/v1/fine_tuning/jobs/{job_id}/checkpoints").json()["data"]:
            job = client.get(f"/v1/jobs/{job_id}").json()
            assert job["status"] in ("queued", "running") and time.monotonic() < deadline, job
            time.sleep(0.2)
        [(node, _)] = _started_on(client, job_id)
        # The node dies as a machine would: its `ray start`, raylet, agents and workers at once (a SIGTERM to
        # `ray start --block` alone leaves its raylet running).
        os.killpg(cluster.processes[1 + nodes.index(node)].pid, signal.SIGKILL)

        job = wait_for_job(client, job_id, timeout=900)
        assert job["status"] == "succeeded", job
        (first, _), (second, resumed_from) = _started_on(client, job_id)
        assert first == node and second in nodes and second != node
        assert resumed_from is not None, "the second attempt did not resume from the checkpoint"
        assert client.get("/healthz").status_code == 200
