"""One place that turns errors into HTTP responses in OpenAI's shape; tracebacks never leak."""

from __future__ import annotations

import logging
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from fastapi.routing import iter_route_contexts
from starlette.exceptions import HTTPException as StarletteHTTPException

from genfoundry.errors import GenfoundryError, Overloaded

logger = logging.getLogger("genfoundry.api")

_TYPES_BY_STATUS = {401: "authentication_error", 403: "permission_error", 404: "invalid_request_error"}


def error_response(
    status: int,
    message: str,
    *,
    error_type: str = "invalid_request_error",
    param: str | None = None,
    code: str | None = None,
    headers: dict[str, str] | None = None,
    details: object = None,
) -> JSONResponse:
    error: dict[str, object] = {"message": message, "type": error_type, "param": param, "code": code}
    if details is not None:
        error["details"] = details
    return JSONResponse({"error": error}, status_code=status, headers=headers)


def _param_of(error: dict[str, Any]) -> str | None:
    location = [
        str(part) for part in error.get("loc", ()) if part not in ("body", "query", "path", "form", "header", "cookie")
    ]
    return ".".join(location) or None


async def _domain_error(_request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, GenfoundryError)
    return domain_error_response(exc)


def domain_error_response(exc: GenfoundryError) -> JSONResponse:
    """A domain error's response (also sent by middleware before routing); `Overloaded` adds Retry-After."""
    headers = None
    if isinstance(exc, Overloaded):
        headers = {"Retry-After": str(max(1, round(exc.retry_after)))}
    return error_response(
        exc.status_code,
        exc.message,
        error_type=exc.error_type,
        param=exc.param,
        code=exc.code,
        headers=headers,
        details=exc.details,
    )


async def _validation_error(_request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    errors = list(exc.errors())
    first = errors[0] if errors else {}
    if first.get("type") == "json_invalid":
        return error_response(400, "the request body is not valid JSON", code="invalid_json")
    param = _param_of(first)
    message = "; ".join(f"{_param_of(e) or 'body'}: {e.get('msg', 'invalid')}" for e in errors[:5])
    return error_response(400, message, param=param, code="invalid_value")


def allowed_methods(request: Request) -> str:
    """The methods of the path the request names, and OPTIONS (Starlette's 405 names only one route's).

    The path is the first route template that matches, as routing picks it: `/v1/datasets/from-urls` is that
    route's (POST), not `/v1/datasets/{dataset_id}`'s (GET, DELETE)."""
    path, root = request.scope["path"], request.scope.get("root_path", "")
    path = path.removeprefix(root) if root else path
    template: str | None = None
    methods = {"OPTIONS"}
    for route in iter_route_contexts(request.app.routes):
        pattern = getattr(route, "path_regex", None)
        if template is None and route.methods and pattern is not None and pattern.match(path):
            template = route.path_format  # the first match is the path's own template, as routing picks it
        if template is not None and route.path_format == template:
            methods |= set(route.methods or ())
    return ", ".join(sorted(methods))


async def _http_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, StarletteHTTPException)
    status = exc.status_code
    headers = getattr(exc, "headers", None)
    if status == 405:
        # The path exists: OPTIONS is answered with what it allows; another method is told the same in `Allow`.
        allow = allowed_methods(request)
        if request.method == "OPTIONS":
            return Response(status_code=204, headers={"Allow": allow})
        headers = {**(headers or {}), "Allow": allow}
    return error_response(
        status,
        str(exc.detail),
        error_type=_TYPES_BY_STATUS.get(status, "invalid_request_error"),
        headers=headers,
    )


async def _unexpected_error(request: Request, exc: Exception) -> JSONResponse:
    logger.exception("unhandled error on %s %s", request.method, request.url.path, exc_info=exc)
    return error_response(500, "internal server error", error_type="server_error", code="internal_error")


def install_error_handlers(app: FastAPI) -> None:
    app.add_exception_handler(GenfoundryError, _domain_error)
    app.add_exception_handler(RequestValidationError, _validation_error)
    app.add_exception_handler(StarletteHTTPException, _http_error)
    app.add_exception_handler(Exception, _unexpected_error)
