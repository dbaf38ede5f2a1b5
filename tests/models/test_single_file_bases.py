"""Bases from single-file checkpoints in the models folder: written in the original key layout from the tiny models,
declared in the catalog, loaded through diffusers' from_single_file, generating and training through the API."""

from __future__ import annotations

import base64
import io
import shutil
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import numpy as np
import pytest
import torch
from PIL import Image
from safetensors.torch import load, save_file

from genfoundry.catalog import Catalog
from genfoundry.config import Settings
from genfoundry.errors import Invalid, NotFound
from genfoundry.inference.loader import BaseModelSpec, load_pipeline
from genfoundry.model_files import parse_single_file_source
from genfoundry.models.single_file import TEXT_ENCODERS
from tests.conftest import LiveServer, free_port, image_bytes, make_home, start_server
from tests.helpers import assert_error, make_zip, upload_zip
from tests.single_file_export import (
    flux_transformer_to_bfl,
    write_ae_single_file,
    write_flux_share,
    write_sd15_single_file,
    write_sdxl_single_file,
)


@pytest.fixture(scope="module")
def models_dir(tmp_path_factory: pytest.TempPathFactory, tiny_dir: Path) -> Path:
    """A models folder as a user has it: an A1111-style SD 1.5 file, an SGM-layout SDXL file, a BFL-style ae.sft."""
    folder = tmp_path_factory.mktemp("models-share")
    write_sd15_single_file(tiny_dir / "sd15", folder / "sd15" / "tiny-sd15.safetensors")
    write_sdxl_single_file(tiny_dir / "sdxl", folder / "sdxl" / "tiny-sdxl.safetensors")
    write_ae_single_file(tiny_dir / "flux" / "vae", folder / "ae.sft")
    write_flux_share(tiny_dir / "flux", folder / "flux")
    return folder


def catalog_toml(tiny_dir: Path) -> str:
    return f"""
[models."sf-sd15"]
family = "sd15"
single_file = "sd15/tiny-sd15.safetensors"
config = "{tiny_dir / "sd15"}"
dtype = "float32"
defaults = {{ width = 64, height = 64, steps = 2, guidance_scale = 5.0 }}

[models."sf-sdxl"]
family = "sdxl"
single_file = "sdxl/tiny-sdxl.safetensors"
config = "tiny-sdxl"
dtype = "float32"
defaults = {{ width = 64, height = 64, steps = 2, guidance_scale = 5.0 }}

[models."sf-sdxl-from-sd15"]
family = "sdxl"
single_file = "sd15/tiny-sd15.safetensors"
config = "tiny-sdxl"

[models."sf-flux"]
family = "flux"
single_file = "flux/flux1-dev.sft"
config = "tiny-flux"
dtype = "float32"
defaults = {{ width = 64, height = 64, steps = 2, guidance_scale = 3.5 }}

[models."sf-flux".components]
vae = "flux/ae.sft"
text_encoder = "flux/clip_l.safetensors"
text_encoder_2 = "flux/t5xxl_fp16.safetensors"

[models."sf-sd15-by-id"]
family = "sd15"
single_file = "sd15/tiny-sd15.safetensors"
config = "tiny-sd15"
"""


def open_test_catalog(tmp_path: Path, tiny_dir: Path, models_dir: Path | None, toml: str) -> Catalog:
    file = tmp_path / "catalog.toml"
    file.write_text(toml, encoding="utf-8")
    return Catalog(catalog_file=file, styles_file=None, tiny_dir=tiny_dir, models_dir=models_dir)


def test_catalog_resolves_files_and_configs(tmp_path: Path, tiny_dir: Path, models_dir: Path) -> None:
    catalog = open_test_catalog(tmp_path, tiny_dir, models_dir, catalog_toml(tiny_dir))
    single = parse_single_file_source(catalog.models["sf-sd15"].source)
    assert single is not None
    assert single.checkpoint == str((models_dir / "sd15" / "tiny-sd15.safetensors").resolve())
    by_id = parse_single_file_source(catalog.models["sf-sd15-by-id"].source)
    assert by_id is not None and by_id.config == catalog.models["tiny-sd15"].source


