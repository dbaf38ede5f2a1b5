"""Per-sequence decoding state for a batched decode: incremental detokenizing, stop strings, and the stream of
text deltas.

One decode serves several requests (and `n` choices each), every row with its own sampling settings, seed,
token budget and stop strings. The decode loop (text_runner.py) samples every row at once on the device
(text_sampling.py), reads the new tokens back once per step, and hands each row its token: `RowState.consume`
detokenizes, trims stop strings, emits deltas, and ends the row on EOS, a stop string, its token budget or
its caller's cancel; an ended row leaves the batch.
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
    """Where a job's deltas and output go: an asyncio queue fed from the worker thread, plus a cancel flag.

    `deltas=False`: only the job's output comes, as soon as its last row ends (the batch may go on)."""

    def __init__(self, loop: asyncio.AbstractEventLoop, *, deltas: bool = True) -> None:
        self._loop = loop
        self.deltas = deltas
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

    def _end(self, reason: str, released: str) -> None:
        self.finish_reason = reason
        if self.on_delta is not None:
            self.on_delta(TextDelta(self.index, released, reason))
