"""Bases from single-file checkpoints in the models folder: written in the original key layout from the tiny models,
declared in the catalog, loaded through diffusers' from_single_file, generating and training through the API."""

from __future__ import annotations

import base64
import io
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import torch
from PIL import Image

from genfoundry.catalog import Catalog
from genfoundry.config import Settings
from genfoundry.errors import Invalid, NotFound
from genfoundry.inference.loader import BaseModelSpec, load_pipeline
from genfoundry.model_files import parse_single_file_source
from tests.conftest import LiveServer, free_port, image_bytes, make_home, start_server
from tests.helpers import make_zip, upload_zip
from tests.single_file_export import write_ae_single_file, write_flux_share, write_sd15_single_file


@pytest.fixture(scope="module")
def models_dir(tmp_path_factory: pytest.TempPathFactory, tiny_dir: Path) -> Path:
    """A models folder as a user has it: an A1111-style SD 1.5 file and a BFL-style ae.sft."""
    folder = tmp_path_factory.mktemp("models-share")
    write_sd15_single_file(tiny_dir / "sd15", folder / "sd15" / "tiny-sd15.safetensors")
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


def test_single_file_sd15_loads_the_same_weights(tmp_path: Path, tiny_dir: Path, models_dir: Path) -> None:
    catalog = open_test_catalog(tmp_path, tiny_dir, models_dir, catalog_toml(tiny_dir))
    entry = catalog.models["sf-sd15"]
    pipe = load_pipeline(BaseModelSpec(id=entry.id, family="sd15", source=entry.source), device="cpu", dtype="auto")
    ref = load_pipeline(
        BaseModelSpec(id="tiny", family="sd15", source=str(tiny_dir / "sd15")), device="cpu", dtype="auto"
    )
    for name in ("unet", "vae", "text_encoder"):
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
