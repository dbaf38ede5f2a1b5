"""Job start latency: from `POST /v1/fine_tuning/jobs` (queued) to the job's first training step, with the Ray
executor against the subprocess executor. Same tiny LoRA job and home; one server per executor, one after the
other, `--tries` jobs each. The Ray server starts its own local Ray instance
(`GENFOUNDRY_RAY__ADDRESS=""`), as a one-machine deployment with `executor=ray` would; its start is not timed.

Both executors start the same worker process (`python -m genfoundry.jobs.worker`); Ray adds scheduling the task,
a Ray worker process and the hop through it. The first step includes the worker's imports and model load, the same
for both.
"""

from __future__ import annotations

import argparse
import io
import os
import time
import zipfile

import httpx
from PIL import Image

from bench.common import make_home, p50, report, running_server

EXECUTORS = {
    "subprocess": {"GENFOUNDRY_JOBS__EXECUTOR": "subprocess"},
    "ray": {"GENFOUNDRY_JOBS__EXECUTOR": "ray", "GENFOUNDRY_RAY__ADDRESS": ""},
}


def dataset_zip(count: int = 2) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for index in range(count):
            image = io.BytesIO()
            Image.new("RGB", (64, 64), (200, 40 * index, 30)).save(image, "PNG")
            archive.writestr(f"img{index}.png", image.getvalue())
    return buffer.getvalue()


def time_to_first_step(client: httpx.Client, dataset_id: str, steps: int) -> float:
    hyper = {"max_steps": steps, "rank": 4, "resolution": 64}
    body = {
        "model": "tiny-sd15",
        "training_file": dataset_id,
        "method": {"type": "lora", "lora": {"hyperparameters": hyper}},
    }
    start = time.perf_counter()
    job = client.post("/v1/fine_tuning/jobs", json=body)
    job.raise_for_status()
    job_id = job.json()["id"]
    first = None
    while True:
        state = client.get(f"/v1/jobs/{job_id}").json()
        if first is None and state["progress"].get("step", 0) >= 1:
            first = time.perf_counter() - start
        if state["status"] not in ("queued", "running"):
            break
        time.sleep(0.05)
    if state["status"] != "succeeded" or first is None:
        raise RuntimeError(f"job {job_id} ended {state['status']}: {state.get('error')}")
    return first


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--tries", type=int, default=3, help="jobs per executor")
    parser.add_argument("--steps", type=int, default=2, help="training steps per job")
    args = parser.parse_args()
    home = make_home()
    threads = {"GENFOUNDRY_TORCH_THREADS": "1"}  # the same share of the cores for both executors' jobs
    seconds: dict[str, list[float]] = {}
    for name, settings in EXECUTORS.items():
        with running_server(home, **threads, **settings) as url, httpx.Client(base_url=url, timeout=120) as client:
            files = {"file": ("data.zip", dataset_zip(), "application/zip")}
            dataset = client.post("/v1/datasets", files=files, data={"name": "bench", "trigger_word": "bnx"}).json()
            seconds[name] = [time_to_first_step(client, dataset["id"], args.steps) for _ in range(args.tries)]
    load = os.getloadavg()[0]
    rows = [
        (name, f"p50 {p50(values):.2f} s  ({', '.join(f'{v:.2f}' for v in values)})")
        for name, values in seconds.items()
    ]
    rows.append(("ratio (ray / subprocess)", f"{p50(seconds['ray']) / p50(seconds['subprocess']):.2f}"))
    rows.append(("load average (1 min) at the end", f"{load:.1f}"))
    report("Job start latency: queued -> first training step", rows)


if __name__ == "__main__":
    main()
