"""Tool calling on chat models: which chat templates can call tools, and the tool calls in a model's answer.

A template can call tools when it renders the `tools` variable and writes calls in the Hermes / Qwen2.5 format,
`<tool_call>\\n{"name": ..., "arguments": {...}}\\n</tool_call>`, the one format parsed here (with transformers'
response parser). Any other base answers in text: no call is ever made up from text that is not one.
"""

from __future__ import annotations

import json
import secrets
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

TOOL_CALL_OPEN = "<tool_call>"
# transformers' response template for Qwen2 models (transformers/cli/serving/utils.py), without the reasoning field:
# content up to the end of turn, and any number of JSON tool calls, each between <tool_call> and </tool_call>.
HERMES_RESPONSE_TEMPLATE: dict[str, Any] = {
    "defaults": {"role": "assistant"},
    "start_anchor": "<|im_start|>assistant\n",
    "fields": {
        "tool_calls": {
            "open_pattern": r"\s*<tool_call>",
            "close": "</tool_call>",
            "repeats": True,
            "content": "json",
            "transform": {"type": "function", "function": "{content}"},
        },
        "content": {"close_pattern": r"\s*(?:<\|im_end\|>|<\|endoftext\|>)", "content": "text"},
    },
}


@dataclass(frozen=True)
class ParsedToolCall:
    id: str
    name: str
    arguments: str  # a JSON object, as OpenAI sends it


@dataclass(frozen=True)
class ParsedAnswer:
    content: str | None
    tool_calls: tuple[ParsedToolCall, ...]


@lru_cache(maxsize=64)
def template_calls_tools(template: str | None) -> bool:
    """Whether a chat template renders `tools` and writes calls in the format `parse_answer` reads."""
    if not template or TOOL_CALL_OPEN not in template:
        return False
    from jinja2 import Environment, meta

    try:
        return "tools" in meta.find_undeclared_variables(Environment(autoescape=True).parse(template))
    except Exception:  # a template jinja2 cannot parse cannot render tools either
        return False


def parse_answer(text: str, *, tools: Sequence[Mapping[str, Any]], prefill: str = "") -> ParsedAnswer:
    """The model's answer (after `prefill`, which the prompt already wrote) as content and tool calls.

    A call must name one of `tools` with an object of arguments; when any call is malformed, the answer is the
    model's text as it wrote it (never a made-up call)."""
    from transformers.utils.chat_parsing import parse_response

    whole = prefill + text
    if TOOL_CALL_OPEN not in whole:
        return ParsedAnswer(content=text, tool_calls=())
    names = {str(tool["function"]["name"]) for tool in tools}
    template = _response_template()  # outside the try: a broken template is a bug, not the model's text
    try:
        message = parse_response(whole, template, prefix="", tools=[dict(tool) for tool in tools])
    except (ValueError, RecursionError):  # the model's text is not a well-formed call
        return ParsedAnswer(content=text, tool_calls=())
    calls = []
    for call in message.get("tool_calls") or []:
        function = call.get("function") if isinstance(call, Mapping) else None
        if not isinstance(function, Mapping) or function.get("name") not in names:
            return ParsedAnswer(content=text, tool_calls=())
        arguments = function.get("arguments", {})
        if not isinstance(arguments, Mapping):
            return ParsedAnswer(content=text, tool_calls=())
        calls.append(
            ParsedToolCall(
                id=f"call_{secrets.token_hex(12)}",
                name=str(function["name"]),
                arguments=json.dumps(arguments, ensure_ascii=False),
            )
        )
    content = message.get("content")
    return ParsedAnswer(content=str(content) if content else None, tool_calls=tuple(calls))


@lru_cache(maxsize=1)
def _response_template() -> Any:
    from transformers.utils.chat_parsing.response_templates import load_response_template

    return load_response_template(HERMES_RESPONSE_TEMPLATE)


class ToolCallHold:
    """Splits a streamed answer into content that can go out now and the text from `<tool_call>` on, which is
    held until the answer ends (then `parse_answer` reads it). A tail that may be the start of the marker waits
    for the next piece."""

    def __init__(self, prefill: str = "") -> None:
        self.held = prefill  # a prefilled call: everything the model writes belongs to it
        self._pending = ""

    def feed(self, text: str) -> str:
        """The part of `text` (with any tail kept from before) that is content for sure."""
        if self.held:
            self.held += text
            return ""
        combined = self._pending + text
        start = combined.find(TOOL_CALL_OPEN)
        if start >= 0:
            self.held, self._pending = combined[start:], ""
            return combined[:start]
        keep = next(
            (
                size
                for size in range(min(len(TOOL_CALL_OPEN) - 1, len(combined)), 0, -1)
                if TOOL_CALL_OPEN.startswith(combined[-size:])
            ),
            0,
        )
        self._pending = combined[len(combined) - keep :]
        return combined[: len(combined) - keep]

    def rest(self) -> str:
        """At the end: a kept tail that turned out not to be a marker."""
        rest, self._pending = self._pending, ""
        return rest
