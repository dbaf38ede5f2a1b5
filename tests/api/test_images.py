"""Text-to-image and image-to-image through the real server."""

from __future__ import annotations

import base64
import io

import httpx
import pytest
from PIL import Image

from tests.conftest import LiveServer


def decode(item: dict) -> Image.Image:
    return Image.open(io.BytesIO(base64.b64decode(item["b64_json"])))


def generate(client: httpx.Client, **fields: object) -> httpx.Response:
    body = {"model": "tiny-sd15", "prompt": "a red fox in the snow", "size": "64x64", "steps": 2, **fields}
    return client.post("/v1/images/generations", json=body)


@pytest.mark.parametrize("model", ["tiny-sd15", "tiny-sdxl", "tiny-flux"])
def test_generation_returns_png_of_requested_size(alice: httpx.Client, model: str) -> None:
    response = generate(
        alice,
        model=model,
        response_format="b64_json",
        seed=3,
        size="64x32",
    )
    assert response.status_code == 200, response.text
    body = response.json()
    assert isinstance(body["created"], int)
    [item] = body["data"]
    image = decode(item)
    assert image.format == "PNG"
    assert image.size == (64, 32)
    assert item["seed"] == 3
    assert item["generation_time_s"] > 0
    assert item["id"].startswith("img_")


def test_same_seed_same_pixels_and_other_seed_differs(alice: httpx.Client) -> None:
    first = decode(generate(alice, seed=11, response_format="b64_json").json()["data"][0])
    again = decode(generate(alice, seed=11, response_format="b64_json").json()["data"][0])
    other = decode(generate(alice, seed=12, response_format="b64_json").json()["data"][0])
    assert first.tobytes() == again.tobytes()
    assert first.tobytes() != other.tobytes()


def test_n_images_have_consecutive_seeds(alice: httpx.Client) -> None:
    response = generate(alice, n=3, seed=100, response_format="b64_json")
    assert response.status_code == 200, response.text
    data = response.json()["data"]
    assert [item["seed"] for item in data] == [100, 101, 102]
    assert len({decode(item).tobytes() for item in data}) == 3


def test_url_is_signed_and_works_without_a_key(live: LiveServer, alice: httpx.Client) -> None:
    response = generate(alice, seed=5)
    assert response.status_code == 200, response.text
    url = response.json()["data"][0]["url"]
    assert "signature=" in url
    with httpx.Client() as anonymous:
        image = anonymous.get(url)
        assert image.status_code == 200
        assert image.headers["content-type"] == "image/png"
        assert Image.open(io.BytesIO(image.content)).size == (64, 64)
        tampered = anonymous.get(url.replace("signature=", "signature=0"))
        assert tampered.status_code == 401
        image_id = response.json()["data"][0]["id"]
        assert anonymous.get(f"{live.url}/v1/images/{image_id}").status_code == 401


def test_style_changes_prompt_and_negative(alice: httpx.Client) -> None:
    response = generate(alice, style="cinematic", seed=1)
    assert response.status_code == 200, response.text
    revised = response.json()["data"][0]["revised_prompt"]
    assert revised.startswith("cinematic still of a red fox in the snow")
    history = alice.get("/v1/generations", params={"limit": 1}).json()["data"][0]
    assert "cartoon" in history["negative_prompt"]
    assert history["params"]["style"] == "cinematic"


def test_image_to_image(alice: httpx.Client) -> None:
    source = Image.new("RGB", (80, 80), (200, 30, 30))
    buffer = io.BytesIO()
    source.save(buffer, format="PNG")
    response = alice.post(
        "/v1/images/edits",
        files={"image": ("in.png", buffer.getvalue(), "image/png")},
        data={
            "prompt": "a red square",
            "model": "tiny-sd15",
            "size": "64x64",
            "steps": "4",
            "strength": "0.5",
            "seed": "9",
            "response_format": "b64_json",
        },
    )
    assert response.status_code == 200, response.text
    image = decode(response.json()["data"][0])
    assert image.size == (64, 64)
    row = alice.get("/v1/generations", params={"limit": 1}).json()["data"][0]
    assert row["kind"] == "edit"
    assert row["params"]["strength"] == 0.5


def test_history_filter_patch_and_delete(live: LiveServer, alice: httpx.Client, bob: httpx.Client) -> None:
    ids = [generate(alice, seed=200 + i).json()["data"][0]["id"] for i in range(3)]
    page = alice.get("/v1/generations", params={"limit": 2})
    assert page.status_code == 200
    body = page.json()
    assert body["object"] == "list"
    assert [item["id"] for item in body["data"]] == [ids[2], ids[1]]
    assert body["has_more"] is True
    next_page = alice.get("/v1/generations", params={"limit": 2, "after": ids[1]}).json()
    assert next_page["data"][0]["id"] == ids[0]

    patched = alice.patch(f"/v1/generations/{ids[0]}", json={"favorite": True, "rating": 5, "feedback": "great"})
    assert patched.status_code == 200, patched.text
    assert patched.json()["favorite"] is True
    assert patched.json()["rating"] == 5
    favorites = alice.get("/v1/generations", params={"favorite": True}).json()["data"]
    assert ids[0] in [item["id"] for item in favorites]
    assert all(item["favorite"] for item in favorites)
    by_model = alice.get("/v1/generations", params={"model": "tiny-sdxl"}).json()["data"]
    assert all(item["model"] == "tiny-sdxl" for item in by_model)

    for bad in ({"rating": 0}, {"rating": 6}, {"favorite": None}, {"feedback": "x" * 5000}, {"unknown": 1}):
        response = alice.patch(f"/v1/generations/{ids[0]}", json=bad)
        assert response.status_code == 400, (bad, response.text)
    assert alice.get(f"/v1/generations/{ids[0]}").json()["rating"] == 5

    # Another user's generation does not exist for them.
    assert bob.get(f"/v1/generations/{ids[1]}").status_code == 404
    assert bob.patch(f"/v1/generations/{ids[1]}", json={"favorite": True}).status_code == 404
    assert bob.delete(f"/v1/generations/{ids[1]}").status_code == 404
    assert bob.get(f"/v1/images/{ids[1]}").status_code == 404
    assert ids[1] not in [item["id"] for item in bob.get("/v1/generations").json()["data"]]

    image_file = live.settings.home / "artifacts" / "images" / f"{ids[1]}.png"
    assert image_file.exists()
    deleted = alice.delete(f"/v1/generations/{ids[1]}")
    assert deleted.status_code == 200
    assert deleted.json() == {"id": ids[1], "object": "generation", "deleted": True}
    assert not image_file.exists()
    assert alice.get(f"/v1/generations/{ids[1]}").status_code == 404
    assert alice.get(f"/v1/images/{ids[1]}").status_code == 404
