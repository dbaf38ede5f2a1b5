"""Image captioning: a catalog of captioners (Florence-2, BLIP), batched generation, trigger words and a caption cache.

A `Captioner` loads its model once (lazily, thread-safe) from a local folder, the HF cache or, when reachable, the
Hub; with `HF_HUB_OFFLINE` set a missing model is a `ModelUnavailable` naming it, never a hang. Captions are cached
on disk by (image hash, model, prompt), so a re-run or a second dataset with the same images costs nothing.
"""

from __future__ import annotations

import hashlib
import json
import logging
import re
import sqlite3
import threading
import time
import tomllib
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import closing, contextmanager
from dataclasses import dataclass
from functools import partial
from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING, Any

from genfoundry.devices import DTYPES, model_torch_dtype
from genfoundry.errors import Invalid, ModelUnavailable
from genfoundry.inference.heavy_imports import import_ml_libraries
from genfoundry.inference.loader import (
    MODULE_BUILD_LOCK,
    cached_snapshot,
    check_fetchable,
    from_pretrained_offline_first,
)

if TYPE_CHECKING:
    from PIL.Image import Image

logger = logging.getLogger(__name__)

ProgressCallback = Callable[[int, int], None]

DEFAULT_CAPTIONER_ID = "florence-2-base"
DEFAULT_MAX_NEW_TOKENS = 64
CAPTIONER_CLASSES: dict[str, str] = {
    "florence2": "Florence2ForConditionalGeneration",
    "blip": "BlipForConditionalGeneration",
}
# Florence-2 task tokens whose answer is plain text; the others (<OD>, <OCR_WITH_REGION>, ...) are not captions.
_FLORENCE_TEXT_TASKS = ("<CAPTION>", "<DETAILED_CAPTION>", "<MORE_DETAILED_CAPTION>", "<OCR>")


@dataclass(frozen=True)
class CaptionerSpec:
    """A captioner: `kind` is "florence2" or "blip"; `source` a HF repo id or a local folder."""

    id: str
    kind: str
    source: str
    dtype: str = "auto"
    default_prompt: str | None = None
    description: str = ""

    def __post_init__(self) -> None:
        if self.kind not in CAPTIONER_CLASSES:
            raise Invalid(f"captioner {self.id!r}: kind must be one of {sorted(CAPTIONER_CLASSES)}, got {self.kind!r}")
        if self.dtype not in DTYPES:
            raise Invalid(f"captioner {self.id!r}: dtype must be one of {DTYPES}, got {self.dtype!r}")


def load_captioner_catalog(path: Path | None = None, tiny_dir: Path | None = None) -> dict[str, CaptionerSpec]:
    """Captioners from `path` (default: the packaged captioners.toml), plus tiny-captioner and mini-captioner where
    `models build-tiny` put them in `tiny_dir`."""
    if path is not None:
        with path.open("rb") as handle:
            raw = tomllib.load(handle)
    else:
        raw = tomllib.loads(resources.files("genfoundry.data").joinpath("captioners.toml").read_text(encoding="utf-8"))
    specs = {
        captioner_id: CaptionerSpec(
            id=captioner_id,
            kind=str(entry.get("kind", "")),
            source=str(entry["source"]),
            dtype=str(entry.get("dtype", "auto")),
            default_prompt=entry.get("default_prompt"),
            description=str(entry.get("description", "")),
        )
        for captioner_id, entry in raw.get("captioners", {}).items()
    }
    if tiny_dir is not None:
        from genfoundry.models.tiny_captioner import TINY_CAPTIONER_ID, tiny_captioner_dir

        folder = tiny_captioner_dir(tiny_dir)
        if (folder / "config.json").exists():
            specs[TINY_CAPTIONER_ID] = CaptionerSpec(
                id=TINY_CAPTIONER_ID,
                kind="florence2",
                source=str(folder),
                dtype="float32",
                default_prompt="<DETAILED_CAPTION>",
                description="Tiny random-weight Florence-2 (offline tests and quickstart; captions are gibberish)",
            )
        from genfoundry.models import mini_captioner

        mini_folder = mini_captioner.installed_dir(tiny_dir)
        if (mini_folder / "config.json").exists():
            specs[mini_captioner.MINI_CAPTIONER_ID] = mini_captioner.spec(mini_folder)
    return specs


