"""Errors of early warning (预警): warnings and their acknowledgement and closing."""

from __future__ import annotations

from core.errors.base import Conflict, NotFound

# A warning's status as Chinese messages name it.
WARNING_STATUS_ZH = {"open": "待处置", "acknowledged": "已确认", "closed": "已关闭"}


class WarningNotFound(NotFound):
    """No warning with this id (or none in the caller's area)."""

    code = "warning_not_found"
    zh = "预警 {warning} 不存在"
    en = "warning {warning} not found"
    example = {"warning": "42"}


class WarningClosed(Conflict):
    """A closed warning is not acknowledged or closed again; a cluster that comes back is new."""

    code = "warning_closed"
    zh = "预警 {warning} 已关闭，不能再确认或关闭"
    en = "warning {warning} is closed: it is not acknowledged or closed again"
    example = {"warning": "42"}
