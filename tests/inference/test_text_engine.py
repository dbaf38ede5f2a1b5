"""TextEngine on tiny-llm through the real loading code: greedy and seeded sampling, budgets, stop strings,
micro-batches with mixed adapters, streaming, cancel, adapter isolation and unloading. All on CPU."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest

from genfoundry.errors import Invalid, ModelUnavailable
from genfoundry.inference.text import (
    SamplingParams,
    TextAdapterSpec,
    TextEngine,
    TextJob,
    TextModelSpec,
    TextOutput,
)


def _engine(**overrides: Any) -> TextEngine:
    options: dict[str, Any] = {
        "device": "cpu",
        "dtype": "float32",
        "memory_budget_bytes": 2 * 1024**3,
        "max_queue": 16,
        "max_batch_size": 8,
        "batch_timeout_s": 0.0,
    }
    options.update(overrides)
    return TextEngine(**options)


@pytest.fixture(scope="module")
def spec(tiny_llm: Path) -> TextModelSpec:
    return TextModelSpec(id="tiny-llm", source=str(tiny_llm), dtype="float32")


@pytest.fixture(scope="module")
def engine() -> Iterator[TextEngine]:
    eng = _engine()
    yield eng
    eng.close()


@pytest.fixture(scope="module")
def prompt(engine: TextEngine, spec: TextModelSpec) -> tuple[int, ...]:
    tokenizer = engine.tokenizer(spec)
    return tuple(
        tokenizer.encode(
            "<|im_start|>user\nA class diagram<|im_end|>\n<|im_start|>assistant\n", add_special_tokens=False
        )
    )


@pytest.fixture(scope="module")
def adapters(lora_dirs: dict[str, Path]) -> dict[str, TextAdapterSpec]:
    return {name: TextAdapterSpec(id=f"lora-{name}", path=str(folder)) for name, folder in lora_dirs.items()}


def run(engine: TextEngine, spec: TextModelSpec, prompt: tuple[int, ...], **kwargs: Any) -> TextOutput:
    n = kwargs.pop("n", 1)
    adapter = kwargs.pop("adapter", None)
    sampling = SamplingParams(**{"max_tokens": 8, "temperature": 0.0, **kwargs})
    return engine.generate_sync(TextJob(spec, (prompt,), sampling, n=n, adapter=adapter))


def texts(output: TextOutput) -> list[str]:
    return [choice.text for choice in output.choices]


def test_greedy_is_repeatable_and_counts_tokens(
    engine: TextEngine, spec: TextModelSpec, prompt: tuple[int, ...]
) -> None:
    first = run(engine, spec, prompt, max_tokens=6)
    second = run(engine, spec, prompt, max_tokens=6)
    assert texts(first) == texts(second)
    assert first.choices[0].text.strip()
    assert first.choices[0].finish_reason == "length"  # random weights never say <|im_end|> this early
    assert first.prompt_tokens == len(prompt)
    assert first.completion_tokens == first.choices[0].completion_tokens == 6
    longer = run(engine, spec, prompt, max_tokens=10)
    assert longer.choices[0].text.startswith(first.choices[0].text)


def test_seeded_sampling_is_reproducible_and_choices_differ(
    engine: TextEngine, spec: TextModelSpec, prompt: tuple[int, ...]
) -> None:
    one = run(engine, spec, prompt, temperature=1.0, seed=123, n=3)
    two = run(engine, spec, prompt, temperature=1.0, seed=123, n=3)
    other = run(engine, spec, prompt, temperature=1.0, seed=124, n=1)
    assert texts(one) == texts(two)
    assert len(set(texts(one))) == 3  # choice i samples with seed + i
    assert texts(other)[0] == texts(one)[1]
    assert [c.index for c in one.choices] == [0, 1, 2]
    assert one.completion_tokens == 3 * 8


def test_stop_string_is_trimmed(engine: TextEngine, spec: TextModelSpec, prompt: tuple[int, ...]) -> None:
    full = run(engine, spec, prompt, max_tokens=12).choices[0].text
    stop = full[len(full) // 2 : len(full) // 2 + 3]
    first = full.index(stop)
    cut = run(engine, spec, prompt, max_tokens=12, stop=(stop, "never-said")).choices[0]
    assert cut.text == full[:first]
    assert cut.finish_reason == "stop"
    assert cut.completion_tokens < 12


def test_adapters_change_output_and_never_leak_into_the_base(
    engine: TextEngine, spec: TextModelSpec, prompt: tuple[int, ...], adapters: dict[str, TextAdapterSpec]
) -> None:
    base = texts(run(engine, spec, prompt))
    with_a = texts(run(engine, spec, prompt, adapter=adapters["a"]))
    with_b = texts(run(engine, spec, prompt, adapter=adapters["b"]))
    assert with_a != with_b
    assert base not in (with_a, with_b)
    assert texts(run(engine, spec, prompt)) == base  # the base after adapter requests: unchanged
    assert texts(run(engine, spec, prompt, adapter=adapters["a"])) == with_a  # and the adapter is stable
    assert set(engine.stats()["models"]["tiny-llm"]["adapters"]) >= {"lora-a", "lora-b"}


def test_one_batch_mixes_adapters_and_matches_requests_run_alone(
    spec: TextModelSpec, prompt: tuple[int, ...], adapters: dict[str, TextAdapterSpec]
) -> None:
    engine = _engine(batch_timeout_s=0.3)
    try:
        choices = [None, adapters["a"], adapters["b"], None, adapters["a"]]
        alone = [texts(run(engine, spec, prompt, adapter=a, temperature=0.8, seed=5)) for a in choices]
        batches_before = engine.stats()["batches_served"]
        with ThreadPoolExecutor(len(choices)) as pool:
            futures = [pool.submit(run, engine, spec, prompt, adapter=a, temperature=0.8, seed=5) for a in choices]
            together = [texts(f.result()) for f in futures]
        assert together == alone
        assert engine.stats()["batches_served"] - batches_before < len(choices)  # some shared a generate call
    finally:
        engine.close()


def _alone_and_in_one_batch(
    spec: TextModelSpec, prompt: tuple[int, ...], requests: list[dict[str, Any]]
) -> tuple[list[TextOutput], list[TextOutput]]:
    """Each request run on its own, then all of them sent at once into one batch (a 1 s window)."""
    engine = _engine(batch_timeout_s=1.0)
    try:
        alone = [run(engine, spec, prompt, **dict(r)) for r in requests]
        batches_before = engine.stats()["batches_served"]
        with ThreadPoolExecutor(len(requests)) as pool:
            together = [f.result() for f in [pool.submit(run, engine, spec, prompt, **dict(r)) for r in requests]]
        assert engine.stats()["batches_served"] - batches_before == 1
        return alone, together
    finally:
        engine.close()


def test_rows_ending_at_different_lengths_get_what_they_get_alone(spec: TextModelSpec, prompt: tuple[int, ...]) -> None:
    full = run(_engine(), spec, prompt, max_tokens=12).choices[0].text
    requests: list[dict[str, Any]] = [
        {"max_tokens": 3, "temperature": 0.9, "seed": 1},
        {"max_tokens": 12, "temperature": 0.9, "seed": 2, "n": 2},
        {"max_tokens": 7, "temperature": 0.0},
        {"max_tokens": 12, "temperature": 0.0, "stop": (full[4:7],)},  # ends on its stop string
        {"max_tokens": 9, "temperature": 1.2, "top_p": 0.7, "seed": 3},
    ]
    alone, together = _alone_and_in_one_batch(spec, prompt, requests)
    assert [o.choices for o in together] == [o.choices for o in alone]
    assert [o.completion_tokens for o in together[:3]] == [3, 24, 7]
    assert together[3].choices[0].finish_reason == "stop"
    assert together[3].completion_tokens < 12


def test_mixed_adapters_and_budgets_in_one_batch_match_each_request_alone(
    spec: TextModelSpec, prompt: tuple[int, ...], adapters: dict[str, TextAdapterSpec]
) -> None:
    requests: list[dict[str, Any]] = [
        {"adapter": adapters["a"], "max_tokens": 10, "temperature": 0.8, "seed": 5},
        {"adapter": adapters["b"], "max_tokens": 4, "temperature": 0.8, "seed": 5},
        {"adapter": None, "max_tokens": 10, "temperature": 0.0},
        {"adapter": adapters["c"], "max_tokens": 7, "temperature": 0.0},
        {"adapter": adapters["a"], "max_tokens": 2, "temperature": 0.8, "seed": 6},
    ]
    alone, together = _alone_and_in_one_batch(spec, prompt, requests)
    assert [texts(o) for o in together] == [texts(o) for o in alone]
    assert len({texts(o)[0] for o in together[:4]}) == 4  # the adapters (and the base) each changed the text


def test_a_one_token_request_beside_a_long_one(spec: TextModelSpec, prompt: tuple[int, ...]) -> None:
    requests: list[dict[str, Any]] = [
        {"max_tokens": 1, "temperature": 0.7, "seed": 11},
        {"max_tokens": 40, "temperature": 0.7, "seed": 12},
        {"max_tokens": 1, "temperature": 0.0},
    ]
    alone, together = _alone_and_in_one_batch(spec, prompt, requests)
    assert [texts(o) for o in together] == [texts(o) for o in alone]
    assert [o.completion_tokens for o in together] == [1, 40, 1]
    assert [o.choices[0].finish_reason for o in together] == ["length"] * 3


def test_a_short_request_is_answered_while_its_batch_goes_on(spec: TextModelSpec, prompt: tuple[int, ...]) -> None:
    engine = _engine(batch_timeout_s=1.0)
    short = TextJob(spec, (prompt,), SamplingParams(max_tokens=1, temperature=0.0))
    long = TextJob(spec, (prompt,), SamplingParams(max_tokens=300, temperature=0.0))

    async def both() -> tuple[set[asyncio.Task[TextOutput]], asyncio.Task[TextOutput], asyncio.Task[TextOutput]]:
        short_task = asyncio.ensure_future(engine.generate(short))
        long_task = asyncio.ensure_future(engine.generate(long))
        done, _ = await asyncio.wait({short_task, long_task}, return_when=asyncio.FIRST_COMPLETED)
        await long_task
        return done, short_task, long_task

    try:
        batches_before = engine.stats()["batches_served"]
        done, short_task, long_task = asyncio.run(both())
        engine.close()  # waits for the batch, which counts itself once its last answer has gone out
        assert engine.stats()["batches_served"] - batches_before == 1
        assert done == {short_task}  # answered at its one token, not when the 300-token row ended
        assert short_task.result().completion_tokens == 1
        assert long_task.result().completion_tokens == 300
    finally:
        engine.close()


def _job(spec: TextModelSpec, prompt: tuple[int, ...], request: dict[str, Any]) -> TextJob:
    request = dict(request)
    n, adapter = request.pop("n", 1), request.pop("adapter", None)
    return TextJob(spec, (prompt,), SamplingParams(**request), n=n, adapter=adapter)


def test_requests_arriving_during_a_decode_join_it_and_get_what_they_get_alone(
    spec: TextModelSpec, prompt: tuple[int, ...], adapters: dict[str, TextAdapterSpec]
) -> None:
    long = _job(spec, prompt, {"adapter": adapters["c"], "max_tokens": 300, "temperature": 0.0})
    joining = [
        _job(spec, prompt, {"adapter": adapters["a"], "max_tokens": 10, "temperature": 0.8, "seed": 5}),
        _job(spec, prompt[-6:], {"max_tokens": 1, "temperature": 0.8, "seed": 7}),  # ends at its prefill
        _job(spec, prompt[-9:], {"adapter": adapters["b"], "max_tokens": 6, "temperature": 0.0, "n": 2}),
        _job(spec, prompt, {"adapter": adapters["a"], "max_tokens": 40, "temperature": 0.0}),  # cancelled
    ]
    engine = _engine()  # no batch window: the first request starts alone
    try:
        alone = [engine.generate_sync(job) for job in [long, *joining]]  # loads every adapter, too
        batches_before = engine.stats()["batches_served"]

        async def joined() -> tuple[list[TextOutput | None], int]:
            stream = engine.stream(long)
            deltas = aiter(stream)
            await anext(deltas)  # the long request decodes
            outputs = await asyncio.gather(*(engine.generate(job) for job in joining[:3]))
            cancelled = engine.stream(joining[3])
            seen = 0
            async for _delta in cancelled:
                seen += 1
                if seen == 2:
                    cancelled.cancel()
            async for _delta in deltas:
                pass
            return [stream.output, *outputs], seen

        together, seen = asyncio.run(joined())
        engine.close()  # waits for the batch, which counts itself once its last answer has gone out
        assert engine.stats()["batches_served"] - batches_before == 1  # every request joined the first
        assert [texts(o) for o in together if o is not None] == [texts(o) for o in alone[:4]]
        assert [o.completion_tokens for o in together if o is not None] == [300, 10, 1, 12]
        assert seen < 40  # the cancelled row left the batch at its next token
    finally:
        engine.close()


@pytest.fixture(scope="module")
def dora(tiny_llm: Path, tmp_path_factory: pytest.TempPathFactory) -> TextAdapterSpec:
    """A DoRA adapter: not plain LoRA, so batches with it take PEFT's own paths."""
    import torch
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM

    config = LoraConfig(r=4, lora_alpha=4, target_modules=["q_proj", "v_proj"], use_dora=True, init_lora_weights=False)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(21)
        model = get_peft_model(AutoModelForCausalLM.from_pretrained(tiny_llm), config)
    folder = tmp_path_factory.mktemp("dora")
    model.save_pretrained(str(folder))
    return TextAdapterSpec(id="dora", path=str(folder))


