"""Datasets through the real server: ZIP uploads, items, captions, kohya export, JSONL files, deletion."""

from __future__ import annotations

import io
import json
import tomllib

import httpx
from PIL import Image

from tests.conftest import LiveServer, image_bytes
from tests.helpers import JSONL_OK, assert_error, make_zip, upload_zip


def test_zip_dataset_end_to_end(live: LiveServer, alice: httpx.Client, bob: httpx.Client) -> None:
    archive = make_zip(
        {
            "red.png": image_bytes((255, 0, 0)),
            "red.txt": "a red shoe",
            "blue.jpg": image_bytes((0, 0, 255), fmt="JPEG"),
            "nested/green.png": image_bytes((0, 255, 0), size=(800, 600)),
            "copy-of-red.png": image_bytes((255, 0, 0)),
            "notes.jpg": b"this is text, not an image",
            "__MACOSX/._red.png": b"junk",
        }
    )
    response = upload_zip(alice, archive, trigger_word="sks")
    assert response.status_code == 201, response.text
    dataset = response.json()
    assert dataset["kind"] == "image"
    assert dataset["status"] == "ready"
    stats = dataset["stats"]
    assert (stats["accepted"], stats["rejected"], stats["duplicates"]) == (3, 1, 1)
    assert stats["captioned"] == 1
    assert stats["caption_coverage"] == round(1 / 3, 4)
    assert stats["resolution_histogram"] == {"<512": 2, "768-1023": 1}
    report = {item["source"]: item for item in dataset["report"]["items"]}
    assert report["notes.jpg"]["status"] == "rejected"
    assert report["copy-of-red.png"]["status"] == "duplicate"

    dataset_id = dataset["id"]
    items = alice.get(f"/v1/datasets/{dataset_id}/items").json()["data"]
    by_source = {item["source"]: item for item in items}
    assert by_source["red.png"]["caption"] == "sks, a red shoe"
    assert by_source["notes.jpg"]["reason"]
    ok = alice.get(f"/v1/datasets/{dataset_id}/items", params={"status": "ok"}).json()["data"]
    assert len(ok) == 3

    red = by_source["red.png"]
    picture = alice.get(f"/v1/datasets/{dataset_id}/items/{red['id']}/image")
    assert picture.status_code == 200
    assert Image.open(io.BytesIO(picture.content)).getpixel((5, 5))[0] > 200
    folder = live.settings.home / "artifacts" / "datasets" / dataset_id / "images"
    assert len(list(folder.glob("*.jpg"))) == 3
    assert sorted(p.read_text() for p in folder.glob("*.txt")) == ["sks, a red shoe"]

    patched = alice.patch(f"/v1/datasets/{dataset_id}/items/{by_source['blue.jpg']['id']}", json={"caption": "blue"})
    assert patched.status_code == 200, patched.text
    assert patched.json()["caption"] == "blue"
    assert sorted(p.read_text() for p in folder.glob("*.txt")) == ["blue", "sks, a red shoe"]
    manifest = json.loads((folder.parent / "manifest.json").read_text())
    assert {image["caption"] for image in manifest["images"]} == {"blue", "sks, a red shoe", None}

    config = alice.get(f"/v1/datasets/{dataset_id}/config", params={"format": "kohya", "resolution": 512})
    assert config.status_code == 200, config.text
    parsed = tomllib.loads(config.text)
    assert parsed["general"]["caption_extension"] == ".txt"
    assert parsed["general"]["enable_bucket"] is True
    [entry] = parsed["datasets"]
    assert (entry["resolution"], entry["batch_size"]) == (512, 1)
    [subset] = entry["subsets"]
    assert subset["image_dir"] == str(folder)
    assert subset["num_repeats"] == 10
    assert subset["class_tokens"] == "sks"

    listed = alice.get("/v1/datasets").json()["data"]
    assert dataset_id in [d["id"] for d in listed]
    assert dataset_id not in [d["id"] for d in bob.get("/v1/datasets").json()["data"]]
    assert bob.get(f"/v1/datasets/{dataset_id}").status_code == 404
    assert bob.get(f"/v1/datasets/{dataset_id}/items").status_code == 404
    assert bob.get(f"/v1/datasets/{dataset_id}/items/{red['id']}/image").status_code == 404
    assert bob.patch(f"/v1/datasets/{dataset_id}/items/{red['id']}", json={"caption": "x"}).status_code == 404
    assert bob.delete(f"/v1/datasets/{dataset_id}").status_code == 404

    deleted = alice.delete(f"/v1/datasets/{dataset_id}")
    assert deleted.json() == {"id": dataset_id, "object": "dataset", "deleted": True}
    assert not folder.parent.exists()
    assert alice.get(f"/v1/datasets/{dataset_id}").status_code == 404


