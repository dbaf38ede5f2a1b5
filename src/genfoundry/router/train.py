"""The classifier recipe: embed `{"text","label"}` examples with the encoder, fit a logistic-regression head.

A plain function of (config, dataset file, output dir, callbacks): no FastAPI, no database. With
`encoder_tuning="contrastive_lora"` the encoder first gets a SetFit-style contrastive LoRA trained on the
training part of the split (setfit.py); custom classifiers keep the shared, frozen encoder. The regularisation
strength and the ambiguity margin are chosen on a validation split cut from the training file (stratified,
seeded), then the head is refit on every training example. Same file and config, same bytes out.
"""

from __future__ import annotations

import hashlib
import json
import math
from collections import Counter
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any, Literal

import numpy as np

from genfoundry.errors import Unprocessable
from genfoundry.router.encoder import ENCODER_ID, TextEncoder
from genfoundry.router.head import ClassifierHead, save_head
from genfoundry.router.setfit import ContrastiveConfig, contrastive_lora
from genfoundry.training.callbacks import TrainingCallbacks

C_GRID = (0.3, 1.0, 3.0, 10.0, 30.0, 100.0)
LORA_FILE = "encoder_lora.safetensors"
MARGIN_GRID = tuple(round(0.05 * i, 2) for i in range(1, 11))  # 0.05 … 0.5
MAX_LABEL_CHARS = 64


@dataclass(frozen=True)
class Example:
    text: str
    label: str


@dataclass(frozen=True)
class ClassifierTrainingConfig:
    """`c`: inverse L2 strength of the logistic regression; None tries C_GRID on the validation split."""

    c: float | None = None
    validation_fraction: float = 0.2
    seed: int = 0
    min_examples_per_label: int = 4
    max_labels: int = 100
    # The ambiguity margin is the smallest one above which this share of validation predictions is right.
    confident_accuracy: float = 0.99
    max_iter: int = 2000
    encoder_tuning: Literal["frozen", "contrastive_lora"] = "frozen"
    contrastive: ContrastiveConfig = field(default_factory=ContrastiveConfig)

    def __post_init__(self) -> None:
        if self.c is not None and not (math.isfinite(self.c) and self.c > 0):
            raise ValueError("c must be a positive number")
        if not 0.0 < self.validation_fraction < 0.5:
            raise ValueError("validation_fraction must be between 0 and 0.5")
        if self.min_examples_per_label < 2:
            raise ValueError("min_examples_per_label must be at least 2")


@dataclass
class ClassifierTrainingResult:
    head: ClassifierHead | None  # None when stopped early
    output_dir: Path
    stopped: bool
    label_counts: dict[str, int]
    validation: dict[str, float] = field(default_factory=dict)  # accuracy, macro_f1 of the chosen C
    tried: list[dict[str, float]] = field(default_factory=list)  # one per C on the grid


def read_examples(path: Path) -> list[Example]:
    """`{"text","label"}` lines of a JSONL file; blank lines skipped, anything else is a 422 naming the line."""
    examples = []
    with path.open(encoding="utf-8") as handle:
        for number, line in enumerate(handle, start=1):
            if not line.strip():
                continue
            try:
                record = json.loads(line)
            except json.JSONDecodeError as exc:
                raise Unprocessable(f"line {number}: not valid JSON ({exc.msg})", param="training_file") from None
            text = record.get("text") if isinstance(record, dict) else None
            label = record.get("label") if isinstance(record, dict) else None
            if not isinstance(text, str) or not text.strip() or not isinstance(label, str) or not label.strip():
                raise Unprocessable(
                    f'line {number}: a classifier example is {{"text": "...", "label": "..."}} with non-empty strings',
                    param="training_file",
                )
            examples.append(Example(text=text, label=label.strip()))
    return examples


