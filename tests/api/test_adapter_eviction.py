"""The image engine keeps at most `max_resident_adapters` LoRA adapters per base: past it the least recently used
is unloaded and reloaded from its file when asked for again, with the same output; a request naming more adapters
than fit is a 400 that changes nothing."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import numpy as np
import pytest

from genfoundry.config import Settings
from genfoundry.models.random_lora import make_lora_file
from tests.conftest import LiveServer, free_port, make_home, start_server
from tests.helpers import assert_error, import_lora, lora_pixels, snapshot

BOUND = 2


@pytest.fixture(scope="module")
def bounded(tmp_path_factory: pytest.TempPathFactory, tiny_dir: Path) -> Iterator[LiveServer]:
    """A single-user server (no keys) that keeps two adapters per image base."""
    home = make_home(tmp_path_factory.mktemp("eviction"), tiny_dir)
    server = start_server(Settings(home=home, port=free_port(), max_resident_adapters=BOUND))
    yield server
    server.stop()


@pytest.fixture(scope="module")
def adapter_ids(bounded: LiveServer, tiny_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> list[str]:
    out = tmp_path_factory.mktemp("eviction-loras")
    ids = []
    with bounded.client() as client:
        for seed, name in enumerate(["a", "b", "c"], start=1):
            path = make_lora_file(tiny_dir / "sd15", "sd15", out / name, seed=seed)
            ids.append(import_lora(client, path, name=f"style {name}"))
    return ids


def _engine_metrics(client: httpx.Client) -> dict[str, float]:
    wanted = (
        'genfoundry_loaded_adapters{model="tiny-sd15"}',
        "genfoundry_engine_adapters_evicted_total",
        "genfoundry_engine_requests_served_total",
    )
    values = {}
    for line in client.get("/metrics").text.splitlines():
        name, _, value = line.rpartition(" ")
        if name in wanted:
            values[name] = float(value)
    return values


def test_evicted_adapters_reload_with_the_same_output(bounded: LiveServer, adapter_ids: list[str]) -> None:
    a, b, c = adapter_ids
    with bounded.client() as client:
        resident = {adapter_id: lora_pixels(client, adapter_id) for adapter_id in (a, b)}
        assert not np.array_equal(resident[a], resident[b])
        assert _engine_metrics(client)['genfoundry_loaded_adapters{model="tiny-sd15"}'] == BOUND

        # c evicts a (least recently used), a evicts b, b evicts c: every request past the first two reloads.
        evicted_before = _engine_metrics(client)["genfoundry_engine_adapters_evicted_total"]
        resident[c] = lora_pixels(client, c)
        for adapter_id in (a, b, c, a):
            assert np.array_equal(lora_pixels(client, adapter_id), resident[adapter_id]), adapter_id
            metrics = _engine_metrics(client)
            assert metrics['genfoundry_loaded_adapters{model="tiny-sd15"}'] <= BOUND
        assert metrics["genfoundry_engine_adapters_evicted_total"] - evicted_before == 5

        # Two adapters together fit: the pair is served, and the least recently used one of the three goes.
        both = lora_pixels(client, a, b)
        assert not np.array_equal(both, resident[a]) and not np.array_equal(both, resident[b])
        assert _engine_metrics(client)['genfoundry_loaded_adapters{model="tiny-sd15"}'] == BOUND


def test_more_adapters_than_fit_is_400_and_changes_nothing(bounded: LiveServer, adapter_ids: list[str]) -> None:
    with bounded.client() as client:
        lora_pixels(client, *adapter_ids[:2])
        before, files_before = _engine_metrics(client), snapshot(bounded, client)
        body = {
            "model": "tiny-sd15",
            "prompt": "a cat",
            "size": "64x64",
            "steps": 2,
            "loras": [{"id": adapter_id} for adapter_id in adapter_ids],
        }
        error = assert_error(client.post("/v1/images/generations", json=body), 400, param="loras")
        assert str(BOUND) in error["message"]
        # The same adapters by `model` and `loras` count once each: three is still too many.
        repeated = {**body, "model": adapter_ids[2], "loras": [{"id": adapter_id} for adapter_id in adapter_ids[:2]]}
        assert_error(client.post("/v1/images/generations", json=repeated), 400, param="loras")
        assert _engine_metrics(client) == before
        assert snapshot(bounded, client) == files_before
