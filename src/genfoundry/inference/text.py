"""The text engine: completions from catalog causal LMs, with PEFT adapters chosen per request.

Each base is loaded once (on its own worker thread, never on the event loop) and kept in an LRU under a
memory budget. Requests for a base wait in that base's bounded queue; its worker decodes every waiting
request together in one `generate` call (micro-batching), each row with its own adapter, seed, sampling
settings, token budget and stop strings (see text_runner.py and text_decoding.py). A streaming request gets
its text deltas as they are decoded, through an asyncio queue fed from the worker thread.
"""

from __future__ import annotations

import asyncio
import gc
import logging
import math
import threading
import time
from collections import OrderedDict
from collections.abc import AsyncIterator, Sequence
from concurrent.futures import Future
from concurrent.futures import wait as wait_futures
from dataclasses import dataclass, field
from functools import partial
from typing import TYPE_CHECKING, Any

from genfoundry.errors import Invalid, Overloaded
from genfoundry.inference.batching import BatchWorker, QueueFull, WorkerClosed
from genfoundry.inference.text_decoding import RowState, TextDelta, TokenSink
from genfoundry.inference.text_loader import (
    TextModelSpec,
    TextTokenizer,
    estimate_model_bytes,
    estimate_weight_files_bytes,
    load_causal_lm,
    load_context_length,
    load_tokenizer,
)

if TYPE_CHECKING:
    from genfoundry.inference.text_runner import TextRunner

__all__ = [
    "SamplingParams",
    "TextAdapterSpec",
    "TextChoice",
    "TextDelta",
    "TextEngine",
    "TextJob",
    "TextModelSpec",
    "TextOutput",
    "TextStream",
]

logger = logging.getLogger(__name__)

_SEED_MIN, _SEED_MAX = -(2**63), 2**64 - 1
_FINISHED = object()  # pushed into a stream's queue when its job's future is done


@dataclass(frozen=True)
class TextAdapterSpec:
    """A PEFT LoRA folder (adapter_config.json + adapter_model.safetensors); `id` is its registry id."""

    id: str
    path: str


@dataclass(frozen=True)
class SamplingParams:
    """`temperature` 0 is greedy; choice i of a request samples with seed `seed + i`."""

    max_tokens: int
    temperature: float = 1.0
    top_p: float = 1.0
    stop: tuple[str, ...] = ()
    seed: int = 0


@dataclass(frozen=True)
class TextJob:
    """One request: `n` choices for each prompt (token ids, already rendered and tokenized)."""

    base: TextModelSpec
    prompts: tuple[tuple[int, ...], ...]
    sampling: SamplingParams
    n: int = 1
    adapter: TextAdapterSpec | None = None
    sink: TokenSink | None = field(default=None, compare=False, repr=False)

    @property
    def rows(self) -> int:
        return len(self.prompts) * self.n


@dataclass(frozen=True)
class TextChoice:
    index: int
    text: str
    finish_reason: str  # "stop" (EOS or a stop string) | "length" (max_tokens)
    completion_tokens: int


@dataclass(frozen=True)
class TextOutput:
    """A job's choices (prompt-major: choice `p * n + j` is the j-th of prompt p) and its token counts."""

    choices: tuple[TextChoice, ...]
    prompt_tokens: int
    completion_tokens: int
    generation_time_s: float

    @classmethod
    def from_rows(cls, job: TextJob, rows: Sequence[RowState], elapsed: float) -> TextOutput:
        choices = tuple(TextChoice(row.index, row.text, row.finish_reason or "length", len(row.tokens)) for row in rows)
        return cls(
            choices=choices,
            prompt_tokens=sum(len(prompt) for prompt in job.prompts),
            completion_tokens=sum(choice.completion_tokens for choice in choices),
            generation_time_s=elapsed,
        )


def _unwrap(result: TextOutput | Exception) -> TextOutput:
    if isinstance(result, Exception):
        raise result
    return result


