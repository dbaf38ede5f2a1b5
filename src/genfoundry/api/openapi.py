"""The OpenAPI document tells the truth: every status a route answers, each media type, and the key it needs.

FastAPI documents a route's success shape from the route itself. What a route can fail with lives mostly in its
services, which FastAPI cannot see, so `ROUTES` lists it per route ("METHOD /path"), next to the media types of
answers that are not JSON and the Server-Sent Events of routes that stream. What every route of a kind shares is
read from the route: 400 when it takes query, header or body parameters (a value that fails validation), 401 when
it needs a key, 403 when it needs an admin key, 413 when it takes a body (BodyLimitMiddleware). Every error is
OpenAI's error object (`ErrorResponse`). FastAPI's own 422 (`HTTPValidationError`) goes: validation errors are
400s here (api/errors.py), and a 422 means content that could not be processed.

tests/api/test_openapi.py checks that `ROUTES` and the app's routes match; tests/api/test_fuzz_openapi.py that no
route answers a status, media type or body the document does not list.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

from fastapi import FastAPI
from fastapi.dependencies.models import Dependant
from fastapi.routing import APIRoute, RouteContext, iter_route_contexts
from pydantic import BaseModel
from pydantic.json_schema import models_json_schema

from genfoundry.api.deps import get_optional_principal, get_principal, require_admin
from genfoundry.schemas import ErrorResponse, ImagesResponse, JobEventPublic, ListPublic
from genfoundry.schemas.fine_tuning import FineTuningEventPublic
from genfoundry.schemas.text import ChatCompletionResponse, CompletionResponse

REF = "#/components/schemas/{model}"
BEARER = "bearerAuth"

ERRORS: dict[int, str] = {
    400: "Bad request: a parameter or field is missing or invalid (`error.param` names it)",
    401: "Missing, invalid or revoked API key",
    403: "This needs an admin key",
    404: "No such resource for this key (another user's resource is a 404 too)",
    409: "The resource is in a state that does not allow this now",
    413: "The request body, an upload or what it asks for is over a limit",
    422: "The content could not be processed: not an image, a bad JSONL line, an unreadable LoRA file, "
    "PlantUML that does not draw, more tokens than the model allows",
    503: "Busy or unavailable: a full queue (retry after `Retry-After` seconds), or a model or renderer that "
    "cannot be loaded",
}


@dataclass(frozen=True)
class RouteDoc:
    """What FastAPI cannot read from a route: the errors its services raise and the answers it builds by hand."""

    errors: tuple[int, ...] = ()
    # Media types of the success answer when it is not JSON (the body is the file or the text itself).
    media_types: tuple[str, ...] = ()
    # The JSON answer of a route that returns a Response for some requests (FastAPI then documents no schema).
    json: type[BaseModel] | None = None
    # What each event's `data` holds, for a route that answers Server-Sent Events when asked to stream.
    stream: str | None = None


_JOB_EVENTS = "one event object (JSON) per `data`, with `id: ev_<n>`; the last `data` is `[DONE]`"
_IMAGE_EVENTS = (
    "named events (`event:` is the `type`): `partial_images` `image_generation.partial_image` (or "
    "`image_edit.partial_image`) events, then one `*.completed`; an error after the start is one `error` event"
)
_CHAT_CHUNKS = "one chunk (JSON) per `data`; the last `data` is `[DONE]`; an error after the start is one `error`"

ROUTES: dict[str, RouteDoc] = {
    "GET /healthz": RouteDoc(),
    "GET /readyz": RouteDoc(errors=(503,)),
    "GET /metrics": RouteDoc(media_types=("text/plain",)),
    # images and their history
    "POST /v1/images/generations": RouteDoc(errors=(400, 404, 503), json=ImagesResponse, stream=_IMAGE_EVENTS),
    "POST /v1/images/edits": RouteDoc(errors=(400, 404, 413, 422, 503), json=ImagesResponse, stream=_IMAGE_EVENTS),
    "GET /v1/images/styles": RouteDoc(),
    "GET /v1/images/{image_id}": RouteDoc(errors=(401, 404), media_types=("image/png", "image/jpeg", "image/webp")),
    "GET /v1/generations": RouteDoc(errors=(404,)),
    "GET /v1/generations/{generation_id}": RouteDoc(errors=(404,)),
    "PATCH /v1/generations/{generation_id}": RouteDoc(errors=(404,)),
    "DELETE /v1/generations/{generation_id}": RouteDoc(errors=(404,)),
    # models and keys
    "GET /v1/models": RouteDoc(),
    "POST /v1/models": RouteDoc(errors=(400, 404, 422, 503)),
    "GET /v1/models/{model_id}": RouteDoc(errors=(404,)),
    "PATCH /v1/models/{model_id}": RouteDoc(errors=(400, 404)),
    "DELETE /v1/models/{model_id}": RouteDoc(errors=(400, 404, 409)),
    "GET /v1/models/{model_id}/content": RouteDoc(errors=(400, 404, 422), media_types=("application/octet-stream",)),
    "GET /v1/keys": RouteDoc(),
    "POST /v1/keys": RouteDoc(errors=(404,)),
    "POST /v1/keys/{key_id}/revoke": RouteDoc(errors=(404,)),
    # datasets and files
    "POST /v1/datasets": RouteDoc(errors=(400, 422)),
    "GET /v1/datasets": RouteDoc(errors=(404,)),
    "POST /v1/datasets/from-urls": RouteDoc(errors=(400,)),
    "GET /v1/datasets/{dataset_id}": RouteDoc(errors=(404,)),
    "DELETE /v1/datasets/{dataset_id}": RouteDoc(errors=(404,)),
    "GET /v1/datasets/{dataset_id}/items": RouteDoc(errors=(404,)),
    "GET /v1/datasets/{dataset_id}/items/{item_id}/image": RouteDoc(
        errors=(404, 409), media_types=("image/png", "image/jpeg")
    ),
    "PATCH /v1/datasets/{dataset_id}/items/{item_id}": RouteDoc(errors=(404, 409)),
    "POST /v1/datasets/{dataset_id}/caption": RouteDoc(errors=(400, 404, 409)),
    "POST /v1/datasets/{dataset_id}/captions": RouteDoc(errors=(400, 404, 409)),
    "GET /v1/datasets/{dataset_id}/config": RouteDoc(errors=(400, 404, 409), media_types=("application/toml",)),
    "POST /v1/files": RouteDoc(errors=(400, 413, 422)),
    "GET /v1/files": RouteDoc(errors=(404,)),
    "GET /v1/files/{file_id}": RouteDoc(errors=(404,)),
    "DELETE /v1/files/{file_id}": RouteDoc(errors=(404,)),
    "GET /v1/files/{file_id}/content": RouteDoc(errors=(400, 404), media_types=("application/jsonl",)),
    # batches
    "POST /v1/batches": RouteDoc(errors=(400, 404)),
    "GET /v1/batches": RouteDoc(errors=(404,)),
    "GET /v1/batches/{batch_id}": RouteDoc(errors=(404,)),
    "POST /v1/batches/{batch_id}/cancel": RouteDoc(errors=(404, 409)),
    # jobs and fine-tuning
    "GET /v1/jobs": RouteDoc(errors=(404,)),
    "GET /v1/jobs/{job_id}": RouteDoc(errors=(404,)),
    "GET /v1/jobs/{job_id}/events": RouteDoc(errors=(400, 404), json=ListPublic[JobEventPublic], stream=_JOB_EVENTS),
    "GET /v1/jobs/{job_id}/log": RouteDoc(errors=(404,), media_types=("text/plain",)),
    "POST /v1/jobs/{job_id}/cancel": RouteDoc(errors=(404, 409)),
    "POST /v1/jobs/{job_id}/resume": RouteDoc(errors=(404, 409)),
    "POST /v1/fine_tuning/jobs": RouteDoc(errors=(400, 404, 409)),
    "GET /v1/fine_tuning/jobs": RouteDoc(errors=(404,)),
    "GET /v1/fine_tuning/jobs/{job_id}": RouteDoc(errors=(404,)),
    "POST /v1/fine_tuning/jobs/{job_id}/cancel": RouteDoc(errors=(404, 409)),
    "POST /v1/fine_tuning/jobs/{job_id}/resume": RouteDoc(errors=(404, 409)),
    "GET /v1/fine_tuning/jobs/{job_id}/events": RouteDoc(
        errors=(400, 404), json=ListPublic[FineTuningEventPublic], stream=_JOB_EVENTS
    ),
    "GET /v1/fine_tuning/jobs/{job_id}/checkpoints": RouteDoc(errors=(400, 404)),
    "POST /v1/fine_tuning/jobs/{job_id}/checkpoints/{checkpoint_id}/promote": RouteDoc(errors=(400, 404)),
    "GET /v1/fine_tuning/methods": RouteDoc(errors=()),
    "GET /v1/fine_tuning/jobs/{job_id}/samples/{name}": RouteDoc(errors=(401, 404), media_types=("image/png",)),
    # classification, diagrams, text
    "POST /v1/classify": RouteDoc(errors=(400, 404, 413)),
    "POST /v1/route": RouteDoc(errors=(400, 404)),
    "POST /v1/embeddings": RouteDoc(errors=(400, 404)),
    "POST /v1/diagrams/render": RouteDoc(errors=(400, 413, 422, 503)),
    "GET /v1/diagrams/{diagram_id}/content": RouteDoc(errors=(401, 404), media_types=("image/png", "image/svg+xml")),
    "POST /v1/diagrams": RouteDoc(errors=(400, 404, 413, 422, 503)),
    "POST /v1/chat/completions": RouteDoc(
        errors=(400, 404, 413, 422, 503), json=ChatCompletionResponse, stream=_CHAT_CHUNKS
    ),
    "POST /v1/completions": RouteDoc(errors=(400, 404, 413, 422, 503), json=CompletionResponse, stream=_CHAT_CHUNKS),
    # conversations (the studio's chats)
    "POST /v1/conversations": RouteDoc(errors=(400,)),
    "GET /v1/conversations": RouteDoc(errors=(404,)),
    "GET /v1/conversations/{conversation_id}": RouteDoc(errors=(404,)),
    "POST /v1/conversations/{conversation_id}": RouteDoc(errors=(404,)),
    "DELETE /v1/conversations/{conversation_id}": RouteDoc(errors=(404,)),
    "GET /v1/conversations/{conversation_id}/items": RouteDoc(errors=(404,)),
    "POST /v1/conversations/{conversation_id}/items": RouteDoc(errors=(400, 404)),
    "GET /v1/conversations/{conversation_id}/items/{item_id}": RouteDoc(errors=(404,)),
    # the seed systems' APIs (docs/compat.md)
    "POST /compat/super-realism/generate/": RouteDoc(errors=(400, 404, 503), media_types=("image/png",)),
    "POST /compat/super-realism/train/": RouteDoc(errors=(400, 404, 409, 413, 422)),
    "POST /compat/super-realism/classify/": RouteDoc(errors=(400, 404)),
    "POST /compat/flux-train/download-images": RouteDoc(errors=(400, 409)),
    "POST /compat/flux-train/caption-images": RouteDoc(errors=(400, 404, 409, 422)),
    "POST /compat/flux-train/create-dataset-config": RouteDoc(errors=(400, 404, 409)),
    "POST /compat/flux-train/train": RouteDoc(errors=(400, 404, 409)),
    "GET /compat/flux-train/status/{run_id}": RouteDoc(errors=(404,)),
    "POST /compat/postpulse/generate-image": RouteDoc(errors=(400, 404, 422, 503)),
    "POST /compat/dreambooth/generate": RouteDoc(errors=(400, 404, 503), media_types=("image/png",)),
    "GET /compat/dreambooth/models": RouteDoc(),
    "DELETE /compat/dreambooth/models/{model_id}": RouteDoc(errors=(400, 404, 409)),
}

# One Server-Sent Event, as OpenAPI 3.2's `itemSchema` describes events (tools read a 3.1 `schema` the same way).
_SSE_EVENT: dict[str, Any] = {
    "type": "object",
    "properties": {
        "data": {"type": "string"},
        "event": {"type": "string"},
        "id": {"type": "string"},
        "retry": {"type": "integer"},
    },
    "required": ["data"],
}


def route_keys(app: FastAPI) -> Iterator[tuple[str, RouteContext]]:
    """("METHOD /path", route) for every documented route of the app, included routers' routes with full paths."""
    for route in iter_route_contexts(app.routes):
        if isinstance(route.original_route, APIRoute) and route.include_in_schema:
            for method in sorted(route.methods or ()):
                yield f"{method} {route.path_format}", route