def _local_folder(spec: CaptionerSpec) -> Path | None:
    """The folder `spec.source` names, or None when it reads as a Hub repo id ("owner/name")."""
    path = Path(spec.source).expanduser()
    if path.is_dir():
        return path
    if path.is_absolute() or spec.source.startswith((".", "~")) or "\\" in spec.source or spec.source.count("/") > 1:
        raise ModelUnavailable(
            f"captioner {spec.id!r}: folder {spec.source!r} does not exist; build or copy the model there, "
            "or point the catalog source at a Hugging Face repo id"
        )
    return None


class Captioner:
    """One captioning model, loaded on first use; `caption` runs one batched `generate` for a list of images."""

    def __init__(self, spec: CaptionerSpec, *, device: str = "cpu", dtype: str = "auto") -> None:
        self.spec = spec
        self.device = device
        self.dtype = dtype
        self._model: Any = None
        self._processor: Any = None
        self._load_lock = threading.Lock()
        # One generate at a time per model: concurrent calls would only contend for the same device.
        self._run_lock = threading.Lock()

    @property
    def loaded(self) -> bool:
        return self._model is not None

    def load(self) -> None:
        """Load model and processor once, even when several threads ask at the same time."""
        if self._model is not None:
            return
        with self._load_lock:
            if self._model is None:
                self._processor, self._model = self._load()

    def _load(self) -> tuple[Any, Any]:
        started = time.perf_counter()
        folder = _local_folder(self.spec)
        if folder is None:  # before the imports below, which take seconds: a model nobody can fetch fails at once
            cached = cached_snapshot(self.spec.source, "config.json") is not None
            check_fetchable(self.spec.source, cached=cached, what=self._what, missing="it is", entry="captioner")
        import_ml_libraries()  # captioning jobs on the thread executor run beside the server's engines
        import transformers

        model_cls = getattr(transformers, CAPTIONER_CLASSES[self.spec.kind])
        kwargs: dict[str, Any] = {"dtype": model_torch_dtype(self.spec.dtype, self.dtype, self.device, "captioner")}
        if folder is not None:
            try:
                with MODULE_BUILD_LOCK:
                    processor, model = self._from_pretrained(model_cls, str(folder), local_files_only=True, **kwargs)
            except OSError as exc:
                raise ModelUnavailable(f"captioner {self.spec.id!r}: cannot load folder {folder}: {exc}") from exc
        else:
            processor, model = self._load_from_hub(model_cls, kwargs)
        model.eval()
        if self.device != "cpu":
            model.to(self.device)
        logger.info("captioner %s loaded in %.2f s", self.spec.id, time.perf_counter() - started)
        return processor, model

    def _from_pretrained(self, model_cls: Any, source: str, **kwargs: Any) -> tuple[Any, Any]:
        from transformers import AutoProcessor

        dtype = kwargs.pop("dtype")
        try:
            processor = AutoProcessor.from_pretrained(source, **kwargs)  # small files first: fail fast
            model = model_cls.from_pretrained(source, dtype=dtype, **kwargs)
        except (KeyError, ValueError) as exc:
            # e.g. microsoft/Florence-2-* main branches, which hold remote code instead of native weights.
            raise ModelUnavailable(
                f"captioner {self.spec.id!r}: {source} is not a transformers-native {self.spec.kind} checkpoint "
                f"({type(exc).__name__}: {exc}); for Florence-2 use the florence-community/* repos"
            ) from exc
        return processor, model

    def _load_from_hub(self, model_cls: Any, kwargs: dict[str, Any]) -> tuple[Any, Any]:
        return from_pretrained_offline_first(
            partial(self._from_pretrained, model_cls),
            self.spec.source,
            cached=cached_snapshot(self.spec.source, "config.json") is not None,
            what=self._what,
            missing="it is",
            entry="captioner",
            **kwargs,
        )

    @property
    def _what(self) -> str:
        return f"captioner {self.spec.id!r}"

    def resolved_prompt(self, prompt: str | None) -> str | None:
        """The prompt a caption call really uses: the given one, else the catalog default (None: unconditional)."""
        chosen = prompt if prompt is not None and prompt.strip() else self.spec.default_prompt
        if chosen is None and self.spec.kind == "florence2":
            return "<CAPTION>"  # Florence-2 always needs a task; this is its shortest captioning task
        return chosen.strip() if chosen else None

    def caption(
        self, images: Sequence[Image], *, prompt: str | None = None, max_new_tokens: int = DEFAULT_MAX_NEW_TOKENS
    ) -> list[str]:
        """Caption `images` in ONE batched forward/generate; returns one stripped caption per image."""
        if not images:
            return []
        if max_new_tokens < 1:
            raise Invalid(f"max_new_tokens must be at least 1, got {max_new_tokens}", param="max_new_tokens")
        import torch

        task = self.resolved_prompt(prompt)
        self._check_task(task)
        self.load()
        rgb = [image if image.mode == "RGB" else image.convert("RGB") for image in images]
        texts = [task] * len(rgb) if task is not None else None
        with self._run_lock, torch.inference_mode():
            try:
                inputs = self._processor(images=rgb, text=texts, return_tensors="pt", padding=True)
            except ValueError as exc:  # Florence-2 refuses a task token mixed with other text
                raise Invalid(f"captioner {self.spec.id!r}: bad prompt {task!r}: {exc}", param="prompt") from exc
            inputs = inputs.to(self._model.device, dtype=self._model.dtype)  # casts only the float tensors
            generated = self._model.generate(**inputs, max_new_tokens=max_new_tokens, num_beams=1, do_sample=False)
        return self._decode(generated, rgb, task)

    def _check_task(self, task: str | None) -> None:
        if self.spec.kind != "florence2" or task is None or not re.fullmatch(r"<[A-Z_]+>", task):
            return
        if task not in _FLORENCE_TEXT_TASKS:
            tasks = ", ".join(_FLORENCE_TEXT_TASKS)
            raise Invalid(
                f"captioner {self.spec.id!r}: {task} is not a captioning task; use one of {tasks}", param="prompt"
            )

    def _decode(self, generated: Any, images: Sequence[Image], task: str | None) -> list[str]:
        processor = self._processor
        if self.spec.kind != "florence2":
            return [text.strip() for text in processor.batch_decode(generated, skip_special_tokens=True)]
        pad_id = processor.tokenizer.pad_token_id
        captions = []
        for row, image in zip(generated.tolist(), images, strict=True):
            # Rows that finished early are padded; Florence's own parser keeps <pad>, so drop it before decoding.
            raw = processor.decode([t for t in row if t != pad_id], skip_special_tokens=False)
            answer = processor.post_process_generation(raw, task=task, image_size=image.size)[task]
            captions.append(str(answer).strip())
        return captions

    def caption_batched(
        self,
        images: Sequence[Image],
        *,
        batch_size: int = 8,
        prompt: str | None = None,
        max_new_tokens: int = DEFAULT_MAX_NEW_TOKENS,
        on_progress: ProgressCallback | None = None,
    ) -> list[str]:
        """Caption any number of images in device batches of `batch_size`; `on_progress(done, total)` after each."""
        _check_batch_size(batch_size)
        captions: list[str] = []
        for start in range(0, len(images), batch_size):
            captions += self.caption(images[start : start + batch_size], prompt=prompt, max_new_tokens=max_new_tokens)
            if on_progress is not None:
                on_progress(len(captions), len(images))
        return captions


