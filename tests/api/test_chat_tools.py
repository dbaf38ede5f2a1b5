"""`tools` / `tool_choice` on /v1/chat/completions through the real server: tiny-llm's template renders tools as
Qwen2.5's does, so requests with tools are accepted and answered in a well-formed shape (a random model writes no
real call; the parsing of real calls is tested on Qwen2.5's output in tests/text/test_tools.py); a base without
tool support answers in text and refuses only a tool_choice that requires a call."""

from __future__ import annotations

import json
from typing import Any

import httpx
import openai
import pytest

from tests.conftest import TextAdapters
from tests.helpers import assert_error

WEATHER: dict[str, Any] = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "The weather in a city",
        "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
    },
}
USER = {"role": "user", "content": "What is the weather in Paris?"}
CHAT: dict[str, Any] = {"model": "tiny-llm", "messages": [USER], "max_tokens": 8, "temperature": 0, "seed": 1}
CALL = {"id": "call_1", "type": "function", "function": {"name": "get_weather", "arguments": '{"city": "Paris"}'}}
CONVERSATION = [
    USER,
    {"role": "assistant", "content": None, "tool_calls": [CALL]},
    {"role": "tool", "tool_call_id": "call_1", "content": '{"temperature": 21}'},
]


def check_choice(choice: dict[str, Any], tool_names: set[str]) -> None:
    """A well-formed choice: text, or calls to offered tools with JSON-object arguments."""
    message = choice["message"]
    assert message["role"] == "assistant"
    if choice["finish_reason"] == "tool_calls":
        assert message["tool_calls"]
        for call in message["tool_calls"]:
            assert call["type"] == "function" and call["id"]
            assert call["function"]["name"] in tool_names
            assert isinstance(json.loads(call["function"]["arguments"]), dict)
    else:
        assert choice["finish_reason"] in ("stop", "length")
        assert isinstance(message["content"], str)
        assert not message.get("tool_calls")


def test_tools_are_rendered_into_the_prompt_and_the_answer_is_well_formed(alice: httpx.Client) -> None:
    plain = alice.post("/v1/chat/completions", json=CHAT)
    with_tools = alice.post("/v1/chat/completions", json={**CHAT, "tools": [WEATHER], "tool_choice": "auto"})
    assert plain.status_code == with_tools.status_code == 200, with_tools.text
    # The tools' descriptions went into the prompt (as Qwen2.5's template puts them in a system turn).
    assert with_tools.json()["usage"]["prompt_tokens"] > plain.json()["usage"]["prompt_tokens"] + 50
    check_choice(with_tools.json()["choices"][0], {"get_weather"})
    # tool_choice "none": the tools are not offered, so the prompt is the plain one.
    none = alice.post("/v1/chat/completions", json={**CHAT, "tools": [WEATHER], "tool_choice": "none"})
    assert none.json()["usage"]["prompt_tokens"] == plain.json()["usage"]["prompt_tokens"]


@pytest.mark.parametrize("tool_choice", ["required", {"type": "function", "function": {"name": "get_weather"}}])
def test_a_required_call_is_accepted_on_a_base_that_can_call(alice: httpx.Client, tool_choice: object) -> None:
    body = {**CHAT, "tools": [WEATHER], "tool_choice": tool_choice, "parallel_tool_calls": False}
    response = alice.post("/v1/chat/completions", json=body)
    assert response.status_code == 200, response.text
    check_choice(response.json()["choices"][0], {"get_weather"})


def test_a_conversation_with_calls_and_results_is_accepted(alice: httpx.Client) -> None:
    response = alice.post("/v1/chat/completions", json={**CHAT, "messages": CONVERSATION, "tools": [WEATHER]})
    assert response.status_code == 200, response.text
    check_choice(response.json()["choices"][0], {"get_weather"})


def test_streaming_with_tools(alice_openai: openai.OpenAI) -> None:
    stream = alice_openai.chat.completions.create(
        model="tiny-llm",
        messages=[USER],
        tools=[WEATHER],  # type: ignore[list-item]
        max_tokens=8,
        temperature=0,
        stream=True,
    )
    chunks = list(stream)
    finishes = [chunk.choices[0].finish_reason for chunk in chunks if chunk.choices]
    assert finishes[-1] in ("stop", "length", "tool_calls") and all(reason is None for reason in finishes[:-1])
    calls = [call for chunk in chunks if chunk.choices for call in chunk.choices[0].delta.tool_calls or []]
    assert (finishes[-1] == "tool_calls") == bool(calls)


