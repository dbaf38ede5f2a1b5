"""Text answers in OpenAI's shapes: chat completions and completions, whole or as stream chunks (one id and
creation time per stream), and the `model: "auto"` answers that carry the router's decision."""

from __future__ import annotations

import secrets
import time
from collections.abc import AsyncIterator, Sequence
from typing import TYPE_CHECKING, Literal

from genfoundry.schemas import (
    ChatCompletionChoice,
    ChatCompletionChunk,
    ChatCompletionChunkChoice,
    ChatCompletionDelta,
    ChatCompletionMessage,
    ChatCompletionResponse,
    CompletionChoice,
    CompletionResponse,
    CompletionUsage,
    RoutePublic,
)
from genfoundry.schemas.tools import ToolCall, ToolCallDelta, ToolCallDeltaFunction, ToolCallFunction

if TYPE_CHECKING:
    from genfoundry.inference.text import TextChoice, TextOutput
    from genfoundry.services.text_tools import ToolPlan
    from genfoundry.text.tools import ParsedToolCall


def finish_reason(reason: str) -> Literal["stop", "length"]:
    return "stop" if reason == "stop" else "length"


def chat_finish_reason(reason: str) -> Literal["stop", "length", "tool_calls"]:
    return "tool_calls" if reason == "tool_calls" else finish_reason(reason)


def tool_call_public(call: ParsedToolCall) -> ToolCall:
    return ToolCall(id=call.id, function=ToolCallFunction(name=call.name, arguments=call.arguments))


def chat_choice(choice: TextChoice, tools: ToolPlan | None) -> ChatCompletionChoice:
    """A choice's message: its text, or with `tools` offered, its text and the calls it makes."""
    answer = tools.parse(choice.text) if tools is not None else None
    if answer is None or not answer.tool_calls:
        text = answer.content if answer is not None else choice.text
        message = ChatCompletionMessage(content=text or "")
        return ChatCompletionChoice(
            index=choice.index, message=message, finish_reason=finish_reason(choice.finish_reason)
        )
    message = ChatCompletionMessage(
        content=answer.content, tool_calls=[tool_call_public(call) for call in answer.tool_calls]
    )
    return ChatCompletionChoice(index=choice.index, message=message, finish_reason="tool_calls")


def usage_public(output: TextOutput) -> CompletionUsage:
    return CompletionUsage(
        prompt_tokens=output.prompt_tokens,
        completion_tokens=output.completion_tokens,
        total_tokens=output.prompt_tokens + output.completion_tokens,
    )


def chat_completion_response(
    model: str, output: TextOutput, *, tools: ToolPlan | None = None
) -> ChatCompletionResponse:
    return ChatCompletionResponse(
        id=f"chatcmpl-{secrets.token_hex(12)}",
        created=int(time.time()),
        model=model,
        choices=[chat_choice(choice, tools) for choice in output.choices],
        usage=usage_public(output),
    )


def completion_response(model: str, output: TextOutput) -> CompletionResponse:
    return CompletionResponse(
        id=f"cmpl-{secrets.token_hex(12)}",
        created=int(time.time()),
        model=model,
        choices=[
            CompletionChoice(index=choice.index, text=choice.text, finish_reason=finish_reason(choice.finish_reason))
            for choice in output.choices
        ],
        usage=usage_public(output),
    )


class ChatChunks:
    """The `chat.completion.chunk`s of one streamed chat completion."""

    def __init__(self, model: str) -> None:
        self.id, self.created, self.model = f"chatcmpl-{secrets.token_hex(12)}", int(time.time()), model

    def chunk(self, choices: list[ChatCompletionChunkChoice]) -> ChatCompletionChunk:
        return ChatCompletionChunk(id=self.id, created=self.created, model=self.model, choices=choices)

    def roles(self, rows: int) -> ChatCompletionChunk:
        """The first chunk: each choice's assistant role and empty content."""
        return self.chunk(
            [
                ChatCompletionChunkChoice(index=i, delta=ChatCompletionDelta(role="assistant", content=""))
                for i in range(rows)
            ]
        )

    def content(self, index: int, text: str) -> ChatCompletionChunk:
        return self.chunk([ChatCompletionChunkChoice(index=index, delta=ChatCompletionDelta(content=text))])

    def tool_calls(self, index: int, calls: Sequence[ParsedToolCall]) -> ChatCompletionChunk:
        """A choice's tool calls, each whole in one delta (read once the answer ended)."""
        deltas = [
            ToolCallDelta(
                index=position,
                id=call.id,
                type="function",
                function=ToolCallDeltaFunction(name=call.name, arguments=call.arguments),
            )
            for position, call in enumerate(calls)
        ]
        return self.chunk([ChatCompletionChunkChoice(index=index, delta=ChatCompletionDelta(tool_calls=deltas))])

    def finish(self, index: int, reason: str) -> ChatCompletionChunk:
        choice = ChatCompletionChunkChoice(
            index=index, delta=ChatCompletionDelta(), finish_reason=chat_finish_reason(reason)
        )
        return self.chunk([choice])

    def usage(self, output: TextOutput) -> ChatCompletionChunk:
        """The last chunk with `stream_options.include_usage`: no choices, the usage."""
        last = self.chunk([])
        last.usage = usage_public(output)
        return last


class CompletionChunks:
    """The chunks of one streamed (legacy) completion, in the completions shape."""

    def __init__(self, model: str) -> None:
        self.id, self.created, self.model = f"cmpl-{secrets.token_hex(12)}", int(time.time()), model

    def chunk(self, choices: list[CompletionChoice]) -> CompletionResponse:
        return CompletionResponse(id=self.id, created=self.created, model=self.model, choices=choices)

    def text(self, index: int, text: str, reason: str | None) -> CompletionResponse:
        finish = None if reason is None else finish_reason(reason)
        return self.chunk([CompletionChoice(index=index, text=text, finish_reason=finish)])

    def usage(self, output: TextOutput) -> CompletionResponse:
        last = self.chunk([])
        last.usage = usage_public(output)
        return last


def message_response(model: str, message: ChatCompletionMessage, route: RoutePublic) -> ChatCompletionResponse:
    """A `model: "auto"` answer made by another capability (an image, a diagram): one finished choice, no tokens."""
    return ChatCompletionResponse(
        id=f"chatcmpl-{secrets.token_hex(12)}",
        created=int(time.time()),
        model=model,
        choices=[ChatCompletionChoice(index=0, message=message, finish_reason="stop")],
        usage=CompletionUsage(prompt_tokens=0, completion_tokens=0, total_tokens=0),
        route=route,
    )


async def message_chunks(
    model: str, message: ChatCompletionMessage, route: RoutePublic
) -> AsyncIterator[ChatCompletionChunk]:
    """`message_response` streamed: the whole message in one content chunk (with the route), then the finish."""
    chunks = ChatChunks(model)
    delta = ChatCompletionDelta(role="assistant", content=message.content, attachments=message.attachments)
    yield ChatCompletionChunk(
        id=chunks.id,
        created=chunks.created,
        model=model,
        choices=[ChatCompletionChunkChoice(index=0, delta=delta)],
        route=route,
    )
    yield chunks.finish(0, "stop")


async def chunks_with_route(
    chunks: AsyncIterator[ChatCompletionChunk], route: RoutePublic
) -> AsyncIterator[ChatCompletionChunk]:
    """A chat stream whose first chunk carries the router's decision."""
    first = True
    async for chunk in chunks:
        yield chunk.model_copy(update={"route": route}) if first else chunk
        first = False
