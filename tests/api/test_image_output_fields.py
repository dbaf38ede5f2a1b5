"""OpenAI's image fields through the real server: quality, output_format / output_compression, background,
moderation, and each one's bad values refused naming the field with nothing written."""

from __future__ import annotations

import base64
import io

import httpx
import pytest
from PIL import Image

from genfoundry.services.image_quality import quality_steps
from tests.conftest import LiveServer
from tests.helpers import assert_error, snapshot
from tests.openai_schema import assert_matches_openai


def generate(client: httpx.Client, **fields: object) -> httpx.Response:
    body = {"model": "tiny-sd15", "prompt": "a red fox in the snow", "size": "64x64", "steps": 2, **fields}
    return client.post("/v1/images/generations", json=body)


def png(size: tuple[int, int] = (64, 64)) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", size, (200, 30, 30)).save(buffer, format="PNG")
    return buffer.getvalue()


def test_quality_is_a_fraction_of_the_bases_default_steps() -> None:
    table = {q: quality_steps(q, family="flux", default_steps=28, max_steps=150) for q in ("low", "medium", "high")}
    assert table == {"low": 7, "medium": 14, "high": 28}
    assert quality_steps("hd", family="sdxl", default_steps=30, max_steps=40) == 40  # capped by the limit
    assert quality_steps("low", family="sd15", default_steps=30, max_steps=150) == 10  # SD's floor
    assert quality_steps("standard", family="sd15", default_steps=30, max_steps=150) == 30
    assert quality_steps(None, family="flux", default_steps=4, max_steps=150) == 4


@pytest.mark.parametrize(("quality", "steps"), [("low", 1), ("medium", 2), ("high", 4), ("auto", 4), ("hd", 6)])
def test_quality_chooses_the_steps(alice: httpx.Client, quality: str, steps: int) -> None:
    # tiny-flux's default is 4 steps
    response = alice.post(
        "/v1/images/generations",
        json={"model": "tiny-flux", "prompt": "a fox", "size": "64x64", "quality": quality, "seed": 1},
    )
    assert response.status_code == 200, response.text
    assert response.json()["quality"] == ("high" if quality in ("auto", "hd") else quality)
    row = alice.get(f"/v1/generations/{response.json()['data'][0]['id']}").json()
    assert row["params"]["steps"] == steps
    assert row["params"]["quality"] == quality


def test_explicit_steps_win_over_quality(alice: httpx.Client) -> None:
    response = generate(alice, model="tiny-flux", quality="low", steps=3)
    assert response.status_code == 200, response.text
    assert "quality" not in response.json()
    row = alice.get(f"/v1/generations/{response.json()['data'][0]['id']}").json()
    assert row["params"]["steps"] == 3
    assert row["params"]["quality"] is None


@pytest.mark.parametrize(
    ("fmt", "pillow", "media_type"), [("jpeg", "JPEG", "image/jpeg"), ("webp", "WEBP", "image/webp")]
)
def test_output_format_everywhere(alice: httpx.Client, fmt: str, pillow: str, media_type: str) -> None:
    response = generate(alice, output_format=fmt, output_compression=40, response_format="b64_json", seed=4)
    assert response.status_code == 200, response.text
    body = response.json()
    assert_matches_openai(body, "POST", "/v1/images/generations")
    assert body["output_format"] == fmt
    assert body["background"] == "opaque"
    image = Image.open(io.BytesIO(base64.b64decode(body["data"][0]["b64_json"])))
    assert image.format == pillow
    assert image.size == (64, 64)
    # the stored file and its URL: the same format, the right content type, in the history too
    row = alice.get(f"/v1/generations/{body['data'][0]['id']}").json()
    assert row["params"]["output_format"] == fmt
    assert row["params"]["output_compression"] == 40
    with httpx.Client() as anonymous:
        download = anonymous.get(row["url"])
    assert download.status_code == 200
    assert download.headers["content-type"] == media_type
    assert Image.open(io.BytesIO(download.content)).format == pillow
    by_key = alice.get(f"/v1/images/{row['id']}")
    assert by_key.headers["content-type"] == media_type


def test_output_compression_makes_smaller_files(alice: httpx.Client) -> None:
    def size(compression: int) -> int:
        body = generate(
            alice, output_format="jpeg", output_compression=compression, response_format="b64_json", seed=9
        ).json()
        return len(base64.b64decode(body["data"][0]["b64_json"]))

    assert size(5) < size(100)


def test_png_stays_the_default_and_background_moderation_are_accepted(alice: httpx.Client) -> None:
    response = generate(alice, background="opaque", moderation="low", response_format="b64_json")
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["output_format"] == "png"
    assert Image.open(io.BytesIO(base64.b64decode(body["data"][0]["b64_json"]))).format == "PNG"
    assert generate(alice, background="auto", moderation="auto").status_code == 200


def test_edits_take_the_same_fields(alice: httpx.Client) -> None:
    response = alice.post(
        "/v1/images/edits",
        files={"image": ("in.png", png(), "image/png")},
        data={
            "prompt": "a red square",
            "model": "tiny-sd15",
            "size": "64x64",
            "steps": "4",
            "output_format": "webp",
            "quality": "medium",
            "background": "opaque",
            "moderation": "auto",
            "response_format": "b64_json",
        },
    )
    assert response.status_code == 200, response.text
    body = response.json()
    assert_matches_openai(body, "POST", "/v1/images/edits")
    assert Image.open(io.BytesIO(base64.b64decode(body["data"][0]["b64_json"]))).format == "WEBP"


BAD_FIELDS = [
    ({"partial_images": 4, "stream": True}, "partial_images"),
    ({"output_compression": 101, "output_format": "jpeg"}, "output_compression"),
    ({"output_compression": -1, "output_format": "webp"}, "output_compression"),
    ({"quality": "ultra"}, "quality"),
    ({"background": "transparent"}, "background"),
    ({"output_compression": 50, "output_format": "png"}, "output_compression"),
    ({"output_compression": 50}, "output_compression"),  # png is the default
    ({"output_format": "gif"}, "output_format"),
    ({"moderation": "strict"}, "moderation"),
    ({"stream": True, "n": 2}, "n"),
]


@pytest.mark.parametrize(("fields", "param"), BAD_FIELDS)
def test_bad_generation_fields(live: LiveServer, alice: httpx.Client, fields: dict, param: str) -> None:
    before = snapshot(live, alice)
    error = assert_error(generate(alice, **fields), 400, param=param)
    assert param in error["message"]
    assert snapshot(live, alice) == before
    assert generate(alice).status_code == 200  # the server is still up


@pytest.mark.parametrize(("fields", "param"), BAD_FIELDS)
def test_bad_edit_fields(live: LiveServer, alice: httpx.Client, fields: dict, param: str) -> None:
    before = snapshot(live, alice)
    form = {"prompt": "a square", "model": "tiny-sd15", "size": "64x64", "steps": "4"}
    form.update({key: str(value).lower() for key, value in fields.items()})
    response = alice.post("/v1/images/edits", files={"image": ("in.png", png(), "image/png")}, data=form)
    assert_error(response, 400, param=param)
    assert snapshot(live, alice) == before
