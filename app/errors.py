"""One error hierarchy, rendered by one handler as {"error": CODE, "detail": message}."""

from __future__ import annotations

from typing import ClassVar


class GridgovError(Exception):
    """Base of every error the API reports; `code` is stable, `detail` is for humans."""

    status_code: ClassVar[int] = 400
    code: str = "bad_request"

    def __init__(self, detail: str, *, code: str | None = None):
        super().__init__(detail)
        self.detail = detail
        if code is not None:
            self.code = code


class BadRequest(GridgovError):
    status_code = 400
    code = "bad_request"


class ValidationFailed(GridgovError):
    status_code = 422
    code = "validation_error"


class Unauthorized(GridgovError):
    status_code = 401
    code = "unauthorized"


class Forbidden(GridgovError):
    status_code = 403
    code = "forbidden"


class NotFound(GridgovError):
    status_code = 404
    code = "not_found"


class Conflict(GridgovError):
    status_code = 409
    code = "conflict"


class PayloadTooLarge(GridgovError):
    status_code = 413
    code = "payload_too_large"


class UnsupportedMediaType(GridgovError):
    status_code = 415
    code = "unsupported_media_type"
