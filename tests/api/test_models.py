"""Models: catalog bases, adapter import (diffusers and kohya formats), export, use and delete."""

from __future__ import annotations

import base64
import io
import json
import struct

import httpx
import numpy as np
import pytest
from PIL import Image
from safetensors.torch import load, save

from tests.conftest import LiveServer, LoraFiles
from tests.helpers import assert_error, snapshot


def upload(client: httpx.Client, data: bytes, **form: str) -> httpx.Response:
    fields = {"base": "tiny-sd15", "name": "Test LoRA", **form}
    return client.post(
        "/v1/models", files={"file": ("lora.safetensors", data, "application/octet-stream")}, data=fields
    )


def pixels(client: httpx.Client, **fields: object) -> np.ndarray:
    body = {
        "prompt": "a cat",
        "size": "64x64",
        "steps": 2,
        "seed": 4,
        "response_format": "b64_json",
        **fields,
    }
    response = client.post("/v1/images/generations", json=body)
    assert response.status_code == 200, response.text
    item = response.json()["data"][0]
    return np.asarray(Image.open(io.BytesIO(base64.b64decode(item["b64_json"])))).astype(int)


def test_models_list_has_catalog_and_tiny_bases(alice: httpx.Client) -> None:
    body = alice.get("/v1/models").json()
    assert body["object"] == "list"
    by_id = {item["id"]: item for item in body["data"]}
    for model_id in (
        "stable-diffusion-v1-5",
        "stable-diffusion-xl-base-1.0",
        "flux.1-dev",
        "flux.1-schnell",
        "tiny-sd15",
        "tiny-sdxl",
        "tiny-flux",
    ):
        assert by_id[model_id]["object"] == "model"
        assert by_id[model_id]["kind"] == "base"
    assert by_id["tiny-sdxl"]["family"] == "sdxl"
    one = alice.get("/v1/models/flux.1-dev").json()
    assert one["family"] == "flux"
    assert alice.get("/v1/models/nope").status_code == 404


