"""Inpainting through /v1/images/edits: OpenAI's mask (transparent = edit) on the same loaded base, the area
outside the mask kept, and bad masks or several input images refused naming the field."""

from __future__ import annotations

import base64
import io

import httpx
import numpy as np
import openai
import pytest
from PIL import Image

from tests.conftest import LiveServer
from tests.helpers import assert_error, snapshot
from tests.openai_schema import assert_matches_openai

SIZE = (64, 64)


def encoded(image: Image.Image, fmt: str = "PNG") -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format=fmt)
    return buffer.getvalue()


def source() -> Image.Image:
    """A picture with detail, so 'kept' means more than one flat colour."""
    rng = np.random.default_rng(0)
    return Image.fromarray(rng.integers(0, 256, (*SIZE[::-1], 3), dtype=np.uint8))


def left_half_mask(size: tuple[int, int] = SIZE) -> Image.Image:
    """OpenAI's mask: opaque everywhere except the left half, fully transparent (alpha 0): the area to edit."""
    mask = Image.new("RGBA", size, (0, 0, 0, 255))
    mask.paste((0, 0, 0, 0), (0, 0, size[0] // 2, size[1]))
    return mask


def edit(client: httpx.Client, *, files: list[tuple[str, tuple[str, bytes, str]]], **form: str) -> httpx.Response:
    data = {"prompt": "a green apple", "model": "tiny-sd15", "size": "64x64", "steps": "4", "seed": "3", **form}
    return client.post("/v1/images/edits", files=files, data={"response_format": "b64_json", **data})


@pytest.mark.parametrize("model", ["tiny-sd15", "tiny-sdxl", "tiny-flux"])
def test_mask_repaints_only_the_transparent_area(alice: httpx.Client, model: str) -> None:
    image = source()
    response = edit(
        alice,
        model=model,
        files=[
            ("image", ("in.png", encoded(image), "image/png")),
            ("mask", ("mask.png", encoded(left_half_mask()), "image/png")),
        ],
    )
    assert response.status_code == 200, response.text
    assert_matches_openai(response.json(), "POST", "/v1/images/edits")
    out = np.asarray(Image.open(io.BytesIO(base64.b64decode(response.json()["data"][0]["b64_json"]))).convert("RGB"))
    before = np.asarray(image).astype(int)
    kept = np.abs(out[:, 32:].astype(int) - before[:, 32:]).mean()
    changed = np.abs(out[:, :32].astype(int) - before[:, :32]).mean()
    assert kept < 1.0  # outside the mask: the input's own pixels
    assert changed > 20.0  # inside: repainted
    row = alice.get(f"/v1/generations/{response.json()['data'][0]['id']}").json()
    assert row["kind"] == "edit"
    assert row["params"]["mask"] is True
    assert row["params"]["strength"] == 1.0  # inpainting repaints the masked area fully unless told otherwise


def engine_metric(client: httpx.Client, name: str) -> float:
    for line in client.get("/metrics").text.splitlines():
        if line.startswith(name + " "):
            return float(line.split(" ")[1])
    raise AssertionError(f"no metric {name}")


def test_inpainting_shares_the_loaded_base(alice: httpx.Client) -> None:
    plain = {"model": "tiny-sd15", "prompt": "x", "size": "64x64", "steps": 2}
    assert alice.post("/v1/images/generations", json=plain).status_code == 200  # the base is loaded
    loads = engine_metric(alice, "genfoundry_engine_loads_total")
    size = engine_metric(alice, 'genfoundry_loaded_model_bytes{model="tiny-sd15"}')
    files = [
        ("image", ("in.png", encoded(source()), "image/png")),
        ("mask", ("mask.png", encoded(left_half_mask()), "image/png")),
    ]
    assert edit(alice, files=files).status_code == 200
    assert engine_metric(alice, "genfoundry_engine_loads_total") == loads  # no second load
    assert engine_metric(alice, 'genfoundry_loaded_model_bytes{model="tiny-sd15"}') == size


BAD_MASKS = [
    (lambda: encoded(left_half_mask((32, 64))), 400),  # another size than the image
    (lambda: b"this is not an image at all", 422),
    (lambda: encoded(Image.new("RGB", SIZE, (0, 0, 0))), 400),  # no alpha channel: nothing marks the area
    (lambda: encoded(left_half_mask().convert("RGB"), "JPEG"), 400),  # not a PNG
]


@pytest.mark.parametrize(("make_mask", "status"), BAD_MASKS)
def test_bad_masks_are_refused(live: LiveServer, alice: httpx.Client, make_mask: object, status: int) -> None:
    before = snapshot(live, alice)
    files = [
        ("image", ("in.png", encoded(source()), "image/png")),
        ("mask", ("mask.png", make_mask(), "image/png")),  # type: ignore[operator]
    ]
    assert_error(edit(alice, files=files), status, param="mask")
    assert snapshot(live, alice) == before
    assert edit(alice, files=files[:1]).status_code == 200  # the server is still up


@pytest.mark.parametrize("field", ["image", "image[]"])
def test_several_input_images_are_refused(live: LiveServer, alice: httpx.Client, field: str) -> None:
    before = snapshot(live, alice)
    files = [(field, (f"in{i}.png", encoded(source()), "image/png")) for i in range(2)]
    error = assert_error(edit(alice, files=files), 400, param="image")
    assert "one image" in error["message"]
    assert snapshot(live, alice) == before


def test_missing_image_is_refused(alice: httpx.Client) -> None:
    assert_error(edit(alice, files=[("mask", ("m.png", encoded(left_half_mask()), "image/png"))]), 400, param="image")


def test_openai_client_edit_with_mask(alice_openai: openai.OpenAI) -> None:
    image = source()
    result = alice_openai.images.edit(
        model="tiny-sd15",
        image=("in.png", encoded(image), "image/png"),
        mask=("mask.png", encoded(left_half_mask()), "image/png"),
        prompt="a green apple",
        size="64x64",
        response_format="b64_json",
        output_format="png",
        extra_body={"steps": 4, "seed": 1},
    )
    out = np.asarray(Image.open(io.BytesIO(base64.b64decode(result.data[0].b64_json or ""))).convert("RGB"))
    assert np.abs(out[:, 32:].astype(int) - np.asarray(image)[:, 32:].astype(int)).mean() < 1.0
    assert result.output_format == "png"


def test_openai_client_list_of_images_is_a_clear_400(alice_openai: openai.OpenAI) -> None:
    with pytest.raises(openai.BadRequestError) as raised:
        alice_openai.images.edit(
            model="tiny-sd15",
            image=[("a.png", encoded(source()), "image/png"), ("b.png", encoded(source()), "image/png")],
            prompt="two pictures",
            size="64x64",
        )
    assert raised.value.body["param"] == "image"  # type: ignore[index]
