"""Whether a base's weights are on this machine: a local folder, or a Hugging Face snapshot in the local cache."""

from __future__ import annotations

from pathlib import Path

import pytest
from huggingface_hub import constants

from genfoundry.catalog import BaseModelEntry, TextModelEntry
from genfoundry.services.model_directory import Weights, weights_of


def cache_snapshot(cache: Path, repo_id: str, filename: str) -> None:
    """What `hf download` leaves: refs/main naming a snapshot folder that holds the file."""
    repo = cache / f"models--{repo_id.replace('/', '--')}"
    (repo / "refs").mkdir(parents=True)
    (repo / "refs" / "main").write_text("0123abcd")
    snapshot = repo / "snapshots" / "0123abcd"
    snapshot.mkdir(parents=True)
    (snapshot / filename).write_text("{}")


def test_hub_bases_are_present_once_their_snapshot_is_cached(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    cache = tmp_path / "hub"
    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(cache))
    image = BaseModelEntry(id="sd", family="sd15", source="org/sd")
    text = TextModelEntry(id="llm", source="org/llm", prompt_format="plain")
    tiny = tmp_path / "tiny"
    assert weights_of(image, tiny_dir=tiny) == Weights(present=False, fetch_command="hf download org/sd")
    assert weights_of(text, tiny_dir=tiny) == Weights(present=False, fetch_command="hf download org/llm")
    cache_snapshot(cache, "org/sd", "model_index.json")
    cache_snapshot(cache, "org/llm", "model_index.json")  # a text model is looked up by its config.json
    assert weights_of(image, tiny_dir=tiny) == Weights(present=True)
    assert weights_of(text, tiny_dir=tiny).present is False


def test_local_folders_are_present_when_they_hold_a_pipeline(tmp_path: Path) -> None:
    tiny = tmp_path / "tiny"
    built = tiny / "sd15"
    built.mkdir(parents=True)
    (built / "model_index.json").write_text("{}")
    assert weights_of(BaseModelEntry(id="t", family="sd15", source=str(built)), tiny_dir=tiny) == Weights(present=True)
    # A tiny model not built yet is built, not downloaded; another missing folder has no command to fetch it.
    missing_tiny = BaseModelEntry(id="t2", family="sdxl", source=str(tiny / "sdxl"))
    assert weights_of(missing_tiny, tiny_dir=tiny) == Weights(
        present=False, fetch_command="genfoundry models build-tiny"
    )
    elsewhere = BaseModelEntry(id="x", family="sd15", source=str(tmp_path / "gone"))
    assert weights_of(elsewhere, tiny_dir=tiny) == Weights(present=False)
