"""LoRA hotswap (image_speed.hotswap_max_rank) through the image engine on tiny pipelines: the same images as adapters
loaded side by side (weights and "no adapter" included), the refusals (two adapters, a rank above the maximum, an
adapter touching other layers), deletion, and with the denoiser compiled (eager backend) no recompile on a switch
(counted by torch._dynamo's graph counter: its error_on_recompile switch did not fire in the engine's worker thread)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from genfoundry.config import ImageSpeedSettings
from genfoundry.errors import Invalid
from genfoundry.inference import pipeline_speed
from genfoundry.inference.image import LoraSpec
from genfoundry.inference.loader import BaseModelSpec
from genfoundry.models.random_lora import make_lora_file
from tests.inference.conftest import EngineFactory, image_job, pixels

MAX_RANK = 8


@pytest.fixture(scope="module")
def loras(tiny_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[str, dict[str, LoraSpec]]:
    """Per family: `a` (rank 4), `b` (rank 2), `big` (rank 16, above MAX_RANK)."""
    root = tmp_path_factory.mktemp("hotswap-loras")
    made: dict[str, dict[str, LoraSpec]] = {}
    for family in ("sd15", "flux"):
        made[family] = {
            name: LoraSpec(
                f"{family}-{name}",
                str(make_lora_file(tiny_dir / family, family, root / family / name, seed=seed, rank=rank)),
            )
            for name, seed, rank in (("a", 1, 4), ("b", 2, 2), ("big", 3, 16))
        }
    return made


def spec_for(tiny_dir: Path, family: str) -> BaseModelSpec:
    return BaseModelSpec(id=f"tiny-{family}", family=family, source=str(tiny_dir / family))


def weighted(lora: LoraSpec, weight: float) -> LoraSpec:
    return LoraSpec(lora.id, lora.path, weight)


@pytest.mark.parametrize("family", ["sd15", "flux"])
def test_switching_by_hotswap_makes_the_side_by_side_images(
    tiny_dir: Path, loras: dict[str, dict[str, LoraSpec]], make_engine: EngineFactory, family: str
) -> None:
    side_by_side = make_engine(ImageSpeedSettings())
    hotswap = make_engine(ImageSpeedSettings(hotswap_max_rank=MAX_RANK))
    spec, a, b = spec_for(tiny_dir, family), loras[family]["a"], loras[family]["b"]
    # rank 4 first (the slot's layers), then rank 2, a weight, no adapter, and back
    sequence = [(a,), (b,), (weighted(b, 0.5),), (), (a,), (weighted(a, 0.7),)]

    expected = [pixels(side_by_side.generate_sync(image_job(spec, *chosen))) for chosen in sequence]
    got = [pixels(hotswap.generate_sync(image_job(spec, *chosen))) for chosen in sequence]

    for index, (want, have) in enumerate(zip(expected, got, strict=True)):
        assert np.abs(want - have).max() <= 1, f"step {index}: {sequence[index]}"
    assert np.abs(expected[0] - expected[1]).max() > 3, "the adapters must differ by more than the tolerance"
    assert hotswap.stats()["models"][spec.id]["adapters"] == [b.id, a.id]  # cached in memory, most recent last


def test_one_adapter_per_request_and_ranks_up_to_the_maximum(
    tiny_dir: Path, loras: dict[str, dict[str, LoraSpec]], make_engine: EngineFactory
) -> None:
    engine = make_engine(ImageSpeedSettings(hotswap_max_rank=MAX_RANK))
    spec, sd15 = spec_for(tiny_dir, "sd15"), loras["sd15"]

    with pytest.raises(Invalid, match=r"swaps one adapter at a time .* got 2") as two:
        engine.generate_sync(image_job(spec, sd15["a"], sd15["b"]))
    assert two.value.param == "loras" and engine.stats()["loaded"] == []  # refused before anything was queued

    engine.generate_sync(image_job(spec, sd15["a"]))
    with pytest.raises(Invalid, match=r"adapter 'sd15-big' has rank 16, above this server's .*hotswap_max_rank \(8\)"):
        engine.generate_sync(image_job(spec, sd15["big"]))
    after = pixels(engine.generate_sync(image_job(spec, sd15["a"])))  # the refusal left the slot as it was
    assert np.abs(after - pixels(engine.generate_sync(image_job(spec, sd15["a"])))).max() == 0


def test_an_adapter_on_layers_the_slot_lacks_is_refused(
    tiny_dir: Path, loras: dict[str, dict[str, LoraSpec]], make_engine: EngineFactory, tmp_path: Path
) -> None:
    from safetensors.torch import load_file, save_file

    engine = make_engine(ImageSpeedSettings(hotswap_max_rank=MAX_RANK))
    spec, a = spec_for(tiny_dir, "sd15"), loras["sd15"]["a"]
    narrow = {k: v for k, v in load_file(a.path).items() if ".to_q." in k}  # the slot: to_q only
    save_file(narrow, tmp_path / "narrow.safetensors")
    narrow_lora = LoraSpec("narrow", str(tmp_path / "narrow.safetensors"))
    base = pixels(engine.generate_sync(image_job(spec)))
    with_narrow = pixels(engine.generate_sync(image_job(spec, narrow_lora)))

    with pytest.raises(Invalid, match=r"cannot swap adapter 'sd15-a' .* touch only the layers the first one"):
        engine.generate_sync(image_job(spec, a))
    # diffusers drops the slot with the failed load: nothing applies, and the next adapter builds the slot again
    assert np.abs(pixels(engine.generate_sync(image_job(spec))) - base).max() == 0
    assert np.abs(pixels(engine.generate_sync(image_job(spec, narrow_lora))) - with_narrow).max() <= 1
    assert engine.stats()["models"][spec.id]["adapters"] == ["narrow"]  # the refused adapter was not cached


def test_a_deleted_adapter_leaves_the_slot_and_the_cache(
    tiny_dir: Path, loras: dict[str, dict[str, LoraSpec]], make_engine: EngineFactory
) -> None:
    engine = make_engine(ImageSpeedSettings(hotswap_max_rank=MAX_RANK))
    spec, a = spec_for(tiny_dir, "sd15"), loras["sd15"]["a"]
    base = pixels(engine.generate_sync(image_job(spec)))
    with_a = pixels(engine.generate_sync(image_job(spec, a)))

    engine.unload_adapter(a.id, wait=True)

    assert engine.stats()["models"][spec.id]["adapters"] == []
    assert np.abs(pixels(engine.generate_sync(image_job(spec))) - base).max() == 0
    assert np.abs(pixels(engine.generate_sync(image_job(spec, a))) - with_a).max() <= 1  # read again from its file


def test_switching_adapters_on_a_compiled_denoiser_never_recompiles(
    tiny_dir: Path, loras: dict[str, dict[str, LoraSpec]], make_engine: EngineFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(pipeline_speed, "_compile_backend", "eager")
    hotswap = make_engine(ImageSpeedSettings(compile=True, hotswap_max_rank=MAX_RANK))
    side_by_side = make_engine(ImageSpeedSettings(compile=True))
    spec, a, b = spec_for(tiny_dir, "flux"), loras["flux"]["a"], loras["flux"]["b"]
    for engine in (hotswap, side_by_side):
        engine.generate_sync(image_job(spec, a))  # compiles the denoiser with the first adapter's layers in it

    for chosen in [(b,), (weighted(a, 0.5),), (), (b,), (a,)]:
        hotswap.generate_sync(image_job(spec, *chosen))
    side_by_side.generate_sync(image_job(spec, b))

    # A batch that compiled any graph counts as warm-up: the hotswap engine compiled once, for its first batch; the
    # engine loading adapters side by side compiled again for its second adapter.
    assert hotswap.stats()["models"][spec.id]["speed"]["compile_warmup_batches"] == 1
    assert side_by_side.stats()["models"][spec.id]["speed"]["compile_warmup_batches"] == 2


def _lora_with_alpha(tiny_dir: Path, out: Path, *, seed: int, rank: int, alpha: int) -> LoraSpec:
    """A LoRA whose alpha is not its rank, saved as training saves one (the LoraConfig in the file's header)."""
    import torch
    from diffusers import StableDiffusionPipeline
    from peft import LoraConfig
    from peft.utils import get_peft_model_state_dict

    from genfoundry.training.checkpoints import save_lora_file

    pipe = StableDiffusionPipeline.from_pretrained(tiny_dir / "sd15")
    torch.manual_seed(seed)
    config = LoraConfig(r=rank, lora_alpha=alpha, target_modules=["to_q", "to_k", "to_v", "to_out.0"])
    pipe.unet.add_adapter(config)
    with torch.no_grad():
        for name, param in pipe.unet.named_parameters():
            if "lora_B" in name:
                param.normal_(0, 0.5)
    path = save_lora_file(
        out,
        pipeline_cls=StableDiffusionPipeline,
        component="unet",
        layers=get_peft_model_state_dict(pipe.unet),
        peft_config=pipe.unet.peft_config["default"].to_dict(),
        metadata={},
    )
    return LoraSpec(f"alpha-{alpha}", str(path))


def test_an_adapters_alpha_from_its_header_scales_it_as_side_by_side(
    tiny_dir: Path, loras: dict[str, dict[str, LoraSpec]], make_engine: EngineFactory, tmp_path: Path
) -> None:
    side_by_side = make_engine(ImageSpeedSettings())
    hotswap = make_engine(ImageSpeedSettings(hotswap_max_rank=MAX_RANK))
    spec = spec_for(tiny_dir, "sd15")
    scaled = _lora_with_alpha(tiny_dir, tmp_path / "alpha", seed=5, rank=2, alpha=8)  # scaling 4, not 1
    sequence = [(loras["sd15"]["a"],), (scaled,), (weighted(scaled, 0.5),)]

    for chosen in sequence:
        want = pixels(side_by_side.generate_sync(image_job(spec, *chosen)))
        assert np.abs(pixels(hotswap.generate_sync(image_job(spec, *chosen))) - want).max() <= 1, chosen
