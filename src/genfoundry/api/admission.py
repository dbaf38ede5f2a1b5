"""Admission: a request for an engine holds its place in the base's queue first, on the event loop.

Everything else a generation does before queueing (auth, planning: database reads, the threadpool that sync work
waits for) is slow under load; a full queue must be refused before that work, not after it (503 with Retry-After,
mapped in api/errors.py). A handler declares `place: ImagePlaceDep` / `TextPlaceDep` before `PrincipalDep`, so
FastAPI solves it first, and hands the place to the service, whose engine queues the job in it. The place is given
back when the handler returns if the job never took it (bad input, unknown model, 401).

The base is known before planning when `model` names a catalog base. Any other name (an adapter, a trained model)
is resolved by planning; the engine then remembers which base that caller's name went to (keyed by a digest of
the caller's bearer key and the name), so the caller's next requests for it hold their place up front too.
"""

from __future__ import annotations

import hashlib
from collections.abc import AsyncIterator, Mapping
from typing import Annotated, Any

from fastapi import Depends, Request

from genfoundry.api.deps import ServicesDep, bearer_token
from genfoundry.inference.model_pool import ModelPool, QueuePlace
from genfoundry.services.text import AUTO_MODEL

_FORM_TYPE = "multipart/form-data"


async def requested_model(request: Request) -> str | None:
    """The body's `model` as FastAPI already parsed it (JSON or a form); None when absent or not a string."""
    try:
        if request.headers.get("content-type", "").startswith(_FORM_TYPE):
            body: object = await request.form()
        else:
            body = await request.json()
    except Exception:  # not JSON / not a form: the body's validation answers that, after this
        return None
    model = body.get("model") if isinstance(body, Mapping) else None
    return model if isinstance(model, str) else None


def _caller_key(request: Request, model: str) -> tuple[str, str]:
    """Which caller asked for which model name, without keeping the key itself."""
    token = bearer_token(request) or ""
    return hashlib.sha256(token.encode()).hexdigest(), model


def _hold(engine: ModelPool[Any, Any, Any, Any], request: Request, model: str | None, *, known: bool) -> QueuePlace:
    if model is None:
        return engine.hold_place(None)
    if known:
        return engine.hold_place(model)
    return engine.hold_place(None, request_key=_caller_key(request, model))


async def hold_image_place(request: Request, services: ServicesDep) -> AsyncIterator[QueuePlace]:
    """A place in the image engine's queue for the requested base (see the module docstring)."""
    model = await requested_model(request)
    place = _hold(services.image_engine, request, model, known=model in services.catalog.models)
    try:
        yield place
    finally:
        place.release()


async def hold_text_place(request: Request, services: ServicesDep) -> AsyncIterator[QueuePlace]:
    """A place in the text engine's queue for the requested base; none for `model="auto"`, routed later."""
    model = await requested_model(request)
    if model == AUTO_MODEL:
        model = None
    place = _hold(services.text_engine, request, model, known=model in services.catalog.text_models)
    try:
        yield place
    finally:
        place.release()


# scope="function": the place is given back as soon as the handler returns, not after the response is sent.
ImagePlaceDep = Annotated[QueuePlace, Depends(hold_image_place, scope="function")]
TextPlaceDep = Annotated[QueuePlace, Depends(hold_text_place, scope="function")]