def _check_batch_size(batch_size: int) -> None:
    if batch_size < 1:
        raise Invalid(f"batch_size must be at least 1, got {batch_size}", param="batch_size")


def apply_trigger_word(caption: str, trigger_word: str | None) -> str:
    """Prepend "<trigger>, " once; a caption already starting with the trigger (any case, whole word) is unchanged."""
    trigger = (trigger_word or "").strip()
    if not trigger:
        return caption
    # (?!\w) makes it a whole word: "ohwx man" starts with "ohwx", "ohwxman" does not.
    if re.match(rf"{re.escape(trigger)}(?!\w)", caption.lstrip(), flags=re.IGNORECASE):
        return caption
    text = caption.strip()
    return f"{trigger}, {text}" if text else trigger


def caption_cache_key(image_hash: str, model_id: str, prompt: str | None, max_new_tokens: int) -> str:
    """sha256 of everything that changes a caption; JSON keeps the fields from running into each other."""
    payload = json.dumps([image_hash, model_id, prompt, max_new_tokens], separators=(",", ":"))
    return hashlib.sha256(payload.encode("utf-8")).hexdigest()


class CaptionCache:
    """Captions on disk by key, in one SQLite file (WAL) under `folder`; safe across threads and processes."""

    _CHUNK = 500  # keys per query, well under SQLite's bound-variable limit

    def __init__(self, folder: Path) -> None:
        folder.mkdir(parents=True, exist_ok=True)
        self.path = folder / "captions.sqlite3"
        with self._connection() as conn:
            conn.execute("PRAGMA journal_mode=WAL")
            conn.execute(
                "CREATE TABLE IF NOT EXISTS captions (key TEXT PRIMARY KEY, caption TEXT NOT NULL, created_at REAL)"
            )

    @contextmanager
    def _connection(self) -> Iterator[sqlite3.Connection]:
        # A connection per call: sqlite3 connections must not be shared between threads.
        with closing(sqlite3.connect(self.path, timeout=30)) as conn, conn:
            yield conn

    def get_many(self, keys: Iterable[str]) -> dict[str, str]:
        """The cached captions among `keys` (missing keys are absent)."""
        wanted = list(dict.fromkeys(keys))
        found: dict[str, str] = {}
        with self._connection() as conn:
            for start in range(0, len(wanted), self._CHUNK):
                chunk = wanted[start : start + self._CHUNK]
                marks = ",".join("?" * len(chunk))
                rows = conn.execute(f"SELECT key, caption FROM captions WHERE key IN ({marks})", chunk)  # noqa: S608
                found.update(rows.fetchall())
        return found

    def put_many(self, captions: Mapping[str, str]) -> None:
        """Store (or replace) captions by key in one transaction."""
        if not captions:
            return
        now = time.time()
        with self._connection() as conn:
            conn.executemany(
                "INSERT OR REPLACE INTO captions (key, caption, created_at) VALUES (?, ?, ?)",
                [(key, caption, now) for key, caption in captions.items()],
            )


