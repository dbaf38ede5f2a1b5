"""The text engine: completions from catalog causal LMs, with PEFT adapters chosen per request.

Each base is loaded once (on its own worker thread, never on the event loop) and kept in an LRU under a
memory budget. Requests for a base wait in that base's bounded queue; its worker decodes every waiting
request together as one batch (micro-batching), each row with its own adapter, seed, sampling settings, token
budget and stop strings, and a row leaves the batch as it ends (see text_runner.py, text_sampling.py,
text_lora_mix.py and text_decoding.py). A streaming request gets its text deltas as they are decoded, through
an asyncio queue fed from the worker thread.
"""

from __future__ import annotations

import asyncio
import math
import threading
from collections.abc import AsyncIterator, Hashable, Sequence
from concurrent.futures import Future
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from genfoundry.errors import Invalid
from genfoundry.inference.heavy_imports import import_ml_libraries
from genfoundry.inference.model_pool import ModelPool, QueuePlace, Slot
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


class TextEngine(ModelPool[TextModelSpec, TextJob, "TextOutput | Exception", "TextRunner"]):
    """Serves `TextJob`s: one worker thread and bounded queue per loaded base, LRU under a byte budget."""

    kind = "text"

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
        threads: int | None = None,
    ) -> None:
        if max_adapters_per_base < 1:
            raise ValueError(f"need max_adapters_per_base >= 1, got {max_adapters_per_base}")
        super().__init__(
            device=device,
            dtype=dtype,
            memory_budget_bytes=memory_budget_bytes,
            max_queue=max_queue,
            max_batch_size=max_batch_size,
            batch_timeout_s=batch_timeout_s,
            counters=("requests_served", "batches_served", "tokens_generated"),
            threads=threads,
        )
        self.max_adapters_per_base = max_adapters_per_base
        self._tokenizers: dict[TextModelSpec, TextTokenizer] = {}
        self._tokenizer_lock = threading.Lock()

    # -- public API --------------------------------------------------------------------------------

    def tokenizer(self, spec: TextModelSpec) -> TextTokenizer:
        """The base's tokenizer and context length for the request side, loaded once (no weights)."""
        import_ml_libraries()
        with self._tokenizer_lock:
            found = self._tokenizers.get(spec)
            if found is None:
                found = TextTokenizer(load_tokenizer(spec), context_length=load_context_length(spec))
                self._tokenizers[spec] = found
            return found

    async def generate(self, job: TextJob, place: QueuePlace | None = None) -> TextOutput:
        """All choices of `job`, as soon as its rows end (not when the rest of its batch does); raises
        `Overloaded` at once when the base's queue is full, unless `place` (from `hold_place`) holds a place in
        it. Cancelling the caller ends the job's rows at their next token."""
        sink = TokenSink(asyncio.get_running_loop(), deltas=False)
        job = TextJob(job.base, job.prompts, job.sampling, job.n, job.adapter, sink)
        stream = TextStream(sink, self._submit(job, place))
        try:
            async for _delta in stream:  # none come: the output ends the iteration
                pass
        finally:
            stream.cancel()  # a no-op once the job is done
        if stream.output is None:
            raise RuntimeError("the text job ended without an output")
        return stream.output

    def generate_sync(self, job: TextJob) -> TextOutput:
        """`generate` for in-process use (CLI, benchmarks): same queue and worker, blocking the caller."""
        return _unwrap(self._submit(job).result())

    def stream(self, job: TextJob, place: QueuePlace | None = None) -> TextStream:
        """Queue `job` and return its stream of deltas; call from the event loop that will read it."""
        sink = TokenSink(asyncio.get_running_loop())
        job = TextJob(job.base, job.prompts, job.sampling, job.n, job.adapter, sink)
        return TextStream(sink, self._submit(job, place))

    # -- the pool's hooks --------------------------------------------------------------------------

    def _validate(self, job: TextJob) -> None:
        _validate(job)

    def _job_base(self, job: TextJob) -> TextModelSpec:
        return job.base

    def _batch_key(self, job: TextJob) -> Hashable:
        return "text"  # any requests for one base can share a generate call

    def _job_size(self, job: TextJob) -> int:
        return job.rows

    def _estimate_bytes(self, spec: TextModelSpec) -> int:
        return estimate_weight_files_bytes(spec)

    def _load_runner(self, spec: TextModelSpec, device: str) -> tuple[TextRunner, int]:
        from genfoundry.inference.text_runner import TextRunner

        model = load_causal_lm(spec, device=device, dtype=self.dtype)
        runner = TextRunner(
            spec,
            model,
            load_tokenizer(spec),
            device=device,
            max_adapters=self.max_adapters_per_base,
            max_rows=self.max_batch_size,
        )
        return runner, estimate_model_bytes(model)

    def _run_batch(
        self, slot: Slot[TextModelSpec, TextJob, TextOutput | Exception, TextRunner], jobs: list[TextJob]
    ) -> list[TextOutput | Exception]:
        runner = slot.runner
        if runner is None:
            raise RuntimeError(f"{slot.spec.id!r} is not loaded")
        worker = slot.worker
        results = runner.run(jobs, join=worker.take_joining if worker is not None else None)
        with self._lock:
            self._counters["batches_served"] += 1
            self._counters["requests_served"] += len(jobs)
            self._counters["tokens_generated"] += sum(r.completion_tokens for r in results if isinstance(r, TextOutput))
        return results
