"""One error hierarchy, rendered by one handler as {"error": CODE, "detail": message}."""

from __future__ import annotations

from collections.abc import Sequence
from typing import ClassVar


class GridgovError(Exception):
    """Base of every error the API reports; `code` is stable, `detail` is for humans."""

    status_code: ClassVar[int] = 400
    code: str = "bad_request"
    # Seconds after which a retry may succeed; sent as the `Retry-After` header when set.
    retry_after: int | None = None

    def __init__(self, detail: str, *, code: str | None = None, retry_after: int | None = None):
        super().__init__(detail)
        self.detail = detail
        if code is not None:
            self.code = code
        if retry_after is not None:
            self.retry_after = retry_after


class ValidationFailed(GridgovError):
    status_code = 422
    code = "validation_error"


class ImportRefused(ValidationFailed):
    """A whole import file refused, nothing stored; `problems` names every defect found."""

    code = "invalid_import"
    MAX_LISTED: ClassVar[int] = 50  # problems spelled out in `detail` (all are in `problems`)

    def __init__(self, what: str, problems: Sequence[str], *, code: str | None = None):
        self.problems = tuple(problems)
        listed = [f"- {p}" for p in self.problems[: self.MAX_LISTED]]
        if len(self.problems) > self.MAX_LISTED:
            listed.append(f"- … and {len(self.problems) - self.MAX_LISTED} more")
        count = len(self.problems)
        self.summary = f"{what} refused, nothing stored: {count} problem{'s' if count != 1 else ''}"
        super().__init__("\n".join([self.summary, *listed]), code=code)


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


class TooManyRequests(GridgovError):
    status_code = 429
    code = "too_many_requests"


class Busy(Conflict):
    """The case (or the database's write slot) is held by others longer than we wait for it."""

    code = "busy"
    retry_after = 1


class Unavailable(GridgovError):
    """The database is down, unreachable or too slow: the request changed nothing."""

    status_code = 503
    code = "unavailable"
    retry_after = 5
