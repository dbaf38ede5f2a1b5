"""OpenAI-compatible (legacy) completions: the prompt goes to a text model verbatim, streamed (SSE) or not."""

from __future__ import annotations

from fastapi import APIRouter
from fastapi.responses import StreamingResponse

from genfoundry.api.admission import TextPlaceDep
from genfoundry.api.deps import PrincipalDep, ServicesDep
from genfoundry.api.routes.chat import sse_response
from genfoundry.schemas import CompletionRequest, CompletionResponse

router = APIRouter(prefix="/v1/completions", tags=["chat"])


@router.post("", response_model=None)
async def create_completion(
    body: CompletionRequest, services: ServicesDep, place: TextPlaceDep, principal: PrincipalDep
) -> CompletionResponse | StreamingResponse:
    """`prompt`: a string or a list of strings (choice `i * n + j` is the j-th for prompt i)."""
    if body.stream:
        return sse_response(await services.text.open_completion_stream(principal.user_id, body, place))
    return await services.text.complete(principal.user_id, body, place)
