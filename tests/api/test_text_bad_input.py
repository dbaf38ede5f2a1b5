"""Hostile and malformed text requests get a clear 4xx in OpenAI's error shape, through the real server and
through the openai client; nothing is generated for them."""

from __future__ import annotations

import json
from typing import Any

import httpx
import openai
import pytest

from tests.conftest import LiveServer, LoraFiles, TextAdapters
from tests.helpers import assert_error

USER = {"role": "user", "content": "A class diagram of a shop"}
GOOD_CHAT: dict[str, Any] = {"model": "tiny-llm", "messages": [USER], "max_tokens": 4}
GOOD_COMPLETION: dict[str, Any] = {"model": "tiny-llm", "prompt": "@startuml", "max_tokens": 4}

BAD_CHAT = [
    ({"messages": []}, 400, "messages"),
    ({"messages": "hello"}, 400, "messages"),
    ({"messages": [{"role": "wizard", "content": "hi"}]}, 400, "messages.0.role"),
    ({"messages": [{"role": "tool", "content": "42"}]}, 400, "messages.0.tool_call_id"),
    ({"messages": [{"content": "no role"}]}, 400, "messages.0.role"),
    ({"messages": [{"role": "user"}]}, 400, "messages.0.content"),
    ({"messages": [{"role": "user", "content": [{"type": "image_url", "image_url": {"url": "x"}}]}]}, 400, None),
    ({"max_tokens": 10**7}, 422, "max_tokens"),
    ({"max_tokens": None, "max_completion_tokens": 10**7}, 422, "max_completion_tokens"),
    ({"max_tokens": 0}, 400, "max_tokens"),
    ({"max_tokens": 2047}, 422, "max_tokens"),  # fits the cap, not tiny-llm's 2048-token context with the prompt
    ({"temperature": -0.5}, 400, "temperature"),
    ({"temperature": 2.5}, 400, "temperature"),
    ({"top_p": -0.1}, 400, "top_p"),
    ({"top_p": 1.5}, 400, "top_p"),
    ({"n": 0}, 400, "n"),
    ({"n": 100}, 400, "n"),
    ({"stop": ["a", "b", "c", "d", "e"]}, 400, "stop"),
    ({"stop": "x" * 1000}, 400, "stop"),
    ({"seed": "lucky"}, 400, "seed"),
    ({"model": "no-such-adapter"}, 404, "model"),
    ({"model": ""}, 400, "model"),
    ({"model": "tiny-sd15"}, 400, "model"),
    ({"response_format": {"type": "json_object"}}, 400, "response_format"),
    ({"logprobs": True}, 400, "logprobs"),
    ({"presence_penalty": 0.5}, 400, "presence_penalty"),
    ({"surprise": True}, 400, "surprise"),
]


@pytest.mark.parametrize(("overrides", "status", "param"), BAD_CHAT)
def test_bad_chat_requests(alice: httpx.Client, overrides: dict[str, Any], status: int, param: str | None) -> None:
    body = {key: value for key, value in {**GOOD_CHAT, **overrides}.items() if value is not None}
    assert_error(alice.post("/v1/chat/completions", json=body), status, param=param)


@pytest.mark.parametrize(
    ("field", "literal"), [("temperature", "NaN"), ("top_p", "Infinity"), ("frequency_penalty", "-Infinity")]
)
def test_non_finite_numbers_are_named_as_such(alice: httpx.Client, field: str, literal: str) -> None:
    """Python's JSON parser reads NaN and Infinity; the answer says what is wrong, not that a range was missed."""
    body = json.dumps(GOOD_CHAT)[:-1] + f', "{field}": {literal}}}'
    response = alice.post("/v1/chat/completions", content=body, headers={"content-type": "application/json"})
    error = assert_error(response, 400, param=field)
    assert "must be a finite number" in error["message"]


def test_max_tokens_error_names_the_cap(alice: httpx.Client, live: LiveServer) -> None:
    error = assert_error(alice.post("/v1/chat/completions", json={**GOOD_CHAT, "max_tokens": 10**7}), 422)
    assert str(live.settings.text.max_tokens) in error["message"]
    assert error["code"] == "max_tokens_too_large"


def test_a_one_megabyte_message_is_too_large(alice: httpx.Client, live: LiveServer) -> None:
    huge = {"role": "user", "content": "x" * 1_000_000}
    error = assert_error(
        alice.post("/v1/chat/completions", json={**GOOD_CHAT, "messages": [huge]}), 413, param="messages"
    )
    assert str(live.settings.text.max_input_chars) in error["message"]
    parts = {"role": "user", "content": [{"type": "text", "text": "y" * 600_000}] * 2}
    assert_error(alice.post("/v1/chat/completions", json={**GOOD_CHAT, "messages": [parts]}), 413, param="messages")


