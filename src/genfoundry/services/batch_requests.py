"""One line of a batch's input run through the same service code as its interactive route, in the background.

A line is `{"custom_id", "method": "POST", "url", "body"}`. It is checked here (JSON, fields, the url a batch can
run, the batch's own endpoint); its body is validated by the route's own request model and run by the route's
service (planning, limits, models, history rows), inside `background_priority()` so every interactive request
goes first. The result is OpenAI's output line: `{id, custom_id, response: {status_code, request_id, body},
error}`; a line that could not be run has `response: null` and `error: {code, message}`.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel, ValidationError

from genfoundry.errors import GenfoundryError, Invalid
from genfoundry.inference.priority import background_priority
from genfoundry.presenters.embeddings import embedding_response
from genfoundry.presenters.images import images_response
from genfoundry.repo.ids import new_id
from genfoundry.schemas import ChatCompletionRequest, ImageGenerationRequest
from genfoundry.schemas.embeddings import EmbeddingRequest
from genfoundry.services.auto_chat import AutoChat
from genfoundry.services.embeddings import EmbeddingService
from genfoundry.services.images import ImageService
from genfoundry.services.text import AUTO_MODEL, TextService
from genfoundry.services.urls import UrlSigner

logger = logging.getLogger(__name__)

CHAT_COMPLETIONS = "/v1/chat/completions"
IMAGE_GENERATIONS = "/v1/images/generations"
EMBEDDINGS = "/v1/embeddings"
BATCH_ENDPOINTS = (CHAT_COMPLETIONS, IMAGE_GENERATIONS, EMBEDDINGS)


@dataclass(frozen=True)
class LineResult:
    ok: bool  # True: the output file; False: the error file
    record: dict[str, Any]


def _record(custom_id: object, response: dict[str, Any] | None, error: dict[str, Any] | None) -> dict[str, Any]:
    return {"id": new_id("batch_req"), "custom_id": custom_id, "response": response, "error": error}


def line_error(custom_id: object, code: str, message: str) -> LineResult:
    """A line that was not run: OpenAI's error-file line."""
    return LineResult(ok=False, record=_record(custom_id, None, {"code": code, "message": message}))


def _error_body(status: int, error_type: str, message: str, param: str | None, code: str | None) -> dict[str, Any]:
    return {
        "status_code": status,
        "request_id": new_id("req"),
        "body": {"error": {"message": message, "type": error_type, "param": param, "code": code}},
    }


def _validated(model: type[BaseModel], body: dict[str, Any]) -> Any:
    """The route's request model for `body`; a bad field is a 400 naming it, as the route answers."""
    try:
        return model.model_validate(body)
    except ValidationError as exc:
        first = exc.errors()[0]
        param = ".".join(str(part) for part in first["loc"]) or None
        raise Invalid(f"{param}: {first['msg']}" if param else first["msg"], param=param, code="invalid_value") from exc


