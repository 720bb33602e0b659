"""Errors of the request itself: its form, its sign-in, its parameters, and the database."""

from __future__ import annotations

from typing import Any

from core.errors.base import (
    Conflict,
    Forbidden,
    GridgovError,
    Lang,
    NotAuthenticated,
    NotFound,
    ValidationFailed,
)
from core.errors.validation import describe, plain_errors

# --- the request's form (most raised by the framework, rendered by the handler) -------------


class RequestInvalid(ValidationFailed):
    """A field of the body or the query fails its schema; `detail` names up to five fields."""

    code = "validation_error"
    zh = "请求内容无效：{problems}"
    en = "invalid request: {problems}"
    example = {"errors": [{"type": "missing", "loc": ["body", "lat"], "msg": "Field required"}]}
    derived = frozenset({"problems"})

    def __init__(self, *, errors: Any) -> None:
        super().__init__(errors=plain_errors(errors))

    def localise(self, lang: Lang) -> dict[str, Any]:
        return {"problems": describe(self.params["errors"], lang)}


class MalformedJson(GridgovError):
    """The body cannot be parsed as JSON."""

    code = "malformed_json"
    zh = "请求体不是有效的 JSON"
    en = "the body is not valid JSON"


class PayloadTooLarge(GridgovError):
    """The body is larger than GRIDGOV_MAX_BODY_BYTES."""

    code = "payload_too_large"
    status_code = 413
    zh = "请求体超过 {limit} 字节"
    en = "body over {limit} bytes"
    example = {"limit": 1_000_000}


class UnsupportedMediaType(GridgovError):
    """A body on a JSON endpoint that is not `application/json`."""

    code = "unsupported_media_type"
    status_code = 415
    zh = "请求体须为 application/json"
    en = "send the body as application/json"


class PathNotFound(NotFound):
    """No such address (or `/metrics` switched off)."""

    code = "not_found"
    zh = "请求的地址不存在"
    en = "not found"


class MethodNotAllowed(GridgovError):
    """The address exists but not for this HTTP method (the `Allow` header lists them)."""

    code = "method_not_allowed"
    status_code = 405
    zh = "该地址不支持此请求方法"
    en = "method not allowed"


class HttpError(GridgovError):
    """Any other HTTP-level refusal of the framework, with its own status."""

    code = "http_error"
    zh = "请求无法处理（HTTP {status}）"
    en = "the request cannot be handled (HTTP {status})"
    example = {"status": 416}

    def __init__(self, *, status: int) -> None:
        super().__init__(status=status)
        self.status_code = status


class InternalError(GridgovError):
    """A fault of the service (logged); the request changed nothing."""

    code = "internal_error"
    status_code = 500
    zh = "服务内部错误"
    en = "an internal error occurred"


# --- sign-in and roles -------------------------------------------------------------------


class Unauthorized(NotAuthenticated):
    """`/metrics` without the bearer token GRIDGOV_METRICS_TOKEN."""

    code = "unauthorized"
    zh = "需要身份认证：请发送 Authorization: Bearer 加 GRIDGOV_METRICS_TOKEN 的值"
    en = "authentication required: send Authorization: Bearer and GRIDGOV_METRICS_TOKEN's value"


class MissingToken(NotAuthenticated):
    """No bearer token sent."""

    code = "missing_token"
    zh = "需要 Bearer 令牌，请先登录"
    en = "a bearer token is required"


class InvalidToken(NotAuthenticated):
    """A token that is forged, malformed, from the future, or of an unknown or disabled account."""

    code = "invalid_token"
    zh = "令牌无效（或账号不存在、已停用），请重新登录"
    en = "invalid token (or unknown or disabled account); sign in again"


class TokenExpired(NotAuthenticated):
    """The token's lifetime (GRIDGOV_TOKEN_TTL_SECONDS) has passed."""

    code = "token_expired"
    zh = "令牌已过期，请重新登录"
    en = "token expired; sign in again"


class TokenRevoked(NotAuthenticated):
    """The token was revoked (logout, `users disable`, `users revoke-tokens`)."""

    code = "token_revoked"
    zh = "令牌已撤销，请重新登录"
    en = "token revoked; sign in again"


class InvalidCredentials(NotAuthenticated):
    """Wrong username or password (which one is not said)."""

    code = "invalid_credentials"
    zh = "用户名或密码错误"
    en = "wrong username or password"


class TooManyAttempts(GridgovError):
    """Too many failed sign-ins for the username or the address; retry after `Retry-After`."""

    code = "too_many_attempts"
    status_code = 429
    zh = "登录失败次数过多，请 {seconds} 秒后再试"
    en = "too many failed sign-ins; try again in {seconds} s"
    example = {"seconds": 120}

    def __init__(self, *, seconds: int) -> None:
        super().__init__(seconds=seconds)
        self.retry_after = seconds


class CsrfFailed(Forbidden):
    """A change asked with the console's session cookie but without its `X-CSRF-Token`."""

    code = "csrf_failed"
    zh = "请求缺少有效的 CSRF 令牌，请刷新页面后重试"
    en = "missing or wrong X-CSRF-Token for a request signed in by cookie; reload the page"


class WrongRole(Forbidden):
    """The operation is for other roles."""

    code = "wrong_role"
    zh = "此操作需要以下角色：{roles}"
    en = "this needs the role {roles}"
    example = {"roles": "dispatcher / admin"}


# --- query parameters --------------------------------------------------------------------


class UnknownParameter(ValidationFailed):
    """A query parameter the operation does not take."""

    code = "unknown_parameter"
    zh = "不支持参数 {name!r}；此操作接受：{accepted}"
    en = "unknown parameter {name!r}; this operation takes: {accepted}"
    example = {"name": "colour", "accepted": "limit, offset"}


class RepeatedParameter(ValidationFailed):
    """A query parameter given more than once that takes one value."""

    code = "repeated_parameter"
    zh = "参数 {name!r} 重复出现"
    en = "parameter {name!r} given more than once"
    example = {"name": "sort"}


class InvalidDatetime(ValidationFailed):
    """A `from`/`to` bound that is not a date or a datetime of the years 1900-2200."""

    code = "invalid_datetime"
    zh = (
        "{name}：须为日期（本地，YYYY-MM-DD）或时间（ISO 8601，无时区偏移即本地时间），"
        "年份 1900-2200"
    )
    en = (
        "{name}: expected a date (local, YYYY-MM-DD) or a datetime (ISO 8601; without an "
        "offset: local time) of the years 1900 to 2200"
    )
    example = {"name": "from"}


# --- the database --------------------------------------------------------------------------


class Busy(Conflict):
    """The case (or the database's write slot) is held by others longer than we wait for it."""

    code = "busy"
    retry_after = 1
    zh = "其他操作正在修改同一案件或记录，请稍后重试"
    en = "others are changing the same case or records; retry shortly"


class StaleCase(Conflict):
    """The case changed since the caller read it (`expected_version`, or a concurrent write)."""

    code = "stale_case"
    zh = "案件已被他人修改，请刷新后重试"
    en = "the case changed meanwhile; reload and retry"


class Unavailable(GridgovError):
    """The database is down, unreachable or too slow: the request changed nothing."""

    code = "unavailable"
    status_code = 503
    retry_after = 5
    zh = "数据库暂时不可用，请稍后重试"
    en = "the database is unavailable; retry shortly"