class TextStream:
    """A streaming job: iterate for `TextDelta`s; `output` holds the usage once iteration has ended.

    `cancel()` (the client went away) ends the job's rows at their next token, or drops it if still queued.
    """

    def __init__(self, sink: TokenSink, future: Future[TextOutput | Exception]) -> None:
        self._sink = sink
        self._future = future
        self.output: TextOutput | None = None
        future.add_done_callback(lambda _f: sink.push(_FINISHED))

    def __aiter__(self) -> AsyncIterator[TextDelta]:
        return self._deltas()

    async def _deltas(self) -> AsyncIterator[TextDelta]:
        while True:
            item = await self._sink.queue.get()
            if isinstance(item, TextDelta):
                yield item
            elif isinstance(item, TextOutput):
                self.output = item
                return
            elif item is _FINISHED:  # the batch ended (or failed) before this job's output arrived
                self.output = _unwrap(self._future.result())
                return

    def cancel(self) -> None:
        self._sink.cancelled.set()
        self._future.cancel()


@dataclass(eq=False)
class _Slot:
    """A base in the LRU: its worker, and once loaded its runner and measured size."""

    spec: TextModelSpec
    worker: BatchWorker[TextJob, TextOutput | Exception] | None = None
    runner: TextRunner | None = None
    nbytes: int = 0


def _validate(job: TextJob) -> None:
    """Reject what would fail a whole batch; the service checks requests against settings before this."""
    sampling = job.sampling
    if not job.prompts or any(not prompt for prompt in job.prompts):
        raise Invalid("every prompt must have at least one token", param="prompt")
    if job.n < 1:
        raise Invalid(f"n must be at least 1, got {job.n}", param="n")
    if sampling.max_tokens < 1:
        raise Invalid(f"max_tokens must be at least 1, got {sampling.max_tokens}", param="max_tokens")
    if not (math.isfinite(sampling.temperature) and sampling.temperature >= 0):
        raise Invalid(f"temperature must be a number >= 0, got {sampling.temperature}", param="temperature")
    if not (math.isfinite(sampling.top_p) and 0 <= sampling.top_p <= 1):
        raise Invalid(f"top_p must be between 0 and 1, got {sampling.top_p}", param="top_p")
    if not _SEED_MIN <= sampling.seed <= _SEED_MAX:
        raise Invalid(f"seed must be an integer in [{_SEED_MIN}, {_SEED_MAX}]", param="seed")