def test_zip_with_nothing_valid_is_422_with_report(live: LiveServer, alice: httpx.Client) -> None:
    before = len(alice.get("/v1/datasets").json()["data"])
    response = upload_zip(alice, make_zip({"a.jpg": b"nope", "b.png": b""}))
    error = assert_error(response, 422)
    assert "details" in error, error
    assert {item["source"] for item in error["details"]["items"]} == {"a.jpg", "b.png"}
    assert len(alice.get("/v1/datasets").json()["data"]) == before


def test_bad_dataset_requests(alice: httpx.Client) -> None:
    assert_error(upload_zip(alice, b"PK\x03\x04 but truncated"), 422)
    assert_error(upload_zip(alice, make_zip({})), 422)
    assert_error(alice.post("/v1/datasets", data={"name": "x"}), 400)
    good = make_zip({"a.png": image_bytes((1, 2, 3))})
    assert_error(alice.post("/v1/datasets", files={"file": ("a.zip", good)}), 400)
    assert_error(alice.get("/v1/datasets/ds_nope"), 404)
    assert_error(alice.get("/v1/datasets", params={"after": "ds_nope"}), 404)
    dataset_id = upload_zip(alice, good).json()["id"]
    for params in ({"resolution": 500}, {"batch_size": 0}, {"num_repeats": 0}, {"format": "onetrainer"}):
        assert_error(alice.get(f"/v1/datasets/{dataset_id}/config", params=params), 400)
    assert_error(alice.patch(f"/v1/datasets/{dataset_id}/items/item_nope", json={"caption": "x"}), 404)
    assert_error(alice.get(f"/v1/datasets/{dataset_id}/items", params={"status": "weird"}), 400)


def test_openai_files_jsonl_and_zip(alice: httpx.Client, bob: httpx.Client) -> None:
    created = alice.post("/v1/files", files={"file": ("train.jsonl", JSONL_OK)}, data={"purpose": "fine-tune"})
    assert created.status_code == 200, created.text
    file = created.json()
    assert file["object"] == "file"
    assert (file["bytes"], file["filename"], file["purpose"], file["status"]) == (
        len(JSONL_OK),
        "train.jsonl",
        "fine-tune",
        "processed",
    )
    assert alice.get(f"/v1/files/{file['id']}").json()["id"] == file["id"]
    assert alice.get(f"/v1/files/{file['id']}/content").content == JSONL_OK
    assert file["id"] in [f["id"] for f in alice.get("/v1/files").json()["data"]]
    dataset = alice.get(f"/v1/datasets/{file['id']}").json()
    assert dataset["kind"] == "text"
    assert dataset["stats"]["examples"] == 2
    assert bob.get(f"/v1/files/{file['id']}").status_code == 404

    archive = make_zip({"a.png": image_bytes((9, 9, 9))})
    zipped = alice.post("/v1/files", files={"file": ("imgs.zip", archive)}, data={"purpose": "fine-tune"})
    assert zipped.status_code == 200, zipped.text
    assert alice.get(f"/v1/datasets/{zipped.json()['id']}").json()["kind"] == "image"

    assert alice.delete(f"/v1/files/{file['id']}").json()["deleted"] is True
    assert alice.get(f"/v1/files/{file['id']}").status_code == 404