def test_an_adapter_peft_must_serve_mixes_with_per_row_ones_and_leaks_into_none(
    spec: TextModelSpec, prompt: tuple[int, ...], adapters: dict[str, TextAdapterSpec], dora: TextAdapterSpec
) -> None:
    requests: list[dict[str, Any]] = [
        {"adapter": dora, "max_tokens": 8, "temperature": 0.8, "seed": 3},
        {"adapter": adapters["a"], "max_tokens": 8, "temperature": 0.8, "seed": 3},
        {"adapter": None, "max_tokens": 5, "temperature": 0.0},
    ]
    alone, together = _alone_and_in_one_batch(spec, prompt, requests)
    assert [texts(o) for o in together] == [texts(o) for o in alone]
    assert len({texts(o)[0] for o in alone}) == 3
    engine = _engine()
    try:  # PEFT's LoRA switched on for the DoRA batch and off again: the others are as before
        assert texts(run(engine, spec, prompt, **requests[1])) == texts(alone[1])
        assert texts(run(engine, spec, prompt, **requests[0])) == texts(alone[0])
        assert texts(run(engine, spec, prompt, **requests[2])) == texts(alone[2])
        assert texts(run(engine, spec, prompt, **requests[1])) == texts(alone[1])
    finally:
        engine.close()


