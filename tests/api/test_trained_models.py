"""Trained models are private bases: their owner generates with them and lists them; anyone else gets the
404 an unknown id gets. Plus the registry's own rules (ids, conflicts, atomic concurrent writes)."""

from __future__ import annotations

import base64
import io
import shutil
import threading
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest
from PIL import Image

from genfoundry.catalog import Catalog, GenerationDefaults
from genfoundry.errors import Conflict, Invalid, NotFound
from genfoundry.repo import users as users_repo
from genfoundry.services.local import open_database
from genfoundry.services.trained_models import register_trained_model, trained_models_dir
from genfoundry.training.config import DreamBoothTrainingConfig
from genfoundry.training.dreambooth import train_dreambooth
from tests.conftest import Keys, LiveServer
from tests.helpers import assert_error, make_dataset

TINY_DEFAULTS = GenerationDefaults(width=64, height=64, steps=4, guidance_scale=5.0)


def user_id(live: LiveServer, key: str) -> str:
    with open_database(live.settings) as session:
        user = users_repo.authenticate(session=session, key=key)
        assert user is not None
        session.commit()
        return str(user.id)


def generate(client: httpx.Client, model: str, seed: int = 3) -> httpx.Response:
    body = {"model": model, "prompt": "a photo of sks square", "size": "64x64", "steps": 2, "seed": seed}
    return client.post("/v1/images/generations", json={**body, "response_format": "b64_json"})


def pixels(response: httpx.Response) -> np.ndarray:
    assert response.status_code == 200, response.text
    data = base64.b64decode(response.json()["data"][0]["b64_json"])
    return np.asarray(Image.open(io.BytesIO(data)), dtype=float)


@pytest.fixture(scope="module")
def alice_model(live: LiveServer, keys: Keys, tiny_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> str:
    """A copy of the tiny SD 1.5 pipeline registered (moved into the home) as alice's trained model."""
    copy = tmp_path_factory.mktemp("trained") / "pipeline"
    shutil.copytree(tiny_dir / "sd15", copy)
    return register_trained_model(
        models_dir=live.settings.home / "models",
        owner_id=user_id(live, keys.alice),
        family="sd15",
        source_dir=copy,
        description="alice's square",
        base_id="tiny-sd15",
        defaults=TINY_DEFAULTS,
        move=True,
    )


def test_the_owner_generates_with_her_trained_model(alice: httpx.Client, alice_model: str, live: LiveServer) -> None:
    assert (trained_models_dir(live.settings.home / "models") / alice_model / "model_index.json").is_file()
    mine = pixels(generate(alice, alice_model))
    assert mine.shape == (64, 64, 3)
    # Same weights as the base it was copied from, loaded from its own folder: the same image.
    assert np.array_equal(mine, pixels(generate(alice, "tiny-sd15")))
    # Defaults come from the registry entry (64 px here, not the 512 px dataclass default).
    default_size = alice.post("/v1/images/generations", json={"model": alice_model, "prompt": "x", "steps": 1})
    assert default_size.status_code == 200, default_size.text


def test_another_user_gets_the_404_of_an_unknown_id(
    alice: httpx.Client, bob: httpx.Client, alice_model: str, live: LiveServer, keys: Keys
) -> None:
    def same_as_unknown(response: httpx.Response, unknown: httpx.Response) -> None:
        error = assert_error(response, 404, param="model")
        assert error == {**assert_error(unknown, 404), "message": error["message"]}
        assert error["message"] == unknown.json()["error"]["message"].replace("no-such-model", alice_model)

    same_as_unknown(generate(bob, alice_model), generate(bob, "no-such-model"))
    same_as_unknown(bob.get(f"/v1/models/{alice_model}"), bob.get("/v1/models/no-such-model"))
    edit = {"model": alice_model, "prompt": "x", "size": "64x64", "steps": 1}
    image = {"image": ("in.png", _png(), "image/png")}
    assert_error(bob.post("/v1/images/edits", data=edit, files=image), 404, param="model")
    assert alice_model not in [m["id"] for m in bob.get("/v1/models").json()["data"]]

    listed = {m["id"]: m for m in alice.get("/v1/models").json()["data"]}
    assert listed[alice_model]["owned_by"] == user_id(live, keys.alice)
    assert (listed[alice_model]["kind"], listed[alice_model]["family"]) == ("base", "sd15")
    assert (listed[alice_model]["base"], listed[alice_model]["description"]) == ("tiny-sd15", "alice's square")
    assert listed["tiny-sd15"]["owned_by"] == "genfoundry"
    one = alice.get(f"/v1/models/{alice_model}")
    assert one.status_code == 200 and one.json()["id"] == alice_model


def _png() -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (64, 64), (10, 200, 10)).save(buffer, format="PNG")
    return buffer.getvalue()


