"""The router's encoder on ONNX Runtime: the same embeddings as torch, exported once and reused from the cache; and
the shipped router's int8 quantization of that export, which keeps the router's held-out accuracy."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from genfoundry.router import onnx_encoder
from genfoundry.router.encoder import ONNX_CHUNK_ROWS, TextEncoder, encoder_dir
from genfoundry.router.head import default_head_dir, load_head
from genfoundry.router.train import read_examples, scores

TEXTS = [
    "draw a cat",
    "a sequence diagram of a customer checking out, with the payment service and the warehouse " * 3,
    "hi",
    "¿puedes hacer un logo para mi panadería?",
    "x " * 5000,  # past the window: truncated
    *[f"prompt number {i} about a {'very ' * (i % 7)}long subject" for i in range(40)],  # several length chunks
]


@pytest.fixture(scope="module")
def tuned_pair(shared_encoder_cache: Path) -> tuple[TextEncoder, TextEncoder]:
    """The shipped router's encoder (LoRA merged) on torch and on ONNX Runtime."""
    lora = load_head(default_head_dir()).encoder_lora
    assert lora is not None
    onnx = TextEncoder(lora=lora, backend="onnx", cache_dir=shared_encoder_cache)
    reference = TextEncoder(lora=lora)
    return reference, onnx


def test_onnx_embeds_like_torch(tuned_pair: tuple[TextEncoder, TextEncoder]) -> None:
    reference, onnx = tuned_pair
    expected, got = reference.encode(TEXTS), onnx.encode(TEXTS)
    assert len(TEXTS) > 2 * ONNX_CHUNK_ROWS
    assert got.shape == expected.shape == (len(TEXTS), 384)
    assert got.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(got, axis=1), 1.0, atol=1e-5)
    # Row order survives the sort by length, and every row is torch's to float precision.
    assert float((got * expected).sum(axis=1).min()) > 0.99999
    assert float(np.abs(got - expected).max()) < 1e-4
    head = load_head(default_head_dir())
    assert [p.label for p in head.predict(got)] == [p.label for p in head.predict(expected)]
    assert onnx.encode([]).shape == (0, 384)