def test_a_prompt_longer_than_the_context_is_refused(alice: httpx.Client) -> None:
    long = {"role": "user", "content": " ".join(f"word{i}" for i in range(4000))}  # ~12k tokens, < max chars
    error = assert_error(
        alice.post("/v1/chat/completions", json={**GOOD_CHAT, "messages": [long]}), 400, param="messages"
    )
    assert error["code"] == "context_length_exceeded"
    assert "2048" in error["message"]


def test_image_models_and_adapters_are_not_chat_models(
    alice: httpx.Client, lora_files: LoraFiles, text_adapters: TextAdapters
) -> None:
    uploaded = alice.post(
        "/v1/models",
        files={"file": ("lora.safetensors", lora_files.sd15_a.read_bytes(), "application/octet-stream")},
        data={"base": "tiny-sd15", "name": "an image lora"},
    )
    assert uploaded.status_code == 201, uploaded.text
    image_adapter = uploaded.json()["id"]
    error = assert_error(
        alice.post("/v1/chat/completions", json={**GOOD_CHAT, "model": image_adapter}), 400, param="model"
    )
    assert "/v1/images/generations" in error["message"]
    assert_error(alice.post("/v1/completions", json={**GOOD_COMPLETION, "model": image_adapter}), 400, param="model")
    error = assert_error(
        alice.post("/v1/chat/completions", json={**GOOD_CHAT, "model": "tiny-flux"}), 400, param="model"
    )
    assert "image model" in error["message"]


def test_text_models_and_adapters_are_not_image_models(alice: httpx.Client, text_adapters: TextAdapters) -> None:
    image = {"prompt": "a cat", "size": "64x64", "steps": 2}
    for model, what in ((text_adapters.alice_a, "text adapter"), ("tiny-llm", "text model")):
        error = assert_error(alice.post("/v1/images/generations", json={**image, "model": model}), 400, param="model")
        assert what in error["message"] and "/v1/chat/completions" in error["message"]
    lora = {"id": text_adapters.alice_a, "weight": 1.0}
    assert_error(alice.post("/v1/images/generations", json={**image, "model": "tiny-sd15", "loras": [lora]}), 400)


BAD_COMPLETIONS = [
    ({"prompt": []}, 400, "prompt"),
    ({"prompt": ""}, 400, "prompt"),
    ({"prompt": ["ok", ""]}, 400, "prompt"),
    ({"prompt": [1, 2, 3]}, 400, None),
    ({"prompt": None}, 400, "prompt"),
    ({"prompt": "x" * 1_000_000}, 413, "prompt"),
    ({"max_tokens": 10**7}, 422, "max_tokens"),
    ({"prompt": ["a", "b", "c"], "n": 3}, 400, "n"),
    ({"echo": True}, 400, "echo"),
    ({"suffix": "!"}, 400, "suffix"),
    ({"logprobs": 2}, 400, "logprobs"),
    ({"best_of": 3}, 400, "best_of"),
    ({"temperature": 3}, 400, "temperature"),
    ({"stop": ["1", "2", "3", "4", "5"]}, 400, "stop"),
    ({"model": "auto"}, 400, "model"),
]


@pytest.mark.parametrize(("overrides", "status", "param"), BAD_COMPLETIONS)
def test_bad_completion_requests(
    alice: httpx.Client, overrides: dict[str, Any], status: int, param: str | None
) -> None:
    body = {**GOOD_COMPLETION, **overrides}
    if body["prompt"] is None:
        del body["prompt"]
    assert_error(alice.post("/v1/completions", json=body), status, param=param)


def test_bad_input_through_the_openai_client(alice_openai: openai.OpenAI) -> None:
    with pytest.raises(openai.BadRequestError) as empty:
        alice_openai.chat.completions.create(model="tiny-llm", messages=[])
    assert empty.value.body["param"] == "messages"  # type: ignore[index]
    with pytest.raises(openai.UnprocessableEntityError) as too_many:
        alice_openai.chat.completions.create(model="tiny-llm", messages=[USER], max_tokens=10**7)  # type: ignore[list-item]
    assert too_many.value.body["param"] == "max_tokens"  # type: ignore[index]
    with pytest.raises(openai.NotFoundError):
        alice_openai.chat.completions.create(model="adapter-nobody-has", messages=[USER], stream=True)  # type: ignore[list-item]
    with pytest.raises(openai.BadRequestError):
        alice_openai.chat.completions.create(model="tiny-llm", messages=[USER], temperature=5)  # type: ignore[list-item]
    with pytest.raises(openai.APIStatusError) as big:
        alice_openai.chat.completions.create(model="tiny-llm", messages=[{"role": "user", "content": "z" * 1_000_000}])
    assert big.value.status_code == 413
