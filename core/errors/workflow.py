"""Errors of the workflow (actions on cases), the working calendar and the audit log."""

from __future__ import annotations

from typing import Any

from core.errors.base import Conflict, Forbidden, ImportRefused, Lang, NotFound, ValidationFailed

# The workflow's actions (dispatch.workflow.Action) as Chinese messages name them.
ACTION_NAMES_ZH: dict[str, str] = {
    "register": "受理",
    "reject": "不予立案",
    "dispatch": "派遣",
    "accept": "签收",
    "return": "退单",
    "extend": "延期",
    "suspend": "挂起",
    "resume": "恢复",
    "resolve": "反馈",
    "verify": "核查",
    "close": "结案",
    "reopen": "重办",
    "merge": "并单",
    "supervise": "督办",
    "request_extension": "申请延期",
    "approve_extension": "批准延期",
    "deny_extension": "驳回延期",
    "visit": "回访",
    "recategorize": "改类",
}
# Who may act (dispatch.workflow.Party).
PARTY_NAMES: dict[str, tuple[str, str]] = {
    "command_centre": ("指挥中心（调度员）", "the command centre (dispatcher)"),
    "department": ("案件派遣到的部门", "the department the case is dispatched to"),
    "grid_worker": ("案件所在网格的网格员", "the grid worker of the case's grid"),
}


def _action(action: str, lang: Lang) -> str:
    return f"「{ACTION_NAMES_ZH.get(action, action)}」" if lang == "zh" else action


class _ActionError(ValidationFailed):
    """Base of the errors that name an action: its Chinese name in Chinese."""

    derived = frozenset({"action_name"})

    def localise(self, lang: Lang) -> dict[str, Any]:
        return {"action_name": _action(self.params["action"], lang)}


# --- the workflow ------------------------------------------------------------------------


class CaseNotFound(NotFound):
    """No case with this id or case number (or none the caller may see)."""

    code = "case_not_found"
    zh = "案件 {case} 不存在"
    en = "case {case} not found"
    example = {"case": "20250101000001"}


class NotPermitted(Forbidden):
    """The action is another party's (the command centre, the case's unit, its grid worker)."""

    code = "not_permitted"
    zh = "只有{party_name}可以对案件执行{action_name}"
    en = "only {party_name} may {action_name} a case"
    example = {"party": "command_centre", "action": "dispatch"}
    derived = frozenset({"party_name", "action_name"})

    def localise(self, lang: Lang) -> dict[str, Any]:
        zh, en = PARTY_NAMES.get(self.params["party"], (self.params["party"],) * 2)
        return {
            "party_name": zh if lang == "zh" else en,
            "action_name": _action(self.params["action"], lang),
        }


class BelowEscalationLevel(Forbidden):
    """督办 needs a command centre at the case's escalation level or above (村居 1, 镇街 2)."""

    code = "below_escalation_level"
    zh = "案件已升级至第 {level} 级，须由该级或更高级指挥中心{action_name}"
    en = (
        "the case escalated to level {level}: only a command centre at that level or above "
        "may {action_name}"
    )
    example = {"level": 2, "action": "supervise"}
    derived = frozenset({"action_name"})

    def localise(self, lang: Lang) -> dict[str, Any]:
        return {"action_name": _action(self.params["action"], lang)}


class IllegalTransition(Conflict):
    """The action is not allowed from the case's current status (or the merge target's)."""

    code = "illegal_transition"
    zh = "案件状态为「{status_label}」，不能执行{action_name}；可执行的状态：{allowed}"
    en = "cannot {action_name} a case that is {status}; allowed from: {allowed}"
    example = {
        "action": "close",
        "status": "dispatched",
        "status_label": "已派遣",
        "allowed": "verified",
    }
    derived = frozenset({"action_name"})

    def localise(self, lang: Lang) -> dict[str, Any]:
        return {"action_name": _action(self.params["action"], lang)}


class ReasonRequired(_ActionError):
    """The action (reject, return, suspend, reopen, a failed verify…) needs a `reason`."""

    code = "reason_required"
    zh = "{action_name}需要填写原因（reason）"
    en = "{action_name} needs a reason"
    example = {"action": "return"}


class NoteRequired(_ActionError):
    """`resolve` needs a `note` on the result."""

    code = "note_required"
    zh = "{action_name}需要填写处置结果说明（note）"
    en = "{action_name} needs a note on the result"
    example = {"action": "resolve"}


