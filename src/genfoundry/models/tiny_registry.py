"""Builds the tiny models into the home and registers them in a TOML file the catalog reads."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

from genfoundry.catalog import TINY_REGISTRY_FILE

# Defaults chosen so a tiny generation takes a fraction of a second on a CPU.
_TINY_DEFAULTS = {
    "sd15": "{ width = 64, height = 64, steps = 4, guidance_scale = 5.0 }",
    "sdxl": "{ width = 64, height = 64, steps = 4, guidance_scale = 5.0 }",
    "flux": "{ width = 64, height = 64, steps = 4, guidance_scale = 3.5 }",
}


def _registry_toml(model_ids: dict[str, str]) -> str:
    lines = [
        "# Written by `genfoundry models build-tiny`: random-weight models for tests and the quickstart.",
        "",
    ]
    for model_id, family in model_ids.items():
        lines += [
            f'[models."{model_id}"]',
            f'family = "{family}"',
            f'source = "{family}"',
            'dtype = "float32"',
            f'description = "Tiny random-weight {family} pipeline (offline tests and quickstart)"',
            f"defaults = {_TINY_DEFAULTS[family]}",
            "",
        ]
    return "\n".join(lines)


def _mini_registry_toml() -> str:
    from genfoundry.models.mini_sd15 import DEFAULTS, MINI_SD15_ID, MINI_SD15_SUBDIR

    return "\n".join(
        [
            f'[models."{MINI_SD15_ID}"]',
            'family = "sd15"',
            f'source = "{MINI_SD15_SUBDIR}"',
            'dtype = "float32"',
            'description = "SD 1.5-layout mini model pretrained on coloured shapes (docs/mini-models.md)"',
            f"defaults = {DEFAULTS}",
            "",
        ]
    )


def _text_registry_toml() -> str:
    from genfoundry.models.tiny_llm import TINY_LLM_ID, TINY_LLM_SUBDIR

    return "\n".join(
        [
            f'[text_models."{TINY_LLM_ID}"]',
            f'source = "{TINY_LLM_SUBDIR}"',
            'prompt_format = "chat_template"',
            'dtype = "float32"',
            "context_length = 2048",
            'description = "Tiny random-weight Llama-style causal LM with a locally trained tokenizer (offline tests)"',
            "",
        ]
    )


def _mini_llm_registry_toml() -> str:
    from genfoundry.models.mini_llm import CONTEXT_LENGTH, MINI_LLM_ID, MINI_LLM_SUBDIR

    return "\n".join(
        [
            f'[text_models."{MINI_LLM_ID}"]',
            f'source = "{MINI_LLM_SUBDIR}"',
            'prompt_format = "chat_template"',
            'dtype = "float32"',
            f"context_length = {CONTEXT_LENGTH}",
            'description = "Llama-shaped mini LM pretrained on PlantUML text (docs/mini-models.md)"',
            "",
        ]
    )


def build_and_register_tiny(tiny_dir: Path, *, force: bool = False, seed: int = 0) -> Iterator[tuple[str, bool]]:
    """Yield (model id, whether it was built now) for the pipelines, the captioner, tiny-llm and the pretrained
    mini-sd15, mini-captioner and mini-llm (copied from the package); built ones are kept unless `force`."""
    from genfoundry.models.tiny import TINY_FAMILIES, build_tiny_pipeline

    tiny_dir.mkdir(parents=True, exist_ok=True)
    for model_id, family in TINY_FAMILIES.items():
        target = tiny_dir / family
        done = (target / "model_index.json").exists()
        if done and not force:
            yield model_id, False
            continue
        staging = tiny_dir / f".building-{family}"
        shutil.rmtree(staging, ignore_errors=True)
        build_tiny_pipeline(family, staging, seed=seed)
        shutil.rmtree(target, ignore_errors=True)
        staging.replace(target)
        yield model_id, True
    from genfoundry.models.tiny_captioner import TINY_CAPTIONER_ID, ensure_tiny_captioner

    _path, built = ensure_tiny_captioner(tiny_dir, force=force, seed=seed)
    yield TINY_CAPTIONER_ID, built
    from genfoundry.models.tiny_llm import TINY_LLM_ID, ensure_tiny_llm

    _path, built = ensure_tiny_llm(tiny_dir, force=force, seed=seed)
    yield TINY_LLM_ID, built
    from genfoundry.models.mini_sd15 import MINI_SD15_ID, install

    mini_path, built = install(tiny_dir, force=force)
    if mini_path is not None:
        yield MINI_SD15_ID, built
    from genfoundry.models import mini_captioner

    captioner_path, built = mini_captioner.install(tiny_dir, force=force)
    if captioner_path is not None:
        yield mini_captioner.MINI_CAPTIONER_ID, built
    from genfoundry.models import mini_llm

    llm_path, built = mini_llm.install(tiny_dir, force=force)
    if llm_path is not None:
        yield mini_llm.MINI_LLM_ID, built
    registry = tiny_dir / TINY_REGISTRY_FILE
    tmp = registry.with_name(f".tmp-{registry.name}")
    toml = _registry_toml(dict(TINY_FAMILIES)) + "\n" + (_mini_registry_toml() + "\n" if mini_path else "")
    text_toml = _text_registry_toml() + ("\n" + _mini_llm_registry_toml() if llm_path else "")
    tmp.write_text(toml + text_toml, encoding="utf-8")
    tmp.replace(registry)