def caption_with_cache(
    captioner: Captioner,
    images_with_hashes: Sequence[tuple[str, Image | Callable[[], Image]]],
    *,
    cache: CaptionCache,
    prompt: str | None = None,
    batch_size: int = 8,
    max_new_tokens: int = DEFAULT_MAX_NEW_TOKENS,
    on_progress: ProgressCallback | None = None,
) -> list[str]:
    """Captions for (content hash, image) pairs, running the model only on cache misses.

    An image may be given as a function that opens it, so only one batch of images is in memory at a time.
    Each batch is written to the cache as soon as it is captioned: a cancelled job keeps its progress.
    """
    _check_batch_size(batch_size)
    resolved = captioner.resolved_prompt(prompt)
    model_key = f"{captioner.spec.id}@{captioner.spec.source}"
    keys = [caption_cache_key(image_hash, model_key, resolved, max_new_tokens) for image_hash, _ in images_with_hashes]
    found = cache.get_many(keys)
    todo: dict[str, Image | Callable[[], Image]] = {}  # one run per distinct key, even if an image repeats
    for key, (_, image) in zip(keys, images_with_hashes, strict=True):
        if key not in found:
            todo.setdefault(key, image)
    copies = Counter(keys)
    done = len(keys) - sum(copies[key] for key in todo)
    if on_progress is not None:
        on_progress(done, len(keys))
    pending = list(todo.items())
    for start in range(0, len(pending), batch_size):
        batch = pending[start : start + batch_size]
        images = [image() if callable(image) else image for _, image in batch]
        captions = captioner.caption(images, prompt=resolved, max_new_tokens=max_new_tokens)
        fresh = {key: caption for (key, _), caption in zip(batch, captions, strict=True)}
        cache.put_many(fresh)
        found.update(fresh)
        done += sum(copies[key] for key in fresh)
        if on_progress is not None:
            on_progress(done, len(keys))
    return [found[key] for key in keys]
