"""ImageEngine on real tiny random-weight pipelines: generation, seeds, img2img, LoRA switching, batching,
back-pressure, LRU eviction and offline failures. Everything runs on CPU through the real loading code."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from genfoundry.errors import Invalid, ModelUnavailable, Overloaded
from genfoundry.inference import image as image_module
from genfoundry.inference.image import GeneratedImage, ImageEngine, ImageJob, LoraSpec
from genfoundry.inference.loader import BaseModelSpec, estimate_pipeline_bytes, load_pipeline
from genfoundry.models.random_lora import make_lora_file

FAMILIES = ("sd15", "sdxl", "flux")
GiB = 1024**3


@pytest.fixture(scope="module")
def tiny_specs(tiny_dir: Path) -> dict[str, BaseModelSpec]:
    return {
        family: BaseModelSpec(id=f"tiny-{family}", family=family, source=str(tiny_dir / family)) for family in FAMILIES
    }


@pytest.fixture(scope="module")
def sd15_loras(tiny_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    root = tmp_path_factory.mktemp("loras")
    return {
        name: str(make_lora_file(tiny_dir / "sd15", "sd15", root / name, seed=seed))
        for name, seed in (("a", 1), ("b", 2))
    }


def _engine(**overrides: Any) -> ImageEngine:
    options: dict[str, Any] = dict(
        device="cpu",
        dtype="float32",
        memory_budget_bytes=4 * GiB,
        max_queue=16,
        max_batch_size=8,
        batch_timeout_s=0.02,
    )
    options.update(overrides)
    return ImageEngine(**options)


@pytest.fixture(scope="module")
def engine() -> Iterator[ImageEngine]:
    eng = _engine()
    yield eng
    eng.close()


@pytest.fixture
def load_calls(monkeypatch: pytest.MonkeyPatch) -> list[Any]:
    """Spy on the engine's loader: every pipeline it loads, in order."""
    loaded: list[Any] = []

    def spy(*args: Any, **kwargs: Any) -> Any:
        pipe = load_pipeline(*args, **kwargs)
        loaded.append(pipe)
        return pipe

    monkeypatch.setattr(image_module, "load_pipeline", spy)
    return loaded


def _job(spec: BaseModelSpec, *, seeds: tuple[int, ...] = (0,), **overrides: Any) -> ImageJob:
    fields: dict[str, Any] = dict(
        base=spec,
        prompt="a photo of a cat",
        negative_prompt="blurry",
        width=64,
        height=64,
        steps=2,
        guidance_scale=5.0,
        seeds=seeds,
    )
    fields.update(overrides)
    return ImageJob(**fields)


def _pixels(result: GeneratedImage) -> np.ndarray:
    return np.asarray(result.image.convert("RGB"), dtype=np.int16)


def _max_diff(a: GeneratedImage, b: GeneratedImage) -> int:
    return int(np.abs(_pixels(a) - _pixels(b)).max())


@pytest.mark.parametrize("family", FAMILIES)
def test_txt2img_makes_one_image_per_seed(
    engine: ImageEngine, tiny_specs: dict[str, BaseModelSpec], family: str
) -> None:
    results = engine.generate_sync(_job(tiny_specs[family], seeds=(1, 2)))

    assert [r.seed for r in results] == [1, 2]
    for result in results:
        assert result.image.size == (64, 64)
        assert result.generation_time_s > 0
    assert _max_diff(results[0], results[1]) > 0, "different seeds must give different images"


def test_same_job_twice_gives_identical_pixels(engine: ImageEngine, tiny_specs: dict[str, BaseModelSpec]) -> None:
    job = _job(tiny_specs["sd15"], seeds=(7,))

    first, second = engine.generate_sync(job)[0], engine.generate_sync(job)[0]

    assert _max_diff(first, second) == 0


def test_generate_async_matches_sync(engine: ImageEngine, tiny_specs: dict[str, BaseModelSpec]) -> None:
    job = _job(tiny_specs["sdxl"], seeds=(3,))

    async_result = asyncio.run(engine.generate(job))[0]

    assert _max_diff(async_result, engine.generate_sync(job)[0]) == 0


