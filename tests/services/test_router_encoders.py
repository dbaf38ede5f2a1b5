"""Which encoder serves which classifier: the shipped router in int8 on ONNX Runtime (unless turned off), and the
untouched float32 encoder for everything else (embeddings, custom classifiers)."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

import pytest

from genfoundry.config import RouterSettings
from genfoundry.router.encoder import TextEncoder
from genfoundry.router.head import ClassifierHead, default_head_dir, load_head
from genfoundry.services.classifiers import ClassifierService


def service(backend: Literal["onnx", "torch"], tmp_path: Path, **settings: Any) -> ClassifierService:
    # Nothing here touches the database or the store: choosing an encoder loads nothing.
    return ClassifierService(
        sessions=None,  # type: ignore[arg-type]
        store=None,  # type: ignore[arg-type]
        settings=RouterSettings(**settings),
        encoder=TextEncoder(backend=backend, cache_dir=tmp_path),
    )


@pytest.mark.parametrize(
    ("backend", "settings", "int8"),
    [("onnx", {}, True), ("onnx", {"int8_encoder": False}, False), ("torch", {}, False)],
)
def test_the_shipped_router_runs_int8_on_onnx_only_when_on(
    tmp_path: Path, backend: Literal["onnx", "torch"], settings: dict[str, Any], int8: bool
) -> None:
    classifiers = service(backend, tmp_path, **settings)
    router = classifiers.encoder_for(classifiers.default_head())
    assert router is not classifiers.encoder
    assert router.int8 is int8
    assert classifiers.encoder.int8 is False
    assert classifiers.encoder_for(classifiers.default_head()) is router  # built once


def test_a_custom_head_with_the_same_lora_keeps_float32(tmp_path: Path) -> None:
    classifiers = service("onnx", tmp_path)
    shipped = classifiers.default_head()
    custom = load_head(default_head_dir())  # another head object naming the same LoRA file
    assert isinstance(custom, ClassifierHead) and custom is not shipped
    assert classifiers.encoder_for(shipped).int8
    assert not classifiers.encoder_for(custom).int8
