"""One loaded causal LM, its tokenizer and its PEFT adapters; decodes a batch of text jobs together.

Every method runs on the base's worker thread (see batching.py), so the model and its adapter state are
never touched by two threads at once. The decode loop is this module's own, not `generate`: one prefill of
the left-padded prompts into a `DynamicCache`, then one forward per step for the rows still going. Each step
samples every row on the device (text_sampling.py), reads the new tokens back once, hands each row its
token (text_decoding.py), and drops the rows that ended (EOS, stop string, their own `max_tokens`, cancel)
from the batch, the cache, the mask and the sampler, so a finished row costs nothing more.

Rows of one batch may use different adapters. No adapter in the batch: the base with PEFT's LoRA off;
otherwise each row's LoRA is added per row in one pass per layer (text_lora_mix.py), one adapter or several,
so a row computes the same whatever shares its batch. Adapters that path does not cover (DoRA, LoRA bias,
non-linear layers) take PEFT's plain path with the adapter set active, each adapter's rows decoded as their
own batch one after another. Every decode states its adapters afresh, so none can leak from one request into
another.
"""

from __future__ import annotations

import inspect
import logging
import time
from collections import OrderedDict
from collections.abc import Callable, Iterator, Sequence
from contextlib import ExitStack, contextmanager, nullcontext
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from genfoundry.errors import Invalid
from genfoundry.inference.export_guard import EXPORT_GUARD
from genfoundry.inference.image_runner import adapter_name
from genfoundry.inference.loader import MODULE_BUILD_LOCK
from genfoundry.inference.text_batch_join import join_caches, joinable
from genfoundry.inference.text_decoding import IncrementalDetokenizer, RowState, StopMatcher
from genfoundry.inference.text_lora_mix import PerRowLora, lora_layers, set_peft_lora
from genfoundry.inference.text_sampling import BatchSampler

if TYPE_CHECKING:
    from genfoundry.inference.text import TextAdapterSpec, TextJob, TextOutput
    from genfoundry.inference.text_loader import TextModelSpec

logger = logging.getLogger(__name__)

BASE_ADAPTER = "__base__"  # a row without adapter (the name PEFT gives it in its own mixed batches)

# (free rows, accept(job)) -> waiting jobs that join the running decode (`BatchWorker.take_joining`)
JoinSource = Callable[[int, Callable[["TextJob"], bool]], list["TextJob"]]


@dataclass
class _NewRows:
    """Rows entering a decode, with each one's prompt and adapter name."""

    rows: list[RowState] = field(default_factory=list)
    prompts: list[tuple[int, ...]] = field(default_factory=list)
    names: list[str] = field(default_factory=list)


def _consume(rows: Sequence[RowState], chosen: Any, row_done: Callable[[RowState], None]) -> list[int]:
    """Hand each row its new token; the positions of the rows that go on."""
    going = []
    for at, (row, token_id) in enumerate(zip(rows, chosen.tolist(), strict=True)):  # the step's one sync
        row.consume(int(token_id))
        if row.finished:
            row_done(row)
        else:
            going.append(at)
    return going


def _acceptor(layers: Sequence[Any] | None, names: Sequence[str]) -> Callable[[str], bool]:
    """Which adapter names may join a decode of `names`: with per-row LoRA (`layers`, the model's LoRA layers)
    any it covers; otherwise (the base alone, or one adapter on PEFT's path) only the same one."""
    if layers is None:
        same = set(names)
        return lambda name: name in same
    return lambda name: PerRowLora.covers(layers, [name])


def _token_ids(value: Any) -> list[int]:
    if value is None:
        return []
    return [int(v) for v in value] if isinstance(value, list | tuple) else [int(value)]


