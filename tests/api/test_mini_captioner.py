"""Auto-captioning a dataset through the real server with mini-captioner: scene images it never saw get captions
that name their colour, shape and background, behind the dataset's trigger word."""

from __future__ import annotations

import io

import httpx

from genfoundry.models import mini_captioner
from tests.helpers import make_zip, upload_zip, wait_for_job


def test_a_scene_dataset_gets_captions_naming_what_it_shows(alice: httpx.Client) -> None:
    scenes, images = mini_captioner.held_out_images(6)
    files = {}
    for i, image in enumerate(images):
        png = io.BytesIO()
        image.save(png, format="PNG")
        files[f"scene{i}.png"] = png.getvalue()
    dataset_id = upload_zip(alice, make_zip(files), trigger_word="zzq").json()["id"]

    started = alice.post(f"/v1/datasets/{dataset_id}/caption", json={"model": mini_captioner.MINI_CAPTIONER_ID})
    assert started.status_code == 202, started.text
    job = wait_for_job(alice, started.json()["id"], timeout=120)
    assert job["status"] == "succeeded", job

    captions = {
        item["source"]: item["caption"] for item in alice.get(f"/v1/datasets/{dataset_id}/items").json()["data"]
    }
    assert all(caption.startswith("zzq, ") for caption in captions.values()), captions
    right = [
        mini_captioner.caption_is_right(captions[f"scene{i}.png"].removeprefix("zzq, "), scene)
        for i, scene in enumerate(scenes)
    ]
    assert sum(right) >= 4, (captions, [scene.caption for scene in scenes])