class PassedRequired(_ActionError):
    """`verify` needs `passed`: true (done) or false (重办)."""

    code = "passed_required"
    zh = "{action_name}需要 passed：true（已办好）或 false（重办）"
    en = "{action_name} needs passed: true (the work is done) or false (重办)"
    example = {"action": "verify"}


class ExtensionLimit(Conflict):
    """The case was extended as often as allowed."""

    code = "extension_limit"
    zh = "案件 {case_no} 已延期 {count} 次，不能再延期"
    en = "case {case_no} was already extended {count} times"
    example = {"case_no": "20250101000001", "count": 2}


class InvalidHours(ValidationFailed):
    """`request_extension` needs `hours`: a whole number of working hours within the bound."""

    code = "invalid_hours"
    zh = "申请延期需要 hours：1 至 {limit} 之间的整数（工作小时）"
    en = "request_extension needs hours: a whole number of working hours from 1 to {limit}"
    example = {"limit": 720}


class ExtensionPending(Conflict):
    """A department's extension request already waits for the command centre's answer."""

    code = "extension_pending"
    zh = "案件 {case_no} 已有待审批的延期申请（{hours} 小时）"
    en = "case {case_no} already has an extension request waiting ({hours} hours)"
    example = {"case_no": "20250101000001", "hours": 8}


class NoExtensionRequest(Conflict):
    """`approve_extension` / `deny_extension` on a case without a pending request."""

    code = "no_extension_request"
    zh = "案件 {case_no} 没有待审批的延期申请"
    en = "case {case_no} has no extension request waiting"
    example = {"case_no": "20250101000001"}


class SatisfactionRequired(ValidationFailed):
    """`visit` (回访) needs `satisfaction`: satisfied, basically_satisfied or dissatisfied."""

    code = "satisfaction_required"
    zh = (
        "回访需要 satisfaction：satisfied（满意）、basically_satisfied（基本满意）"
        "或 dissatisfied（不满意）"
    )
    en = "visit needs satisfaction: satisfied, basically_satisfied or dissatisfied"


class ReopenRefused(Conflict):
    """A closed case reopens only after a `dissatisfied` 回访, within the settable days."""

    code = "reopen_refused"
    zh = "已结案的案件仅在回访不满意后 {days} 天内可以重办"
    en = "a closed case reopens only within {days} days of a dissatisfied visit"
    example = {"days": 7}


class SubcategoryRequired(ValidationFailed):
    """`recategorize` (改类) needs `subcategory_code` (and may name its `category_code`)."""

    code = "subcategory_required"
    zh = "改类需要 subcategory_code（小类编码）"
    en = "recategorize needs subcategory_code"


class InvalidAmount(ValidationFailed):
    """`extend` needs a whole `amount` from 1 to ten times the case's limit."""

    code = "invalid_amount"
    zh = "延期需要 amount：1 至 {limit} 之间的整数（单位为案件时限的单位）"
    en = "extend needs amount: a whole number from 1 to {limit} of the case's time-limit unit"
    example = {"limit": 30}


class InvalidMerge(ValidationFailed):
    """`merge` needs `into_case_id`, another case than this one."""

    code = "invalid_merge"
    zh = "并单需要 into_case_id，且须为另一个案件"
    en = "merge needs into_case_id, a case other than this one"


# --- the calendar and the audit log ------------------------------------------------------


class InvalidCalendar(ImportRefused):
    """A calendar file or entry refused whole (dates, lengths, 调休 days, year, note)."""

    code = "invalid_calendar"
    zh = "日历被拒绝，未保存任何内容：{count} 个问题"
    en = "calendar refused, nothing stored: {count} problem{s}"
    example = {"problems": ["元旦: ends (2027-01-01) before it starts"]}


class InvalidRange(ValidationFailed):
    """A date range with `to` before `from`, too long, or outside the calendar's years."""

    code = "invalid_range"
    zh = "日期范围 {first} 至 {last} 无效：须 from ≤ to，最多 {max_days} 天，年份 {years}"
    en = "invalid range {first} to {last}: from ≤ to, at most {max_days} days, years {years}"
    example = {"first": "2027-02-01", "last": "2026-01-01", "max_days": 400, "years": "2000-2099"}


class AuditBroken(Conflict):
    """The audit head does not match the end of the log: run `gridgov audit verify`."""

    code = "audit_broken"
    zh = "审计日志头与日志末行不一致，请运行 gridgov audit verify"
    en = "the audit head does not match the end of the log; run `gridgov audit verify`"