class TextEngine:
    """Serves `TextJob`s: one worker thread and bounded queue per loaded base, LRU under a byte budget."""

    def __init__(
        self,
        *,
        device: str,
        dtype: str,
        memory_budget_bytes: int,
        max_queue: int,
        max_batch_size: int,
        batch_timeout_s: float,
        max_adapters_per_base: int = 32,
    ) -> None:
        if memory_budget_bytes < 0:
            raise ValueError(f"memory_budget_bytes must be >= 0, got {memory_budget_bytes}")
        if max_queue < 1 or max_batch_size < 1 or batch_timeout_s < 0 or max_adapters_per_base < 1:
            raise ValueError(
                "need max_queue >= 1, max_batch_size >= 1, batch_timeout_s >= 0 and max_adapters_per_base >= 1; "
                f"got {max_queue}, {max_batch_size}, {batch_timeout_s}, {max_adapters_per_base}"
            )
        self.device = device
        self.dtype = dtype
        self.memory_budget_bytes = memory_budget_bytes
        self.max_queue = max_queue
        self.max_batch_size = max_batch_size
        self.batch_timeout_s = batch_timeout_s
        self.max_adapters_per_base = max_adapters_per_base
        self._lock = threading.Lock()  # guards _slots, _closed and the counters
        self._slots: OrderedDict[str, _Slot] = OrderedDict()  # least recently used first
        self._closed = False
        self._tokenizers: dict[TextModelSpec, TextTokenizer] = {}
        self._tokenizer_lock = threading.Lock()
        self._counters = {"requests_served": 0, "batches_served": 0, "tokens_generated": 0, "loads": 0, "evictions": 0}

    # -- public API --------------------------------------------------------------------------------

    def tokenizer(self, spec: TextModelSpec) -> TextTokenizer:
        """The base's tokenizer and context length for the request side, loaded once (no weights)."""
        with self._tokenizer_lock:
            found = self._tokenizers.get(spec)
            if found is None:
                found = TextTokenizer(load_tokenizer(spec), context_length=load_context_length(spec))
                self._tokenizers[spec] = found
            return found

    async def generate(self, job: TextJob) -> TextOutput:
        """All choices of `job`; raises `Overloaded` at once when the base's queue is full."""
        return _unwrap(await asyncio.wrap_future(self._submit(job)))

    def generate_sync(self, job: TextJob) -> TextOutput:
        """`generate` for in-process use (CLI, benchmarks): same queue and worker, blocking the caller."""
        return _unwrap(self._submit(job).result())

    def stream(self, job: TextJob) -> TextStream:
        """Queue `job` and return its stream of deltas; call from the event loop that will read it."""
        sink = TokenSink(asyncio.get_running_loop())
        job = TextJob(job.base, job.prompts, job.sampling, job.n, job.adapter, sink)
        return TextStream(sink, self._submit(job))

    def unload_adapter(self, adapter_id: str, *, wait: bool = False) -> None:
        """Remove an adapter from every loaded base (it was deleted); done on each base's worker thread."""
        with self._lock:
            slots = list(self._slots.values())
        futures: list[Future[None]] = []
        for slot in slots:
            assert slot.worker is not None
            try:
                futures.append(slot.worker.call_soon(partial(self._unload_on, slot, adapter_id)))
            except WorkerClosed:
                continue
        if wait:
            wait_futures(futures)

    def stats(self) -> dict[str, Any]:
        """Loaded bases with their bytes, queue depths and adapters, plus totals."""
        with self._lock:
            slots = list(self._slots.values())
            counters = dict(self._counters)
        models: dict[str, Any] = {}
        for slot in slots:
            assert slot.worker is not None
            runner = slot.runner
            models[slot.spec.id] = {
                "state": "loaded" if runner is not None else "loading",
                "bytes": slot.nbytes,
                "queue_depth": slot.worker.queue_depth,
                "adapters": list(runner.adapter_ids) if runner is not None else [],
            }
        return {
            "device": self.device,
            "memory_budget_bytes": self.memory_budget_bytes,
            "loaded_bytes": sum(slot.nbytes for slot in slots),
            "models": models,
            **counters,
        }

    def close(self) -> None:
        """Stop every worker; waiting jobs fail, the running batch is given a few seconds to finish."""
        with self._lock:
            self._closed = True
            slots = list(self._slots.values())
            self._slots.clear()
        for slot in slots:
            self._retire(slot)
        gc.collect()

    # -- queueing ----------------------------------------------------------------------------------

    def _submit(self, job: TextJob) -> Future[TextOutput | Exception]:
        _validate(job)
        base_id = job.base.id
        with self._lock:
            if self._closed:
                raise Overloaded("the text engine is shutting down", retry_after=5.0)
            for _ in range(2):  # a slot closed by eviction or a failed load is replaced once
                slot = self._slots.get(base_id)
                if slot is None or slot.spec != job.base:
                    slot = self._new_slot(job.base)
                assert slot.worker is not None
                try:
                    future = slot.worker.submit(job)
                except WorkerClosed:
                    if self._slots.get(base_id) is slot:
                        del self._slots[base_id]
                    continue
                except QueueFull:
                    raise Overloaded(
                        f"too many requests waiting for {base_id!r} ({self.max_queue}); retry shortly",
                        retry_after=self._retry_after(slot),
                    ) from None
                self._slots.move_to_end(base_id)
                return future
        raise Overloaded(f"model {base_id!r} is being reloaded; retry shortly", retry_after=1.0)

    def _retry_after(self, slot: _Slot) -> float:
        assert slot.worker is not None
        batches_ahead = slot.worker.queue_depth / self.max_batch_size + 1
        return float(max(1, math.ceil(slot.worker.last_batch_s * batches_ahead)))

    def _new_slot(self, spec: TextModelSpec) -> _Slot:
        """Called with the lock held: the worker's first act, on its own thread, is loading the base."""
        old = self._slots.pop(spec.id, None)
        if old is not None:  # the catalog entry changed (new source or dtype): retire the old load
            threading.Thread(target=self._retire, args=(old,), daemon=True).start()
        slot = _Slot(spec)
        slot.worker = BatchWorker(
            name=f"text:{spec.id}",
            run_batch=partial(self._run_batch, slot),
            batch_key=lambda _job: "text",  # any requests for one base can share a generate call
            job_size=lambda job: job.rows,
            max_queue=self.max_queue,
            max_batch_size=self.max_batch_size,
            batch_timeout_s=self.batch_timeout_s,
            setup=partial(self._load, slot),
            on_setup_error=partial(self._forget, slot),
        )
        self._slots[spec.id] = slot
        slot.worker.start()
        return slot

    # -- worker-thread side ------------------------------------------------------------------------

    def _device(self) -> str:
        if self.device == "auto":
            import torch

            self.device = "cuda" if torch.cuda.is_available() else "cpu"
        return self.device

    def _load(self, slot: _Slot) -> None:
        from genfoundry.inference.text_runner import TextRunner

        device = self._device()
        self._make_room(slot, estimate_weight_files_bytes(slot.spec))
        started = time.perf_counter()
        model = load_causal_lm(slot.spec, device=device, dtype=self.dtype)
        runner = TextRunner(
            slot.spec,
            model,
            load_tokenizer(slot.spec),
            device=device,
            max_adapters=self.max_adapters_per_base,
        )
        nbytes = estimate_model_bytes(model)
        assert slot.worker is not None
        if slot.worker.closed:  # the engine closed while this base was loading
            runner.release()
            return
        with self._lock:
            slot.runner, slot.nbytes = runner, nbytes
            self._counters["loads"] += 1
        logger.info("loaded %s (%d MiB) in %.2fs", slot.spec.id, nbytes >> 20, time.perf_counter() - started)
        self._make_room(slot, nbytes)

    def _forget(self, slot: _Slot, _exc: BaseException) -> None:
        with self._lock:
            if self._slots.get(slot.spec.id) is slot:
                del self._slots[slot.spec.id]

    def _make_room(self, slot: _Slot, need: int) -> None:
        """Evict least recently used idle bases until `need` more bytes fit; busy bases are never evicted."""
        evicted: list[_Slot] = []
        with self._lock:
            others = [other for other in self._slots.values() if other is not slot]
            total = sum(other.nbytes for other in others)
            for other in others:
                if total + need <= self.memory_budget_bytes:
                    break
                assert other.worker is not None
                if other.runner is not None and other.worker.close_if_idle():
                    del self._slots[other.spec.id]
                    total -= other.nbytes
                    evicted.append(other)
                    self._counters["evictions"] += 1
            over = total + need > self.memory_budget_bytes
        for other in evicted:
            logger.info("evicted %s to make room for %s", other.spec.id, slot.spec.id)
            self._retire(other)
        if evicted:
            gc.collect()
            if self.device.startswith("cuda"):
                import torch

                torch.cuda.empty_cache()
        if over and need:
            logger.warning("%s goes over the memory budget: the other loaded bases are busy", slot.spec.id)

    def _retire(self, slot: _Slot) -> None:
        assert slot.worker is not None
        slot.worker.close(timeout=30.0)
        if slot.runner is not None:
            slot.runner.release()
            slot.runner = None

    def _unload_on(self, slot: _Slot, adapter_id: str) -> None:
        if slot.runner is not None:
            slot.runner.unload_adapter(adapter_id)

    def _run_batch(self, slot: _Slot, jobs: list[TextJob]) -> list[TextOutput | Exception]:
        runner = slot.runner
        if runner is None:
            raise RuntimeError(f"{slot.spec.id!r} is not loaded")
        results = runner.run(jobs)
        with self._lock:
            self._counters["batches_served"] += 1
            self._counters["requests_served"] += len(jobs)
            self._counters["tokens_generated"] += sum(r.completion_tokens for r in results if isinstance(r, TextOutput))
        return results