@dataclass
class _Live:
    """Rows decoding together: their adapter names, cache, attention mask (rows × cached length), last
    positions, the tokens they take next, and their sampler."""

    rows: list[RowState]
    names: list[str]
    cache: Any
    mask: Any
    positions: Any
    chosen: Any
    sampler: BatchSampler

    def keep(self, going: list[int], per_row: PerRowLora | None) -> None:
        """Only the rows at `going` go on: ended rows leave the cache, mask, sampler and adapters."""
        if len(going) == len(self.rows):
            return
        import torch

        kept = torch.tensor(going, dtype=torch.long, device=self.chosen.device)
        self.cache.batch_select_indices(kept)
        self.chosen, self.mask, self.positions = self.chosen[kept], self.mask[kept], self.positions[kept]
        self.sampler.select(going)
        if per_row is not None:
            per_row.select(kept)
        self.rows, self.names = [self.rows[i] for i in going], [self.names[i] for i in going]

    def append(self, other: _Live) -> None:
        """`other`'s rows join these, after them (their caches joined left-padded)."""
        import torch

        self.mask = join_caches(self.cache, self.mask, other.cache, other.mask)
        self.chosen = torch.cat([self.chosen, other.chosen])
        self.positions = torch.cat([self.positions, other.positions])
        self.sampler.extend(other.sampler)
        self.rows += other.rows
        self.names += other.names


class _Book:
    """The jobs of one run, those that joined it included: their rows, and each job's output as they end."""

    def __init__(self, runner: TextRunner) -> None:
        self._runner = runner
        self._jobs: list[TextJob] = []
        self._results: list[TextOutput | Exception | None] = []
        self._started: list[float] = []
        self._rows: dict[int, list[RowState]] = {}
        self._remaining: dict[int, int] = {}
        self._owner: dict[RowState, int] = {}  # RowState hashes by identity

    def add(self, jobs: Sequence[TextJob], keep: set[str]) -> _NewRows:
        """The rows of `jobs` (loading their adapters, keeping those of `keep`); a job whose adapter does not
        load gets that error as its result, and the others still run."""
        new = _NewRows()
        for job in jobs:
            position = len(self._jobs)
            self._jobs.append(job)
            self._results.append(None)
            self._started.append(time.perf_counter())
            try:
                name = self._runner._adapter(job.adapter, keep)
            except Invalid as exc:
                self._results[position] = exc
                continue
            sink = job.sink
            rows = self._runner._rows(job, sink.push if sink is not None and sink.deltas else None)
            self._rows[position], self._remaining[position] = rows, len(rows)
            self._owner.update(dict.fromkeys(rows, position))
            new.rows += rows
            new.prompts += [prompt for prompt in job.prompts for _ in range(job.n)]
            new.names += [name] * len(rows)
        return new

    def _output(self, position: int) -> TextOutput:
        from genfoundry.inference.text import TextOutput

        elapsed = time.perf_counter() - self._started[position]
        return TextOutput.from_rows(self._jobs[position], self._rows.get(position, []), elapsed)

    def row_done(self, row: RowState) -> None:
        position = self._owner[row]
        self._remaining[position] -= 1
        if self._remaining[position] == 0:
            self._results[position] = done = self._output(position)
            sink = self._jobs[position].sink
            if sink is not None:  # the job's answer goes out now, even if other rows of the batch go on
                sink.push(done)

    def results(self) -> list[TextOutput | Exception]:
        return [result if result is not None else self._output(i) for i, result in enumerate(self._results)]


