"""Captioning a dataset through the real server with the tiny Florence-2 captioner."""

from __future__ import annotations

import httpx

from tests.conftest import LiveServer, image_bytes
from tests.helpers import JSONL_OK, assert_error, make_zip, upload_zip, wait_for_job


def test_caption_job_adds_trigger_word_once(live: LiveServer, alice: httpx.Client, bob: httpx.Client) -> None:
    archive = make_zip(
        {f"img{i}.png": image_bytes((i * 40, 255 - i * 30, (i * 90) % 255)) for i in range(5)}
        | {"img0.txt": "a hand-written caption"}
    )
    dataset = upload_zip(alice, archive, trigger_word="sks").json()
    dataset_id = dataset["id"]
    assert dataset["stats"]["captioned"] == 1

    assert_error(bob.post(f"/v1/datasets/{dataset_id}/caption", json={"model": "tiny-captioner"}), 404)
    started = alice.post(f"/v1/datasets/{dataset_id}/caption", json={"model": "tiny-captioner", "batch_size": 2})
    assert started.status_code == 202, started.text
    job = wait_for_job(alice, started.json()["id"])
    assert job["status"] == "succeeded", job
    assert job["result"]["captioned"] == 4
    assert job["progress"] == {"step": 4, "total": 4}
    events = alice.get(f"/v1/jobs/{job['id']}/events").json()["data"]
    batches = [event["data"]["items"] for event in events if event["type"] == "captions"]
    assert [len(batch) for batch in batches] == [2, 2]  # one event per batch, for clients that fill captions live

    items = alice.get(f"/v1/datasets/{dataset_id}/items").json()["data"]
    captions = {item["source"]: item["caption"] for item in items}
    assert captions["img0.png"] == "sks, a hand-written caption"  # kept: overwrite is off
    live_captions = {entry["id"]: entry["caption"] for batch in batches for entry in batch}
    assert live_captions == {item["id"]: item["caption"] for item in items if item["source"] != "img0.png"}
    for source, caption in captions.items():
        assert caption.startswith("sks, ")
        assert not caption.startswith("sks, sks"), source
        assert len(caption) > len("sks, ")
    final = alice.get(f"/v1/datasets/{dataset_id}").json()
    assert final["status"] == "ready"
    assert final["stats"]["caption_coverage"] == 1.0
    folder = live.settings.home / "artifacts" / "datasets" / dataset_id / "images"
    assert sorted(p.read_text() for p in folder.glob("*.txt")) == sorted(captions.values())

    # Overwrite re-captions all five; the four already captioned come from the cache, unchanged.
    again = alice.post(f"/v1/datasets/{dataset_id}/caption", json={"model": "tiny-captioner", "overwrite": True})
    job = wait_for_job(alice, again.json()["id"])
    assert job["result"]["captioned"] == 5
    recaptioned = {i["source"]: i["caption"] for i in alice.get(f"/v1/datasets/{dataset_id}/items").json()["data"]}
    assert {k: v for k, v in recaptioned.items() if k != "img0.png"} == {
        k: v for k, v in captions.items() if k != "img0.png"
    }
    assert recaptioned["img0.png"] != "sks, a hand-written caption"

    # `task` (Florence-2's name for the prompt) picks another prompt: the cache misses, captions change.
    body = {"model": "tiny-captioner", "overwrite": True, "task": "<MORE_DETAILED_CAPTION>"}
    job = wait_for_job(alice, alice.post(f"/v1/datasets/{dataset_id}/caption", json=body).json()["id"])
    assert job["status"] == "succeeded", job
    detailed = {i["source"]: i["caption"] for i in alice.get(f"/v1/datasets/{dataset_id}/items").json()["data"]}
    assert detailed != recaptioned


def test_bad_caption_requests(alice: httpx.Client) -> None:
    dataset_id = upload_zip(alice, make_zip({"a.png": image_bytes((3, 3, 3))})).json()["id"]
    assert_error(alice.post(f"/v1/datasets/{dataset_id}/caption", json={"model": "no-such"}), 404, param="model")
    assert_error(alice.post(f"/v1/datasets/{dataset_id}/caption", json={"batch_size": 0}), 400)
    assert_error(alice.post(f"/v1/datasets/{dataset_id}/caption", json={"surprise": 1}), 400)
    assert_error(alice.post("/v1/datasets/ds_nope/caption", json={}), 404)
    text = alice.post("/v1/files", files={"file": ("t.jsonl", JSONL_OK)}, data={"purpose": "fine-tune"}).json()
    assert_error(alice.post(f"/v1/datasets/{text['id']}/caption", json={"model": "tiny-captioner"}), 400)
    assert_error(alice.get(f"/v1/datasets/{text['id']}/config"), 400)