def test_openai_client_sends_tools_and_tool_messages(alice_openai: openai.OpenAI) -> None:
    answer = alice_openai.chat.completions.create(
        model="tiny-llm",
        messages=CONVERSATION,  # type: ignore[arg-type]
        tools=[WEATHER],  # type: ignore[list-item]
        tool_choice="auto",
        max_tokens=8,
    )
    assert answer.choices[0].finish_reason in ("stop", "length", "tool_calls")


def test_a_base_that_cannot_call_tools_answers_in_text(alice: httpx.Client, text_adapters: TextAdapters) -> None:
    plain = {**CHAT, "model": text_adapters.alice_plain}
    response = alice.post("/v1/chat/completions", json={**plain, "tools": [WEATHER], "tool_choice": "auto"})
    assert response.status_code == 200, response.text
    choice = response.json()["choices"][0]
    assert choice["finish_reason"] in ("stop", "length") and "tool_calls" not in choice["message"]
    assert isinstance(choice["message"]["content"], str)
    without = alice.post("/v1/chat/completions", json=plain).json()
    assert response.json()["usage"]["prompt_tokens"] == without["usage"]["prompt_tokens"]  # tools not rendered
    for tool_choice in ("required", {"type": "function", "function": {"name": "get_weather"}}):
        error = assert_error(
            alice.post("/v1/chat/completions", json={**plain, "tools": [WEATHER], "tool_choice": tool_choice}),
            400,
            param="tool_choice",
        )
        assert "cannot call tools" in error["message"]
    assert_error(alice.post("/v1/chat/completions", json={**plain, "messages": CONVERSATION}), 400, param="messages")


def tool(name: str, parameters: object = None) -> dict[str, Any]:
    function: dict[str, Any] = {"name": name}
    if parameters is not None:
        function["parameters"] = parameters
    return {"type": "function", "function": function}


BAD_TOOLS = [
    ({"tools": [tool("f", {"type": "banana"})]}, "tools.0.function.parameters"),
    ({"tools": [tool("f", "a string")]}, "tools.0.function.parameters"),
    ({"tools": [tool("f", {"type": "object", "properties": {"x": 5}})]}, "tools.0.function.parameters"),
    ({"tools": [tool("f", {"type": "array", "items": {}})]}, "tools.0.function.parameters"),
    ({"tools": [tool(f"f{i}") for i in range(200)]}, "tools"),
    ({"tools": [tool("f"), tool("f")]}, "tools"),
    ({"tools": [tool("has space")]}, "tools.0.function.name"),
    ({"tools": [{"type": "retrieval"}]}, "tools.0.type"),
    ({"tools": "get_weather"}, "tools"),
    ({"tools": [WEATHER], "tool_choice": {"type": "function", "function": {"name": "other"}}}, "tool_choice"),
    ({"tools": [WEATHER], "tool_choice": "sometimes"}, "tool_choice"),
    ({"tool_choice": "required"}, "tool_choice"),
    ({"messages": [USER, {"role": "assistant", "content": None}]}, "messages.1.content"),
    ({"messages": [USER, {"role": "user", "content": "x", "tool_calls": [CALL]}]}, "messages.1.tool_calls"),
    ({"messages": [USER, {"role": "tool", "content": "21"}]}, "messages.1.tool_call_id"),
    (
        {
            "messages": [
                USER,
                {"role": "assistant", "tool_calls": [{**CALL, "function": {"name": "get_weather", "arguments": "{"}}]},
            ]
        },
        "messages.1.tool_calls.0.function.arguments",
    ),
    (
        {
            "messages": [
                USER,
                {
                    "role": "assistant",
                    "tool_calls": [{**CALL, "function": {"name": "get_weather", "arguments": "[" * 100_000}}],
                },
            ]
        },
        "messages.1.tool_calls.0.function.arguments",
    ),
]


@pytest.mark.parametrize(("overrides", "param"), BAD_TOOLS)
def test_bad_tools_are_a_400_naming_the_field(alice: httpx.Client, overrides: dict[str, Any], param: str) -> None:
    assert_error(alice.post("/v1/chat/completions", json={**CHAT, **overrides}), 400, param=param)


def test_the_server_still_answers_after_bad_tools(alice: httpx.Client) -> None:
    assert alice.post("/v1/chat/completions", json={**CHAT, "tools": [WEATHER]}).status_code == 200