def test_a_full_dreambooth_model_serves_its_owner(
    alice: httpx.Client, bob: httpx.Client, live: LiveServer, keys: Keys, tiny_dir: Path, tmp_path: Path
) -> None:
    data = make_dataset(tmp_path / "data", 2)
    config = DreamBoothTrainingConfig(
        family="sd15",
        base_source=str(tiny_dir / "sd15"),
        trigger_word="sks",
        class_word="square",
        with_prior_preservation=False,
        train_mode="full",
        learning_rate=1e-2,
        max_steps=1,
        resolution=64,
        gradient_checkpointing=False,
        mixed_precision="no",
    )
    result = train_dreambooth(config, data, tmp_path / "out")
    assert result.model_path is not None
    model_id = register_trained_model(
        models_dir=live.settings.home / "models",
        owner_id=user_id(live, keys.alice),
        family="sd15",
        source_dir=result.model_path,
        base_id="tiny-sd15",
        defaults=TINY_DEFAULTS,
        move=True,
    )

    tuned = pixels(generate(alice, model_id))
    assert np.abs(tuned - pixels(generate(alice, "tiny-sd15"))).mean() > 0.1
    assert_error(generate(bob, model_id), 404, param="model")


# The registry itself.


def test_registry_ids_conflicts_and_bad_input(tiny_dir: Path, tmp_path: Path) -> None:
    models = tmp_path / "models"
    pipeline = tiny_dir / "sd15"
    generated = register_trained_model(models_dir=models, owner_id="user_a", family="sd15", source_dir=pipeline)
    assert generated.startswith("model_")
    register_trained_model(models_dir=models, owner_id="user_a", family="sd15", source_dir=pipeline, model_id="dog-1")
    with pytest.raises(Conflict):
        register_trained_model(
            models_dir=models, owner_id="user_b", family="sd15", source_dir=pipeline, model_id="dog-1"
        )
    bad: list[tuple[dict[str, Any], str]] = [
        ({"model_id": "../up"}, "model_id"),
        ({"model_id": "a b"}, "model_id"),
        ({"family": "sd3"}, "family"),
        ({"source_dir": tmp_path}, "source_dir"),
        ({"owner_id": ""}, "owner_id"),
    ]
    for change, param in bad:
        fields = {"models_dir": models, "owner_id": "user_a", "family": "sd15", "source_dir": pipeline, **change}
        with pytest.raises(Invalid) as info:
            register_trained_model(**fields)
        assert info.value.param == param
    assert pipeline.is_dir()  # registering without move leaves the folder where it is


def test_concurrent_registrations_all_land_and_the_catalog_follows(tiny_dir: Path, tmp_path: Path) -> None:
    models = tmp_path / "models"
    catalog = Catalog(
        catalog_file=None, styles_file=None, tiny_dir=models / "tiny", trained_dir=trained_models_dir(models)
    )
    assert catalog.visible("user_a") == list(catalog.models.values())
    errors: list[BaseException] = []

    def register(i: int) -> None:
        try:
            register_trained_model(
                models_dir=models,
                owner_id=f"user_{'a' if i % 2 else 'b'}",
                family="sd15",
                source_dir=tiny_dir / "sd15",
                model_id=f"m{i}",
                defaults=TINY_DEFAULTS,
            )
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=register, args=(i,)) for i in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    assert not list(trained_models_dir(models).glob(".tmp-*"))

    assert sorted(catalog.trained_models()) == [f"m{i}" for i in range(8)]  # re-read: the file changed
    mine = [entry.id for entry in catalog.visible("user_a") if entry.owner_id]
    assert sorted(mine) == ["m1", "m3", "m5", "m7"]
    entry = catalog.get_visible("m1", "user_a")
    assert (entry.family, entry.source, entry.defaults) == ("sd15", str((tiny_dir / "sd15").resolve()), TINY_DEFAULTS)
    assert catalog.find_visible("m1", "user_b") is None
    with pytest.raises(NotFound) as info:
        catalog.get_visible("m1", "user_b")
    assert info.value.param == "model"
    assert "m1" not in catalog.models  # public bases only: nothing trained leaks into lists of everything
    assert catalog.get_visible("flux.1-dev", "user_b").owner_id is None  # public bases stay everyone's