@pytest.mark.parametrize("family", FAMILIES)
def test_img2img_starts_from_the_init_image(
    engine: ImageEngine, tiny_specs: dict[str, BaseModelSpec], family: str
) -> None:
    from PIL import Image

    init = Image.new("RGB", (80, 48), (200, 30, 30))  # resized to the job's size
    job = _job(tiny_specs[family], seeds=(5, 6), init_image=init, strength=0.6)

    results = engine.generate_sync(job)
    again = engine.generate_sync(job)

    assert [r.image.size for r in results] == [(64, 64), (64, 64)]
    assert _max_diff(results[0], again[0]) == 0
    txt2img = engine.generate_sync(_job(tiny_specs[family], seeds=(5,)))[0]
    assert _max_diff(results[0], txt2img) > 0


def test_lora_adapters_switch_without_reloading_the_base(
    tiny_specs: dict[str, BaseModelSpec], sd15_loras: dict[str, str], load_calls: list[Any]
) -> None:
    spec = tiny_specs["sd15"]
    lora_a = LoraSpec("user-1/style-a", sd15_loras["a"])
    lora_b = LoraSpec("user-1/style-b", sd15_loras["b"])
    eng = _engine()
    try:

        def run(*loras: LoraSpec) -> GeneratedImage:
            return eng.generate_sync(_job(spec, seeds=(11,), loras=loras))[0]

        plain = run()
        with_a = run(lora_a)
        with_b = run(lora_b)
        a_again = run(lora_a)
        mixed = run(LoraSpec(lora_a.id, lora_a.path, 0.5), LoraSpec(lora_b.id, lora_b.path, 0.5))
        a_only_by_weight = run(lora_a, LoraSpec(lora_b.id, lora_b.path, 0.0))
        plain_again = run()

        assert _max_diff(with_a, plain) > 10
        assert _max_diff(with_b, with_a) > 10
        assert _max_diff(a_again, with_a) == 0
        assert _max_diff(mixed, with_a) > 0 and _max_diff(mixed, with_b) > 0
        assert _max_diff(a_only_by_weight, with_a) <= 2
        assert _max_diff(plain_again, plain) == 0

        assert len(load_calls) == 1, "the base must be loaded once, whatever the adapters"
        pipe = load_calls[0]
        assert len(pipe.get_list_adapters()["unet"]) == 2
        assert eng.stats()["models"][spec.id]["adapters"] == [lora_a.id, lora_b.id]

        eng.unload_adapter(lora_a.id, wait=True)
        assert eng.stats()["models"][spec.id]["adapters"] == [lora_b.id]
        assert len(pipe.get_list_adapters()["unet"]) == 1
        assert _max_diff(run(lora_a), with_a) == 0, "a deleted adapter reloads from its file on next use"
        assert len(load_calls) == 1

        switches: list[object] = []
        real_set_adapters = pipe.set_adapters
        pipe.set_adapters = lambda *a, **k: (switches.append(a), real_set_adapters(*a, **k))
        run(lora_b)
        run(lora_b)
        assert len(switches) == 1, "an unchanged adapter set must not call set_adapters again"
    finally:
        eng.close()


def test_concurrent_requests_are_batched_and_match_solo_runs(
    engine: ImageEngine, tiny_specs: dict[str, BaseModelSpec], load_calls: list[Any]
) -> None:
    spec = tiny_specs["sd15"]
    jobs = [
        _job(spec, prompt=f"a photo of a {animal}", seeds=(100 + i,))
        for i, animal in enumerate(["cat", "dog", "bird", "horse", "fox", "cow", "fish", "frog"])
    ]
    batching = _engine(max_batch_size=8, batch_timeout_s=1.0)
    try:

        async def all_at_once() -> list[list[GeneratedImage]]:
            return await asyncio.gather(*(batching.generate(job) for job in jobs))

        together = asyncio.run(all_at_once())
        stats = batching.stats()
    finally:
        batching.close()

    assert len(load_calls) == 1, "concurrent first requests load the base once"
    assert stats["requests_served"] == 8
    assert stats["batches_served"] < 8
    for job, result in zip(jobs, together, strict=True):
        solo = engine.generate_sync(job)[0]
        assert result[0].seed == job.seeds[0]
        assert _max_diff(result[0], solo) <= 2


