"""The OpenAPI document says what every operation may answer: its result or one error body.

Every error is `{"error": CODE, "detail": message}` (one handler renders them all), so each
operation documents the same `Error` schema for the statuses it can give; 422 is ours too, not
FastAPI's `HTTPValidationError`, because the handler reshapes validation errors. `error` is one
of the registered codes (`core.errors.REGISTRY`); `detail` is Chinese unless the request's
`Accept-Language` prefers English.
"""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi

from core.errors import REGISTRY

ERROR_SCHEMA: dict[str, Any] = {
    "title": "Error",
    "type": "object",
    "required": ["error", "detail"],
    "properties": {
        "error": {
            "type": "string",
            "enum": sorted(REGISTRY),
            "description": "stable machine code, e.g. not_permitted",
        },
        "detail": {
            "type": "string",
            "description": "what went wrong, for people: in Simplified Chinese, or in English "
            "when Accept-Language prefers it (e.g. `en`, `en-US`, `en;q=0.9, zh;q=0.1`)",
        },
    },
}

# Statuses any operation may give: bad body, auth, place, state, size, type, rate, database.
ERROR_STATUSES: dict[str, str] = {
    "400": "Malformed request",
    "401": "Missing, invalid, expired or revoked token",
    "403": "Not permitted for this role or place",
    "404": "Not found",
    "409": "Conflict with the current state (or busy: retry after Retry-After)",
    "413": "Body too large",
    "415": "Unsupported media type",
    "422": "Invalid input",
    "429": "Too many attempts (retry after Retry-After)",
    "503": "Database unavailable (retry after Retry-After)",
}


def document_errors(app: FastAPI) -> None:
    """Replace `app.openapi` with one that documents the error body on every operation."""

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is not None:
            return app.openapi_schema
        schema = get_openapi(
            title=app.title,
            version=app.version,
            summary=app.summary,
            description=app.description,
            routes=app.routes,
        )
        components = schema.setdefault("components", {}).setdefault("schemas", {})
        components["Error"] = ERROR_SCHEMA
        components.pop("HTTPValidationError", None)
        components.pop("ValidationError", None)
        ref = {"$ref": "#/components/schemas/Error"}
        for path_item in schema.get("paths", {}).values():
            for operation in path_item.values():
                responses = operation.setdefault("responses", {})
                for status, description in ERROR_STATUSES.items():
                    responses[status] = {
                        "description": description,
                        "content": {"application/json": {"schema": ref}},
                    }
        app.openapi_schema = schema
        return schema

    app.openapi = openapi  # type: ignore[method-assign]