def test_import_use_export_delete_adapter(
    live: LiveServer, alice: httpx.Client, bob: httpx.Client, lora_files: LoraFiles
) -> None:
    response = upload(alice, lora_files.sd15_a.read_bytes(), trigger_word="sks", tags="industry=technology,style=flat")
    assert response.status_code == 201, response.text
    adapter = response.json()
    assert adapter["kind"] == "adapter"
    assert adapter["base"] == "tiny-sd15"
    assert adapter["trigger_word"] == "sks"
    assert adapter["tags"] == {"industry": "technology", "style": "flat"}
    assert adapter["rank"] == 4
    adapter_id = adapter["id"]
    assert alice.get(f"/v1/models/{adapter_id}").json()["id"] == adapter_id
    assert adapter_id in [m["id"] for m in alice.get("/v1/models").json()["data"]]

    # Using the adapter changes the image and adds the trigger word once.
    plain = pixels(alice, model="tiny-sd15")
    styled = pixels(alice, model=adapter_id)
    assert np.abs(plain - styled).max() > 0
    revised = alice.post(
        "/v1/images/generations", json={"model": adapter_id, "prompt": "a cat", "size": "64x64", "steps": 2}
    ).json()["data"][0]["revised_prompt"]
    assert revised == "sks, a cat"
    already = alice.post(
        "/v1/images/generations",
        json={"model": adapter_id, "prompt": "a SKS cat", "size": "64x64", "steps": 2},
    ).json()["data"][0]["revised_prompt"]
    assert already == "a SKS cat"
    # The same adapter via `loras` with weight 1 equals using it as the model; weight 0 is the base.
    assert np.array_equal(
        pixels(alice, model="tiny-sd15", prompt="sks, a cat", loras=[{"id": adapter_id, "weight": 1.0}]),
        pixels(alice, model=adapter_id, prompt="sks, a cat"),
    )
    assert np.array_equal(
        pixels(alice, model="tiny-sd15", loras=[{"id": adapter_id, "weight": 0.0}]),
        pixels(alice, model="tiny-sd15", prompt="sks, a cat"),
    )
    # An industry picks the adapter tagged with it.
    assert np.array_equal(
        pixels(alice, model="tiny-sd15", prompt="sks, a cat", industry="Technology"),
        pixels(alice, model=adapter_id, prompt="sks, a cat"),
    )

    # Export in both formats; the kohya file re-imports and generates the same image.
    diffusers_file = alice.get(f"/v1/models/{adapter_id}/content")
    assert diffusers_file.status_code == 200
    assert any(key.startswith("unet.") for key in load(diffusers_file.content))
    kohya_file = alice.get(f"/v1/models/{adapter_id}/content", params={"format": "kohya"})
    assert kohya_file.status_code == 200
    kohya_keys = list(load(kohya_file.content))
    assert any(key.startswith("lora_unet_") and key.endswith(".lora_down.weight") for key in kohya_keys)
    assert alice.get(f"/v1/models/{adapter_id}/content", params={"format": "ckpt"}).status_code == 400
    reimported = upload(alice, kohya_file.content, name="from kohya")
    assert reimported.status_code == 201, reimported.text
    assert reimported.json()["source_format"] == "kohya"
    assert (
        np.abs(
            pixels(alice, model=reimported.json()["id"], prompt="sks, a cat")
            - pixels(alice, model=adapter_id, prompt="sks, a cat")
        ).max()
        <= 3
    )

    # Another user sees none of it.
    assert bob.get(f"/v1/models/{adapter_id}").status_code == 404
    assert bob.get(f"/v1/models/{adapter_id}/content").status_code == 404
    assert (
        bob.post("/v1/images/generations", json={"model": adapter_id, "prompt": "x", "size": "64x64"}).status_code
        == 404
    )
    assert (
        bob.post(
            "/v1/images/generations",
            json={"model": "tiny-sd15", "prompt": "x", "size": "64x64", "loras": [{"id": adapter_id}]},
        ).status_code
        == 404
    )
    assert bob.delete(f"/v1/models/{adapter_id}").status_code == 404
    assert adapter_id not in [m["id"] for m in bob.get("/v1/models").json()["data"]]

    folder = live.settings.home / "artifacts" / "adapters" / adapter_id
    assert folder.exists()
    assert alice.delete(f"/v1/models/{adapter_id}").json() == {
        "id": adapter_id,
        "object": "model",
        "deleted": True,
    }
    assert not folder.exists()
    assert alice.get(f"/v1/models/{adapter_id}").status_code == 404
    assert (
        alice.post("/v1/images/generations", json={"model": adapter_id, "prompt": "x", "size": "64x64"}).status_code
        == 404
    )
    assert alice.delete("/v1/models/tiny-sd15").status_code == 400


def test_adapter_for_another_base_is_refused(alice: httpx.Client, lora_files: LoraFiles) -> None:
    response = upload(alice, lora_files.sdxl.read_bytes(), base="tiny-sdxl", name="xl")
    assert response.status_code == 201, response.text
    xl_id = response.json()["id"]
    bad = alice.post(
        "/v1/images/generations",
        json={"model": "tiny-sd15", "prompt": "x", "size": "64x64", "loras": [{"id": xl_id, "weight": 1}]},
    )
    assert_error(bad, 400, param="loras")
    assert "tiny-sdxl" in bad.json()["error"]["message"]
    ok = alice.post("/v1/images/generations", json={"model": xl_id, "prompt": "x", "size": "64x64", "steps": 2})
    assert ok.status_code == 200, ok.text


def test_flux_adapter(alice: httpx.Client, lora_files: LoraFiles) -> None:
    response = upload(alice, lora_files.flux.read_bytes(), base="tiny-flux", name="flux style", trigger_word="ohwx")
    assert response.status_code == 201, response.text
    flux_id = response.json()["id"]
    base = pixels(alice, model="tiny-flux", prompt="ohwx, a cat")
    styled = pixels(alice, model=flux_id)
    assert np.abs(base - styled).max() > 0


def test_two_adapters_with_weights(alice: httpx.Client, lora_files: LoraFiles) -> None:
    a = upload(alice, lora_files.sd15_a.read_bytes(), name="a").json()["id"]
    b = upload(alice, lora_files.sd15_b.read_bytes(), name="b").json()["id"]
    only_a = pixels(alice, model="tiny-sd15", loras=[{"id": a, "weight": 1.0}])
    both = pixels(alice, model="tiny-sd15", loras=[{"id": a, "weight": 1.0}, {"id": b, "weight": 0.7}])
    assert np.abs(only_a - both).max() > 0
    assert np.array_equal(pixels(alice, model="tiny-sd15", loras=[{"id": a, "weight": 1.0}]), only_a)


