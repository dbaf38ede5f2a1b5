"""Admission: a generation request holds its place in its base's queue first, on the event loop.

Everything else a generation does before queueing (routing and FastAPI's dependencies, auth, planning: database
reads, the threadpool that blocking work waits for) is slow under load; a full queue must be refused before that
work, not after it (503 with Retry-After, OpenAI's error shape). A handler declares `place: ImagePlaceDep` or
`TextPlaceDep` and hands the place to its service, whose engine queues the job in it; the place is given back when
the request ends if no job took it (bad input, unknown model, 401).

`AdmissionGate`, an ASGI middleware, does this for JSON bodies before routing: it reads the body, holds the place
(or answers the 503 itself) and leaves the place in the request's state for the dependency. Routes are gated when
their handler declares one of the dependencies; the dependency holds the place itself when the gate did not
(multipart edits, or an app without the gate).

The base is known before planning when `model` names a catalog base. Any other name (an adapter, a trained model)
is resolved by planning; the engine then remembers which base that caller's name went to (keyed by a digest of the
caller's bearer key and the name), so the caller's next requests for it hold their place up front too.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import AsyncIterator, Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Annotated, Any

from fastapi import Depends, Request
from fastapi.dependencies.models import Dependant
from fastapi.routing import APIRoute, iter_route_contexts
from starlette.routing import BaseRoute
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from genfoundry.api.deps import ServicesDep, bearer_token, services_of
from genfoundry.api.errors import domain_error_response
from genfoundry.errors import Overloaded
from genfoundry.inference.model_pool import ModelPool, QueuePlace
from genfoundry.services import Services
from genfoundry.services.text import AUTO_MODEL

_PLACE_KEY = "queue_place"  # where the gate leaves the place, in the request's state


@dataclass(frozen=True)
class _Lane:
    """Which engine a route's requests queue in, which model names are its bases, and which are routed later."""

    engine: Callable[[Services], ModelPool[Any, Any, Any, Any]]
    bases: Callable[[Services], Mapping[str, object]]
    routed_later: frozenset[str] = frozenset()


_IMAGES = _Lane(engine=lambda s: s.image_engine, bases=lambda s: s.catalog.models)
_TEXT = _Lane(
    engine=lambda s: s.text_engine, bases=lambda s: s.catalog.text_models, routed_later=frozenset({AUTO_MODEL})
)


def _hold(lane: _Lane, services: Services, request: Request, body: object) -> QueuePlace:
    """Hold a place for a request whose parsed body is `body`; raises `Overloaded` when the queue is full."""
    engine = lane.engine(services)
    model = body.get("model") if isinstance(body, Mapping) else None
    if not isinstance(model, str) or model in lane.routed_later:
        return engine.hold_place(None)  # no place to hold yet; the queue is checked when the job is submitted
    if model in lane.bases(services):
        return engine.hold_place(model)
    caller = hashlib.sha256((bearer_token(request) or "").encode()).hexdigest()  # never the key itself
    return engine.hold_place(None, request_key=(caller, model))


async def _parsed_body(request: Request) -> object:
    """The body as FastAPI already read it (JSON, or a multipart form); None when it is neither."""
    try:
        if request.headers.get("content-type", "").startswith("multipart/form-data"):
            return await request.form()
        return await request.json()
    except Exception:  # not JSON: the body's validation answers that, after this
        return None


async def _place_for(request: Request, services: Services, lane: _Lane) -> QueuePlace:
    held = getattr(request.state, _PLACE_KEY, None)
    if isinstance(held, QueuePlace):
        return held
    return _hold(lane, services, request, await _parsed_body(request))


async def hold_image_place(request: Request, services: ServicesDep) -> AsyncIterator[QueuePlace]:
    """A place in the image engine's queue for the requested base (see the module docstring)."""
    place = await _place_for(request, services, _IMAGES)
    try:
        yield place
    finally:
        place.release()


async def hold_text_place(request: Request, services: ServicesDep) -> AsyncIterator[QueuePlace]:
    """A place in the text engine's queue for the requested base; none for `model="auto"`, routed later."""
    place = await _place_for(request, services, _TEXT)
    try:
        yield place
    finally:
        place.release()


# scope="function": the place is given back as soon as the handler returns, not after the response is sent.
ImagePlaceDep = Annotated[QueuePlace, Depends(hold_image_place, scope="function")]
TextPlaceDep = Annotated[QueuePlace, Depends(hold_text_place, scope="function")]

_LANES: dict[Callable[..., object], _Lane] = {hold_image_place: _IMAGES, hold_text_place: _TEXT}


def _lane_of(dependant: Dependant) -> _Lane | None:
    for sub in dependant.dependencies:
        lane = _LANES.get(sub.call) if sub.call is not None else None
        if lane is None:
            lane = _lane_of(sub)
        if lane is not None:
            return lane
    return None


def _gated_routes(routes: Sequence[BaseRoute]) -> Iterator[tuple[str, tuple[_Lane, BaseRoute]]]:
    """(path, (lane, route)) of each POST route without path parameters whose handler takes a queue place."""
    for route in iter_route_contexts(routes):
        path = route.path_format
        if not isinstance(route.original_route, APIRoute) or path is None or "{" in path:
            continue
        lane = _lane_of(route.dependant)
        if lane is not None and "POST" in (route.methods or ()):
            yield path, (lane, route.original_route)


class AdmissionGate:
    """ASGI middleware: holds the queue place of a JSON POST to a gated route before routing, or answers 503.

    `routes` is the app's route list, read at the first request (routers are included after middleware is added).
    """

    def __init__(self, app: ASGIApp, *, routes: Sequence[BaseRoute]) -> None:
        self.app = app
        self._routes = routes
        self._gates: dict[str, tuple[_Lane, BaseRoute]] | None = None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if self._gates is None:
            self._gates = dict(_gated_routes(self._routes))
        gate = self._gates.get(scope["path"]) if scope["type"] == "http" and scope["method"] == "POST" else None
        request = Request(scope) if gate is not None else None
        if gate is None or request is None or not _is_json(request):
            await self.app(scope, receive, send)
            return
        lane, route = gate
        body = await _read_body(receive)
        if body is None:  # the client went away before sending its body
            return
        try:
            parsed: object = json.loads(body)
        except ValueError:
            parsed = None  # FastAPI answers the bad JSON
        try:
            place = _hold(lane, services_of(scope["app"]), request, parsed)
        except Overloaded as exc:
            scope["route"] = route  # metrics label it as routing would have
            await domain_error_response(exc)(scope, receive, send)
            return
        scope.setdefault("state", {})[_PLACE_KEY] = place
        try:
            await self.app(scope, _replaying(body, receive), send)
        finally:
            place.release()


def _is_json(request: Request) -> bool:
    content_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    return content_type == "application/json" or content_type.endswith("+json")


async def _read_body(receive: Receive) -> bytes | None:
    chunks: list[bytes] = []
    while True:
        message = await receive()
        if message["type"] != "http.request":
            return None
        chunks.append(message.get("body", b""))
        if not message.get("more_body", False):
            return b"".join(chunks)


def _replaying(body: bytes, receive: Receive) -> Receive:
    """The request's body again, once, for the app; then the client's own messages (a disconnect)."""
    pending: list[Message] = [{"type": "http.request", "body": body, "more_body": False}]

    async def replay() -> Message:
        return pending.pop() if pending else await receive()

    return replay
