"""Defaults pick what this machine has: a real base whose weights are cached, else the mini-* model, else the
tiny-* one; a setting that names a model wins."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace
from typing import cast

import pytest
from huggingface_hub import constants

from genfoundry.catalog import BaseModelEntry, Catalog, TextModelEntry
from genfoundry.config import AssistantSettings, DatasetSettings, Settings
from genfoundry.inference.caption import CaptionerSpec
from genfoundry.services.default_models import (
    pick_captioner,
    pick_default_models,
    pick_image_model,
    pick_text_model,
)
from tests.services.test_model_weights import cache_snapshot


@pytest.fixture
def hf_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    cache = tmp_path / "hf"
    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(cache))
    return cache


def installed(tiny: Path, name: str, marker: str) -> str:
    """A folder in the tiny-model home holding `marker`, as `models build-tiny` leaves it."""
    folder = tiny / name
    folder.mkdir(parents=True)
    (folder / marker).write_text("{}")
    return str(folder)


def fake_catalog(models: list[BaseModelEntry], text_models: list[TextModelEntry]) -> Catalog:
    namespace = SimpleNamespace(models={m.id: m for m in models}, text_models={m.id: m for m in text_models})
    return cast(Catalog, namespace)


def test_image_model_prefers_a_cached_real_base(tmp_path: Path, hf_cache: Path) -> None:
    tiny = tmp_path / "tiny"
    sd15 = BaseModelEntry(id="stable-diffusion-v1-5", family="sd15", source="org/sd15")
    flux = BaseModelEntry(id="flux.1-dev", family="flux", source="org/flux")
    mini = BaseModelEntry(id="mini-sd15", family="sd15", source=installed(tiny, "mini-sd15", "model_index.json"))
    tiny_sd = BaseModelEntry(id="tiny-sd15", family="sd15", source=installed(tiny, "sd15", "model_index.json"))
    catalog = fake_catalog([sd15, flux, tiny_sd, mini], [])
    assert pick_image_model(catalog, tiny).model == "mini-sd15"  # nothing real is cached; mini before tiny
    cache_snapshot(hf_cache, "org/flux", "model_index.json")
    pick = pick_image_model(catalog, tiny)
    assert (pick.model, pick.reason) == ("flux.1-dev", "on this machine")
    assert pick_image_model(fake_catalog([sd15, tiny_sd], []), tiny).model == "tiny-sd15"
    nothing = pick_image_model(fake_catalog([sd15], []), tiny)
    assert nothing.model == "mini-sd15" and "models build-tiny" in nothing.reason


def test_text_model_takes_a_cached_chat_model_then_mini_then_tiny(tmp_path: Path, hf_cache: Path) -> None:
    tiny = tmp_path / "tiny"
    phi = TextModelEntry(id="phi-1.5", source="org/phi", prompt_format="plain")
    qwen = TextModelEntry(id="qwen", source="org/qwen", prompt_format="chat_template")
    tiny_llm = TextModelEntry(
        id="tiny-llm", source=installed(tiny, "llm", "config.json"), prompt_format="chat_template"
    )
    mini_llm = TextModelEntry(
        id="mini-llm", source=installed(tiny, "mini-llm", "config.json"), prompt_format="chat_template"
    )
    cache_snapshot(hf_cache, "org/phi", "config.json")  # cached, but no chat template: not a chat default
    catalog = fake_catalog([], [phi, qwen, tiny_llm, mini_llm])
    assert pick_text_model(catalog, tiny).model == "mini-llm"
    assert pick_text_model(fake_catalog([], [phi, qwen, tiny_llm]), tiny).model == "tiny-llm"
    cache_snapshot(hf_cache, "org/qwen", "config.json")
    assert pick_text_model(catalog, tiny).model == "qwen"


def test_captioner_is_florence_when_cached_else_mini_else_tiny(tmp_path: Path, hf_cache: Path) -> None:
    tiny = tmp_path / "tiny"
    florence = CaptionerSpec(id="florence-2-base", kind="florence2", source="org/florence")
    mini = CaptionerSpec(id="mini-captioner", kind="florence2", source=installed(tiny, "mini-cap", "config.json"))
    tiny_cap = CaptionerSpec(id="tiny-captioner", kind="florence2", source=installed(tiny, "cap", "config.json"))
    specs = {spec.id: spec for spec in (florence, mini, tiny_cap)}
    assert pick_captioner(specs, tiny).model == "mini-captioner"
    assert pick_captioner({"florence-2-base": florence, "tiny-captioner": tiny_cap}, tiny).model == "tiny-captioner"
    cache_snapshot(hf_cache, "org/florence", "config.json")
    assert pick_captioner(specs, tiny).model == "florence-2-base"


def test_a_configured_model_wins(tmp_path: Path, hf_cache: Path) -> None:
    settings = Settings(
        home=tmp_path / "home",
        assistant=AssistantSettings(image_model="my-sdxl", text_model="my-llm"),
        datasets=DatasetSettings(default_captioner="blip-base"),
    )
    defaults = pick_default_models(settings, fake_catalog([], []), {})
    assert defaults.as_dict() == {
        "image_model": "my-sdxl",
        "captioner": "blip-base",
        "text_model": "my-llm",
        "router": "router-default",
    }
    assert "image model my-sdxl (configured)" in defaults.summary()
