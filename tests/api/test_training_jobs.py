"""Training jobs through the real server: SSE events with Last-Event-ID, checkpoints as adapters, sample URLs,
estimated finish, cancel / resume, kill -9 of the job's process, and the bad inputs of the training-jobs issue."""

from __future__ import annotations

import json
import os
import signal
import time
from typing import Any

import httpx
import pytest

from tests.conftest import Keys, LiveServer, image_bytes
from tests.helpers import assert_error, make_zip, upload_zip

ACTIVE = ("queued", "running")


def red_dataset(client: httpx.Client, n: int = 3) -> str:
    archive = make_zip({f"red{i}.png": image_bytes((220, 30 + i, 30), size=(64, 64)) for i in range(n)})
    response = upload_zip(client, archive, trigger_word="rdx")
    assert response.status_code == 201, response.text
    return str(response.json()["id"])


def create_job(client: httpx.Client, dataset_id: str, **hyper: Any) -> dict[str, Any]:
    body = {
        "model": "tiny-sd15",
        "training_file": dataset_id,
        "seed": 1,
        "method": {"type": "lora", "lora": {"hyperparameters": {"rank": 4, "resolution": 64, **hyper}}},
    }
    response = client.post("/v1/fine_tuning/jobs", json=body)
    assert response.status_code == 200, response.text
    return dict(response.json())


def wait_until(client: httpx.Client, job_id: str, done: Any, timeout: float = 300) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        job = client.get(f"/v1/fine_tuning/jobs/{job_id}").json()
        if done(job):
            return dict(job)
        time.sleep(0.2)
    raise AssertionError(f"job {job_id} never reached the state asked for")


def finished(job: dict[str, Any]) -> bool:
    return job["status"] not in ACTIVE


def read_sse(response: httpx.Response) -> list[dict[str, str]]:
    """Every block of a Server-Sent Events response, as {field: value}."""
    blocks, block = [], {}
    for line in response.iter_lines():
        if not line:
            if block:
                blocks.append(block)
            block = {}
        elif not line.startswith(":"):
            name, _, value = line.partition(": ")
            block[name] = value
    return blocks


def events(client: httpx.Client, job_id: str) -> list[dict[str, Any]]:
    page = client.get(f"/v1/fine_tuning/jobs/{job_id}/events", params={"limit": 1000}).json()
    return list(page["data"])


@pytest.fixture(scope="module")
def sampled_job(live: LiveServer, keys: Keys) -> dict[str, Any]:
    """A 6-step job with a checkpoint every 2 steps and a sample every 3, as created (still queued)."""
    with live.client(keys.alice) as alice:
        return create_job(
            alice,
            red_dataset(alice),
            max_steps=6,
            checkpoint_every_n_steps=2,
            sample_every_n_steps=3,
            validation_prompts=["rdx shoe"],
        )