def without_previews(models: list[dict]) -> list[dict]:
    """The models without their preview URLs, which are signed with an expiry that moves with the clock."""
    return [{key: value for key, value in model.items() if key != "preview_url"} for model in models]


def header_lying_safetensors() -> bytes:
    header = json.dumps(
        {
            "unet.x.lora_A.weight": {
                "dtype": "F32",
                "shape": [100000, 100000],
                "data_offsets": [0, 40000000000],
            }
        }
    ).encode()
    return struct.pack("<Q", len(header)) + header + b"\x00" * 16


def safetensors_of(tensors: dict) -> bytes:
    return save(tensors)


def bad_lora_cases(lora_files: LoraFiles) -> list[tuple[str, bytes, dict, int, str | None]]:
    import torch

    good = lora_files.sd15_a.read_bytes()
    return [
        ("not safetensors", b"hello, I am a text file", {}, 422, "file"),
        ("empty", b"", {}, 422, "file"),
        ("truncated", good[: len(good) // 2], {}, 422, "file"),
        ("lying header", header_lying_safetensors(), {}, 422, "file"),
        (
            "matches nothing",
            safetensors_of(
                {
                    "unet.nowhere.lora_A.weight": torch.zeros(4, 8),
                    "unet.nowhere.lora_B.weight": torch.zeros(8, 4),
                }
            ),
            {},
            400,
            "file",
        ),
        ("other family", lora_files.sdxl.read_bytes(), {}, 400, "file"),
        ("unknown base", good, {"base": "no-such-base"}, 404, "base"),
        ("bad tags", good, {"tags": "industry"}, 400, "tags"),
    ]


def test_bad_lora_uploads(live: LiveServer, alice: httpx.Client, lora_files: LoraFiles) -> None:
    for label, data, form, status, param in bad_lora_cases(lora_files):
        models_before = without_previews(alice.get("/v1/models").json()["data"])
        before = snapshot(live, alice)
        response = upload(alice, data, **form)
        error = assert_error(response, status)
        if param is not None:
            assert error["param"] == param, (label, error)
        assert without_previews(alice.get("/v1/models").json()["data"]) == models_before, label
        assert snapshot(live, alice) == before, label
    assert alice.get("/healthz").status_code == 200


@pytest.mark.parametrize("missing", ["file", "base", "name"])
def test_import_requires_fields(alice: httpx.Client, lora_files: LoraFiles, missing: str) -> None:
    files = {"file": ("l.safetensors", lora_files.sd15_a.read_bytes())}
    data = {"base": "tiny-sd15", "name": "x"}
    if missing == "file":
        files = {}
    else:
        data.pop(missing)
    assert_error(alice.post("/v1/models", files=files or None, data=data), 400)


def test_bases_say_whether_their_weights_are_here_and_how_to_fetch_them(alice: httpx.Client) -> None:
    by_id = {item["id"]: item for item in alice.get("/v1/models").json()["data"]}
    for tiny in ("tiny-sd15", "tiny-sdxl", "tiny-flux", "tiny-llm"):
        assert by_id[tiny]["weights_present"] is True, tiny
        assert by_id[tiny]["fetch_command"] is None, tiny
    for hub_id, source in (
        ("stable-diffusion-v1-5", "stable-diffusion-v1-5/stable-diffusion-v1-5"),
        ("qwen2.5-0.5b-instruct", "Qwen/Qwen2.5-0.5B-Instruct"),
    ):
        base = by_id[hub_id]
        # On a machine with that snapshot in its Hugging Face cache it is present; otherwise the command fetches it.
        if base["weights_present"]:
            assert base["fetch_command"] is None
        else:
            assert base["fetch_command"] == f"hf download {source}"
    assert alice.get("/v1/models/tiny-sd15").json()["weights_present"] is True
    assert by_id["router-default"]["weights_present"] is None


def test_rename_and_retag_an_adapter(
    live: LiveServer, alice: httpx.Client, bob: httpx.Client, lora_files: LoraFiles
) -> None:
    made = upload(alice, lora_files.sd15_a.read_bytes(), name="before", trigger_word="sks", tags="style=flat")
    adapter_id = made.json()["id"]
    assert made.json()["name"] == "before"
    assert made.json()["preview_url"] is None

    changed = alice.patch(
        f"/v1/models/{adapter_id}",
        json={"name": " after ", "trigger_word": "ohwx", "tags": {"Industry": "food ", "style": "photo"}},
    )
    assert changed.status_code == 200, changed.text
    assert changed.json()["id"] == adapter_id
    assert (changed.json()["name"], changed.json()["trigger_word"]) == ("after", "ohwx")
    assert changed.json()["tags"] == {"industry": "food", "style": "photo"}
    listed = {m["id"]: m for m in alice.get("/v1/models").json()["data"]}[adapter_id]
    assert (listed["name"], listed["trigger_word"], listed["tags"]) == ("after", "ohwx", changed.json()["tags"])
    # The new trigger word is the one generation adds; fields left out stay as they were.
    revised = alice.post(
        "/v1/images/generations", json={"model": adapter_id, "prompt": "a cat", "size": "64x64", "steps": 2}
    ).json()["data"][0]["revised_prompt"]
    assert revised == "ohwx, a cat"
    assert alice.patch(f"/v1/models/{adapter_id}", json={}).json()["trigger_word"] == "ohwx"
    cleared = alice.patch(f"/v1/models/{adapter_id}", json={"trigger_word": None}).json()
    assert (cleared["trigger_word"], cleared["name"], cleared["tags"]) == (
        None,
        "after",
        {"industry": "food", "style": "photo"},
    )

    # The newest image made with it is its preview, a signed URL that loads without the key.
    preview = alice.get(f"/v1/models/{adapter_id}").json()["preview_url"]
    assert preview is not None
    image = httpx.get(preview)
    assert image.status_code == 200 and image.headers["content-type"] == "image/png"
    assert {m["id"]: m for m in alice.get("/v1/models").json()["data"]}[adapter_id]["preview_url"] is not None

    hostile = "<script>alert(1)</script>"
    stored = alice.patch(f"/v1/models/{adapter_id}", json={"name": hostile, "trigger_word": hostile})
    assert (stored.json()["name"], stored.json()["trigger_word"]) == (hostile, hostile)  # kept as text

    for body, param in (
        ({"name": ""}, "name"),
        ({"name": "   "}, "name"),
        ({"name": None}, "name"),
        ({"name": "x" * 201}, "name"),
        ({"name": 5}, None),
        ({"trigger_word": "x" * 201}, "trigger_word"),
        ({"tags": None}, "tags"),
        ({"tags": "industry=food"}, None),
        ({"tags": {"industry": 5}}, None),
        ({"tags": {"<img src=x onerror=alert(1)>": "x"}}, "tags"),
        ({"tags": {"industry": ""}}, "tags"),
        ({"tags": {"industry": "x" * 101}}, "tags"),
        ({"tags": {f"k{n}": "v" for n in range(21)}}, "tags"),
        ({"owner_id": "someone"}, None),
        ({"base": "tiny-sdxl"}, None),
    ):
        assert_error(alice.patch(f"/v1/models/{adapter_id}", json=body), 400, param=param)
    assert_error(
        alice.patch(f"/v1/models/{adapter_id}", content=b"{not json", headers={"content-type": "application/json"}), 400
    )
    unchanged = alice.get(f"/v1/models/{adapter_id}").json()
    assert (unchanged["name"], unchanged["base"]) == (hostile, "tiny-sd15")

    # Another user's adapter does not exist for bob; bases and the router are not edited.
    assert_error(bob.patch(f"/v1/models/{adapter_id}", json={"name": "mine"}), 404)
    assert alice.get(f"/v1/models/{adapter_id}").json()["name"] == hostile
    assert_error(alice.patch("/v1/models/nope", json={"name": "x"}), 404)
    assert_error(alice.patch("/v1/models/tiny-sd15", json={"name": "x"}), 400, param="model")
    assert_error(alice.patch("/v1/models/router-default", json={"name": "x"}), 400, param="model")
    assert alice.delete(f"/v1/models/{adapter_id}").status_code == 200
