"""Text as it may be stored: valid Unicode, no C0 control characters (PostgreSQL refuses NUL).

Every text field of a request that can reach the database is `CleanText` (prose: control
characters dropped) or `Identifier` (codes and ids: control characters refused), and both
refuse lone surrogates (`"\\ud800"` is legal JSON but no encoding can store or answer it), so
bad text is a 422 for the item that carries it, never a 500. Each field sets its `max_length`
(prose may lean on the body limit and its own rule, e.g. `description_too_long`).
"""

from __future__ import annotations

import re
from typing import Annotated, Any

from pydantic import AfterValidator, BeforeValidator
from pydantic_core import PydanticCustomError

_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")
_SURROGATE = re.compile("[\ud800-\udfff]")


def require_unicode(value: Any) -> Any:
    """Refuse lone surrogates; runs before length checks, so the message says what is wrong."""
    if isinstance(value, str) and _SURROGATE.search(value):
        raise PydanticCustomError(
            "invalid_unicode", "text is not valid Unicode (it holds a lone surrogate)"
        )
    return value


def strip_controls(value: str) -> str:
    """Drop control characters except tab and line breaks (phones paste odd bytes)."""
    return _CONTROL.sub("", value)


def no_controls(value: str) -> str:
    if _CONTROL.search(value) or any(ch in value for ch in "\t\r\n"):
        raise ValueError("must not contain control characters")
    return value


def displayable(value: str) -> str:
    """Text safe to echo in an answer (lone surrogates shown as U+FFFD)."""
    return _SURROGATE.sub("\ufffd", value)


CleanText = Annotated[str, BeforeValidator(require_unicode), AfterValidator(strip_controls)]
Identifier = Annotated[str, BeforeValidator(require_unicode), AfterValidator(no_controls)]
