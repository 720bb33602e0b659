"""Text as it may be stored: no C0 control characters (PostgreSQL refuses NUL in text)."""

from __future__ import annotations

import re
from typing import Annotated

from pydantic import AfterValidator

_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")


def strip_controls(value: str) -> str:
    """Drop control characters except tab and line breaks (phones paste odd bytes)."""
    return _CONTROL.sub("", value)


def no_controls(value: str) -> str:
    if _CONTROL.search(value) or any(ch in value for ch in "\t\r\n"):
        raise ValueError("must not contain control characters")
    return value


CleanText = Annotated[str, AfterValidator(strip_controls)]
Identifier = Annotated[str, AfterValidator(no_controls)]
