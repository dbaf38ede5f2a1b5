"""Tool calls read out of answers in the format Qwen2.5-Instruct writes, which templates can call tools, and the
JSON Schema check on function parameters."""

from __future__ import annotations

import json

import pytest
from pydantic import ValidationError

from genfoundry.models.tiny_llm import CHATML_TEMPLATE
from genfoundry.schemas.tools import FunctionDefinition
from genfoundry.text.tools import ToolCallHold, parse_answer, template_calls_tools

WEATHER = {
    "type": "function",
    "function": {
        "name": "get_current_temperature",
        "description": "Get current temperature at a location.",
        "parameters": {
            "type": "object",
            "properties": {
                "location": {"type": "string"},
                "unit": {"type": "string", "enum": ["celsius", "fahrenheit"]},
            },
            "required": ["location"],
        },
    },
}
WIND = {"type": "function", "function": {"name": "get_wind", "parameters": {"type": "object", "properties": {}}}}
TOOLS = [WEATHER, WIND]
# Qwen2.5-7B-Instruct's answers to "What's the temperature in San Francisco now? How about tomorrow?" with the
# tool above, as its model card's function-calling example prints them (decoded, special tokens skipped).
QWEN_ONE_CALL = (
    '<tool_call>\n{"name": "get_current_temperature", "arguments": {"location": "San Francisco, CA, USA", '
    '"unit": "celsius"}}\n</tool_call>'
)
QWEN_TWO_CALLS = QWEN_ONE_CALL + '\n<tool_call>\n{"name": "get_wind", "arguments": {}}\n</tool_call>'
# The plain ChatML template tiny-llm had before it could call tools: it never renders `tools`.
PLAIN_CHATML = (
    "{% for message in messages %}"
    "{{ '<|im_start|>' + message['role'] + '\\n' + message['content'] + '<|im_end|>' + '\\n' }}"
    "{% endfor %}"
    "{% if add_generation_prompt %}{{ '<|im_start|>assistant\\n' }}{% endif %}"
)


def test_one_call_in_qwen_format() -> None:
    answer = parse_answer(QWEN_ONE_CALL, tools=TOOLS)
    assert answer.content is None
    (call,) = answer.tool_calls
    assert call.name == "get_current_temperature" and call.id.startswith("call_")
    assert json.loads(call.arguments) == {"location": "San Francisco, CA, USA", "unit": "celsius"}


def test_parallel_calls_and_leading_text() -> None:
    answer = parse_answer("Let me look that up.\n\n" + QWEN_TWO_CALLS, tools=TOOLS)
    assert answer.content == "Let me look that up."
    assert [call.name for call in answer.tool_calls] == ["get_current_temperature", "get_wind"]
    assert len({call.id for call in answer.tool_calls}) == 2


def test_a_prefilled_call_is_read_with_its_opening() -> None:
    prefill = '<tool_call>\n{"name": "get_wind", "arguments": '
    answer = parse_answer('{"at": "noon"}}\n</tool_call>', tools=TOOLS, prefill=prefill)
    assert [(call.name, json.loads(call.arguments)) for call in answer.tool_calls] == [("get_wind", {"at": "noon"})]


@pytest.mark.parametrize(
    "text",
    [
        "The temperature is 22 degrees.",
        '<tool_call>\n{"name": "get_current_temperature", "arguments": {"location": \n</tool_call>',  # cut JSON
        '<tool_call>\n{"name": "launch_rockets", "arguments": {}}\n</tool_call>',  # not an offered tool
        '<tool_call>\n{"name": "get_wind", "arguments": "fast"}\n</tool_call>',  # arguments not an object
        "<tool_call> and other random tokens from an untrained model",
    ],
)
def test_anything_but_a_well_formed_call_is_text(text: str) -> None:
    answer = parse_answer(text, tools=TOOLS)
    assert answer.tool_calls == ()
    assert answer.content == text


def test_hold_streams_content_and_keeps_the_call() -> None:
    hold = ToolCallHold()
    pieces = ["Sure", ", checking.\n<tool", "_call>\n{", '"name": "get_wind", "arguments": {}}\n</tool_call>']
    sent = [hold.feed(piece) for piece in pieces]
    assert "".join(sent) == "Sure, checking.\n"
    assert hold.held == '<tool_call>\n{"name": "get_wind", "arguments": {}}\n</tool_call>'
    assert hold.rest() == ""


def test_hold_releases_a_tail_that_was_not_a_marker() -> None:
    hold = ToolCallHold()
    assert hold.feed("a < b and <to") == "a < b and "
    assert hold.feed("day") == "<today"
    assert hold.feed(" <tool_") == " "
    assert hold.rest() == "<tool_"
    assert hold.held == ""


def test_which_templates_call_tools() -> None:
    assert template_calls_tools(CHATML_TEMPLATE)
    assert not template_calls_tools(PLAIN_CHATML)
    assert not template_calls_tools(None)
    assert not template_calls_tools("{% if tools %}{{ tools }}{% endif %}")  # renders tools, no call format
    assert not template_calls_tools("{% if <tool_call> %}")  # not a template jinja2 can read


@pytest.mark.parametrize(
    "parameters",
    [
        {"type": "banana"},
        {"type": "string"},
        {"type": []},
        {"type": "object", "properties": []},
        {"type": "object", "properties": {"a": "a string"}},
        {"type": "object", "properties": {"a": {"type": "integer", "items": 3}}},
        {"type": "object", "required": "a"},
        {"type": "object", "anyOf": []},
        {"type": "object", "properties": {"a": {"anyOf": [{"type": "nope"}]}}},
    ],
)
def test_parameters_must_be_a_json_schema_of_an_object(parameters: object) -> None:
    with pytest.raises(ValidationError) as raised:
        FunctionDefinition(name="f", parameters=parameters)  # type: ignore[arg-type]
    assert raised.value.errors()[0]["loc"] == ("parameters",)


def test_deeply_nested_parameters_are_refused() -> None:
    schema: dict[str, object] = {"type": "object"}
    for _ in range(200):
        schema = {"type": "object", "properties": {"a": schema}}
    with pytest.raises(ValidationError, match="deep"):
        FunctionDefinition(name="f", parameters=schema)


def test_real_world_parameters_pass() -> None:
    FunctionDefinition.model_validate(WEATHER["function"])
    FunctionDefinition(name="no_args")
    FunctionDefinition(
        name="search",
        parameters={
            "type": "object",
            "properties": {
                "query": {"type": ["string", "null"]},
                "filters": {"type": "array", "items": {"$ref": "#/$defs/filter"}},
            },
            "$defs": {"filter": {"type": "object", "additionalProperties": False}},
            "additionalProperties": False,
        },
    )
