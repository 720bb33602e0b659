"""Pydantic's validation errors as one line per field, in Chinese or English.

The location (`lat`, `reports.3.description`) is kept as pydantic gives it. English keeps
pydantic's own message. Chinese translates the common error types below, with their limits;
any other type is told as 取值无效 followed by pydantic's English message in parentheses, so
nothing is lost when pydantic adds a type.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from core.errors.base import Lang

# pydantic error type -> Chinese message (fields from the error's `ctx`).
ZH_MESSAGES: dict[str, str] = {
    "missing": "缺少此字段",
    "extra_forbidden": "不接受此字段",
    "string_type": "须为字符串",
    "int_type": "须为整数",
    "int_parsing": "须为整数",
    "int_from_float": "须为整数",
    "float_type": "须为数字",
    "float_parsing": "须为数字",
    "finite_number": "须为有限数字",
    "bool_type": "须为布尔值（true 或 false）",
    "bool_parsing": "须为布尔值（true 或 false）",
    "list_type": "须为数组",
    "dict_type": "须为对象",
    "model_type": "须为对象",
    "model_attributes_type": "须为对象",
    "string_too_short": "至少需要 {min_length} 个字符",
    "string_too_long": "最多 {max_length} 个字符",
    "too_short": "至少需要 {min_length} 项",
    "too_long": "最多 {max_length} 项",
    "greater_than": "须大于 {gt}",
    "greater_than_equal": "须大于或等于 {ge}",
    "less_than": "须小于 {lt}",
    "less_than_equal": "须小于或等于 {le}",
    "literal_error": "须为以下之一：{expected}",
    "enum": "须为以下之一：{expected}",
    "string_pattern_mismatch": "格式不符",
    "date_type": "须为日期（YYYY-MM-DD）",
    "date_parsing": "须为日期（YYYY-MM-DD）",
    "date_from_datetime_parsing": "须为日期（YYYY-MM-DD）",
    "date_from_datetime_inexact": "须为日期（YYYY-MM-DD），不带时刻",
    "datetime_type": "须为时间（ISO 8601）",
    "datetime_parsing": "须为时间（ISO 8601）",
    "datetime_from_date_parsing": "须为时间（ISO 8601）",
    "invalid_unicode": "文本不是有效的 Unicode（含孤立的代理字符）",
    "json_invalid": "不是有效的 JSON",
}
# A type not above: its English message, after this.
ZH_OTHER = "取值无效"
MAX_FIELDS = 5  # fields spelled out in one answer


def plain_errors(errors: Iterable[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """The parts of pydantic's errors a message needs, as plain data (no exception objects)."""
    kept = []
    for error in list(errors)[:MAX_FIELDS]:
        ctx = {
            str(k): v
            for k, v in (error.get("ctx") or {}).items()
            if isinstance(v, str | int | float | bool)
        }
        kept.append(
            {
                "type": str(error.get("type", "")),
                "loc": [str(p) for p in error.get("loc", ())],
                "msg": str(error.get("msg", "")),
                "ctx": ctx,
            }
        )
    return kept


def _zh(error: Mapping[str, Any]) -> str:
    template = ZH_MESSAGES.get(error["type"])
    if template is not None:
        try:
            return template.format(**error["ctx"])
        except (KeyError, IndexError, ValueError):
            pass
    return f"{ZH_OTHER}（{error['msg']}）"


def describe(errors: Sequence[Mapping[str, Any]], lang: Lang) -> str:
    """`field: message` per error (the body's own `body` prefix dropped), joined."""
    parts = []
    for error in errors:
        where = ".".join(p for p in error["loc"] if p != "body")
        if lang == "zh":
            parts.append(f"{where}：{_zh(error)}" if where else _zh(error))
        else:
            parts.append(f"{where}: {error['msg']}" if where else error["msg"])
    return ("；" if lang == "zh" else "; ").join(parts)
