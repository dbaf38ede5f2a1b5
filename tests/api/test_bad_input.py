"""Every hostile input gets a clear 4xx in OpenAI's error shape, and changes nothing."""

from __future__ import annotations

import io
import struct
import zlib
from pathlib import Path

import httpx
import pytest
from PIL import Image

from tests.conftest import LiveServer
from tests.helpers import assert_error, snapshot

GOOD = {"model": "tiny-sd15", "prompt": "a cat", "size": "64x64", "steps": 2}

BAD_GENERATIONS = [
    ({"model": "no-such-model"}, 404, "model"),
    ({"model": "tiny-flux", "size": "72x72"}, 400, "size"),
    ({"size": "60x64"}, 400, "size"),
    ({"size": "0x64"}, 400, "size"),
    ({"size": "4096x4096"}, 400, "size"),
    ({"size": "big"}, 400, "size"),
    ({"n": 0}, 400, "n"),
    ({"n": 1000}, 400, "n"),
    ({"steps": 0}, 400, "steps"),
    ({"steps": 100000}, 400, "steps"),
    ({"guidance_scale": -1}, 400, "guidance_scale"),
    ({"prompt": ""}, 400, "prompt"),
    ({"prompt": "   "}, 400, "prompt"),
    ({"style": "no-such-style"}, 400, "style"),
    ({"industry": "mining"}, 400, "industry"),
    ({"loras": [{"id": "no-such-lora", "weight": 1}]}, 404, "loras"),
    ({"loras": [{"id": "x", "weight": "heavy"}]}, 400, None),
    ({"response_format": "jpeg"}, 400, "response_format"),
    ({"seed": -5}, 400, "seed"),
    ({"surprise": True}, 400, "surprise"),
]


@pytest.mark.parametrize(("overrides", "status", "param"), BAD_GENERATIONS)
def test_bad_generation_requests(
    live: LiveServer, alice: httpx.Client, overrides: dict, status: int, param: str | None
) -> None:
    before = snapshot(live, alice)
    response = alice.post("/v1/images/generations", json={**GOOD, **overrides})
    assert_error(response, status, param=param)
    assert snapshot(live, alice) == before


def test_nan_guidance_and_malformed_json(live: LiveServer, alice: httpx.Client) -> None:
    before = snapshot(live, alice)
    body = '{"model": "tiny-sd15", "prompt": "a cat", "size": "64x64", "guidance_scale": NaN}'
    response = alice.post("/v1/images/generations", content=body, headers={"content-type": "application/json"})
    assert_error(response, 400)
    response = alice.post(
        "/v1/images/generations", content=b'{"model": "tiny', headers={"content-type": "application/json"}
    )
    assert_error(response, 400)
    assert snapshot(live, alice) == before