def _dependants(dependant: Dependant) -> Iterator[Dependant]:
    yield dependant
    for sub in dependant.dependencies:
        yield from _dependants(sub)


def _calls(route: RouteContext) -> set[Callable[..., Any]]:
    return {dependant.call for dependant in _dependants(route.dependant) if dependant.call is not None}


def _validated(route: RouteContext) -> bool:
    """Whether a request can fail validation: the route reads the query, headers, cookies or a body."""
    return any(
        d.query_params or d.header_params or d.cookie_params or d.body_params for d in _dependants(route.dependant)
    )


def route_errors(key: str, route: RouteContext) -> list[int]:
    """Every error status the route answers: its entry in ROUTES plus what its parameters and auth imply."""
    statuses = set(ROUTES.get(key, RouteDoc()).errors)
    calls = _calls(route)
    if _validated(route):
        statuses.add(400)
    if get_principal in calls:
        statuses.add(401)
    if require_admin in calls:
        statuses.add(403)
    if route.body_field is not None:
        statuses.add(413)
    return sorted(statuses)


def _error_response(status: int) -> dict[str, Any]:
    response: dict[str, Any] = {
        "description": ERRORS[status],
        "content": {"application/json": {"schema": {"$ref": REF.format(model="ErrorResponse")}}},
    }
    if status == 503:
        response["headers"] = {
            "Retry-After": {
                "description": "Seconds to wait before retrying, when the queue was full",
                "schema": {"type": "integer"},
            }
        }
    return response


