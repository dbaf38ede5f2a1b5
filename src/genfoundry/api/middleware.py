"""ASGI middleware: request body cap and Prometheus request metrics."""

from __future__ import annotations

import json
import time
from typing import Any

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from genfoundry.api.metrics import Metrics


class _BodyTooLarge(Exception):
    pass


def _too_large_body(limit: int) -> bytes:
    message = f"request body is larger than the limit of {limit} bytes"
    error = {"message": message, "type": "invalid_request_error", "param": None, "code": "too_large"}
    return json.dumps({"error": error}).encode()


class BodyLimitMiddleware:
    """Refuse bodies over the limit: by Content-Length up front, or while streaming when it is absent.

    Dataset uploads (paths under `upload_prefixes`) get `upload_limit`; everything else `limit`."""

    def __init__(self, app: ASGIApp, *, limit: int, upload_limit: int, upload_prefixes: tuple[str, ...]) -> None:
        self.app = app
        self.default_limit = limit
        self.upload_limit = max(limit, upload_limit)
        self.upload_prefixes = upload_prefixes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        limit = self.upload_limit if scope["path"].startswith(self.upload_prefixes) else self.default_limit
        headers = dict(scope.get("headers") or [])
        declared = headers.get(b"content-length")
        if declared is not None and declared.isdigit() and int(declared) > limit:
            await self._reject(send, limit)
            return
        received = 0
        exceeded = False
        rejected = False

        async def limited_receive() -> Message:
            nonlocal received, exceeded
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > limit:
                    exceeded = True
                    raise _BodyTooLarge
            return message

        async def guarded_send(message: Message) -> None:
            # Frameworks turn a failing body read into their own 400; answer 413 instead.
            nonlocal rejected
            if exceeded:
                if not rejected:
                    rejected = True
                    await self._reject(send, limit)
                return
            await send(message)

        try:
            await self.app(scope, limited_receive, guarded_send)
        except _BodyTooLarge:
            if not rejected:
                await self._reject(send, limit)

    async def _reject(self, send: Send, limit: int) -> None:
        body = _too_large_body(limit)
        await send(
            {
                "type": "http.response.start",
                "status": 413,
                "headers": [
                    (b"content-type", b"application/json"),
                    (b"content-length", str(len(body)).encode()),
                ],
            }
        )
        await send({"type": "http.response.body", "body": body})


class MetricsMiddleware:
    """Count requests and time them per route template (not per raw path, to bound label cardinality)."""

    def __init__(self, app: ASGIApp, *, metrics: Metrics) -> None:
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        start = time.perf_counter()
        status = 500

        async def recording_send(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, recording_send)
        finally:
            route: Any = scope.get("route")
            path = getattr(route, "path", None) or "unmatched"
            self.metrics.observe_request(scope["method"], path, status, time.perf_counter() - start)