def test_requests_a_running_decode_cannot_take_wait_for_the_next_batch(
    spec: TextModelSpec, prompt: tuple[int, ...], adapters: dict[str, TextAdapterSpec], dora: TextAdapterSpec
) -> None:
    long = _job(spec, prompt, {"adapter": adapters["a"], "max_tokens": 300, "temperature": 0.0})
    waiting = [  # DoRA takes PEFT's path, not per-row LoRA; "b" is not loaded yet
        _job(spec, prompt, {"adapter": dora, "max_tokens": 6, "temperature": 0.8, "seed": 3}),
        _job(spec, prompt, {"adapter": adapters["b"], "max_tokens": 6, "temperature": 0.8, "seed": 3}),
    ]
    reference = _engine()
    try:
        alone = [reference.generate_sync(job) for job in waiting]
    finally:
        reference.close()
    engine = _engine()
    try:
        engine.generate_sync(waiting[0])  # DoRA loaded, so only its path keeps it out
        batches_before = engine.stats()["batches_served"]

        async def during() -> list[TextOutput]:
            stream = engine.stream(long)
            deltas = aiter(stream)
            await anext(deltas)
            outputs = await asyncio.gather(*(engine.generate(job) for job in waiting))
            async for _delta in deltas:
                pass
            return list(outputs)

        outputs = asyncio.run(during())
        engine.close()
        assert engine.stats()["batches_served"] - batches_before == 2  # the long one's, then theirs
        assert [texts(o) for o in outputs] == [texts(o) for o in alone]
    finally:
        engine.close()