def test_body_over_limit(live: LiveServer, alice: httpx.Client) -> None:
    limit = live.settings.limits.max_body_bytes
    response = alice.post(
        "/v1/images/generations",
        content=b"{" + b" " * (limit + 10) + b"}",
        headers={"content-type": "application/json"},
    )
    assert_error(response, 413)

    def chunks():  # no Content-Length: the cap is enforced while streaming
        for _ in range(limit // (1 << 20) + 2):
            yield b" " * (1 << 20)

    response = alice.post("/v1/images/generations", content=chunks(), headers={"content-type": "application/json"})
    assert_error(response, 413)
    assert alice.get("/healthz").status_code == 200


def png_bytes(size: tuple[int, int] = (64, 64)) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", size, (10, 200, 10)).save(buffer, format="PNG")
    return buffer.getvalue()


def png_header_only(width: int, height: int) -> bytes:
    """A PNG whose IHDR declares width×height, with a tiny (invalid) body."""
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    chunk = b"IHDR" + ihdr
    return (
        b"\x89PNG\r\n\x1a\n"
        + struct.pack(">I", len(ihdr))
        + chunk
        + struct.pack(">I", zlib.crc32(chunk))
        + b"\x00\x00\x00\x00IEND\xaeB`\x82"
    )


BAD_UPLOADS = [
    ("text.png", b"this is not an image at all", 422),
    ("empty.png", b"", 422),
    ("truncated.png", png_bytes()[:120], 422),
    ("huge.png", png_header_only(60000, 60000), 413),
]


@pytest.mark.parametrize(("name", "data", "status"), BAD_UPLOADS)
def test_bad_edit_uploads(live: LiveServer, alice: httpx.Client, name: str, data: bytes, status: int) -> None:
    before = snapshot(live, alice)
    response = alice.post(
        "/v1/images/edits",
        files={"image": (name, data, "image/png")},
        data={"prompt": "a cat", "model": "tiny-sd15", "size": "64x64", "steps": "2"},
    )
    assert_error(response, status, param="image")
    assert snapshot(live, alice) == before


@pytest.mark.parametrize(
    ("fields", "param"),
    [
        ({"strength": "0"}, "strength"),
        ({"strength": "1.5"}, "strength"),
        ({"strength": "0.4"}, "steps"),  # 2 steps × 0.4 leaves no denoising step (was a 500 from diffusers)
        ({"loras": "not json"}, "loras"),
        ({"n": "99"}, "n"),
    ],
)
def test_bad_edit_fields(live: LiveServer, alice: httpx.Client, fields: dict, param: str) -> None:
    before = snapshot(live, alice)
    data = {"prompt": "a cat", "model": "tiny-sd15", "size": "64x64", "steps": "2", **fields}
    response = alice.post("/v1/images/edits", files={"image": ("a.png", png_bytes(), "image/png")}, data=data)
    assert_error(response, 400, param=param)
    assert snapshot(live, alice) == before


@pytest.mark.parametrize("strength", ["nan", "inf", "-inf"])
def test_non_finite_numbers_are_named_as_such(live: LiveServer, alice: httpx.Client, strength: str) -> None:
    """NaN and Infinity (a form field, or a JSON literal Python's parser reads) fail as such, not as out of range."""
    before = snapshot(live, alice)
    data = {"prompt": "a cat", "model": "tiny-sd15", "size": "64x64", "strength": strength}
    response = alice.post("/v1/images/edits", files={"image": ("a.png", png_bytes(), "image/png")}, data=data)
    assert "must be a finite number" in assert_error(response, 400, param="strength")["message"]
    hyper = '{"validation_fraction": NaN, "c": Infinity}'
    body = '{"model": "all-MiniLM-L6-v2", "training_file": "file_x", "method": {"type": "classifier", '
    body += f'"classifier": {{"hyperparameters": {hyper}}}}}}}'
    response = alice.post("/v1/fine_tuning/jobs", content=body, headers={"content-type": "application/json"})
    error = assert_error(response, 400)
    assert error["message"].count("must be a finite number") == 2, error
    assert snapshot(live, alice) == before


def test_auth_failures(live: LiveServer, keys) -> None:
    with live.client() as anonymous:
        assert_error(anonymous.post("/v1/images/generations", json=GOOD), 401)
        assert_error(anonymous.get("/v1/models"), 401)
    with live.client(keys.revoked) as revoked:
        assert_error(revoked.get("/v1/generations"), 401)
    with live.client("gf-not-a-real-key") as wrong:
        assert_error(wrong.get("/v1/models"), 401)
    with httpx.Client(base_url=live.url, headers={"Authorization": "Basic abc"}) as basic:
        assert_error(basic.get("/v1/models"), 401)


def test_server_keeps_serving_and_writes_only_under_home(live: LiveServer, alice: httpx.Client, tmp_path: Path) -> None:
    assert alice.get("/healthz").json() == {"status": "ok"}
    response = alice.post("/v1/images/generations", json=GOOD)
    assert response.status_code == 200
    home = live.settings.home.resolve()
    for path in home.rglob("*"):
        if path.is_symlink():
            continue
        assert path.resolve().is_relative_to(home)


@pytest.mark.parametrize("model", ["stable-diffusion-v1-5", "flux.1-dev"])
def test_catalog_model_without_weights_names_the_model(live: LiveServer, alice: httpx.Client, model: str) -> None:
    before = snapshot(live, alice)
    response = alice.post("/v1/images/generations", json={**GOOD, "model": model, "size": "64x64"})
    error = assert_error(response, 503)
    assert error["code"] == "model_unavailable"
    assert model in error["message"]
    assert "is not available locally and cannot be fetched" in error["message"]  # an answer, not a download
    assert "hf download" in error["message"]
    assert snapshot(live, alice) == before
    assert alice.post("/v1/images/generations", json=GOOD).status_code == 200


def test_good_requests_succeed_while_hostile_ones_arrive(live: LiveServer, keys) -> None:
    from concurrent.futures import ThreadPoolExecutor

    hostile = [
        ("json", {"content": b'{"model": "tiny', "headers": {"content-type": "application/json"}}),
        ("json", {"json": {**GOOD, "size": "0x0"}}),
        ("json", {"json": {**GOOD, "model": "no-such"}}),
        ("edit", {"files": {"image": ("x.png", png_header_only(60000, 60000), "image/png")}, "data": GOOD}),
        ("edit", {"files": {"image": ("x.png", b"not an image", "image/png")}, "data": GOOD}),
    ]

    def send_hostile(i: int) -> int:
        kind, kwargs = hostile[i % len(hostile)]
        path = "/v1/images/generations" if kind == "json" else "/v1/images/edits"
        with live.client(keys.bob) as client:
            return client.post(path, **kwargs).status_code

    def send_good(i: int) -> int:
        with live.client(keys.alice) as client:
            return client.post("/v1/images/generations", json={**GOOD, "seed": i}).status_code

    with ThreadPoolExecutor(6) as pool:
        bad = pool.map(send_hostile, range(30))
        good = pool.map(send_good, range(6))
        bad_statuses, good_statuses = list(bad), list(good)
    assert good_statuses == [200] * 6
    assert all(400 <= status < 500 for status in bad_statuses), bad_statuses
