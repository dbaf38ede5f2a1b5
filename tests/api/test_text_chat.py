"""Chat completions and completions through the real server and the official openai client, on tiny-llm and
random PEFT adapters registered the way SFT jobs register theirs."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import httpx
import openai
import pytest

from genfoundry.text.formats import render_plain_chat
from tests.conftest import LiveServer, TextAdapters
from tests.helpers import assert_error

MESSAGES: list[Any] = [
    {"role": "system", "content": "You draw diagrams."},
    {"role": "user", "content": "A sequence diagram of a user logging in"},
]


@pytest.fixture(scope="module")
def tokenizer(tiny_llm: Path) -> Any:
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(tiny_llm)


def chat(client: openai.OpenAI, model: str = "tiny-llm", **kwargs: Any) -> Any:
    options: dict[str, Any] = {"max_tokens": 8, "temperature": 0, "messages": MESSAGES, **kwargs}
    return client.chat.completions.create(model=model, **options)


def test_chat_completion_shape_and_usage_from_the_tokenizer(alice_openai: openai.OpenAI, tokenizer: Any) -> None:
    response = chat(alice_openai)
    assert response.object == "chat.completion"
    assert response.id.startswith("chatcmpl-")
    assert response.model == "tiny-llm"
    [choice] = response.choices
    assert choice.index == 0
    assert choice.message.role == "assistant"
    assert isinstance(choice.message.content, str) and choice.message.content
    assert choice.finish_reason == "length"
    rendered = tokenizer.apply_chat_template(MESSAGES, tokenize=False, add_generation_prompt=True)
    prompt_tokens = len(tokenizer(rendered, add_special_tokens=False)["input_ids"])
    assert response.usage is not None
    assert response.usage.prompt_tokens == prompt_tokens
    assert response.usage.completion_tokens == 8
    assert response.usage.total_tokens == prompt_tokens + 8
    assert chat(alice_openai).choices[0].message.content == choice.message.content  # greedy: repeatable


def test_chat_streaming_with_usage_matches_the_whole_answer(alice_openai: openai.OpenAI) -> None:
    whole = chat(alice_openai, max_tokens=10)
    stream = chat(alice_openai, max_tokens=10, stream=True, stream_options={"include_usage": True})
    chunks = list(stream)
    assert all(c.object == "chat.completion.chunk" for c in chunks)
    assert len({c.id for c in chunks}) == 1
    assert chunks[0].choices[0].delta.role == "assistant"
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text == whole.choices[0].message.content
    finishes = [c.choices[0].finish_reason for c in chunks if c.choices and c.choices[0].finish_reason]
    assert finishes == ["length"]
    assert chunks[-1].choices == []
    assert chunks[-1].usage is not None
    assert chunks[-1].usage.completion_tokens == 10
    assert chunks[-1].usage.prompt_tokens == whole.usage.prompt_tokens


def test_raw_sse_ends_with_done(alice: httpx.Client) -> None:
    body = {"model": "tiny-llm", "messages": MESSAGES, "max_tokens": 4, "stream": True, "n": 2, "seed": 3}
    with alice.stream("POST", "/v1/chat/completions", json=body) as response:
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("text/event-stream")
        blocks = [line[len("data: ") :] for line in response.iter_lines() if line.startswith("data: ")]
    assert blocks[-1] == "[DONE]"
    chunks = [json.loads(block) for block in blocks[:-1]]
    assert {choice["index"] for chunk in chunks for choice in chunk["choices"]} == {0, 1}
    assert all("usage" not in chunk for chunk in chunks)  # no include_usage: no usage chunk


def test_seed_and_n_through_the_api(alice_openai: openai.OpenAI) -> None:
    first = chat(alice_openai, temperature=1.0, seed=42, n=2)
    second = chat(alice_openai, temperature=1.0, seed=42, n=2)
    other = chat(alice_openai, temperature=1.0, seed=43)
    texts = [c.message.content for c in first.choices]
    assert texts == [c.message.content for c in second.choices]
    assert texts[0] != texts[1]
    assert other.choices[0].message.content == texts[1]  # choice i samples with seed + i
    assert first.usage.completion_tokens == 16


def test_stop_sequences_trim_the_answer(alice_openai: openai.OpenAI) -> None:
    full = chat(alice_openai, max_tokens=12).choices[0].message.content
    stop = full[4:7]
    cut = chat(alice_openai, max_tokens=12, stop=[stop, "zzzz"]).choices[0]
    assert cut.message.content == full[: full.index(stop)]
    assert cut.finish_reason == "stop"


def test_adapters_are_per_request_and_the_base_is_unchanged(
    alice_openai: openai.OpenAI, text_adapters: TextAdapters
) -> None:
    base = chat(alice_openai).choices[0].message.content
    a = chat(alice_openai, text_adapters.alice_a).choices[0].message.content
    b = chat(alice_openai, text_adapters.alice_b).choices[0].message.content
    assert len({base, a, b}) == 3
    assert chat(alice_openai).choices[0].message.content == base
    assert chat(alice_openai, text_adapters.alice_a).model == text_adapters.alice_a
    streamed = chat(alice_openai, text_adapters.alice_b, stream=True)
    assert "".join(c.choices[0].delta.content or "" for c in streamed if c.choices) == b


def test_an_adapter_is_served_with_its_stored_prompt_format(
    alice_openai: openai.OpenAI, text_adapters: TextAdapters, tokenizer: Any
) -> None:
    plain = chat(alice_openai, text_adapters.alice_plain)
    rendered = render_plain_chat(MESSAGES, eos_token=tokenizer.eos_token, add_generation_prompt=True)
    assert rendered.endswith("### Response:\n")
    assert plain.usage.prompt_tokens == len(tokenizer(rendered)["input_ids"])
    templated = chat(alice_openai, text_adapters.alice_a)
    assert templated.usage.prompt_tokens != plain.usage.prompt_tokens  # same weights, other format


def test_another_users_adapter_is_not_found(
    bob_openai: openai.OpenAI, alice_openai: openai.OpenAI, text_adapters: TextAdapters
) -> None:
    with pytest.raises(openai.NotFoundError) as caught:
        chat(bob_openai, text_adapters.alice_a)
    assert caught.value.body["param"] == "model"  # type: ignore[index]
    assert chat(bob_openai, text_adapters.bob).choices[0].message.content
    with pytest.raises(openai.NotFoundError):
        chat(alice_openai, text_adapters.bob)


def test_completions_plain_prompt_and_lists(alice_openai: openai.OpenAI, tokenizer: Any) -> None:
    one = alice_openai.completions.create(
        model="tiny-llm", prompt="@startuml\nAlice -> Bob", max_tokens=5, temperature=0
    )
    assert one.object == "text_completion"
    assert one.choices[0].text and one.choices[0].finish_reason == "length"
    assert one.usage is not None
    assert one.usage.prompt_tokens == len(tokenizer("@startuml\nAlice -> Bob")["input_ids"])
    assert one.usage.completion_tokens == 5
    many = alice_openai.completions.create(
        model="tiny-llm", prompt=["@startuml\nAlice -> Bob", "class Order"], max_tokens=3, n=2, temperature=0.9, seed=1
    )
    assert [c.index for c in many.choices] == [0, 1, 2, 3]
    assert many.usage is not None and many.usage.completion_tokens == 12
    assert len({c.text for c in many.choices}) > 1
    streamed = alice_openai.completions.create(
        model="tiny-llm", prompt="@startuml\nAlice -> Bob", max_tokens=5, temperature=0, stream=True
    )
    assert "".join(c.choices[0].text for c in streamed if c.choices) == one.choices[0].text


def test_default_completion_budget_is_openais_16(alice_openai: openai.OpenAI) -> None:
    response = alice_openai.completions.create(model="tiny-llm", prompt="Alice", temperature=0)
    assert response.usage is not None and response.usage.completion_tokens == 16


def test_models_list_text_bases_and_adapters(
    alice_openai: openai.OpenAI, alice: httpx.Client, text_adapters: TextAdapters
) -> None:
    listed = {m.id: m.model_extra or {} for m in alice_openai.models.list()}
    assert "tiny-llm" in listed and "qwen2.5-0.5b-instruct" in listed
    assert listed["tiny-llm"]["family"] == "text"
    assert listed["tiny-llm"]["kind"] == "base"
    assert listed[text_adapters.alice_a]["family"] == "text"
    assert listed[text_adapters.alice_a]["base"] == "tiny-llm"
    assert text_adapters.bob not in listed
    assert alice.get("/v1/models/tiny-llm").json()["family"] == "text"
    assert_error(alice.delete("/v1/models/tiny-llm"), 400, param="model")


def test_auto_model_routes_chat_completions_only(alice: httpx.Client) -> None:
    """`model="auto"` is routed on /v1/chat/completions (tests/api/test_auto_and_diagrams.py); elsewhere it is a
    clear 400."""
    response = alice.post("/v1/completions", json={"model": "auto", "prompt": "hello"})
    error = assert_error(response, 400, param="model")
    assert "auto" in error["message"] and "chat completions only" in error["message"]


def test_the_service_is_callable_in_process(live: LiveServer, alice: httpx.Client) -> None:
    """The lead's hook: TextService.chat_sync / chat with an owner id, no HTTP."""
    from genfoundry.schemas import ChatCompletionRequest
    from genfoundry.services import build_services

    services = build_services(live.settings)
    try:
        request = ChatCompletionRequest.model_validate(
            {"model": "tiny-llm", "messages": MESSAGES, "max_tokens": 8, "temperature": 0}
        )
        in_process = services.text.chat_sync("user_local", request)
    finally:
        services.close()
    over_http = alice.post("/v1/chat/completions", json=request.model_dump(exclude_none=True)).json()
    assert in_process.choices[0].message.content == over_http["choices"][0]["message"]["content"]