class TextRunner:
    """Runs batches of text jobs on one base; loads each adapter once and keeps at most `max_adapters`."""

    def __init__(
        self, spec: TextModelSpec, model: Any, tokenizer: Any, *, device: str, max_adapters: int, max_rows: int
    ) -> None:
        self.spec = spec
        self.max_rows = max_rows  # rows decoding at once: waiting jobs join a decode only while it has fewer
        self.model: Any = model
        self.tokenizer = tokenizer
        self.device = device
        self.max_adapters = max_adapters
        self._adapters: OrderedDict[str, str] = OrderedDict()  # adapter id -> PEFT adapter name, LRU first
        self.adapter_ids: tuple[str, ...] = ()  # snapshot for stats(), read from other threads
        self._lora_layers: list[Any] | None = None  # the model's LoRA layers, found again after a load or delete
        self._peft_lora_on: bool | None = None  # PEFT's own LoRA in those layers; None: not known
        config = model.generation_config
        self.eos_ids = frozenset(_token_ids(config.eos_token_id) + _token_ids(tokenizer.eos_token_id))
        pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else config.pad_token_id
        self.pad_id = int(pad if pad is not None else min(self.eos_ids, default=0))
        # A request's sampling is exactly what it asked for (OpenAI's semantics): the checkpoint's recommended
        # temperature or repetition penalty in its generation_config play no part in the decode loop.
        self._logits_to_keep = "logits_to_keep" in inspect.signature(model.forward).parameters

    # -- adapters ----------------------------------------------------------------------------------

    @property
    def has_peft(self) -> bool:
        return hasattr(self.model, "peft_config")

    def _adapter(self, adapter: TextAdapterSpec | None, keep: set[str]) -> str:
        """The PEFT name of `adapter` on this base, loaded now if it is not yet; "__base__" for None."""
        if adapter is None:
            return BASE_ADAPTER
        name = self._adapters.get(adapter.id)
        if name is not None:
            self._adapters.move_to_end(adapter.id)
            return name
        for old_id in [i for i in self._adapters if i not in keep][
            : max(0, len(self._adapters) + 1 - self.max_adapters)
        ]:
            self.unload_adapter(old_id)
        name = adapter_name(adapter.id)
        started = time.perf_counter()
        try:
            with MODULE_BUILD_LOCK:
                if self.has_peft:
                    self.model.load_adapter(adapter.path, adapter_name=name, is_trainable=False)
                else:
                    from peft import PeftModel

                    self.model = PeftModel.from_pretrained(
                        self.model, adapter.path, adapter_name=name, is_trainable=False
                    )
        except (OSError, ValueError, KeyError, RuntimeError) as exc:
            raise Invalid(f"cannot load adapter {adapter.id!r} into {self.spec.id!r}: {exc}", param="model") from exc
        self.model.eval()
        self._lora_layers = None  # new layers, and PEFT's state in the old ones no longer known
        logger.info("loaded adapter %s into %s in %.3fs", adapter.id, self.spec.id, time.perf_counter() - started)
        self._adapters[adapter.id] = name
        self.adapter_ids = tuple(self._adapters)
        return name

    def unload_adapter(self, adapter_id: str) -> bool:
        """Remove the adapter's layers from the base; False when it was not loaded here."""
        name = self._adapters.pop(adapter_id, None)
        if name is None:
            return False
        if self._adapters:
            self.model.delete_adapter(name)
        else:  # the last one: back to the plain base model
            self.model = self.model.unload()
        self._lora_layers = None
        self.adapter_ids = tuple(self._adapters)
        return True

    def _lora_layers_now(self) -> list[Any]:
        if self._lora_layers is None:
            self._lora_layers, self._peft_lora_on = lora_layers(self.model), None
        return self._lora_layers

    def _adapter_groups(self, names: list[str]) -> list[list[int]]:
        """The rows (indices into `names`) decoded together: all of them, unless they mix adapters that per-row
        LoRA cannot apply; then each adapter's rows on their own."""
        everyone = list(range(len(names)))
        if not self.has_peft or len(set(names)) == 1:
            return [everyone]
        if PerRowLora.covers(self._lora_layers_now(), names):
            return [everyone]
        groups: dict[str, list[int]] = {}
        for i, name in enumerate(names):
            groups.setdefault(name, []).append(i)
        return list(groups.values())

    @contextmanager
    def _adapters_for(self, names: list[str]) -> Iterator[PerRowLora | None]:
        """Set the model up for each row's adapter (one adapter group's, see `_adapter_groups`) for the
        forwards of one decode, and nothing after it; yields the per-row LoRA for the caller to apply (and to
        follow the rows that leave and join), if any."""
        distinct = set(names)
        if not self.has_peft:
            yield None
            return
        layers = self._lora_layers_now()
        per_row = None if distinct == {BASE_ADAPTER} else PerRowLora.build(layers, names)
        self._peft_lora(on=distinct != {BASE_ADAPTER} and per_row is None)
        if per_row is not None:
            yield per_row
        else:  # the base alone, or one adapter per-row LoRA cannot apply
            if distinct != {BASE_ADAPTER}:
                self.model.set_adapter(names[0])
            yield None

    def _peft_lora(self, *, on: bool) -> None:
        """PEFT's own LoRA on (its paths serve the batch) or off (the base, or LoRA added per row), switched
        only when it is not already so: switching walks every adapter parameter."""
        if self._lora_layers is not None and self._peft_lora_on is not on:
            set_peft_lora(self._lora_layers, on)
            self._peft_lora_on = on

    # -- generation --------------------------------------------------------------------------------

    def _rows(self, job: TextJob, on_delta: Any) -> list[RowState]:
        rows = []
        sampling = job.sampling
        for p, prompt in enumerate(job.prompts):
            for j in range(job.n):
                index = p * job.n + j
                row = RowState(
                    index=index,
                    prompt_len=len(prompt),
                    max_tokens=sampling.max_tokens,
                    temperature=sampling.temperature,
                    top_p=sampling.top_p,
                    seed=sampling.seed + index,
                    eos_ids=self.eos_ids,
                    detokenizer=IncrementalDetokenizer(self.tokenizer, prompt),
                    stop=StopMatcher(sampling.stop),
                    on_delta=on_delta,
                    cancelled=job.sink.cancelled if job.sink is not None else None,
                )
                rows.append(row)
        return rows

    def run(self, jobs: Sequence[TextJob], join: JoinSource | None = None) -> list[TextOutput | Exception]:
        """One decode for all rows of `jobs`; per job its output, or the error that job alone hit. With `join`,
        waiting jobs join the decode at step boundaries while it has room; their results follow, in the order
        they joined."""
        with EXPORT_GUARD.running():
            return self._run(jobs, join)

    def _run(self, jobs: Sequence[TextJob], join: JoinSource | None) -> list[TextOutput | Exception]:
        book = _Book(self)
        first = book.add(jobs, keep={job.adapter.id for job in jobs if job.adapter is not None})
        rows, prompts, names = first.rows, first.prompts, first.names
        groups = self._adapter_groups(names) if rows else []
        for group in groups:
            joiner = None
            if join is not None and len(groups) == 1:

                def joiner(room: int, accept: Callable[[str], bool]) -> _NewRows:
                    def takes(job: TextJob) -> bool:
                        name = self._loaded_name(job)
                        return name is not None and accept(name)

                    return book.add(join(room, takes), keep=set(self._adapters))

            self._decode(
                [rows[i] for i in group],
                [prompts[i] for i in group],
                [names[i] for i in group],
                book.row_done,
                joiner,
            )
        return book.results()

    def _loaded_name(self, job: TextJob) -> str | None:
        """The PEFT name of the job's adapter if it is loaded here ("__base__" for none), else None."""
        return BASE_ADAPTER if job.adapter is None else self._adapters.get(job.adapter.id)

    def _left_padded(self, prompts: Sequence[tuple[int, ...]]) -> tuple[Any, Any, Any]:
        """(token ids, attention mask, position ids) of `prompts` left-padded to the longest, on the device."""
        import torch

        width = max(len(prompt) for prompt in prompts)
        input_ids = torch.full((len(prompts), width), self.pad_id, dtype=torch.long)
        mask = torch.zeros((len(prompts), width), dtype=torch.long)
        for i, prompt in enumerate(prompts):  # left padding: every row's next token is at the end
            input_ids[i, width - len(prompt) :] = torch.tensor(prompt, dtype=torch.long)
            mask[i, width - len(prompt) :] = 1
        tokens, mask = input_ids.to(self.device), mask.to(self.device)
        return tokens, mask, (mask.cumsum(-1) - 1).clamp(min=0)  # as `generate` numbers left-padded rows

    def _next_tokens(self, tokens: Any, mask: Any, positions: Any, cache: Any, sampler: BatchSampler) -> Any:
        extra: dict[str, Any] = {"logits_to_keep": 1} if self._logits_to_keep else {}
        inputs = {"input_ids": tokens, "attention_mask": mask, "position_ids": positions, "past_key_values": cache}
        logits = self.model(**inputs, use_cache=True, **extra).logits
        return sampler(logits[:, -1, :].float())

    def _prefill(
        self,
        rows: list[RowState],
        prompts: list[tuple[int, ...]],
        names: list[str],
        row_done: Callable[[RowState], None],
        per_row: PerRowLora | None,
    ) -> _Live:
        """The first forward of `rows` on a cache of their own, their first tokens handed out; the rows that go
        on (`per_row` follows them)."""
        from transformers import DynamicCache

        tokens, mask, positions = self._left_padded(prompts)
        cache = DynamicCache(config=self.model.config)
        sampler = BatchSampler(rows, self.device)
        chosen = self._next_tokens(tokens, mask, positions, cache, sampler)
        live = _Live(rows, names, cache, mask, positions[:, -1:], chosen, sampler)
        live.keep(_consume(rows, chosen, row_done), per_row)
        return live

    def _decode(
        self,
        rows: list[RowState],
        prompts: list[tuple[int, ...]],
        names: list[str],
        row_done: Callable[[RowState], None],
        join: Callable[[int, Callable[[str], bool]], _NewRows] | None = None,
    ) -> None:
        """Decode until every row has ended; `row_done(row)` as each one ends. `join(room, accept)`: rows of
        waiting jobs (whose adapter names `accept` takes) that join at the next step boundary."""
        import torch

        with torch.inference_mode(), self._adapters_for(names) as per_row, ExitStack() as applied:
            if per_row is not None:
                applied.enter_context(per_row.applied())
            live = self._prefill(rows, prompts, names, row_done, per_row)
            while live.rows:
                if join is not None and len(live.rows) < self.max_rows and joinable(live.cache):
                    per_row = self._join(live, per_row, applied, join, row_done)
                live.positions = live.positions + 1
                live.mask = torch.cat([live.mask, live.mask.new_ones((len(live.rows), 1))], dim=-1)
                live.chosen = self._next_tokens(
                    live.chosen[:, None], live.mask, live.positions, live.cache, live.sampler
                )
                live.keep(_consume(live.rows, live.chosen, row_done), per_row)

    def _join(
        self,
        live: _Live,
        per_row: PerRowLora | None,
        applied: ExitStack,
        join: Callable[[int, Callable[[str], bool]], _NewRows],
        row_done: Callable[[RowState], None],
    ) -> PerRowLora | None:
        """Waiting jobs' rows join `live`: prefilled on their own cache (per-row LoRA on their rows only), then
        appended. Returns the per-row LoRA now applied (rebuilt for the joined batch's adapters)."""
        import torch

        layers = self._lora_layers_now() if per_row is not None else None
        new = join(self.max_rows - len(live.rows), _acceptor(layers, live.names))
        if not new.rows:
            return per_row
        running = len(live.rows)
        if per_row is not None:  # the joined batch's adapters in place of the old
            applied.close()
            per_row = PerRowLora.build(self._lora_layers_now(), live.names + new.names)
            if per_row is None:
                raise RuntimeError("a joining row's adapter is not plain LoRA")
            applied.enter_context(per_row.applied())
        theirs = torch.arange(running, running + len(new.rows), device=self.device)
        with per_row.only(theirs) if per_row is not None else nullcontext():
            joining = self._prefill(new.rows, new.prompts, new.names, row_done, None)
        if per_row is not None:
            going = [*range(running), *(running + i for i, row in enumerate(new.rows) if not row.finished)]
            per_row.select(torch.tensor(going, dtype=torch.long, device=self.device))
        if joining.rows:
            live.append(joining)
        return per_row

    def release(self) -> None:
        """Drop the model so its memory can be freed (eviction)."""
        self.model = None
        self._adapters.clear()
        self.adapter_ids = ()