def test_full_queue_raises_overloaded_at_once(
    tiny_specs: dict[str, BaseModelSpec], monkeypatch: pytest.MonkeyPatch
) -> None:
    gate, loaded = threading.Event(), threading.Event()

    def slow_load(*args: Any, **kwargs: Any) -> Any:
        gate.wait()  # keeps the worker busy loading while requests pile up (the test always opens it)
        loaded.set()
        return load_pipeline(*args, **kwargs)

    monkeypatch.setattr(image_module, "load_pipeline", slow_load)
    eng = _engine(max_queue=2)
    spec = tiny_specs["sd15"]

    async def scenario() -> list[list[GeneratedImage]]:
        waiting = [asyncio.ensure_future(eng.generate(_job(spec, seeds=(i,)))) for i in range(2)]
        await asyncio.sleep(0.05)
        with pytest.raises(Overloaded) as info:
            await eng.generate(_job(spec, seeds=(9,)))
        # Refused at once, not after waiting for a place: the base's load is still held at the gate, and both
        # queued requests are still waiting behind it.
        assert not loaded.is_set()
        assert not any(future.done() for future in waiting)
        assert info.value.retry_after >= 1
        assert eng.stats()["models"][spec.id]["queue_depth"] == 2
        gate.set()
        return await asyncio.gather(*waiting)

    try:
        results = asyncio.run(scenario())
    finally:
        gate.set()
        eng.close()
    assert [r[0].seed for r in results] == [0, 1]


def test_lru_evicts_the_idle_base_when_over_budget(tiny_specs: dict[str, BaseModelSpec], load_calls: list[Any]) -> None:
    eng = _engine(memory_budget_bytes=1)  # smaller than any pipeline: each still loads, alone
    try:
        eng.generate_sync(_job(tiny_specs["sd15"]))
        assert eng.stats()["loaded"] == ["tiny-sd15"]
        sd15_bytes = eng.stats()["models"]["tiny-sd15"]["bytes"]
        assert sd15_bytes == estimate_pipeline_bytes(load_calls[0]) > 0

        eng.generate_sync(_job(tiny_specs["sdxl"]))
        stats = eng.stats()
        assert stats["loaded"] == ["tiny-sdxl"]
        assert stats["evictions"] == 1

        eng.generate_sync(_job(tiny_specs["sd15"]))
        assert eng.stats()["loaded"] == ["tiny-sd15"]
        assert len(load_calls) == 3
    finally:
        eng.close()


def test_budget_fits_two_bases_and_evicts_least_recently_used(
    tiny_specs: dict[str, BaseModelSpec], engine: ImageEngine
) -> None:
    for family in FAMILIES:  # the shared engine has each base loaded once; read their measured sizes
        engine.generate_sync(_job(tiny_specs[family]))
    sizes = {m: info["bytes"] for m, info in engine.stats()["models"].items()}
    budget = sizes["tiny-sd15"] + sizes["tiny-sdxl"] + sizes["tiny-flux"] - 1
    eng = _engine(memory_budget_bytes=budget)
    try:
        for family in ("sd15", "sdxl", "sd15", "flux"):  # sdxl is least recently used when flux arrives
            eng.generate_sync(_job(tiny_specs[family]))
        assert sorted(eng.stats()["loaded"]) == ["tiny-flux", "tiny-sd15"]
    finally:
        eng.close()


def test_missing_model_offline_fails_without_the_network_with_a_clear_error(
    monkeypatch: pytest.MonkeyPatch, network_attempts: list[str]
) -> None:
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    spec = BaseModelSpec(id="ghost", family="sd15", source="genfoundry-tests/no-such-model")

    with pytest.raises(ModelUnavailable) as info:
        load_pipeline(spec, device="cpu", dtype="float32")
    assert "ghost" in info.value.message and "hf download genfoundry-tests/no-such-model" in info.value.message
    assert "HF_HUB_OFFLINE is set and the weights are not in the HF cache" in info.value.message
    assert network_attempts == []  # the cache alone was asked: no lookup or connect that could wait

    eng = _engine()
    try:
        with pytest.raises(ModelUnavailable):
            eng.generate_sync(_job(spec))
        assert "ghost" not in eng.stats()["models"], "a failed load is forgotten so a later request retries"
    finally:
        eng.close()