@pytest.mark.parametrize(
    ("family", "components"), [("sd15", ("unet", "vae", "text_encoder")), ("sdxl", ("unet", "vae", *TEXT_ENCODERS))]
)
def test_single_file_pipeline_loads_the_same_weights(
    tmp_path: Path, tiny_dir: Path, models_dir: Path, family: str, components: tuple[str, ...]
) -> None:
    catalog = open_test_catalog(tmp_path, tiny_dir, models_dir, catalog_toml(tiny_dir))
    entry = catalog.models[f"sf-{family}"]
    pipe = load_pipeline(BaseModelSpec(id=entry.id, family=family, source=entry.source), device="cpu", dtype="auto")
    ref = load_pipeline(
        BaseModelSpec(id="tiny", family=family, source=str(tiny_dir / family)), device="cpu", dtype="auto"
    )
    for name in components:
        mine, theirs = getattr(pipe, name).state_dict(), getattr(ref, name).state_dict()
        assert mine.keys() == theirs.keys()
        assert all(torch.equal(mine[k], theirs[k]) for k in mine), name


def test_single_file_flux_loads_the_same_weights(tmp_path: Path, tiny_dir: Path, models_dir: Path) -> None:
    catalog = open_test_catalog(tmp_path, tiny_dir, models_dir, catalog_toml(tiny_dir))
    entry = catalog.models["sf-flux"]
    pipe = load_pipeline(BaseModelSpec(id=entry.id, family="flux", source=entry.source), device="cpu", dtype="auto")
    ref = load_pipeline(
        BaseModelSpec(id="tiny", family="flux", source=str(tiny_dir / "flux")), device="cpu", dtype="auto"
    )
    for name in ("transformer", "vae", "text_encoder", "text_encoder_2"):
        mine, theirs = getattr(pipe, name).state_dict(), getattr(ref, name).state_dict()
        assert mine.keys() == theirs.keys()
        assert all(torch.equal(mine[k], theirs[k]) for k in mine), name


@pytest.mark.parametrize(
    ("entry", "status", "words"),
    [
        ('single_file = "../escape.safetensors"', Invalid, "'..'"),
        ('single_file = "/etc/passwd"', Invalid, "absolute"),
        ('single_file = "missing.safetensors"', NotFound, "does not exist"),
        ('single_file = "notes.txt"', Invalid, "not a checkpoint"),
        ('single_file = "sd15/tiny-sd15.safetensors"\ncomponents = { transformer = "ae.sft" }', Invalid, "components"),
        ('single_file = "ae.sft"', Invalid, "must end in .safetensors"),
    ],
)
def test_bad_catalog_entries(
    tmp_path: Path, tiny_dir: Path, models_dir: Path, entry: str, status: type[Exception], words: str
) -> None:
    toml = f'[models."bad"]\nfamily = "sd15"\nconfig = "tiny-sd15"\n{entry}\n'
    with pytest.raises(status, match=words):
        open_test_catalog(tmp_path, tiny_dir, models_dir, toml)


def test_symlink_out_of_the_models_folder(tmp_path: Path, tiny_dir: Path, models_dir: Path) -> None:
    outside = tmp_path / "outside"
    write_ae_single_file(tiny_dir / "flux" / "vae", outside / "x.safetensors")
    link = models_dir / "link.safetensors"
    link.symlink_to(outside / "x.safetensors")
    try:
        toml = '[models."bad"]\nfamily = "sd15"\nconfig = "tiny-sd15"\nsingle_file = "link.safetensors"\n'
        with pytest.raises(Invalid, match="outside the models folder"):
            open_test_catalog(tmp_path, tiny_dir, models_dir, toml)
    finally:
        link.unlink()


def test_no_models_folder_configured(tmp_path: Path, tiny_dir: Path) -> None:
    with pytest.raises(Invalid, match="GENFOUNDRY_MODELS_DIR"):
        open_test_catalog(tmp_path, tiny_dir, None, catalog_toml(tiny_dir))


@pytest.fixture(scope="module")
def single_file_server(
    tmp_path_factory: pytest.TempPathFactory, tiny_dir: Path, models_dir: Path
) -> Iterator[LiveServer]:
    """A keyless loopback server whose catalog declares the single-file bases."""
    base = tmp_path_factory.mktemp("single-file-home")
    home = make_home(base, tiny_dir)
    catalog = base / "catalog.toml"
    catalog.write_text(catalog_toml(tiny_dir), encoding="utf-8")
    settings = Settings(home=home, port=free_port(), catalog_file=catalog, models_dir=models_dir)
    server = start_server(settings)
    yield server
    server.stop()


