"""A chat answer holding Qwen2.5's tool calls, presented whole and streamed, is OpenAI's shape (validated against
OpenAI's published schema); the server's HTTP tests cannot show this, since a random tiny model writes no call."""

from __future__ import annotations

import json

from genfoundry.inference.text import TextChoice, TextOutput
from genfoundry.presenters.text import ChatChunks, chat_completion_response
from genfoundry.services.text_tools import StreamedToolCalls, ToolPlan
from tests.openai_schema import assert_matches_openai
from tests.text.test_tools import QWEN_ONE_CALL, QWEN_TWO_CALLS, TOOLS

PLAN = ToolPlan(tools=tuple(TOOLS))


def output(text: str) -> TextOutput:
    return TextOutput(
        choices=(TextChoice(index=0, text=text, finish_reason="stop", completion_tokens=30),),
        prompt_tokens=100,
        completion_tokens=30,
        generation_time_s=0.1,
    )


def test_a_whole_answer_with_calls() -> None:
    body = chat_completion_response("qwen2.5-0.5b-instruct", output(QWEN_TWO_CALLS), tools=PLAN).model_dump(mode="json")
    assert_matches_openai(body, "POST", "/v1/chat/completions")
    choice = body["choices"][0]
    assert choice["finish_reason"] == "tool_calls" and choice["message"]["content"] is None
    assert [call["function"]["name"] for call in choice["message"]["tool_calls"]] == [
        "get_current_temperature",
        "get_wind",
    ]


def test_parallel_calls_off_keeps_the_first() -> None:
    plan = ToolPlan(tools=tuple(TOOLS), parallel=False)
    body = chat_completion_response("m", output(QWEN_TWO_CALLS), tools=plan).model_dump(mode="json")
    assert len(body["choices"][0]["message"]["tool_calls"]) == 1


def test_a_text_answer_has_no_tool_calls_field() -> None:
    body = chat_completion_response("m", output("It is sunny."), tools=PLAN).model_dump(mode="json")
    assert_matches_openai(body, "POST", "/v1/chat/completions")
    assert "tool_calls" not in body["choices"][0]["message"] and body["choices"][0]["finish_reason"] == "stop"


def test_a_streamed_answer_with_a_call() -> None:
    chunks = ChatChunks("qwen2.5-0.5b-instruct")
    calls = StreamedToolCalls(PLAN)
    sent = [calls.feed(piece) for piece in ("Checking.\n", QWEN_ONE_CALL[:15], QWEN_ONE_CALL[15:])]
    rest, answer = calls.finish()
    assert "".join(sent) + rest == "Checking.\n" and answer is not None
    events = [chunks.content(0, "Checking.\n"), chunks.tool_calls(0, answer.tool_calls), chunks.finish(0, "tool_calls")]
    for event in events:
        data = json.loads(event.model_dump_json(exclude_none=True))  # as the SSE route sends each chunk
        assert_matches_openai(data, "POST", "/v1/chat/completions", stream_event=True)
    delta = json.loads(events[1].model_dump_json(exclude_none=True))["choices"][0]["delta"]["tool_calls"][0]
    assert delta["index"] == 0 and delta["function"]["name"] == "get_current_temperature"
    assert json.loads(delta["function"]["arguments"])["location"] == "San Francisco, CA, USA"


def test_a_streamed_non_call_is_sent_as_content() -> None:
    calls = StreamedToolCalls(PLAN)
    assert calls.feed("<tool_call> not json") == ""
    rest, answer = calls.finish()
    assert answer is None and rest == "<tool_call> not json"
