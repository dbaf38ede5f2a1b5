"""Load a text base model (causal LM) and its tokenizer from a local folder, the HF cache, or the Hub.

Offline like the image loader: with `HF_HUB_OFFLINE` set, or when the files are cached, nothing touches the
network; a model that is neither local nor fetchable is a `ModelUnavailable` naming it, never a hang.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from genfoundry.devices import DTYPES, model_torch_dtype
from genfoundry.errors import Invalid, ModelUnavailable
from genfoundry.inference.loader import (
    MODULE_BUILD_LOCK,
    cached_snapshot,
    from_pretrained_offline_first,
)

if TYPE_CHECKING:
    from transformers import PreTrainedModel

_WEIGHT_SUFFIXES = (".safetensors", ".bin")


@dataclass(frozen=True)
class TextModelSpec:
    """A text base as the engine sees it: `source` is a HF repo id or a local folder."""

    id: str
    source: str
    dtype: str = "auto"
    context_length: int | None = None  # None: the config's max_position_embeddings

    def __post_init__(self) -> None:
        if self.dtype not in DTYPES:
            raise Invalid(f"model {self.id!r}: dtype must be one of {DTYPES}, got {self.dtype!r}")


def _local_folder(spec: TextModelSpec) -> Path | None:
    """The folder the spec's source names, or None when it reads as a Hub repo id ("owner/name")."""
    source = spec.source
    path = Path(source).expanduser()
    if path.is_dir():
        return path
    if path.is_absolute() or source.startswith((".", "~")) or "\\" in source or source.count("/") > 1:
        raise ModelUnavailable(
            f"text model {spec.id!r}: folder {source!r} does not exist; build or copy the model there "
            "(`genfoundry models build-tiny` for tiny-llm), or point the catalog source at another folder or a "
            "Hugging Face repo id"
        )
    return None


def _from_pretrained(spec: TextModelSpec, loader: Any, **kwargs: Any) -> Any:
    """`loader.from_pretrained` on the folder, the HF cache, or (when allowed and reachable) the Hub."""
    folder = _local_folder(spec)
    if folder is not None:
        try:
            with MODULE_BUILD_LOCK:
                return loader.from_pretrained(folder, **kwargs)
        except OSError as exc:
            raise ModelUnavailable(f"text model {spec.id!r}: cannot load folder {folder}: {exc}") from exc
    return from_pretrained_offline_first(
        loader.from_pretrained,
        spec.source,
        cached=cached_snapshot(spec.source, "config.json") is not None,
        what=f"text model {spec.id!r}",
        missing="the files are",
        **kwargs,
    )


def load_tokenizer(spec: TextModelSpec) -> Any:
    """The base's tokenizer (a fast one where the model has it)."""
    from transformers import AutoTokenizer

    return _from_pretrained(spec, AutoTokenizer)


def load_causal_lm(spec: TextModelSpec, *, device: str, dtype: str) -> PreTrainedModel:
    """The base's causal LM on `device` in eval mode; `dtype` is the engine default for `auto` specs."""
    from transformers import AutoModelForCausalLM

    torch_dtype = model_torch_dtype(spec.dtype, dtype, device, "text")
    model = _from_pretrained(spec, AutoModelForCausalLM, dtype=torch_dtype)
    if device != "cpu":
        model.to(device)
    model.eval()
    return model  # type: ignore[no-any-return]


def load_context_length(spec: TextModelSpec) -> int:
    """The catalog's context length, else the config's max_position_embeddings (or n_positions)."""
    if spec.context_length is not None:
        return spec.context_length
    from transformers import AutoConfig

    config = _from_pretrained(spec, AutoConfig)
    text_config = config.get_text_config() if hasattr(config, "get_text_config") else config
    for name in ("max_position_embeddings", "n_positions", "max_sequence_length", "seq_length"):
        value = getattr(text_config, name, None)
        if isinstance(value, int) and value > 1:
            return value
    raise Invalid(f"text model {spec.id!r}: set context_length in the catalog; the config does not give it")


def estimate_model_bytes(model: Any) -> int:
    """Parameter + buffer bytes of a torch module; shared (tied) tensors count once."""
    seen: set[int] = set()
    total = 0
    for tensor in (*model.parameters(), *model.buffers()):
        if id(tensor) in seen:
            continue
        seen.add(id(tensor))
        total += tensor.numel() * tensor.element_size()
    return total


def estimate_weight_files_bytes(spec: TextModelSpec) -> int:
    """Bytes of weight files on disk for `spec` (local folder or HF cache), 0 when unknown; no network."""
    try:
        folder = _local_folder(spec) or cached_snapshot(spec.source, "config.json")
    except ModelUnavailable:
        return 0
    if folder is None:
        return 0
    files = [p for p in folder.iterdir() if p.suffix in _WEIGHT_SUFFIXES and p.is_file()]
    safetensors = [p for p in files if p.suffix == ".safetensors"]
    return sum(p.stat().st_size for p in (safetensors or files))


class TextTokenizer:
    """A base's tokenizer for the request side (prompt rendering and counting), safe across threads.

    Fast tokenizers can refuse concurrent use ("Already borrowed"), so calls are serialized by a lock; the
    engine's worker thread decodes with its own instance.
    """

    def __init__(self, tokenizer: Any, *, context_length: int) -> None:
        self.tokenizer = tokenizer
        self.context_length = context_length
        self._lock = threading.Lock()

    @property
    def chat_template(self) -> str | None:
        """The tokenizer's own chat template (None: it has none)."""
        template = getattr(self.tokenizer, "chat_template", None)
        return template if isinstance(template, str) else None

    def encode(self, text: str, *, add_special_tokens: bool) -> list[int]:
        """Token ids of `text`, with or without the tokenizer's own special tokens."""
        with self._lock:
            return list(self.tokenizer(text, add_special_tokens=add_special_tokens)["input_ids"])

    def encode_rendered(self, text: str) -> list[int]:
        """A rendered prompt (chat template or plain format) tokenized the way SFT tokenizes its examples:
        the tokenizer's leading special tokens (a BOS) unless the text already starts with one, then the
        text without special tokens."""
        with self._lock:
            leading = list(self.tokenizer("", add_special_tokens=True)["input_ids"])
            bos = getattr(self.tokenizer, "bos_token", None)
            if bos and text.startswith(bos):
                leading = []
            return leading + list(self.tokenizer(text, add_special_tokens=False)["input_ids"])

    def render(self, fn: Any, *args: Any, **kwargs: Any) -> str:
        """Run a prompt renderer (chat template) with the tokenizer, under the same lock."""
        with self._lock:
            return str(fn(self.tokenizer, *args, **kwargs))
