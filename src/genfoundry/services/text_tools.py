"""Tools on a chat completion: check `tools` / `tool_choice` against the model, decide what the prompt offers,
and read the calls back out of the answer (whole or streamed).

A base whose chat template can call tools (`template_calls_tools`) sees the tools in its prompt and its calls
come back as `tool_calls`. Any other base answers in text; only a `tool_choice` that requires a call is refused
there, since nothing could honour it. `tool_choice` "required" or a named function on a base that can call tools
starts the answer with the call's opening (`<tool_call>`, and the function's name when it is named), so the
model writes the call's arguments rather than choosing whether to call.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from genfoundry.errors import Invalid
from genfoundry.schemas import ChatCompletionRequest
from genfoundry.schemas.tools import NamedToolChoice
from genfoundry.text.formats import TextFormat
from genfoundry.text.tools import TOOL_CALL_OPEN, ParsedAnswer, ToolCallHold, parse_answer, template_calls_tools


@dataclass(frozen=True)
class ToolPlan:
    """The tools the prompt offers (transformers' shape) and the answer's prefilled opening; no tools: text."""

    tools: tuple[dict[str, Any], ...] = ()
    prefill: str = ""
    parallel: bool = True

    def parse(self, text: str) -> ParsedAnswer:
        """A whole answer as content and tool calls (only the first when parallel calls are off)."""
        answer = parse_answer(text, tools=self.tools, prefill=self.prefill)
        if not self.parallel and len(answer.tool_calls) > 1:
            return ParsedAnswer(content=answer.content, tool_calls=answer.tool_calls[:1])
        return answer


@dataclass
class StreamedToolCalls:
    """One streamed choice: content goes out as it comes until a call starts; the call is read at the end."""

    plan: ToolPlan
    hold: ToolCallHold = field(init=False)

    def __post_init__(self) -> None:
        self.hold = ToolCallHold(self.plan.prefill)

    def feed(self, text: str) -> str:
        return self.hold.feed(text)

    def finish(self) -> tuple[str, ParsedAnswer | None]:
        """(content still to send, the calls when the held text is a call); content is all when it is not."""
        rest = self.hold.rest()
        if not self.hold.held:
            return rest, None
        written = self.hold.held[len(self.plan.prefill) :] if self.plan.prefill else self.hold.held
        answer = self.plan.parse(written)
        if not answer.tool_calls:
            return rest + (answer.content or ""), None
        return rest + (answer.content or ""), answer


def _tool_names(request: ChatCompletionRequest) -> list[str]:
    names = [tool.function.name for tool in request.tools or []]
    seen: set[str] = set()
    for index, name in enumerate(names):
        if name in seen:
            raise Invalid(f"tools[{index}]: another tool is already named '{name}'", param="tools")
        seen.add(name)
    return names


def plan_tools(request: ChatCompletionRequest, text_format: TextFormat, tokenizer_template: str | None) -> ToolPlan:
    """Check `tools`, `tool_choice` and the tool messages against the model; what the prompt offers."""
    names = _tool_names(request)
    choice = request.tool_choice
    named = choice.function.name if isinstance(choice, NamedToolChoice) else None
    requires_call = choice == "required" or named is not None
    if requires_call and not names:
        raise Invalid("tool_choice requires a call, but the request lists no tools", param="tool_choice")
    if named is not None and named not in names:
        raise Invalid(f"tool_choice names '{named}', which is not one of tools", param="tool_choice")
    template = text_format.chat_template or tokenizer_template
    can_call = text_format.prompt_format == "chat_template" and template_calls_tools(template)
    if not can_call:
        if requires_call:
            raise Invalid(
                f"'{request.model}' cannot call tools (its prompt format has no tool calls), so tool_choice cannot "
                "require one; leave tool_choice out or set it to auto or none to get a text answer",
                param="tool_choice",
            )
        for index, message in enumerate(request.messages):
            if message.role == "tool" or message.tool_calls:
                raise Invalid(
                    f"messages[{index}] is a tool call or result, and '{request.model}' cannot call tools",
                    param="messages",
                )
        return ToolPlan()
    if not names or choice == "none":
        return ToolPlan()
    offered = [tool.for_template() for tool in request.tools or [] if named is None or tool.function.name == named]
    prefill = ""
    if named is not None:
        prefill = f'{TOOL_CALL_OPEN}\n{{"name": {json.dumps(named)}, "arguments": '
    elif requires_call:
        prefill = f"{TOOL_CALL_OPEN}\n"
    return ToolPlan(tools=tuple(offered), prefill=prefill, parallel=request.parallel_tool_calls is not False)


def template_messages(request: ChatCompletionRequest, *, chat_template: bool) -> list[dict[str, Any]]:
    """The request's messages as the prompt renderers take them: role and text, and the tool fields."""
    messages: list[dict[str, Any]] = []
    for message in request.messages:
        role = "system" if chat_template and message.role == "developer" else message.role
        rendered: dict[str, Any] = {"role": role, "content": message.text()}
        if message.tool_calls:
            rendered["tool_calls"] = [call.for_template() for call in message.tool_calls]
        if message.tool_call_id is not None:
            rendered["tool_call_id"] = message.tool_call_id
        messages.append(rendered)
    return messages
