"""One exception class per error code, rendered by one handler as {"error": CODE, "detail": …}.

`base` holds the machinery (registry, languages), `http` the errors of the request itself
(form, sign-in, parameters, database), `domain` and `workflow` those of the rules. `detail` is
Chinese by default and English for `Accept-Language: en` (see `pick_language`); `error_table`
is the README's table of codes (`gridgov errors` prints it).
"""

from __future__ import annotations

import string

from core.errors.base import (
    DEFAULT_LANG,
    REGISTRY,
    Conflict,
    Forbidden,
    GridgovError,
    ImportRefused,
    Lang,
    NotAuthenticated,
    NotFound,
    ValidationFailed,
    language_of_locale,
    pick_language,
)
from core.errors.domain import (
    ClientIdConflict,
    DepartmentRequired,
    DescriptionTooLong,
    EmptyDescription,
    GridNotFound,
    GridRequired,
    InvalidArea,
    InvalidCatalogue,
    InvalidCoordinates,
    InvalidDepartment,
    InvalidGeojson,
    InvalidGrid,
    InvalidGrids,
    InvalidOccurredAt,
    InvalidReporter,
    InvalidUsername,
    OutsideDistrict,
    UnknownAttachment,
    UnknownCategory,
    UnknownCrs,
    UnknownDepartment,
    UnknownGrid,
    UnknownSubcategory,
    UnknownUser,
    UsernameTaken,
    WeakPassword,
)
from core.errors.http import (
    Busy,
    HttpError,
    InternalError,
    InvalidCredentials,
    InvalidDatetime,
    InvalidToken,
    MalformedJson,
    MethodNotAllowed,
    MissingToken,
    PathNotFound,
    PayloadTooLarge,
    RepeatedParameter,
    RequestInvalid,
    StaleCase,
    TokenExpired,
    TokenRevoked,
    TooManyAttempts,
    Unauthorized,
    Unavailable,
    UnknownParameter,
    UnsupportedMediaType,
    WrongRole,
)
from core.errors.workflow import (
    ACTION_NAMES_ZH,
    AuditBroken,
    CaseNotFound,
    ExtensionLimit,
    IllegalTransition,
    InvalidAmount,
    InvalidCalendar,
    InvalidMerge,
    InvalidRange,
    NoteRequired,
    NotPermitted,
    PassedRequired,
    ReasonRequired,
)


def _plain(template: str) -> str:
    """A template as the README shows it: `{lat:.6f}` and `{crs!r}` become `{lat}`, `{crs}`."""
    parts = string.Formatter().parse(template)
    return "".join(text + ("" if name is None else "{" + name + "}") for text, name, _, _ in parts)


def error_table() -> str:
    """Every registered code as a Markdown table: code, status, Chinese message, meaning."""
    rows = ["| code | HTTP | message (中文) | meaning |", "| --- | --- | --- | --- |"]
    for code, cls in sorted(REGISTRY.items()):
        cells = [f"`{code}`", str(cls.status_code), _plain(cls.zh), cls.meaning()]
        rows.append("| " + " | ".join(c.replace("|", "\\|") for c in cells) + " |")
    return "\n".join(rows) + "\n"


__all__ = [
    "ACTION_NAMES_ZH",
    "AuditBroken",
    "Busy",
    "CaseNotFound",
    "ClientIdConflict",
    "Conflict",
    "DEFAULT_LANG",
    "DepartmentRequired",
    "DescriptionTooLong",
    "EmptyDescription",
    "ExtensionLimit",
    "Forbidden",
    "GridNotFound",
    "GridRequired",
    "GridgovError",
    "HttpError",
    "IllegalTransition",
    "ImportRefused",
    "InternalError",
    "InvalidAmount",
    "InvalidArea",
    "InvalidCalendar",
    "InvalidCatalogue",
    "InvalidCoordinates",
    "InvalidCredentials",
    "InvalidDatetime",
    "InvalidDepartment",
    "InvalidGeojson",
    "InvalidGrid",
    "InvalidGrids",
    "InvalidMerge",
    "InvalidOccurredAt",
    "InvalidRange",
    "InvalidReporter",
    "InvalidToken",
    "InvalidUsername",
    "Lang",
    "MalformedJson",
    "MethodNotAllowed",
    "MissingToken",
    "NotAuthenticated",
    "NotFound",
    "NotPermitted",
    "NoteRequired",
    "OutsideDistrict",
    "PassedRequired",
    "PathNotFound",
    "PayloadTooLarge",
    "REGISTRY",
    "ReasonRequired",
    "RepeatedParameter",
    "RequestInvalid",
    "StaleCase",
    "TokenExpired",
    "TokenRevoked",
    "TooManyAttempts",
    "Unauthorized",
    "Unavailable",
    "UnknownAttachment",
    "UnknownCategory",
    "UnknownCrs",
    "UnknownDepartment",
    "UnknownGrid",
    "UnknownParameter",
    "UnknownSubcategory",
    "UnknownUser",
    "UnsupportedMediaType",
    "UsernameTaken",
    "ValidationFailed",
    "WeakPassword",
    "WrongRole",
    "error_table",
    "language_of_locale",
    "pick_language",
]