def test_generate_and_train_on_a_single_file_base(single_file_server: LiveServer) -> None:
    with single_file_server.client() as client:
        models = client.get("/v1/models").json()["data"]
        assert "sf-sd15" in [m["id"] for m in models]
        body = {"model": "sf-sd15", "prompt": "a red shoe", "size": "64x64", "response_format": "b64_json"}
        answer = client.post("/v1/images/generations", json=body)
        assert answer.status_code == 200, answer.text
        image = Image.open(io.BytesIO(base64.b64decode(answer.json()["data"][0]["b64_json"])))
        assert image.size == (64, 64)
        flux = client.post("/v1/images/generations", json={**body, "model": "sf-flux"})
        assert flux.status_code == 200, flux.text

        archive = make_zip({f"red{i}.png": image_bytes((230, 20 + i, 20), size=(64, 64)) for i in range(2)})
        dataset_id = upload_zip(client, archive, trigger_word="rdx").json()["id"]
        hyper = {"max_steps": 2, "rank": 4, "resolution": 64}
        job = client.post(
            "/v1/fine_tuning/jobs",
            json={
                "model": "sf-sd15",
                "training_file": dataset_id,
                "method": {"type": "lora", "lora": {"hyperparameters": hyper}},
            },
        )
        assert job.status_code == 200, job.text
        job_id = job.json()["id"]
        deadline = time.monotonic() + 240
        status = job.json()["status"]
        while status in ("queued", "running", "validating_files") and time.monotonic() < deadline:
            time.sleep(0.5)
            status = client.get(f"/v1/fine_tuning/jobs/{job_id}").json()["status"]
        found = client.get(f"/v1/fine_tuning/jobs/{job_id}").json()
        assert status == "succeeded", found
        tuned = found["fine_tuned_model"]
        answer = client.post("/v1/images/generations", json={**body, "model": tuned})
        assert answer.status_code == 200, answer.text
        assert answer.json()["data"][0]["revised_prompt"].startswith("rdx")


def test_generation_errors_name_no_path(single_file_server: LiveServer, models_dir: Path) -> None:
    with single_file_server.client() as client:
        answer = client.post("/v1/images/generations", json={"model": "../sd15", "prompt": "x", "size": "64x64"})
        assert answer.status_code == 404
        assert str(models_dir) not in answer.text


def generated_pixels(client: httpx.Client, model: str, seed: int) -> np.ndarray:
    body = {
        "model": model,
        "prompt": "a red shoe",
        "size": "64x64",
        "steps": 2,
        "seed": seed,
        "response_format": "b64_json",
    }
    answer = client.post("/v1/images/generations", json=body)
    assert answer.status_code == 200, answer.text
    return np.asarray(Image.open(io.BytesIO(base64.b64decode(answer.json()["data"][0]["b64_json"]))), dtype=np.int16)


def train_lora(client: httpx.Client, model: str, dataset_id: str) -> str:
    """A 2-step LoRA on `model`, followed to its end through the job's event stream; its fine-tuned model id."""
    hyper = {"max_steps": 2, "rank": 4, "resolution": 64}
    body = {
        "model": model,
        "training_file": dataset_id,
        "seed": 7,
        "method": {"type": "lora", "lora": {"hyperparameters": hyper}},
    }
    job = client.post("/v1/fine_tuning/jobs", json=body)
    assert job.status_code == 200, job.text
    events = f"/v1/fine_tuning/jobs/{job.json()['id']}/events"
    with client.stream("GET", events, params={"stream": "true"}, timeout=300) as stream:
        assert stream.read().decode().rstrip().endswith("data: [DONE]")
    found = client.get(f"/v1/fine_tuning/jobs/{job.json()['id']}").json()
    assert found["status"] == "succeeded", found
    return str(found["fine_tuned_model"])