def test_missing_local_folder_is_model_unavailable(tmp_path: Path) -> None:
    spec = BaseModelSpec(id="gone", family="flux", source=str(tmp_path / "nothing-here"))

    with pytest.raises(ModelUnavailable, match="does not exist"):
        load_pipeline(spec, device="cpu", dtype="auto")


def test_bad_arguments_become_invalid_and_the_worker_survives(
    engine: ImageEngine, tiny_specs: dict[str, BaseModelSpec]
) -> None:
    spec = tiny_specs["sd15"]
    with pytest.raises(Invalid):
        engine.generate_sync(_job(spec, seeds=()))
    with pytest.raises(Invalid):
        engine.generate_sync(_job(spec, steps=0))
    with pytest.raises(Invalid, match="divisible by 8"):  # diffusers' own check_inputs
        engine.generate_sync(_job(spec, width=60))
    with pytest.raises(Invalid, match="adapter"):
        engine.generate_sync(_job(spec, loras=(LoraSpec("nope", "/nonexistent/lora.safetensors"),)))

    assert engine.generate_sync(_job(spec))[0].image.size == (64, 64)


def test_catalog_scheduler_replaces_the_pipelines_own(tiny_dir: Path) -> None:
    source = str(tiny_dir / "sd15")
    spec = BaseModelSpec(id="s", family="sd15", source=source, scheduler="DPMSolverMultistepScheduler")
    pipe = load_pipeline(spec, device="cpu", dtype="float32")
    assert type(pipe.scheduler).__name__ == "DPMSolverMultistepScheduler"
    with pytest.raises(Invalid, match="unknown scheduler"):
        load_pipeline(
            BaseModelSpec(id="s", family="sd15", source=source, scheduler="os"), device="cpu", dtype="float32"
        )


def test_an_interrupted_call_leaves_no_scheduler_state_behind(tiny_dir: Path) -> None:
    # A multistep scheduler keeps earlier steps' outputs between steps: a call stopped half-way leaves them in it,
    # and this one also leaves a scaling that `set_timesteps` never resets (what any stateful leftover would do).
    spec = BaseModelSpec(
        id="multistep", family="sd15", source=str(tiny_dir / "sd15"), scheduler="DPMSolverMultistepScheduler"
    )
    job = _job(spec, seeds=(5,), steps=4)
    eng = _engine()

    def stop(index: int, image: Any) -> None:  # on the worker thread, inside the pipeline call
        runner = eng._slots[spec.id].runner
        assert runner is not None
        runner.pipe.scheduler.init_noise_sigma = 3.0
        raise RuntimeError("the client went away")

    try:
        before = eng.generate_sync(job)[0]
        with pytest.raises(RuntimeError, match="went away"):
            eng.generate_sync(_job(spec, seeds=(5,), steps=4, partial_images=2, on_partial=stop))
        after = eng.generate_sync(job)[0]
    finally:
        eng.close()

    assert _max_diff(before, after) == 0


def test_a_cancelled_request_never_blocks_the_next(tiny_specs: dict[str, BaseModelSpec]) -> None:
    spec = tiny_specs["sd15"]
    busy, release = threading.Event(), threading.Event()

    def hold(index: int, image: Any) -> None:  # keeps the worker inside the first call until the test lets go
        busy.set()
        release.wait(timeout=60)

    eng = _engine(max_batch_size=1, batch_timeout_s=0.0)

    async def scenario() -> tuple[list[GeneratedImage], asyncio.Future[list[GeneratedImage]], list[GeneratedImage]]:
        first = eng.submit(_job(spec, seeds=(1,), partial_images=1, on_partial=hold))
        await asyncio.to_thread(busy.wait, 60)
        cancelled = eng.submit(_job(spec, seeds=(2,)))
        cancelled.cancel()  # what a client that disconnects does to its handler's await
        following = eng.submit(_job(spec, seeds=(3,)))
        release.set()
        return await first, cancelled, await following

    try:
        first, cancelled, following = asyncio.run(scenario())
        stats = eng.stats()
    finally:
        release.set()
        eng.close()

    assert cancelled.cancelled()
    assert [first[0].seed, following[0].seed] == [1, 3]
    assert stats["requests_served"] == 2, "the cancelled job never ran"
    assert stats["models"][spec.id]["queue_depth"] == 0