def test_cached_export_loads_without_torch(
    tuned_pair: tuple[TextEncoder, TextEncoder], shared_encoder_cache: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    reference, onnx = tuned_pair
    onnx.load()
    assert onnx.lora is not None
    # The export is cached under the key of these weights and this LoRA.
    assert (shared_encoder_cache / f"{onnx_encoder.export_key(encoder_dir(), onnx.lora.path)}.onnx").is_file()
    tuned, untuned = reference.encode(TEXTS[:3]), TextEncoder().encode(TEXTS[:3])
    assert float(np.abs(tuned - untuned).max()) > 0.05  # the LoRA matters, so matching `tuned` below means something

    def no_torch(*_: Any) -> Any:
        raise AssertionError("a cached export must not load the torch model")

    monkeypatch.setattr(TextEncoder, "_load_torch", no_torch)
    again = TextEncoder(lora=onnx.lora, backend="onnx", cache_dir=shared_encoder_cache)
    got = again.encode(TEXTS[:3])
    np.testing.assert_array_equal(got, onnx.encode(TEXTS[:3]))
    # What was loaded is the router's tuned encoder: torch's embeddings with the LoRA merged.
    assert float(np.abs(got - tuned).max()) < 1e-4


def test_broken_cache_file_is_exported_again(tmp_path: Path) -> None:
    encoder = TextEncoder(backend="onnx", cache_dir=tmp_path)
    encoder.load()
    [cached] = tmp_path.glob("*.onnx")
    cached.write_bytes(b"not an onnx model")
    fresh = TextEncoder(backend="onnx", cache_dir=tmp_path)
    np.testing.assert_allclose(fresh.encode(["hello"]), encoder.encode(["hello"]), atol=1e-6)
    assert cached.stat().st_size > 1_000_000
    assert [p.name for p in tmp_path.iterdir()] == [cached.name]  # no temporary file left behind


def test_export_that_drifts_is_refused(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(onnx_encoder, "MAX_EXPORT_DIFFERENCE", -1.0)
    encoder = TextEncoder(backend="onnx", cache_dir=tmp_path)
    with pytest.raises(ValueError, match="encoder_backend"):
        encoder.load()
    assert list(tmp_path.iterdir()) == []  # nothing cached


def test_onnx_is_cpu_only() -> None:
    with pytest.raises(ValueError, match="CPU"):
        TextEncoder(backend="onnx", device="cuda")


def test_cache_key_follows_the_weights(tmp_path: Path) -> None:
    lora = load_head(default_head_dir()).encoder_lora
    assert lora is not None
    model_dir = tmp_path / "model"
    model_dir.mkdir()
    (model_dir / "config.json").write_text("{}")
    (model_dir / "model.safetensors").write_bytes(b"weights")
    base = onnx_encoder.export_key(model_dir, None)
    assert onnx_encoder.export_key(model_dir, None) == base
    assert onnx_encoder.export_key(model_dir, lora.path) != base
    (model_dir / "model.safetensors").write_bytes(b"other weights")
    assert onnx_encoder.export_key(model_dir, None) != base


@pytest.fixture(scope="module")
def int8_router(shared_encoder_cache: Path) -> TextEncoder:
    """The shipped router's encoder as served on a CPU: ONNX Runtime, int8 weights."""
    lora = load_head(default_head_dir()).encoder_lora
    return TextEncoder(lora=lora, backend="onnx", cache_dir=shared_encoder_cache, int8=True)


def test_int8_router_keeps_its_held_out_accuracy(int8_router: TextEncoder) -> None:
    head = load_head(default_head_dir())
    held = read_examples(default_head_dir() / "heldout.jsonl")
    truth = [example.label for example in held]
    predicted = [p.label for p in head.predict(int8_router.encode([example.text for example in held]))]
    measured = scores(truth, predicted)
    # The router's goals (bench_router.py), on the encoder as served.
    assert measured["accuracy"] >= 0.96 and measured["macro_f1"] >= 0.96
    image_vs_rest = sum((t == "image") == (p == "image") for t, p in zip(truth, predicted, strict=True)) / len(truth)
    assert image_vs_rest >= 0.97


def test_int8_embedding_of_a_text_does_not_depend_on_its_batch(
    int8_router: TextEncoder, tuned_pair: tuple[TextEncoder, TextEncoder]
) -> None:
    alone = int8_router.encode(["draw a cat"])
    among = int8_router.encode(TEXTS)
    np.testing.assert_array_equal(among[0], alone[0])  # one text per run: no shared scale, no padding
    np.testing.assert_allclose(np.linalg.norm(among, axis=1), 1.0, atol=1e-5)
    reference = tuned_pair[0].encode(TEXTS)
    assert float((among * reference).sum(axis=1).mean()) > 0.97  # close to torch's, not equal


def test_int8_export_is_cached_beside_the_float32_one(
    int8_router: TextEncoder, shared_encoder_cache: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    int8_router.load()
    assert int8_router.lora is not None
    key = onnx_encoder.export_key(encoder_dir(), int8_router.lora.path)
    full, quantized = shared_encoder_cache / f"{key}.onnx", shared_encoder_cache / f"{key}-int8.onnx"
    assert full.is_file() and quantized.is_file()
    assert quantized.stat().st_size < full.stat().st_size / 3

    def forbidden(*_: Any) -> Any:
        raise AssertionError("a cached int8 export must load as it is")

    monkeypatch.setattr(TextEncoder, "_load_torch", forbidden)
    monkeypatch.setattr(onnx_encoder, "quantize_int8", forbidden)
    again = TextEncoder(lora=int8_router.lora, backend="onnx", cache_dir=shared_encoder_cache, int8=True)
    np.testing.assert_array_equal(again.encode(TEXTS[:3]), int8_router.encode(TEXTS[:3]))


def test_int8_that_drifts_is_refused(
    int8_router: TextEncoder, shared_encoder_cache: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert int8_router.lora is not None
    key = onnx_encoder.export_key(encoder_dir(), int8_router.lora.path)
    shutil.copyfile(shared_encoder_cache / f"{key}.onnx", tmp_path / f"{key}.onnx")  # no second export
    monkeypatch.setattr(onnx_encoder, "MIN_INT8_COSINE", 1.01)
    encoder = TextEncoder(lora=int8_router.lora, backend="onnx", cache_dir=tmp_path, int8=True)
    with pytest.raises(ValueError, match="int8_encoder"):
        encoder.load()
    assert [p.name for p in tmp_path.iterdir()] == [f"{key}.onnx"]  # nothing int8 cached


def test_int8_is_onnx_only() -> None:
    with pytest.raises(ValueError, match="ONNX"):
        TextEncoder(backend="torch", int8=True)
