"""Domain errors, raised below the API and mapped to HTTP statuses in one place (api/errors.py)."""

from __future__ import annotations


class GenfoundryError(Exception):
    """Base class: `message` is safe to show to the caller; `param` names the offending field; `details`
    (JSON-able) goes into the error body as extra information, e.g. a per-file report."""

    status_code = 400
    error_type = "invalid_request_error"
    code: str | None = None

    def __init__(
        self, message: str, *, param: str | None = None, code: str | None = None, details: object = None
    ) -> None:
        super().__init__(message)
        self.message = message
        self.param = param
        self.details = details
        if code is not None:
            self.code = code


class Invalid(GenfoundryError):
    """The request is well-formed but its content is unacceptable."""

    status_code = 400


class Unprocessable(GenfoundryError):
    """A file or body could not be understood (not an image, truncated file, unknown format)."""

    status_code = 422


class NotFound(GenfoundryError):
    status_code = 404
    code = "not_found"


class Conflict(GenfoundryError):
    status_code = 409
    code = "conflict"


class TooLarge(GenfoundryError):
    status_code = 413
    code = "too_large"


class Unauthorized(GenfoundryError):
    status_code = 401
    error_type = "authentication_error"
    code = "invalid_api_key"


class Forbidden(GenfoundryError):
    status_code = 403
    error_type = "permission_error"


class Overloaded(GenfoundryError):
    """A bounded queue is full; the caller should retry after `retry_after` seconds."""

    status_code = 503
    error_type = "server_error"
    code = "overloaded"

    def __init__(self, message: str, *, retry_after: float = 1.0) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class ModelUnavailable(GenfoundryError):
    """A catalog model's weights are not present locally and cannot be fetched."""

    status_code = 503
    error_type = "server_error"
    code = "model_unavailable"


class StorageUnavailable(GenfoundryError):
    """The artifact store cannot be read or written (endpoint down, wrong credentials, missing bucket)."""

    status_code = 503
    error_type = "server_error"
    code = "storage_unavailable"
