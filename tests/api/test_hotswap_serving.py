"""A server with a compiled denoiser and LoRA hotswap (GENFOUNDRY_IMAGE_SPEED__COMPILE, __HOTSWAP_MAX_RANK; compiled
with torch's eager backend, in seconds on a CPU): adapters uploaded as usual take turns in one slot per base with
stable output and no compile after the first batch (/metrics); two adapters in one request, or one of a rank above the
maximum, is a 400 that names why and changes nothing."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import numpy as np
import pytest

from genfoundry.config import ImageSpeedSettings, Settings
from genfoundry.inference import pipeline_speed
from genfoundry.models.random_lora import make_lora_file
from tests.conftest import LiveServer, free_port, make_home, start_server
from tests.helpers import assert_error, import_lora, lora_pixels, lora_request, snapshot

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
            ids[name] = import_lora(client, path, name=f"style {name}")
    return ids


def _compile_warmup_s(client: httpx.Client) -> float:
    for line in client.get("/metrics").text.splitlines():
        name, _, value = line.rpartition(" ")
        if name == 'genfoundry_compile_warmup_seconds{model="tiny-sd15"}':
            return float(value)
    raise AssertionError("no compile warm-up gauge for tiny-sd15 in /metrics")


def test_adapters_take_turns_with_stable_output_and_no_compile(hotswap: LiveServer, adapters: dict[str, str]) -> None:
    with hotswap.client() as client:
        first = {"a": lora_pixels(client, adapters["a"])}
        warmup = _compile_warmup_s(client)
        first["b"] = lora_pixels(client, adapters["b"])
        assert not np.array_equal(first["a"], first["b"])
        for name in ("a", "b", "a"):
            assert np.array_equal(lora_pixels(client, adapters[name]), first[name]), name

        assert warmup > 0
        assert _compile_warmup_s(client) == warmup  # the switches compiled nothing


def test_two_adapters_or_a_rank_above_the_maximum_is_400_and_changes_nothing(
    hotswap: LiveServer, adapters: dict[str, str]
) -> None:
    with hotswap.client() as client:
        before = lora_pixels(client, adapters["a"])
        files_before = snapshot(hotswap, client)

        two = assert_error(
            client.post("/v1/images/generations", json=lora_request(adapters["a"], adapters["b"])), 400, param="loras"
        )
        assert "one adapter at a time" in two["message"] and "hotswap_max_rank" in two["message"]
        big = assert_error(
            client.post("/v1/images/generations", json=lora_request(adapters["big"])), 400, param="loras"
        )
        assert f"has rank 16, above this server's image_speed.hotswap_max_rank ({MAX_RANK})" in big["message"]

        assert snapshot(hotswap, client) == files_before
        assert np.array_equal(lora_pixels(client, adapters["a"]), before)
