"""The classifier recipe as a plain function: checks, deterministic output, and the contrastive LoRA path."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from genfoundry.errors import Unprocessable
from genfoundry.router.encoder import TextEncoder
from genfoundry.router.head import load_head
from genfoundry.router.setfit import ContrastiveConfig
from genfoundry.router.train import ClassifierTrainingConfig, train_classifier
from genfoundry.training.callbacks import TrainingCallbacks
from tests.helpers import TICKETS


@pytest.fixture(scope="module")
def encoder() -> TextEncoder:
    return TextEncoder()


def write_jsonl(path: Path, rows: list[tuple[str, str]]) -> Path:
    path.write_text("".join(json.dumps({"text": t, "label": label}) + "\n" for t, label in rows), encoding="utf-8")
    return path


ROWS = [(text, label) for label, texts in TICKETS.items() for text in texts]


def test_same_data_same_bytes(tmp_path: Path, encoder: TextEncoder) -> None:
    data = write_jsonl(tmp_path / "data.jsonl", ROWS)
    steps: list[tuple[int, int, dict[str, float]]] = []
    callbacks = TrainingCallbacks(on_step=lambda step, total, metrics: steps.append((step, total, metrics)))
    first = train_classifier(ClassifierTrainingConfig(seed=3), data, tmp_path / "a", callbacks, encoder=encoder)
    train_classifier(ClassifierTrainingConfig(seed=3), data, tmp_path / "b", encoder=encoder)
    for name in ("head.safetensors", "head.json"):
        assert (tmp_path / "a" / name).read_bytes() == (tmp_path / "b" / name).read_bytes()
    assert first.head is not None and first.head.labels == ("billing", "bug", "praise")
    assert steps[-1][0] == steps[-1][1]  # progress reaches its total
    assert [m["c"] for _, _, m in steps if "c" in m] == [t["c"] for t in first.tried]

    head = load_head(tmp_path / "a")
    assert head.encoder_lora is None
    assert head.meta["label_counts"] == {"billing": 8, "bug": 8, "praise": 8}
    predictions = head.predict(encoder.encode(["please refund the double charge", "the app crashes on start"]))
    assert [p.label for p in predictions] == ["billing", "bug"]
    for p in predictions:
        assert sum(p.scores.values()) == pytest.approx(1.0)


def test_two_labels(tmp_path: Path, encoder: TextEncoder) -> None:
    data = write_jsonl(tmp_path / "data.jsonl", [row for row in ROWS if row[1] != "praise"])
    result = train_classifier(ClassifierTrainingConfig(c=10.0), data, tmp_path / "out", encoder=encoder)
    assert result.head is not None and result.head.labels == ("billing", "bug")
    [prediction] = result.head.predict(encoder.encode(["my card was charged twice"]))
    assert prediction.label == "billing" and set(prediction.scores) == {"billing", "bug"}


@pytest.mark.parametrize(
    ("rows", "message"),
    [
        ([(t, "bug") for t, _ in ROWS], "at least 2 labels"),
        ([*ROWS, ("where is my parcel", "shipping")], "'shipping' (1)"),
        ([], "no examples"),
    ],
)
def test_untrainable_data(tmp_path: Path, encoder: TextEncoder, rows: list[tuple[str, str]], message: str) -> None:
    data = write_jsonl(tmp_path / "data.jsonl", rows)
    with pytest.raises(Unprocessable, match=message.replace("(", r"\(").replace(")", r"\)")):
        train_classifier(ClassifierTrainingConfig(), data, tmp_path / "out", encoder=encoder)
    assert not (tmp_path / "out").exists()


def test_stop_request_leaves_no_head(tmp_path: Path, encoder: TextEncoder) -> None:
    data = write_jsonl(tmp_path / "data.jsonl", ROWS)
    result = train_classifier(
        ClassifierTrainingConfig(), data, tmp_path / "out", TrainingCallbacks(should_stop=lambda: True), encoder=encoder
    )
    assert result.stopped and result.head is None
    assert not (tmp_path / "out" / "head.json").exists()


CONTRASTIVE = ClassifierTrainingConfig(
    encoder_tuning="contrastive_lora", contrastive=ContrastiveConfig(pairs=32, batch_size=16, rank=4, alpha=8)
)


def test_contrastive_lora_head(tmp_path: Path, encoder: TextEncoder) -> None:
    data = write_jsonl(tmp_path / "data.jsonl", ROWS)
    losses: list[float] = []

    def on_step(step: int, total: int, metrics: dict[str, float]) -> None:
        if "contrastive_loss" in metrics:
            losses.append(metrics["contrastive_loss"])

    result = train_classifier(CONTRASTIVE, data, tmp_path / "a", TrainingCallbacks(on_step=on_step), encoder=encoder)
    assert len(losses) == 2
    head = load_head(tmp_path / "a")
    assert head.encoder_lora is not None and head.encoder_lora.rank == 4
    assert head.meta["encoder_tuning"] == "contrastive_lora"
    assert result.head is not None
    tuned = TextEncoder(lora=head.encoder_lora)
    texts = ["please refund the double charge"]
    assert not np.allclose(tuned.encode(texts), encoder.encode(texts), atol=1e-4)  # the LoRA changed the encoder
    assert np.linalg.norm(tuned.encode(texts), axis=1) == pytest.approx(1.0)

    (tmp_path / "a" / "encoder_lora.safetensors").unlink()
    with pytest.raises(ValueError, match="missing"):
        load_head(tmp_path / "a")


@pytest.mark.slow
def test_contrastive_lora_same_bytes(tmp_path: Path, encoder: TextEncoder) -> None:
    data = write_jsonl(tmp_path / "data.jsonl", ROWS)
    for out in ("a", "b"):
        train_classifier(CONTRASTIVE, data, tmp_path / out, encoder=encoder)
    for name in ("head.safetensors", "head.json", "encoder_lora.safetensors"):
        assert (tmp_path / "a" / name).read_bytes() == (tmp_path / "b" / name).read_bytes(), name
