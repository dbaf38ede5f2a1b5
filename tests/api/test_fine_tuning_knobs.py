"""The kohya / ai-toolkit training knobs through POST /v1/fine_tuning/jobs: listed with their defaults, each bad
value a 400 naming the field, and a job that sets them all runs as they say (n_epochs, epoch checkpoints)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.api.test_fine_tuning_methods import methods
from tests.api.test_training_jobs import create_job, finished, red_dataset, wait_until
from tests.helpers import assert_error, lora_modules

KNOBS = (
    "optimizer",
    "mixed_precision",
    "gradient_checkpointing",
    "bucketing",
    "n_epochs",
    "save_every_n_epochs",
    "train_text_encoder",
)


def test_the_knobs_are_listed_with_their_family_defaults(alice: httpx.Client) -> None:
    for method in ("lora", "dreambooth"):
        hyper = {h["name"]: h for h in methods(alice)[method]["hyperparameters"]}
        assert set(KNOBS) <= set(hyper)
        assert all(hyper[name]["description"] for name in KNOBS)
    hyper = {h["name"]: h for h in methods(alice)["lora"]["hyperparameters"]}
    assert hyper["optimizer"]["choices"] == ["adamw", "adamw8bit"]
    assert hyper["optimizer"]["defaults"] == {"sd15": "adamw", "sdxl": "adamw", "flux": "adamw8bit"}
    assert hyper["mixed_precision"]["choices"] == ["auto", "no", "fp16", "bf16"]
    assert hyper["gradient_checkpointing"]["defaults"] == {"sd15": False, "sdxl": True, "flux": True}
    assert hyper["bucketing"]["type"] == "boolean" and hyper["bucketing"]["defaults"]["sdxl"] is True
    assert hyper["train_text_encoder"]["defaults"]["sd15"] is False
    assert (hyper["save_every_n_epochs"]["minimum"], hyper["save_every_n_epochs"]["defaults"]["flux"]) == (0, 0)


@pytest.mark.parametrize(
    ("model", "hyper", "param"),
    [
        ("tiny-sd15", {"optimizer": "sgd"}, "optimizer"),
        ("tiny-sd15", {"optimizer": 8}, "optimizer"),
        ("tiny-sd15", {"mixed_precision": "fp8"}, "mixed_precision"),
        ("tiny-sd15", {"mixed_precision": "fp16"}, "mixed_precision"),  # this CPU-only server cannot
        ("tiny-sd15", {"mixed_precision": "bf16"}, "mixed_precision"),
        ("tiny-sd15", {"gradient_checkpointing": "sometimes"}, "gradient_checkpointing"),
        ("tiny-sd15", {"bucketing": [1]}, "bucketing"),
        ("tiny-sd15", {"n_epochs": 0}, "n_epochs"),
        ("tiny-sd15", {"n_epochs": 2, "max_steps": 10}, "n_epochs"),
        ("tiny-sd15", {"save_every_n_epochs": -1}, "save_every_n_epochs"),
        ("tiny-sd15", {"save_every_n_epochs": 10**6}, "save_every_n_epochs"),
        ("tiny-flux", {"train_text_encoder": True}, "train_text_encoder"),
        ("tiny-sd15", {"train_text_encoder": "yes please"}, "train_text_encoder"),
    ],
)
def test_a_bad_knob_is_a_400_naming_it(alice: httpx.Client, model: str, hyper: dict[str, Any], param: str) -> None:
    body = {
        "model": model,
        "training_file": red_dataset(alice, n=1),
        "method": {"type": "lora", "lora": {"hyperparameters": hyper}},
    }
    error = assert_error(alice.post("/v1/fine_tuning/jobs", json=body), 400)
    # A wrong type is caught by the schema, which names the field by its path in the body.
    assert error["param"] in (param, f"method.lora.hyperparameters.{param}"), error


def test_full_dreambooth_refuses_train_text_encoder(alice: httpx.Client) -> None:
    hyper = {"train_mode": "full", "train_text_encoder": True}
    body = {
        "model": "tiny-sd15",
        "training_file": red_dataset(alice, n=1),
        "method": {"type": "dreambooth", "dreambooth": {"hyperparameters": hyper}},
    }
    assert_error(alice.post("/v1/fine_tuning/jobs", json=body), 400, param="train_text_encoder")


def test_a_job_with_every_knob_trains_as_they_say(alice: httpx.Client, tmp_path: Path) -> None:
    """2 images, batch 1, n_epochs 2: 4 steps; save_every_n_epochs 1: checkpoints at steps 2 and 4."""
    job = create_job(
        alice,
        red_dataset(alice, n=2),
        n_epochs=2,
        batch_size=1,
        save_every_n_epochs=1,
        optimizer="adamw8bit",
        mixed_precision="no",
        gradient_checkpointing=True,
        bucketing=False,
        train_text_encoder=True,
    )
    done = wait_until(alice, job["id"], finished)
    assert done["status"] == "succeeded", done
    assert done["progress"] == {"step": 4, "total": 4}
    assert done["hyperparameters"]["optimizer"] == "adamw8bit" and done["hyperparameters"]["train_text_encoder"]
    listed = alice.get(f"/v1/fine_tuning/jobs/{job['id']}/checkpoints").json()["data"]
    assert sorted(c["step_number"] for c in listed) == [2, 4]

    # The adapter, as users download it, holds the text encoder's LoRA layers next to the UNet's.
    response = alice.get(f"/v1/models/{done['fine_tuned_model']}/content")
    assert response.status_code == 200, response.text
    file = tmp_path / "adapter.safetensors"
    file.write_bytes(response.content)
    modules, _tensors, _metadata = lora_modules(file)
    assert {m.split(".")[0] for m in modules} == {"unet", "text_encoder"}
