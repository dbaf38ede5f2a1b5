"""A server with a compiled denoiser and LoRA hotswap (GENFOUNDRY_IMAGE_SPEED__COMPILE, __HOTSWAP_MAX_RANK; compiled
with torch's eager backend, in seconds on a CPU): adapters uploaded as usual take turns in one slot per base with
stable output and no compile after the first batch (/metrics); two adapters in one request, or one of a rank above the
maximum, is a 400 that names why and changes nothing."""

from __future__ import annotations

import base64
import io
from collections.abc import Iterator
from pathlib import Path

import httpx
import numpy as np
import pytest
from PIL import Image

from genfoundry.config import ImageSpeedSettings, Settings
from genfoundry.inference import pipeline_speed
from genfoundry.models.random_lora import make_lora_file
from tests.conftest import LiveServer, free_port, make_home, start_server
from tests.helpers import assert_error, snapshot

MAX_RANK = 8


@pytest.fixture(scope="module")
def hotswap(tmp_path_factory: pytest.TempPathFactory, tiny_dir: Path) -> Iterator[LiveServer]:
    home = make_home(tmp_path_factory.mktemp("hotswap"), tiny_dir)
    speed = ImageSpeedSettings(compile=True, hotswap_max_rank=MAX_RANK)
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(pipeline_speed, "_compile_backend", "eager")
        server = start_server(Settings(home=home, port=free_port(), image_speed=speed))
        yield server
        server.stop()


@pytest.fixture(scope="module")
def adapters(hotswap: LiveServer, tiny_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    """Registered adapter ids: `a` (rank 4), `b` (rank 2), `big` (rank 16)."""
    out = tmp_path_factory.mktemp("hotswap-loras")
    ids = {}
    with hotswap.client() as client:
        for name, seed, rank in (("a", 1, 4), ("b", 2, 2), ("big", 3, 16)):
            path = make_lora_file(tiny_dir / "sd15", "sd15", out / name, seed=seed, rank=rank)
            response = client.post(
                "/v1/models",
                files={"file": ("lora.safetensors", path.read_bytes(), "application/octet-stream")},
                data={"base": "tiny-sd15", "name": f"style {name}"},
            )
            assert response.status_code == 201, response.text
            ids[name] = response.json()["id"]
    return ids


def _body(*adapter_ids: str) -> dict[str, object]:
    return {
        "model": "tiny-sd15",
        "prompt": "a cat",
        "size": "64x64",
        "steps": 2,
        "seed": 4,
        "response_format": "b64_json",
        "loras": [{"id": adapter_id} for adapter_id in adapter_ids],
    }


def _pixels(client: httpx.Client, *adapter_ids: str) -> np.ndarray:
    response = client.post("/v1/images/generations", json=_body(*adapter_ids))
    assert response.status_code == 200, response.text
    item = response.json()["data"][0]
    return np.asarray(Image.open(io.BytesIO(base64.b64decode(item["b64_json"])))).astype(int)


def _compile_warmup_s(client: httpx.Client) -> float:
    for line in client.get("/metrics").text.splitlines():
        name, _, value = line.rpartition(" ")
        if name == 'genfoundry_compile_warmup_seconds{model="tiny-sd15"}':
            return float(value)
    raise AssertionError("no compile warm-up gauge for tiny-sd15 in /metrics")


def test_adapters_take_turns_with_stable_output_and_no_compile(hotswap: LiveServer, adapters: dict[str, str]) -> None:
    with hotswap.client() as client:
        first = {"a": _pixels(client, adapters["a"])}
        warmup = _compile_warmup_s(client)
        first["b"] = _pixels(client, adapters["b"])
        assert not np.array_equal(first["a"], first["b"])
        for name in ("a", "b", "a"):
            assert np.array_equal(_pixels(client, adapters[name]), first[name]), name

        assert warmup > 0
        assert _compile_warmup_s(client) == warmup  # the switches compiled nothing


def test_two_adapters_or_a_rank_above_the_maximum_is_400_and_changes_nothing(
    hotswap: LiveServer, adapters: dict[str, str]
) -> None:
    with hotswap.client() as client:
        before = _pixels(client, adapters["a"])
        files_before = snapshot(hotswap, client)

        two = assert_error(
            client.post("/v1/images/generations", json=_body(adapters["a"], adapters["b"])), 400, param="loras"
        )
        assert "one adapter at a time" in two["message"] and "hotswap_max_rank" in two["message"]
        big = assert_error(client.post("/v1/images/generations", json=_body(adapters["big"])), 400, param="loras")
        assert f"has rank 16, above this server's image_speed.hotswap_max_rank ({MAX_RANK})" in big["message"]

        assert snapshot(hotswap, client) == files_before
        assert np.array_equal(_pixels(client, adapters["a"]), before)