class BatchRequests:
    """Runs batch lines on the server's services (built once by `build_services`, used by batch jobs)."""

    def __init__(
        self,
        *,
        images: ImageService,
        text: TextService,
        auto_chat: AutoChat,
        embeddings: EmbeddingService,
        signer: UrlSigner,
    ) -> None:
        self.images = images
        self.text = text
        self.embeddings = embeddings
        self.auto_chat = auto_chat
        self.signer = signer
        self._handlers: dict[str, Callable[[str, dict[str, Any], str], Awaitable[dict[str, Any]]]] = {
            CHAT_COMPLETIONS: self._chat,
            IMAGE_GENERATIONS: self._image,
            EMBEDDINGS: self._embeddings,
        }

    def run_line(self, text: str, *, line: int, endpoint: str, owner_id: str, base_url: str) -> LineResult:
        """Check and run one input line (`line`: its 1-based number, for messages) on this thread."""
        try:
            request = json.loads(text)
        except ValueError as exc:
            return line_error(None, "invalid_json", f"line {line} is not JSON: {exc}")
        if not isinstance(request, dict):
            return line_error(None, "invalid_request", f"line {line} must be a JSON object")
        custom_id = request.get("custom_id")
        if not isinstance(custom_id, str) or not custom_id:
            return line_error(None, "missing_custom_id", f"line {line}: custom_id must be a non-empty string")
        url, body = request.get("url"), request.get("body")
        if request.get("method") != "POST":
            return line_error(custom_id, "invalid_method", f"line {line}: method must be POST")
        if url not in self._handlers:
            supported = ", ".join(BATCH_ENDPOINTS)
            return line_error(custom_id, "invalid_url", f"line {line}: url {url!r} is not one of {supported}")
        if url != endpoint:
            return line_error(
                custom_id, "mismatched_endpoint", f"line {line}: url {url} differs from the batch's endpoint {endpoint}"
            )
        if not isinstance(body, dict):
            return line_error(custom_id, "invalid_body", f"line {line}: body must be a JSON object")
        with background_priority():
            return asyncio.run(self._run(custom_id, self._handlers[url], owner_id, body, base_url))

    async def _run(
        self,
        custom_id: str,
        handler: Callable[[str, dict[str, Any], str], Awaitable[dict[str, Any]]],
        owner_id: str,
        body: dict[str, Any],
        base_url: str,
    ) -> LineResult:
        try:
            answer = await handler(owner_id, body, base_url)
        except GenfoundryError as exc:
            response = _error_body(exc.status_code, exc.error_type, exc.message, exc.param, exc.code)
            return LineResult(ok=False, record=_record(custom_id, response, None))
        except Exception:
            logger.exception("a batch line failed")
            response = _error_body(500, "server_error", "internal server error", None, "internal_error")
            return LineResult(ok=False, record=_record(custom_id, response, None))
        response = {
            "status_code": 200,
            "request_id": new_id("req"),
            "body": answer,
        }
        return LineResult(ok=True, record=_record(custom_id, response, None))

    # Each answer is serialized as its route's response model is (images without nulls, chat with them).

    async def _image(self, owner_id: str, body: dict[str, Any], base_url: str) -> dict[str, Any]:
        """As POST /v1/images/generations answers."""
        options: ImageGenerationRequest = _validated(ImageGenerationRequest, body)
        recorded = await self.images.generate(owner_id=owner_id, options=options)
        answer = images_response(
            recorded, response_format=options.response_format, signer=self.signer, base_url=base_url
        )
        return answer.model_dump(mode="json", exclude_none=True)

    async def _chat(self, owner_id: str, body: dict[str, Any], base_url: str) -> dict[str, Any]:
        """As POST /v1/chat/completions answers, without streaming (a batch line's answer is one object)."""
        request: ChatCompletionRequest = _validated(ChatCompletionRequest, body)
        if request.stream:
            raise Invalid("stream is not available in a batch: each line's answer is one object", param="stream")
        if request.route is not None and request.model != AUTO_MODEL:
            raise Invalid('route chooses how model "auto" answers; it cannot be set with a named model', param="route")
        if request.model == AUTO_MODEL:
            answer = await self.auto_chat.answer(owner_id, request, base_url)
        else:
            answer = await self.text.chat(owner_id, request)
        return answer.model_dump(mode="json")

    async def _embeddings(self, owner_id: str, body: dict[str, Any], base_url: str) -> dict[str, Any]:
        """As POST /v1/embeddings answers (the shared encoder, on a worker thread)."""
        request: EmbeddingRequest = _validated(EmbeddingRequest, body)
        embeddings = await asyncio.to_thread(
            self.embeddings.embed,
            model=request.model,
            texts=request.texts(),
            token_arrays=request.token_arrays(),
            dimensions=request.dimensions,
        )
        return embedding_response(embeddings, encoding_format=request.encoding_format).model_dump(mode="json")