def test_bad_jsonl_files(alice: httpx.Client) -> None:
    before = len(alice.get("/v1/files").json()["data"])
    cases = {
        "bad line in the middle": (
            b'{"prompt": "a", "completion": "b"}\n{oops\n{"prompt": "c", "completion": "d"}\n',
            2,
        ),
        "wrong keys": (b'{"question": "a", "answer": "b"}\n', 1),
        "invalid utf-8": (b'{"prompt": "a", "completion": "b"}\n{"prompt": "\xff\xfe", "completion": "x"}\n', 2),
        "no completion": (b'{"prompt": "a"}\n', 1),
        "empty": (b"", 0),
        "mixed formats": (b'{"prompt": "a", "completion": "b"}\n{"text": "t", "label": "l"}\n', 2),
    }
    for label, (data, line) in cases.items():
        response = alice.post("/v1/files", files={"file": ("t.jsonl", data)}, data={"purpose": "fine-tune"})
        error = assert_error(response, 422)
        assert error["details"]["errors"][0]["line"] == line, (label, error)
    huge = b'{"prompt": "' + b"x" * (50 * 1024 * 1024) + b'", "completion": "y"}\n'
    error = assert_error(alice.post("/v1/files", files={"file": ("t.jsonl", huge)}, data={"purpose": "fine-tune"}), 422)
    assert "longer than" in error["details"]["errors"][0]["message"]
    assert_error(alice.post("/v1/files", files={"file": ("t.jsonl", JSONL_OK)}, data={"purpose": "assistants"}), 400)
    assert len(alice.get("/v1/files").json()["data"]) == before


def test_jobs_are_private(alice: httpx.Client, bob: httpx.Client) -> None:
    assert_error(alice.get("/v1/jobs/job_nope"), 404)
    assert_error(alice.get("/v1/jobs/job_nope/events"), 404)
    assert_error(alice.post("/v1/jobs/job_nope/cancel"), 404)


def test_bulk_caption_edits(live: LiveServer, alice: httpx.Client, bob: httpx.Client) -> None:
    archive = make_zip(
        {
            "a.png": image_bytes((10, 0, 0)),
            "a.txt": "a red shoe on a red floor",
            "b.png": image_bytes((0, 10, 0)),
            "b.txt": "sks, a green shoe",
            "c.png": image_bytes((0, 0, 10)),
        }
    )
    dataset_id = upload_zip(alice, archive).json()["id"]
    folder = live.settings.home / "artifacts" / "datasets" / dataset_id / "images"
    url = f"/v1/datasets/{dataset_id}/captions"

    prepended = alice.post(url, json={"operation": "prepend", "text": "sks"})
    assert prepended.status_code == 200, prepended.text
    body = prepended.json()
    assert body["object"] == "dataset.captions"
    assert body["updated"] == 2  # b already starts with it
    assert {item["caption"] for item in body["data"]} == {"sks, a red shoe on a red floor", "sks"}
    assert sorted(p.read_text() for p in folder.glob("*.txt")) == [
        "sks",
        "sks, a green shoe",
        "sks, a red shoe on a red floor",
    ]
    assert alice.post(url, json={"operation": "prepend", "text": "SKS"}).json()["updated"] == 0  # idempotent

    replaced = alice.post(url, json={"operation": "replace", "find": "red", "replace": "blue"}).json()
    assert replaced["updated"] == 1
    assert replaced["data"][0]["caption"] == "sks, a blue shoe on a blue floor"
    emptied = alice.post(url, json={"operation": "replace", "find": "sks"}).json()  # "sks" alone becomes no caption
    assert emptied["updated"] == 3
    captions = {i["source"]: i["caption"] for i in alice.get(f"/v1/datasets/{dataset_id}/items").json()["data"]}
    assert captions == {"a.png": ", a blue shoe on a blue floor", "b.png": ", a green shoe", "c.png": None}
    manifest = json.loads((folder.parent / "manifest.json").read_text())
    assert {image["caption"] for image in manifest["images"]} == {
        ", a blue shoe on a blue floor",
        ", a green shoe",
        None,
    }
    assert len(list(folder.glob("*.txt"))) == 2

    assert_error(bob.post(url, json={"operation": "prepend", "text": "x"}), 404)
    assert_error(alice.post("/v1/datasets/ds_nope/captions", json={"operation": "prepend", "text": "x"}), 404)
    for bad in (
        {"operation": "replace", "find": ""},
        {"operation": "prepend", "text": ""},
        {"operation": "shout"},
        {"operation": "prepend", "text": "x", "extra": 1},
        {"find": "a", "replace": "b"},
    ):
        assert_error(alice.post(url, json=bad), 400)