def test_an_adapter_that_does_not_load_fails_only_its_request(
    spec: TextModelSpec, prompt: tuple[int, ...], adapters: dict[str, TextAdapterSpec], tmp_path: Path
) -> None:
    (tmp_path / "adapter_config.json").write_text('{"peft_type": "LORA"}')
    broken = TextAdapterSpec(id="broken", path=str(tmp_path))
    engine = _engine(batch_timeout_s=0.3)
    try:
        with ThreadPoolExecutor(2) as pool:
            good = pool.submit(run, engine, spec, prompt, adapter=adapters["a"])
            bad = pool.submit(run, engine, spec, prompt, adapter=broken)
            assert good.result().choices[0].text
            with pytest.raises(Invalid, match="cannot load adapter 'broken'"):
                bad.result()
    finally:
        engine.close()


def test_adapters_past_the_cap_are_unloaded_and_reload_the_same(
    spec: TextModelSpec, prompt: tuple[int, ...], adapters: dict[str, TextAdapterSpec]
) -> None:
    engine = _engine(max_adapters_per_base=1)
    try:
        base = texts(run(engine, spec, prompt))
        a = texts(run(engine, spec, prompt, adapter=adapters["a"]))
        b = texts(run(engine, spec, prompt, adapter=adapters["b"]))
        assert engine.stats()["models"]["tiny-llm"]["adapters"] == ["lora-b"]
        assert texts(run(engine, spec, prompt, adapter=adapters["a"])) == a
        engine.unload_adapter("lora-a", wait=True)
        assert engine.stats()["models"]["tiny-llm"]["adapters"] == []
        assert texts(run(engine, spec, prompt)) == base  # the last adapter gone: the plain base again
        assert a != b
    finally:
        engine.close()