def _add_components(schema: dict[str, Any], models: list[type[BaseModel]]) -> dict[type[BaseModel], dict[str, str]]:
    """Put the models' JSON schemas in the document's components; returns each model's `$ref`."""
    refs, definitions = models_json_schema([(model, "serialization") for model in models], ref_template=REF)
    components = schema.setdefault("components", {}).setdefault("schemas", {})
    for name, definition in definitions.get("$defs", {}).items():
        components.setdefault(name, definition)
    return {model: dict(refs[(model, "serialization")]) for model in models}


def _drop_unreferenced(schema: dict[str, Any], names: tuple[str, ...]) -> None:
    components = schema.get("components", {}).get("schemas", {})
    for name in names:
        rest = {key: value for key, value in components.items() if key != name}
        text = json.dumps({"paths": schema["paths"], "components": rest})
        if REF.format(model=name) not in text:
            components.pop(name, None)


def document(schema: dict[str, Any], app: FastAPI) -> None:
    """Add to FastAPI's document what `ROUTES` and the routes' dependencies say (in place)."""
    refs = _add_components(schema, [ErrorResponse, *(doc.json for doc in ROUTES.values() if doc.json is not None)])
    schema["components"]["securitySchemes"] = {
        BEARER: {
            "type": "http",
            "scheme": "bearer",
            "description": "An API key (`genfoundry keys create`). In single-user mode (no key exists, loopback "
            "only) requests need none.",
        }
    }
    for key, route in route_keys(app):
        method, path = key.split(" ", 1)
        operation = schema["paths"][path][method.lower()]
        responses: dict[str, Any] = operation["responses"]
        default_422 = responses.get("422", {}).get("content", {}).get("application/json", {}).get("schema", {})
        if default_422.get("$ref", "").endswith("/HTTPValidationError"):
            del responses["422"]
        for status in route_errors(key, route):
            responses[str(status)] = _error_response(status)
        doc = ROUTES.get(key, RouteDoc())
        success = responses[str(route.status_code or 200)]
        if doc.media_types:
            success["content"] = {media_type: {"schema": {"type": "string"}} for media_type in doc.media_types}
        if doc.json is not None:
            success["content"] = {"application/json": {"schema": refs[doc.json]}}
        if doc.stream is not None:
            success.setdefault("content", {})["text/event-stream"] = {
                "schema": {**_SSE_EVENT, "description": f"Server-Sent Events when the request streams: {doc.stream}"}
            }
        calls = _calls(route)
        if get_principal in calls:
            operation["security"] = [{BEARER: []}]
        elif get_optional_principal in calls:
            operation["security"] = [{BEARER: []}, {}]  # or a signed URL's `expires` and `signature`
    _drop_unreferenced(schema, ("HTTPValidationError", "ValidationError"))


def install_openapi(app: FastAPI) -> None:
    """Make `app.openapi()` (and /openapi.json) return the document with `document` applied, built once."""
    generate = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            document(generate(), app)
        assert app.openapi_schema is not None
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]