def check_labels(examples: Sequence[Example], config: ClassifierTrainingConfig) -> dict[str, int]:
    """Examples per label; a 422 saying what is wrong when a classifier cannot be trained from them."""
    counts = Counter(example.label for example in examples)
    if not counts:
        raise Unprocessable("the training file has no examples", param="training_file")
    if len(counts) < 2:
        only = next(iter(counts))
        raise Unprocessable(
            f"a classifier needs at least 2 labels; every example is labelled {only!r}", param="training_file"
        )
    if len(counts) > config.max_labels:
        raise Unprocessable(
            f"{len(counts)} labels; a classifier takes at most {config.max_labels}", param="training_file"
        )
    long = sorted(label for label in counts if len(label) > MAX_LABEL_CHARS)
    if long:
        raise Unprocessable(f"label {long[0]!r} is longer than {MAX_LABEL_CHARS} characters", param="training_file")
    few = sorted(label for label, n in counts.items() if n < config.min_examples_per_label)
    if few:
        listed = ", ".join(f"{label!r} ({counts[label]})" for label in few)
        raise Unprocessable(
            f"every label needs at least {config.min_examples_per_label} examples; too few for {listed}",
            param="training_file",
        )
    return dict(sorted(counts.items()))


def stratified_split(labels: Sequence[str], fraction: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Train and validation indices: `fraction` of each label (at least one) goes to validation, seeded."""
    rng = np.random.default_rng(seed)
    train, val = [], []
    for label in sorted(set(labels)):
        members = np.array([i for i, value in enumerate(labels) if value == label])
        rng.shuffle(members)
        n_val = min(max(1, round(len(members) * fraction)), len(members) - 1)
        val.extend(members[:n_val].tolist())
        train.extend(members[n_val:].tolist())
    return np.array(sorted(train)), np.array(sorted(val))


def fit_logistic(embeddings: np.ndarray, labels: Sequence[str], *, c: float, max_iter: int = 2000) -> ClassifierHead:
    """A multinomial logistic regression (L-BFGS, classes weighted to balance) as a head; labels sorted."""
    from sklearn.linear_model import LogisticRegression

    model = LogisticRegression(C=c, class_weight="balanced", max_iter=max_iter)
    model.fit(embeddings.astype(np.float64), list(labels))
    classes = tuple(str(label) for label in model.classes_)
    weight = np.asarray(model.coef_, dtype=np.float64)
    bias = np.asarray(model.intercept_, dtype=np.float64)
    if len(classes) == 2:  # sklearn keeps one row for two classes: p(second) = sigmoid(w·x + b)
        weight = np.stack([np.zeros_like(weight[0]), weight[0]])
        bias = np.array([0.0, bias[0]])
    return ClassifierHead(labels=classes, weight=weight.astype(np.float32), bias=bias.astype(np.float32))


def scores(truth: Sequence[str], predicted: Sequence[str]) -> dict[str, float]:
    """Accuracy and macro-F1 (over the labels present in `truth`)."""
    truth_arr, pred_arr = np.asarray(truth), np.asarray(predicted)
    f1s = []
    for label in sorted(set(truth)):
        tp = float(np.sum((pred_arr == label) & (truth_arr == label)))
        fp = float(np.sum((pred_arr == label) & (truth_arr != label)))
        fn = float(np.sum((pred_arr != label) & (truth_arr == label)))
        f1s.append(2 * tp / (2 * tp + fp + fn) if tp + fp + fn else 1.0)
    return {"accuracy": float(np.mean(truth_arr == pred_arr)), "macro_f1": float(np.mean(f1s))}


def choose_margin(margins: np.ndarray, correct: np.ndarray, target: float) -> float:
    """The smallest margin on MARGIN_GRID above which at least `target` of the predictions are right."""
    for margin in MARGIN_GRID:
        confident = margins >= margin
        if not confident.any() or float(correct[confident].mean()) >= target:
            return margin
    return MARGIN_GRID[-1]


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def train_classifier(
    config: ClassifierTrainingConfig,
    dataset_path: Path,
    output_dir: Path,
    callbacks: TrainingCallbacks | None = None,
    *,
    encoder: TextEncoder | None = None,
    meta: dict[str, Any] | None = None,
) -> ClassifierTrainingResult:
    """Fit a head on the examples of `dataset_path` and save it (head.safetensors + head.json) in `output_dir`."""
    callbacks = callbacks or TrainingCallbacks()
    encoder = encoder or TextEncoder()
    # 1. Read and check the examples; cut the validation split.
    examples = read_examples(dataset_path)
    counts = check_labels(examples, config)
    texts = [example.text for example in examples]
    labels = [example.label for example in examples]
    train_idx, val_idx = stratified_split(labels, config.validation_fraction, config.seed)
    train_labels = [labels[i] for i in train_idx]
    val_labels = [labels[i] for i in val_idx]
    grid = (config.c,) if config.c is not None else C_GRID
    tuning = config.contrastive.steps if config.encoder_tuning == "contrastive_lora" else 0
    batches = math.ceil(len(texts) / encoder.batch_size)
    total = tuning + batches + len(grid) + 1
    callbacks.on_log(f"{len(examples)} examples, {len(counts)} labels: {counts}")
    result = ClassifierTrainingResult(head=None, output_dir=output_dir, stopped=False, label_counts=counts)

    # 2. SetFit-style: tune the encoder (a LoRA) on the training part only, so validation stays unseen.
    lora = None
    if tuning:
        tuned = contrastive_lora(
            [texts[i] for i in train_idx],
            train_labels,
            output_dir / LORA_FILE,
            replace(config.contrastive, seed=config.seed),
            model_dir=encoder.model_dir,
            on_step=lambda step, _total, loss: callbacks.on_step(step, total, {"contrastive_loss": loss}),
            should_stop=callbacks.should_stop,
        )
        if tuned.spec is None:
            result.stopped = True
            return result
        lora = tuned.spec
        encoder = TextEncoder(
            encoder.model_dir,
            lora=lora,
            device=encoder.device,
            batch_size=encoder.batch_size,
            threads=encoder.threads,
            backend=encoder.backend,
            cache_dir=encoder.cache_dir,
        )

    # 3. Embed every example (one forward pass per batch), stopping between batches if asked.
    embedded: list[np.ndarray] = []
    for index, start in enumerate(range(0, len(texts), encoder.batch_size), start=tuning + 1):
        if callbacks.should_stop():
            result.stopped = True
            return result
        embedded.append(encoder.encode(texts[start : start + encoder.batch_size]))
        callbacks.on_step(index, total, {})
    embeddings = np.concatenate(embedded)

    # 4. Choose C on the validation split, then the ambiguity margin from the chosen head's validation margins.
    best: tuple[float, float, float] | None = None
    chosen_c, chosen_head = grid[0], None
    for step, c in enumerate(grid, start=tuning + batches + 1):
        if callbacks.should_stop():
            result.stopped = True
            return result
        head = fit_logistic(embeddings[train_idx], train_labels, c=c, max_iter=config.max_iter)
        predicted = [p.label for p in head.predict(embeddings[val_idx])]
        measured = scores(val_labels, predicted)
        result.tried.append({"c": c, **measured})
        metrics = {"c": c, "val_accuracy": measured["accuracy"], "val_macro_f1": measured["macro_f1"]}
        callbacks.on_step(step, total, metrics)
        key = (measured["macro_f1"], measured["accuracy"], -c)  # ties go to the stronger regularisation
        if best is None or key > best:
            best, chosen_c, chosen_head = key, c, head
            result.validation = {"c": c, **measured}
    assert chosen_head is not None
    predictions = chosen_head.predict(embeddings[val_idx])
    margin = choose_margin(
        np.array([p.margin for p in predictions]),
        np.array([p.label == truth for p, truth in zip(predictions, val_labels, strict=True)]),
        config.confident_accuracy,
    )
    callbacks.on_log(f"chose C={chosen_c:g} (validation {result.validation}); ambiguity margin {margin:g}")

    # 5. Refit the head on every example with the chosen C and save.
    final = fit_logistic(embeddings, labels, c=chosen_c, max_iter=config.max_iter)
    recipe: dict[str, Any] = {"kind": "logistic_regression", "encoder_tuning": config.encoder_tuning}
    if lora is not None:
        recipe["contrastive"] = {k: v for k, v in asdict(config.contrastive).items() if k not in ("seed", "threads")}
    head = ClassifierHead(
        labels=final.labels,
        weight=final.weight,
        bias=final.bias,
        ambiguity_margin=margin,
        encoder=ENCODER_ID,
        encoder_lora=lora,
        meta={
            **(meta or {}),
            **recipe,
            "c": chosen_c,
            "seed": config.seed,
            "validation_fraction": config.validation_fraction,
            "train_sha256": file_sha256(dataset_path),
            "examples": len(examples),
            "label_counts": counts,
            "validation": {k: round(v, 6) for k, v in result.validation.items()},
        },
    )
    save_head(head, output_dir)
    callbacks.on_step(total, total, {})
    result.head = head
    return result