def test_stream_deltas_add_up_to_the_output(
    engine: TextEngine, spec: TextModelSpec, prompt: tuple[int, ...], adapters: dict[str, TextAdapterSpec]
) -> None:
    job = TextJob(spec, (prompt,), SamplingParams(max_tokens=10, temperature=0.9, seed=9), n=2, adapter=adapters["b"])

    async def consume() -> tuple[dict[int, str], dict[int, str], TextOutput | None]:
        stream = engine.stream(job)
        parts: dict[int, str] = {0: "", 1: ""}
        reasons: dict[int, str] = {}
        async for delta in stream:
            parts[delta.index] += delta.text
            if delta.finish_reason:
                reasons[delta.index] = delta.finish_reason
        return parts, reasons, stream.output

    parts, reasons, output = asyncio.run(consume())
    assert output is not None
    assert parts == {c.index: c.text for c in output.choices}
    assert reasons == {0: "length", 1: "length"}
    assert output.choices == engine.generate_sync(job).choices  # streamed or not: the same text


def test_cancelling_a_stream_stops_its_generation(
    engine: TextEngine, spec: TextModelSpec, prompt: tuple[int, ...]
) -> None:
    job = TextJob(spec, (prompt,), SamplingParams(max_tokens=400, temperature=0.0))
    served = threading.Event()

    async def consume() -> int:
        stream = engine.stream(job)
        seen = 0
        async for _delta in stream:
            seen += 1
            if seen == 2:
                stream.cancel()
                served.set()
        return seen

    seen = asyncio.run(consume())
    assert served.is_set()
    assert seen < 50  # ended soon after the cancel, not after 400 tokens


def test_missing_model_folder_is_model_unavailable(engine: TextEngine, tmp_path: Path) -> None:
    missing = TextModelSpec(id="gone", source=str(tmp_path / "nothing"))
    with pytest.raises(ModelUnavailable, match="gone"):
        engine.tokenizer(missing)
    with pytest.raises(ModelUnavailable, match="gone"):
        engine.generate_sync(TextJob(missing, ((1, 2),), SamplingParams(max_tokens=2)))


def test_bad_jobs_are_refused_before_queueing(engine: TextEngine, spec: TextModelSpec) -> None:
    for sampling, prompts, param in (
        (SamplingParams(max_tokens=0), ((1,),), "max_tokens"),
        (SamplingParams(max_tokens=2, temperature=-1), ((1,),), "temperature"),
        (SamplingParams(max_tokens=2, top_p=1.5), ((1,),), "top_p"),
        (SamplingParams(max_tokens=2), ((),), "prompt"),
    ):
        with pytest.raises(Invalid) as caught:
            engine.generate_sync(TextJob(spec, prompts, sampling))
        assert caught.value.param == param


def test_rendered_prompts_get_one_leading_bos_like_sft_examples(tiny_llm: Path) -> None:
    from tokenizers.processors import TemplateProcessing
    from transformers import AutoTokenizer

    from genfoundry.inference.text_loader import TextTokenizer

    raw = AutoTokenizer.from_pretrained(tiny_llm, bos_token="<|endoftext|>")
    bos = raw.convert_tokens_to_ids("<|endoftext|>")
    backend: Any = raw._tokenizer
    backend.post_processor = TemplateProcessing(single="<|endoftext|> $A", special_tokens=[("<|endoftext|>", bos)])
    tokenizer = TextTokenizer(raw, context_length=2048)
    text_ids = tokenizer.encode("Alice -> Bob", add_special_tokens=False)
    assert tokenizer.encode_rendered("Alice -> Bob") == [bos, *text_ids]
    assert tokenizer.encode_rendered("<|endoftext|>Alice -> Bob") == [bos, *text_ids]  # the template wrote it