def test_sdxl_single_file_generates_and_trains_like_its_folder(single_file_server: LiveServer) -> None:
    """The SGM-layout SDXL file gives the folder-based tiny SDXL's pixels for the same seed, and a LoRA trained on
    each (same data, same seed) generates the same pixels too: the weights round-tripped, not just loaded."""
    with single_file_server.client() as client:
        assert "sf-sdxl" in [m["id"] for m in client.get("/v1/models").json()["data"]]
        single, folder = generated_pixels(client, "sf-sdxl", 5), generated_pixels(client, "tiny-sdxl", 5)
        assert single.shape == (64, 64, 3)
        assert np.array_equal(single, folder)
        assert not np.array_equal(single, generated_pixels(client, "sf-sdxl", 6))

        archive = make_zip({f"blue{i}.png": image_bytes((20, 20 + i, 230), size=(64, 64)) for i in range(2)})
        dataset_id = upload_zip(client, archive, trigger_word="bluxl").json()["id"]
        tuned_single, tuned_folder = (
            train_lora(client, "sf-sdxl", dataset_id),
            train_lora(client, "tiny-sdxl", dataset_id),
        )
        assert np.abs(generated_pixels(client, tuned_single, 5) - generated_pixels(client, tuned_folder, 5)).max() <= 1
        adapters = [load(client.get(f"/v1/models/{tuned}/content").content) for tuned in (tuned_single, tuned_folder)]
        assert adapters[0].keys() == adapters[1].keys()
        assert all(torch.allclose(adapters[0][k], adapters[1][k], atol=1e-6) for k in adapters[0])
        assert any(v.abs().max() > 0 for k, v in adapters[0].items() if "lora_B" in k or "lora_up" in k)


def test_sdxl_entry_on_a_file_without_sdxl_encoders(single_file_server: LiveServer, models_dir: Path) -> None:
    """An sdxl base whose file is an SD 1.5 checkpoint: a clear 503 naming the missing encoder, no path, and the
    server still answers."""
    with single_file_server.client() as client:
        body = {"model": "sf-sdxl-from-sd15", "prompt": "x", "size": "64x64"}
        error = assert_error(client.post("/v1/images/generations", json=body), 503)
        assert "conditioner.embedders.1.model" in error["message"] and "tiny-sd15.safetensors" in error["message"]
        assert str(models_dir) not in error["message"]
        assert client.post("/v1/images/generations", json={**body, "model": "sf-sd15"}).status_code == 200


@pytest.mark.slow  # ~0.5B parameters: diffusers' BFL converter only reads a FLUX transformer at its real width
def test_flux_transformer_in_bfl_layout_at_full_width(tmp_path: Path, tiny_dir: Path) -> None:
    """flux1-dev.sft as Black Forest Labs ships it (double_blocks / single_blocks, fused qkv and linear1) loads
    through the catalog with every tensor intact. The transformer has FLUX's width (inner_dim 3072) and one block
    of each kind; the tiny FLUX's encoders and VAE fit it (joint and pooled dims 32, 16 packed latent channels)."""
    from accelerate import init_empty_weights
    from diffusers import FluxTransformer2DModel

    config = tmp_path / "flux-full-width"
    shutil.copytree(tiny_dir / "flux", config, ignore=shutil.ignore_patterns("transformer"))
    with init_empty_weights():
        shapes = FluxTransformer2DModel(
            patch_size=1,
            in_channels=16,
            num_layers=1,
            num_single_layers=1,
            attention_head_dim=128,
            num_attention_heads=24,
            joint_attention_dim=32,
            pooled_projection_dim=32,
            guidance_embeds=True,
            axes_dims_rope=(16, 56, 56),
        )
    shapes.save_config(config / "transformer")
    generator = torch.Generator().manual_seed(0)
    weights = {k: torch.randn(v.shape, generator=generator).to(torch.bfloat16) for k, v in shapes.state_dict().items()}
    models = tmp_path / "models"
    models.mkdir()
    save_file({k: v.contiguous() for k, v in flux_transformer_to_bfl(weights).items()}, str(models / "flux1-dev.sft"))

    toml = f'[models."bfl"]\nfamily = "flux"\nsingle_file = "flux1-dev.sft"\nconfig = "{config}"\n'
    entry = open_test_catalog(tmp_path, tiny_dir, models, toml).models["bfl"]
    spec = BaseModelSpec(id="bfl", family="flux", source=entry.source, dtype="bfloat16")
    pipe = load_pipeline(spec, device="cpu", dtype="auto")
    loaded = pipe.transformer.state_dict()
    assert loaded.keys() == weights.keys()
    assert all(torch.equal(loaded[k], weights[k]) for k in weights)
