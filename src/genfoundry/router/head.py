"""A classifier head over sentence embeddings: a linear layer plus softmax, saved as safetensors + JSON metadata.

`head.safetensors` holds `weight` [labels × dim] and `bias` [labels] (float32); `head.json` holds the labels in
row order, the encoder, the data hash, the ambiguity margin and the recipe's measurements; a head trained on a
contrastively tuned encoder names its LoRA file (beside it) under `encoder_lora`. Everything is written with
fixed ordering so the same head is the same bytes.
"""

from __future__ import annotations

import json
import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from genfoundry.router.encoder import ENCODER_ID, LoraSpec

HEAD_WEIGHTS = "head.safetensors"
HEAD_META = "head.json"
FORMAT_VERSION = 1


@dataclass(frozen=True)
class Prediction:
    label: str
    scores: dict[str, float]
    margin: float
    ambiguous: bool


@dataclass(frozen=True)
class ClassifierHead:
    labels: tuple[str, ...]
    weight: np.ndarray  # [labels, dim] float32
    bias: np.ndarray  # [labels] float32
    ambiguity_margin: float = 0.1
    encoder: str = ENCODER_ID
    meta: dict[str, Any] = field(default_factory=dict)
    encoder_lora: LoraSpec | None = None  # embed with the encoder plus this LoRA

    def __post_init__(self) -> None:
        if len(self.labels) < 2 or len(set(self.labels)) != len(self.labels):
            raise ValueError(f"a head needs two or more distinct labels, got {list(self.labels)}")
        if self.weight.ndim != 2 or self.weight.shape[0] != len(self.labels):
            raise ValueError(f"weight has shape {self.weight.shape}, expected ({len(self.labels)}, dim)")
        if self.bias.shape != (len(self.labels),):
            raise ValueError(f"bias has shape {self.bias.shape}, expected ({len(self.labels)},)")

    @property
    def dimension(self) -> int:
        return int(self.weight.shape[1])

    def probabilities(self, embeddings: np.ndarray) -> np.ndarray:
        """Softmax over the labels, one row per embedding (rows sum to 1)."""
        logits = embeddings.astype(np.float64) @ self.weight.T.astype(np.float64) + self.bias.astype(np.float64)
        logits -= logits.max(axis=1, keepdims=True)
        exp = np.exp(logits)
        return np.asarray(exp / exp.sum(axis=1, keepdims=True))

    def predict(self, embeddings: np.ndarray, *, ambiguity_margin: float | None = None) -> list[Prediction]:
        """Label, per-label scores and ambiguity (top-two margin under the threshold) per embedding."""
        threshold = self.ambiguity_margin if ambiguity_margin is None else ambiguity_margin
        predictions = []
        for row in self.probabilities(embeddings):
            order = np.argsort(-row, kind="stable")
            margin = float(row[order[0]] - row[order[1]])
            predictions.append(
                Prediction(
                    label=self.labels[int(order[0])],
                    scores={label: float(p) for label, p in zip(self.labels, row, strict=True)},
                    margin=margin,
                    ambiguous=margin < threshold,
                )
            )
        return predictions


def save_head(head: ClassifierHead, directory: Path) -> None:
    """Write head.safetensors and head.json into `directory` (created if needed)."""
    from safetensors.numpy import save_file

    directory.mkdir(parents=True, exist_ok=True)
    tensors = {
        "weight": np.ascontiguousarray(head.weight, dtype=np.float32),
        "bias": np.ascontiguousarray(head.bias, dtype=np.float32),
    }
    save_file(tensors, str(directory / HEAD_WEIGHTS), metadata={"format": "genfoundry.router.head"})
    meta = {
        **head.meta,
        "format_version": FORMAT_VERSION,
        "labels": list(head.labels),
        "encoder": head.encoder,
        "ambiguity_margin": head.ambiguity_margin,
    }
    if head.encoder_lora is not None:
        target = directory / head.encoder_lora.path.name
        if head.encoder_lora.path.resolve() != target.resolve():
            shutil.copyfile(head.encoder_lora.path, target)
        meta["encoder_lora"] = head.encoder_lora.to_meta()
    (directory / HEAD_META).write_text(json.dumps(meta, indent=1, sort_keys=True) + "\n", encoding="utf-8")


def load_head(directory: Path) -> ClassifierHead:
    """Read a head written by `save_head`; a missing or inconsistent file is a ValueError naming it."""
    from safetensors.numpy import load_file

    meta_file, weights_file = directory / HEAD_META, directory / HEAD_WEIGHTS
    if not meta_file.exists() or not weights_file.exists():
        raise ValueError(f"{directory} holds no classifier head ({HEAD_META} and {HEAD_WEIGHTS} expected)")
    meta = json.loads(meta_file.read_text(encoding="utf-8"))
    if meta.get("format_version") != FORMAT_VERSION:
        raise ValueError(f"{meta_file}: unknown head format version {meta.get('format_version')!r}")
    tensors = load_file(str(weights_file))
    labels = tuple(str(label) for label in meta.pop("labels"))
    encoder = str(meta.pop("encoder"))
    margin = float(meta.pop("ambiguity_margin"))
    meta.pop("format_version")
    lora = meta.pop("encoder_lora", None)
    spec = LoraSpec.from_meta(lora, directory) if lora is not None else None
    if spec is not None and not spec.path.exists():
        raise ValueError(f"{meta_file} names the encoder LoRA {spec.path.name}, which is missing")
    return ClassifierHead(
        labels=labels,
        weight=tensors["weight"],
        bias=tensors["bias"],
        ambiguity_margin=margin,
        encoder=encoder,
        meta=meta,
        encoder_lora=spec,
    )


def default_head_dir() -> Path:
    """The shipped router head inside the package (src/genfoundry/data/router)."""
    return Path(__file__).resolve().parent.parent / "data" / "router"
