"""Per-sequence decoding state for a batched `generate` call: seeded sampling, incremental detokenizing,
stop strings, and the stream of text deltas.

One `generate` call serves several requests (and `n` choices each), every row with its own sampling
settings, seed, token budget and stop strings. `RowSampler` (a logits processor) samples each row with the
row's own `torch.Generator`, then masks every other token, so generate's greedy step picks the sampled one:
a row's output depends on its seed, not on the global RNG or on what else shares the batch. `BatchDecoder`
(a stopping criterion) consumes each new token: it detokenizes, trims stop strings, emits deltas, and ends
rows on EOS, a stop string, their token budget, or their caller's cancel.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

# A few prompt tokens give the first generated token its context (a leading space, a merged byte).
_PREFIX_CONTEXT_TOKENS = 5


@dataclass(frozen=True)
class TextDelta:
    """New text of one choice; `finish_reason` is set on its last delta ("stop" | "length")."""

    index: int
    text: str
    finish_reason: str | None = None


class TokenSink:
    """Where a streaming job's deltas go: an asyncio queue fed from the worker thread, plus a cancel flag."""

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self._loop = loop
        self.queue: asyncio.Queue[object] = asyncio.Queue()
        self.cancelled = threading.Event()

    def push(self, item: object) -> None:
        """Called from any thread; items arrive in the order one thread pushed them."""
        try:
            self._loop.call_soon_threadsafe(self.queue.put_nowait, item)
        except RuntimeError:  # the loop is closed: nobody is listening any more
            self.cancelled.set()


class IncrementalDetokenizer:
    """Text of a growing token list, emitted piece by piece without re-decoding the whole list each step.

    Decodes a short window of recent tokens and emits what it adds to the text of the window without the
    newest ones; a piece ending in U+FFFD (half a multi-byte character) waits for the next token.
    """

    def __init__(self, tokenizer: Any, prompt_ids: Sequence[int]) -> None:
        self._tokenizer = tokenizer
        self._ids: list[int] = list(prompt_ids[-_PREFIX_CONTEXT_TOKENS:])
        self._prefix = 0
        self._read = len(self._ids)

    def _decode(self, ids: list[int]) -> str:
        return str(self._tokenizer.decode(ids, skip_special_tokens=True, clean_up_tokenization_spaces=False))

    def add(self, token_id: int) -> str:
        self._ids.append(token_id)
        before = self._decode(self._ids[self._prefix : self._read])
        after = self._decode(self._ids[self._prefix :])
        if len(after) <= len(before) or after.endswith("\ufffd"):
            return ""
        self._prefix, self._read = self._read, len(self._ids)
        return after[len(before) :]

    def flush(self) -> str:
        """What is still held back (an unfinished character at the very end)."""
        before = self._decode(self._ids[self._prefix : self._read])
        after = self._decode(self._ids[self._prefix :])
        self._prefix = self._read = len(self._ids)
        return after[len(before) :] if len(after) > len(before) else ""


class StopMatcher:
    """Finds the first stop string in the text so far; holds back a tail that may begin one."""

    def __init__(self, stops: Sequence[str]) -> None:
        self.stops = tuple(s for s in stops if s)
        self._longest = max((len(s) for s in self.stops), default=0)
        self.text = ""
        self._sent = 0  # characters of `text` already released

    def feed(self, piece: str) -> tuple[str, bool]:
        """Add `piece`; returns (text safe to release now, whether a stop string was found)."""
        start = max(0, len(self.text) - self._longest + 1)
        self.text += piece
        if self.stops:
            found = [i for i in (self.text.find(stop, start) for stop in self.stops) if i >= 0]
            if found:
                self.text = self.text[: min(found)]
                return self._release(len(self.text)), True
        return self._release(len(self.text) - self._held_back()), False

    def finish(self) -> str:
        """Everything not yet released (the sequence ended without a stop string)."""
        return self._release(len(self.text))

    def _held_back(self) -> int:
        for size in range(min(self._longest - 1, len(self.text)), 0, -1):
            tail = self.text[-size:]
            if any(stop.startswith(tail) for stop in self.stops):
                return size
        return 0

    def _release(self, upto: int) -> str:
        upto = max(upto, self._sent)
        piece, self._sent = self.text[self._sent : upto], upto
        return piece