def test_events_stream_checkpoints_and_samples(
    live: LiveServer, alice: httpx.Client, bob: httpx.Client, sampled_job: dict[str, Any]
) -> None:
    job = sampled_job
    with alice.stream("GET", f"/v1/fine_tuning/jobs/{job['id']}/events", params={"stream": "true"}) as response:
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("text/event-stream")
        blocks = read_sse(response)
    assert blocks[-1] == {"data": "[DONE]"}
    streamed = [json.loads(block["data"]) for block in blocks[:-1]]
    assert [block["id"] for block in blocks[:-1]] == [event["id"] for event in streamed]
    kinds = [event["data"]["kind"] for event in streamed]
    assert kinds.count("metrics") == 6 and kinds.count("checkpoint") == 3 and kinds.count("sample") == 2
    assert [e["id"] for e in streamed] == [e["id"] for e in events(alice, job["id"])], "stream = paged list"
    metrics = [e for e in streamed if e["type"] == "metrics"]
    assert {"step", "total", "loss", "lr", "it_per_s"} <= set(metrics[0]["data"])

    # Reconnecting with Last-Event-ID replays exactly what came after it.
    middle = streamed[len(streamed) // 2]["id"]
    with alice.stream(
        "GET", f"/v1/fine_tuning/jobs/{job['id']}/events", params={"stream": "true"}, headers={"Last-Event-ID": middle}
    ) as response:
        replay = read_sse(response)
    assert [b["id"] for b in replay[:-1]] == [b["id"] for b in blocks[:-1]][len(streamed) // 2 + 1 :]

    # Sample images: a signed URL works without a key; the bare path needs the owner's key.
    sample = next(e for e in streamed if e["data"]["kind"] == "sample")
    url = sample["data"]["url"]
    png = httpx.get(url)
    assert png.status_code == 200 and png.content.startswith(b"\x89PNG")
    path = url.split("?")[0].removeprefix(live.url)
    assert alice.get(path).status_code == 200
    assert_error(bob.get(path), 404)
    assert_error(httpx.get(live.url + path), 401)
    assert_error(alice.get(f"/v1/fine_tuning/jobs/{job['id']}/samples/..%2F..%2Fsecret.key"), 404)

    # Every checkpoint is an adapter that generates.
    final = alice.get(f"/v1/fine_tuning/jobs/{job['id']}").json()
    assert final["status"] == "succeeded" and final["estimated_finish"] is None
    checkpoints = alice.get(f"/v1/fine_tuning/jobs/{job['id']}/checkpoints").json()["data"]
    assert [c["step_number"] for c in checkpoints] == [6, 4, 2]
    assert all(c["object"] == "fine_tuning.job.checkpoint" and "train_loss" in c["metrics"] for c in checkpoints)
    after = {"limit": 1, "after": checkpoints[0]["id"]}
    page = alice.get(f"/v1/fine_tuning/jobs/{job['id']}/checkpoints", params=after)
    assert [c["step_number"] for c in page.json()["data"]] == [4] and page.json()["has_more"]
    for checkpoint in (checkpoints[0], checkpoints[-1]):
        made = alice.post(
            "/v1/images/generations",
            json={"model": checkpoint["fine_tuned_model_checkpoint"], "prompt": "a shoe", "size": "64x64"},
        )
        assert made.status_code == 200, made.text
    assert_error(bob.get(f"/v1/fine_tuning/jobs/{job['id']}/checkpoints"), 404)
    assert_error(bob.get(f"/v1/fine_tuning/jobs/{job['id']}/events", params={"stream": "true"}), 404)


def test_cancel_then_resume_from_the_checkpoint(alice: httpx.Client) -> None:
    job = create_job(alice, red_dataset(alice), max_steps=400, checkpoint_every_n_steps=1000)
    running = wait_until(alice, job["id"], lambda j: j["progress"].get("step", 0) >= 2 or finished(j))
    assert running["status"] == "running", running
    assert running["estimated_finish"] is not None and running["estimated_finish"] >= running["created_at"]
    assert alice.post(f"/v1/fine_tuning/jobs/{job['id']}/cancel").status_code == 200
    cancelled = wait_until(alice, job["id"], finished)
    assert cancelled["status"] == "cancelled"
    assert_error(alice.post(f"/v1/fine_tuning/jobs/{job['id']}/cancel"), 409)  # cancel twice
    stopped_at = cancelled["progress"]["step"]
    checkpoint = [c["step_number"] for c in alice.get(f"/v1/fine_tuning/jobs/{job['id']}/checkpoints").json()["data"]]
    assert checkpoint == [stopped_at], "cancel saves a checkpoint at the step it stopped"

    resumed = alice.post(f"/v1/fine_tuning/jobs/{job['id']}/resume")
    assert resumed.status_code == 200 and resumed.json()["status"] == "queued"
    assert_error(alice.post(f"/v1/fine_tuning/jobs/{job['id']}/resume"), 409)  # already queued
    wait_until(alice, job["id"], lambda j: j["progress"].get("step", 0) > stopped_at or finished(j))
    assert alice.post(f"/v1/jobs/{job['id']}/cancel").status_code == 200  # the generic route works on it too
    final = wait_until(alice, job["id"], finished)
    assert final["status"] == "cancelled"
    log = " ".join(e["message"] for e in events(alice, job["id"]))
    assert f"resumed from step_{stopped_at} at step {stopped_at}" in log


def test_resume_and_cancel_of_a_finished_job_conflict(
    alice: httpx.Client, bob: httpx.Client, sampled_job: dict[str, Any]
) -> None:
    job = sampled_job
    done = wait_until(alice, job["id"], finished)
    assert done["status"] == "succeeded"
    assert_error(alice.post(f"/v1/fine_tuning/jobs/{job['id']}/resume"), 409)
    assert_error(alice.post(f"/v1/jobs/{job['id']}/resume"), 409)
    assert_error(alice.post(f"/v1/fine_tuning/jobs/{job['id']}/cancel"), 409)
    assert_error(bob.post(f"/v1/fine_tuning/jobs/{job['id']}/resume"), 404)
    assert_error(alice.post("/v1/fine_tuning/jobs/job_nope/resume"), 404)
    # A finished job's stream replays everything and ends at once.
    with alice.stream("GET", f"/v1/jobs/{job['id']}/events", params={"stream": "true"}) as response:
        blocks = read_sse(response)
    assert blocks[-1] == {"data": "[DONE]"} and json.loads(blocks[-2]["data"])["message"] == "succeeded"
    listed = alice.get("/v1/jobs", params={"kind": "fine_tune_lora", "limit": 100}).json()["data"]
    assert job["id"] in [j["id"] for j in listed]
    assert job["id"] not in [j["id"] for j in bob.get("/v1/jobs").json()["data"]]


def test_cancel_racing_the_jobs_own_finish(alice: httpx.Client) -> None:
    job = create_job(alice, red_dataset(alice, 2), max_steps=3)
    wait_until(alice, job["id"], lambda j: j["progress"].get("step", 0) >= 2 or finished(j))
    answers = []
    while True:
        response = alice.post(f"/v1/fine_tuning/jobs/{job['id']}/cancel")
        answers.append(response.status_code)
        assert response.status_code in (200, 409), response.text
        state = alice.get(f"/v1/fine_tuning/jobs/{job['id']}").json()
        if finished(state):
            break
        time.sleep(0.05)
    final = wait_until(alice, job["id"], finished)
    assert final["status"] in ("succeeded", "cancelled")
    assert (final["fine_tuned_model"] is not None) == (final["status"] == "succeeded")


def test_kill_9_of_the_job_process_is_retried_from_its_checkpoint(alice: httpx.Client) -> None:
    job = create_job(alice, red_dataset(alice), max_steps=60, checkpoint_every_n_steps=5)
    wait_until(alice, job["id"], lambda j: j["progress"].get("step", 0) >= 6 or finished(j))
    started = [e for e in events(alice, job["id"]) if "pid" in e["data"]]
    pid = started[-1]["data"]["pid"]
    os.kill(pid, signal.SIGKILL)
    final = wait_until(alice, job["id"], finished)
    assert final["status"] == "succeeded", final
    messages = [e["message"] for e in events(alice, job["id"])]
    assert any(m.startswith("resumed from step_") for m in messages), messages
    assert len([e for e in events(alice, job["id"]) if "pid" in e["data"]]) == 2


def test_training_bad_inputs(alice: httpx.Client, bob: httpx.Client, sampled_job: dict[str, Any]) -> None:
    from tests.helpers import wait_for_job

    # A dataset whose every URL failed has no images.
    empty = alice.post("/v1/datasets/from-urls", json={"name": "empty", "urls": ["http://127.0.0.1:9/x.png"]}).json()
    wait_for_job(alice, empty["job_id"])
    body = {"model": "tiny-sd15", "training_file": empty["id"], "method": {"type": "lora"}}
    response = alice.post("/v1/fine_tuning/jobs", json=body)
    assert response.status_code in (400, 409), response.text
    assert response.json()["error"]["message"]

    # Another user's dataset is unknown to you.
    theirs = red_dataset(bob, 1)
    assert_error(alice.post("/v1/fine_tuning/jobs", json={**body, "training_file": theirs}), 404, param="training_file")

    # A dataset still being captioned is a 409.
    dataset_id = red_dataset(alice, 2)
    captioning = alice.post(f"/v1/datasets/{dataset_id}/caption", json={"model": "tiny-captioner"})
    assert captioning.status_code == 202, captioning.text
    assert_error(alice.post("/v1/fine_tuning/jobs", json={**body, "training_file": dataset_id}), 409)
    # Done with it: cancelled, it no longer holds the device slot the next tests' jobs queue for.
    assert alice.post(f"/v1/jobs/{captioning.json()['id']}/cancel").status_code == 200

    # Event cursors must name one of this job's events.
    job = wait_until(alice, sampled_job["id"], finished)
    other_event = alice.get(f"/v1/jobs/{empty['job_id']}/events").json()["data"][0]["id"]
    url = f"/v1/fine_tuning/jobs/{job['id']}/events"
    assert_error(alice.get(url, params={"after": "ev_999999999"}), 400, param="after")
    assert_error(alice.get(url, params={"after": other_event}), 400, param="after")
    assert_error(alice.get(url, params={"after": "garbage"}), 400, param="after")
    assert_error(alice.get(url, params={"stream": "true"}, headers={"Last-Event-ID": "ev_x"}), 400)
    assert_error(alice.get(f"/v1/jobs/{job['id']}/events", params={"after": other_event}), 400, param="after")
    assert_error(alice.get(f"/v1/fine_tuning/jobs/{job['id']}/checkpoints", params={"after": "nope"}), 400)
    assert_error(alice.get(f"/v1/fine_tuning/jobs/{job['id']}/checkpoints", params={"limit": 0}), 400)
    assert alice.get("/healthz").status_code == 200


def test_dreambooth_lora_and_full_through_the_api(live: LiveServer, alice: httpx.Client, bob: httpx.Client) -> None:
    dataset_id = red_dataset(alice, 2)

    def dreambooth(**hyper: Any) -> dict[str, Any]:
        body = {
            "model": "tiny-sd15",
            "training_file": dataset_id,
            "seed": 2,
            "method": {
                "type": "dreambooth",
                "dreambooth": {
                    "hyperparameters": {
                        "max_steps": 2,
                        "resolution": 64,
                        "class_word": "shoe",
                        "num_class_images": 2,
                        "class_image_steps": 2,
                        **hyper,
                    }
                },
            },
        }
        response = alice.post("/v1/fine_tuning/jobs", json=body)
        assert response.status_code == 200, response.text
        return dict(response.json())

    lora = dreambooth(rank=4)
    full = dreambooth(train_mode="full")
    assert lora["method"]["id"] == "dreambooth" and lora["method"]["type"] == "supervised"
    for job in (lora, full):
        done = wait_until(alice, job["id"], finished)
        assert done["status"] == "succeeded", done
        made = alice.post(
            "/v1/images/generations", json={"model": done["fine_tuned_model"], "prompt": "a shoe", "size": "64x64"}
        )
        assert made.status_code == 200, made.text
        assert_error(
            bob.post(
                "/v1/images/generations", json={"model": done["fine_tuned_model"], "prompt": "a shoe", "size": "64x64"}
            ),
            404,
        )
    full_model = wait_until(alice, full["id"], finished)["fine_tuned_model"]
    assert full_model in [m["id"] for m in alice.get("/v1/models").json()["data"]]
    assert full_model not in [m["id"] for m in bob.get("/v1/models").json()["data"]]

    # Deleting the full fine-tune: not by another user; not while an adapter of the owner is trained on it.
    folder = live.settings.home / "models" / "trained" / full_model
    assert (folder / "model_index.json").is_file()
    assert_error(bob.delete(f"/v1/models/{full_model}"), 404)
    on_it = alice.post(
        "/v1/fine_tuning/jobs",
        json={
            "model": full_model,
            "training_file": dataset_id,
            "method": {"type": "lora", "lora": {"hyperparameters": {"max_steps": 1, "rank": 4, "resolution": 64}}},
        },
    )
    assert on_it.status_code == 200, on_it.text
    adapter_id = wait_until(alice, on_it.json()["id"], finished)["fine_tuned_model"]
    styled = alice.post("/v1/images/generations", json={"model": adapter_id, "prompt": "a shoe", "size": "64x64"})
    assert styled.status_code == 200, styled.text  # a LoRA on one's own fine-tune generates like any other
    theirs = bob.post("/v1/fine_tuning/jobs", json={"model": full_model, "training_file": red_dataset(bob, 1)})
    assert_error(theirs, 404, param="model")
    assert_error(alice.delete(f"/v1/models/{full_model}"), 409, param="model")
    assert alice.delete(f"/v1/models/{adapter_id}").json()["deleted"] is True
    queued = alice.post("/v1/fine_tuning/jobs", json={"model": full_model, "training_file": dataset_id})
    assert queued.status_code == 200, queued.text
    assert_error(alice.delete(f"/v1/models/{full_model}"), 409, param="model")  # a job of hers trains on it
    assert alice.post(f"/v1/fine_tuning/jobs/{queued.json()['id']}/cancel").status_code == 200
    wait_until(alice, queued.json()["id"], finished)
    deleted = alice.delete(f"/v1/models/{full_model}")
    assert deleted.status_code == 200, deleted.text
    assert deleted.json() == {"id": full_model, "object": "model", "deleted": True}
    assert not folder.exists()
    assert full_model not in [m["id"] for m in alice.get("/v1/models").json()["data"]]
    assert_error(alice.get(f"/v1/models/{full_model}"), 404)
    gone = alice.post("/v1/images/generations", json={"model": full_model, "prompt": "a shoe", "size": "64x64"})
    assert_error(gone, 404)
    assert_error(alice.delete(f"/v1/models/{full_model}"), 404)
    log = " ".join(e["message"] for e in events(alice, lora["id"]))
    assert "class" in log

    def bad(**hyper: Any) -> httpx.Response:
        method = {"type": "dreambooth", "dreambooth": {"hyperparameters": hyper}}
        return alice.post(
            "/v1/fine_tuning/jobs", json={"model": "tiny-flux", "training_file": dataset_id, "method": method}
        )

    assert_error(bad(train_mode="full"), 400, param="train_mode")
    assert_error(bad(train_mode="banana"), 400, param="train_mode")
    assert_error(bad(num_class_images=0, class_word="dog"), 400, param="num_class_images")
    assert_error(bad(prior_loss_weight=-1, class_word="dog"), 400, param="prior_loss_weight")
