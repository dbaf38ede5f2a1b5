"""OpenAI-compatible chat completions on text bases and the caller's text adapters, streamed (SSE) or not."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator

from fastapi import APIRouter, Request
from fastapi.responses import StreamingResponse
from pydantic import BaseModel

from genfoundry.api.admission import TextPlaceDep
from genfoundry.api.deps import PrincipalDep, ServicesDep
from genfoundry.api.sse import sse_block
from genfoundry.errors import GenfoundryError, Invalid
from genfoundry.schemas import ChatCompletionRequest, ChatCompletionResponse
from genfoundry.services.text import AUTO_MODEL

router = APIRouter(prefix="/v1/chat", tags=["chat"])
logger = logging.getLogger(__name__)


class ErrorEnvelope(BaseModel):
    error: dict[str, str | None]


async def sse_chunks(chunks: AsyncIterator[BaseModel]) -> AsyncIterator[bytes]:
    """Each chunk as one `data:` block, then `data: [DONE]`; an error after the stream began is one last
    `data: {"error": ...}` block (the status line has already gone out)."""
    try:
        async for chunk in chunks:
            yield sse_block(data=chunk.model_dump_json(exclude_none=True))
    except GenfoundryError as exc:
        error = {"message": exc.message, "type": exc.error_type, "param": exc.param, "code": exc.code}
        yield sse_block(data=ErrorEnvelope(error=error).model_dump_json())
        return
    except Exception:
        logger.exception("a chat stream failed")
        error = {"message": "internal server error", "type": "server_error", "param": None, "code": "internal_error"}
        yield sse_block(data=ErrorEnvelope(error=error).model_dump_json())
        return
    yield sse_block(data="[DONE]")


def sse_response(chunks: AsyncIterator[BaseModel]) -> StreamingResponse:
    return StreamingResponse(
        sse_chunks(chunks),
        media_type="text/event-stream",
        headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
    )


@router.post("/completions", response_model=None)
async def create_chat_completion(
    body: ChatCompletionRequest,
    request: Request,
    services: ServicesDep,
    place: TextPlaceDep,
    principal: PrincipalDep,
) -> ChatCompletionResponse | StreamingResponse:
    """`model` is a text base or your text adapter; `stream: true` answers with `chat.completion.chunk` events.

    `model: "auto"`: the prompt router picks who answers the last user message: the default image model (its URL
    in the message and in `attachments`), the diagram generator (PlantUML and its drawing), or the default text
    model; `route` says which and why. Set `route` (image, diagram or chat) to skip the router and answer that way.
    """
    if body.route is not None and body.model != AUTO_MODEL:
        raise Invalid('route chooses how model "auto" answers; it cannot be set with a named model', param="route")
    if body.model == AUTO_MODEL:
        base_url = str(request.base_url)
        if body.stream:
            return sse_response(await services.auto_chat.stream(principal.user_id, body, base_url))
        return await services.auto_chat.answer(principal.user_id, body, base_url)
    if body.stream:
        return sse_response(await services.text.open_chat_stream(principal.user_id, body, place))
    return await services.text.chat(principal.user_id, body, place)