@dataclass(eq=False)
class RowState:
    """One sequence of the batch: one choice of one request."""

    index: int  # the choice index within its request
    prompt_len: int
    max_tokens: int
    temperature: float
    top_p: float
    seed: int
    eos_ids: frozenset[int]
    detokenizer: IncrementalDetokenizer
    stop: StopMatcher
    on_delta: Callable[[TextDelta], None] | None = None
    cancelled: threading.Event | None = None
    tokens: list[int] = field(default_factory=list)
    finish_reason: str | None = None
    generator: Any = None  # torch.Generator, made on the model's device
    warpers: Any = None  # transformers' temperature / top-p warpers for this row

    @property
    def finished(self) -> bool:
        return self.finish_reason is not None

    @property
    def text(self) -> str:
        return self.stop.text

    def consume(self, token_id: int) -> None:
        """Take the row's next token: EOS, budget, stop string or cancel may end the row here."""
        if self.cancelled is not None and self.cancelled.is_set():
            self._end("stop", "")
            return
        self.tokens.append(token_id)
        if token_id in self.eos_ids:
            self._end("stop", self.stop.feed(self.detokenizer.flush())[0] + self.stop.finish())
            return
        released, stopped = self.stop.feed(self.detokenizer.add(token_id))
        if stopped:
            self._end("stop", released)
        elif len(self.tokens) >= self.max_tokens:
            held, stopped = self.stop.feed(self.detokenizer.flush())
            self._end("stop" if stopped else "length", released + held + self.stop.finish())
        elif released and self.on_delta is not None:
            self.on_delta(TextDelta(self.index, released))

    def end_now(self) -> None:
        """End a row that `generate` stopped without this row's say; what is held back is released."""
        held, stopped = self.stop.feed(self.detokenizer.flush())
        self._end("stop" if stopped else "length", held + self.stop.finish())

    def _end(self, reason: str, released: str) -> None:
        self.finish_reason = reason
        if self.on_delta is not None:
            self.on_delta(TextDelta(self.index, released, reason))


def make_row_sampling(row: RowState, device: Any) -> None:
    """Give `row` its seeded generator and its warpers (none for greedy rows)."""
    import torch
    from transformers import LogitsProcessorList, TemperatureLogitsWarper, TopPLogitsWarper

    if row.temperature <= 0:
        return
    row.generator = torch.Generator(device=device).manual_seed(row.seed % 2**64)
    warpers = LogitsProcessorList([TemperatureLogitsWarper(row.temperature)])
    if row.top_p < 1.0:
        warpers.append(TopPLogitsWarper(row.top_p))
    row.warpers = warpers


class RowSampler:
    """A logits processor: samples each unfinished row with its own generator and masks the rest, so a
    greedy `generate` step picks that token. Greedy rows (temperature 0) keep their scores."""

    def __init__(self, rows: Sequence[RowState]) -> None:
        self.rows = rows

    def __call__(self, input_ids: Any, scores: Any) -> Any:
        import torch

        for i, row in enumerate(self.rows):
            if row.finished or row.warpers is None:
                continue
            warped = row.warpers(input_ids[i : i + 1], scores[i : i + 1])
            probs = torch.softmax(warped, dim=-1)
            token = torch.multinomial(probs, num_samples=1, generator=row.generator)[0, 0]
            chosen = torch.full_like(scores[i], float("-inf"))
            chosen[token] = 0.0
            scores[i] = chosen
        return scores


class BatchDecoder:
    """A stopping criterion: hands each row its new token and reports which rows are done."""

    def __init__(self, rows: Sequence[RowState], on_row_done: Callable[[RowState], None] | None = None) -> None:
        self.rows = rows
        self._on_row_done = on_row_done

    def __call__(self, input_ids: Any, scores: Any, **kwargs: Any) -> Any:
        import torch

        newest = input_ids[:, -1].tolist()
        for row, token_id in zip(self.rows, newest, strict=True):
            if row.finished:
                continue
            row.consume(int(token_id))
            if row.finished and self._on_row_done is not None:
                self._on_row_done(row)
        return torch.tensor([row.finished for row in self.rows], dtype=torch.bool, device=input_ids.device)
