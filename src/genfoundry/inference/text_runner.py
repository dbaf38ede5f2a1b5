"""One loaded causal LM, its tokenizer and its PEFT adapters; runs a batch of text jobs as one `generate` call.

Every method runs on the base's worker thread (see batching.py), so the model and its adapter state are
never touched by two threads at once. Rows of one batch may use different adapters: PEFT's `adapter_names`
applies each row's LoRA (or none, "__base__") inside the same forward pass. Every generate call states its
adapters afresh (set active, disabled for the call, or per row), so none can leak from one request into
another.
"""

from __future__ import annotations

import logging
import time
from collections import OrderedDict
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

from genfoundry.errors import Invalid
from genfoundry.inference.export_guard import EXPORT_GUARD
from genfoundry.inference.image_runner import adapter_name
from genfoundry.inference.loader import MODULE_BUILD_LOCK
from genfoundry.inference.text_decoding import (
    BatchDecoder,
    IncrementalDetokenizer,
    RowSampler,
    RowState,
    StopMatcher,
    make_row_sampling,
)

if TYPE_CHECKING:
    from genfoundry.inference.text import TextAdapterSpec, TextJob, TextOutput
    from genfoundry.inference.text_loader import TextModelSpec

logger = logging.getLogger(__name__)

BASE_ADAPTER = "__base__"  # PEFT's name for "no adapter" in a mixed batch


def _token_ids(value: Any) -> list[int]:
    if value is None:
        return []
    return [int(v) for v in value] if isinstance(value, list | tuple) else [int(value)]


class TextRunner:
    """Runs batches of text jobs on one base; loads each adapter once and keeps at most `max_adapters`."""

    def __init__(self, spec: TextModelSpec, model: Any, tokenizer: Any, *, device: str, max_adapters: int) -> None:
        from transformers import GenerationConfig

        self.spec = spec
        self.model: Any = model
        self.tokenizer = tokenizer
        self.device = device
        self.max_adapters = max_adapters
        self._adapters: OrderedDict[str, str] = OrderedDict()  # adapter id -> PEFT adapter name, LRU first
        self.adapter_ids: tuple[str, ...] = ()  # snapshot for stats(), read from other threads
        config = model.generation_config
        self.eos_ids = frozenset(_token_ids(config.eos_token_id) + _token_ids(tokenizer.eos_token_id))
        pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else config.pad_token_id
        self.pad_id = int(pad if pad is not None else min(self.eos_ids, default=0))
        # Only the special token ids survive from the model's own generation_config: a request's sampling is
        # exactly what it asked for (OpenAI's semantics), not the checkpoint's recommended temperature or
        # repetition penalty.
        model.generation_config = GenerationConfig(
            bos_token_id=config.bos_token_id, eos_token_id=sorted(self.eos_ids) or None, pad_token_id=self.pad_id
        )

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
        self.adapter_ids = tuple(self._adapters)
        return True

    @contextmanager
    def _adapters_for(self, names: list[str], kwargs: dict[str, Any]) -> Iterator[None]:
        """Apply each row's adapter for one generate call, and nothing after it.

        One adapter for every row: PEFT's plain path with that adapter set active (no per-layer row
        indexing); no adapter: the base with adapters disabled for the call; a mix: `adapter_names`, which
        PEFT applies per row inside each LoRA layer.
        """
        distinct = set(names)
        if not self.has_peft:
            yield
        elif distinct == {BASE_ADAPTER}:
            with self.model.disable_adapter():
                yield
        elif len(distinct) == 1:
            self.model.set_adapter(names[0])
            yield
        else:
            kwargs["adapter_names"] = names
            yield

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
                make_row_sampling(row, self.device)
                rows.append(row)
        return rows

    def run(self, jobs: Sequence[TextJob]) -> list[TextOutput | Exception]:
        """One `generate` call for all rows of `jobs`; per job its output, or the error that job alone hit."""
        with EXPORT_GUARD.running():
            return self._run(jobs)

    def _run(self, jobs: Sequence[TextJob]) -> list[TextOutput | Exception]:
        import torch
        from transformers import GenerationConfig, LogitsProcessorList, StoppingCriteriaList

        from genfoundry.inference.text import TextOutput

        started = time.perf_counter()
        results: list[TextOutput | Exception | None] = [None] * len(jobs)
        keep = {job.adapter.id for job in jobs if job.adapter is not None}
        rows: list[RowState] = []
        prompts: list[tuple[int, ...]] = []
        names: list[str] = []
        owners: list[int] = []  # row -> job position
        for position, job in enumerate(jobs):
            try:
                name = self._adapter(job.adapter, keep)
            except Invalid as exc:  # this job's adapter does not load: the others still run
                results[position] = exc
                continue
            sink = job.sink
            job_rows = self._rows(job, sink.push if sink is not None else None)
            rows += job_rows
            prompts += [prompt for prompt in job.prompts for _ in range(job.n)]
            names += [name] * len(job_rows)
            owners += [position] * len(job_rows)

        remaining = {position: owners.count(position) for position in set(owners)}

        def output(position: int) -> TextOutput:
            job_rows = [row for row, owner in zip(rows, owners, strict=True) if owner == position]
            return TextOutput.from_rows(jobs[position], job_rows, time.perf_counter() - started)

        def row_done(row: RowState) -> None:
            position = owners[rows.index(row)]
            remaining[position] -= 1
            if remaining[position] == 0:
                results[position] = done = output(position)
                sink = jobs[position].sink
                if sink is not None:  # the stream ends now, even if other rows of the batch go on
                    sink.push(done)

        if rows:
            width = max(len(prompt) for prompt in prompts)
            input_ids = torch.full((len(rows), width), self.pad_id, dtype=torch.long)
            attention_mask = torch.zeros((len(rows), width), dtype=torch.long)
            for i, prompt in enumerate(prompts):  # left padding: every row's next token is at the end
                input_ids[i, width - len(prompt) :] = torch.tensor(prompt, dtype=torch.long)
                attention_mask[i, width - len(prompt) :] = 1
            kwargs: dict[str, Any] = {
                "input_ids": input_ids.to(self.device),
                "attention_mask": attention_mask.to(self.device),
                "generation_config": GenerationConfig(
                    max_new_tokens=max(row.max_tokens for row in rows),
                    do_sample=False,
                    num_beams=1,
                    eos_token_id=sorted(self.eos_ids) or None,
                    pad_token_id=self.pad_id,
                ),
                "logits_processor": LogitsProcessorList([RowSampler(rows)]),
                "stopping_criteria": StoppingCriteriaList([BatchDecoder(rows, row_done)]),
            }
            with torch.inference_mode(), self._adapters_for(names, kwargs):
                self.model.generate(**kwargs)
            for row in rows:  # generate ended every row through BatchDecoder; this is a safety net
                if not row.finished:
                    row.end_now()
                    row_done(row)
        return [result if result is not None else output(i) for i, result in enumerate(results)]

    def release(self) -> None:
        """Drop the model so its memory can be freed (eviction)."""
        self.model = None
        self._adapters.clear()
        self.adapter_ids = ()
