"""A resident's report as a conversation: location, description and photos in any order.

A location and a description make a case (photos are optional); what is missing is asked for in
plain Chinese. A draft left alone for GRIDGOV_WECHAT_DRAFT_EXPIRY_SECONDS is forgotten. After
filing, the draft keeps its case: photos within GRIDGOV_WECHAT_PHOTO_WINDOW_SECONDS go to that
case, the next location or text starts a new report. Plain functions of the draft and `now`.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from enum import StrEnum

# Texts that are commands, not descriptions (compared after trimming spaces and punctuation).
PROGRESS_WORDS = frozenset({"进度", "查询", "查询进度", "查进度"})
CANCEL_WORDS = frozenset({"取消", "取消上报"})
HELP_WORDS = frozenset({"帮助", "help", "?", "？"})
_TRIM = " \t\r\n。.!！~～"


class Command(StrEnum):
    PROGRESS = "progress"
    CANCEL = "cancel"
    HELP = "help"


def command_of(text: str) -> Command | None:
    word = text.strip(_TRIM).lower()
    if word in PROGRESS_WORDS:
        return Command.PROGRESS
    if word in CANCEL_WORDS:
        return Command.CANCEL
    if word in HELP_WORDS:
        return Command.HELP
    return None


@dataclass(frozen=True)
class Draft:
    """What a resident has sent towards one report (lat/lng in GCJ-02, as WeChat gives them)."""

    draft_id: str
    updated_at: datetime
    lat: float | None = None
    lng: float | None = None
    label: str | None = None
    description: str | None = None
    photos: int = 0
    case_id: int | None = None
    case_no: str | None = None
    filed_at: datetime | None = None

    @property
    def has_location(self) -> bool:
        return self.lat is not None and self.lng is not None

    @property
    def filed(self) -> bool:
        return self.case_id is not None

    @property
    def empty(self) -> bool:
        return not self.has_location and not self.description and not self.photos


def open_draft(draft: Draft | None, *, now: datetime, expiry_seconds: int, new_id: str) -> Draft:
    """The draft a new part goes to: the stored one while unfinished and recent, else a new one
    (with `new_id`)."""
    if draft is None or draft.filed or now - draft.updated_at > timedelta(seconds=expiry_seconds):
        return Draft(draft_id=new_id, updated_at=now)
    return draft


def photo_goes_to_case(draft: Draft | None, *, now: datetime, window_seconds: int) -> bool:
    """A photo soon after a report was filed belongs to that case (a resident often sends the
    picture last); later, it starts a new report."""
    return (
        draft is not None
        and draft.filed
        and draft.filed_at is not None
        and now - draft.filed_at <= timedelta(seconds=window_seconds)
    )


def with_location(
    draft: Draft, *, lat: float, lng: float, label: str | None, now: datetime
) -> Draft:
    """A newer location replaces the older one (the resident corrects it)."""
    return replace(draft, lat=lat, lng=lng, label=label or None, updated_at=now)


def with_text(draft: Draft, text: str, *, now: datetime) -> Draft:
    """Descriptions sent in several messages are joined."""
    text = text.strip()
    joined = f"{draft.description}；{text}" if draft.description else text
    return replace(draft, description=joined, updated_at=now)


def with_photo(draft: Draft, *, now: datetime) -> Draft:
    return replace(draft, photos=draft.photos + 1, updated_at=now)


def without_location(draft: Draft, *, now: datetime) -> Draft:
    """The location was refused (outside the district): ask again, keep the rest."""
    return replace(draft, lat=None, lng=None, label=None, updated_at=now)


def filed(draft: Draft, *, case_id: int, case_no: str, now: datetime) -> Draft:
    return replace(draft, case_id=case_id, case_no=case_no, filed_at=now, updated_at=now)


class Missing(StrEnum):
    NOTHING = "nothing"  # complete: file it
    LOCATION = "location"
    DESCRIPTION = "description"
    BOTH = "both"


def missing(draft: Draft) -> Missing:
    if draft.has_location and draft.description:
        return Missing.NOTHING
    if draft.has_location:
        return Missing.DESCRIPTION
    if draft.description:
        return Missing.LOCATION
    return Missing.BOTH


# --- what the resident reads ------------------------------------------------------------------

HOW_TO = (
    "上报问题请发送：\n"
    "1. 位置：点击输入框旁的「+」→「位置」，选好问题所在地点后发送；\n"
    "2. 文字描述：用文字（或语音）说明发生了什么；\n"
    "3. 照片（可选）：拍下现场。\n"
    "三者顺序不限。回复「进度」查看您上报的问题，回复「取消」放弃正在填写的上报。"
)
WELCOME = "感谢关注！您可以在这里随手上报身边的城市管理、环境卫生、安全隐患等问题。\n" + HOW_TO
ASK = {
    Missing.LOCATION: "请发送问题所在的位置（点击「+」→「位置」），即可完成上报。",
    Missing.DESCRIPTION: "请用文字描述发生了什么问题，即可完成上报。",
    Missing.BOTH: "请发送问题所在的位置（点击「+」→「位置」），并用文字描述发生了什么问题。",
}


def received_text(part: str, draft: Draft) -> str:
    """What was just understood, then what is still needed."""
    got = {
        "location": "已收到位置。",
        "text": "已收到您的描述。",
        "photo": f"已收到照片（共 {draft.photos} 张）。",
    }[part]
    return got + ASK[missing(draft)]


OUTSIDE = (
    "您发送的位置不在本区服务范围内，无法受理。请重新发送问题所在的位置"
    "（您的描述和照片已保留），或回复「取消」。"
)
CANCELLED = "已取消正在填写的上报。需要时可随时重新发送位置和描述。"
NOTHING_TO_CANCEL = "您当前没有正在填写的上报。"
NO_CASES = "您还没有通过本公众号上报过问题。\n" + HOW_TO
VOICE_UNRECOGNISED = "抱歉，未能识别您的语音，请用文字描述问题。"
UNSUPPORTED = "暂不支持这类消息。请发送位置、文字描述或照片来上报问题，回复「帮助」查看说明。"
APOLOGY = "抱歉，系统繁忙，请稍后再发送一次。"


def filed_text(case_no: str, photos: int) -> str:
    photo_note = f"（含照片 {photos} 张）" if photos else ""
    return (
        f"上报成功{photo_note}！案件编号：{case_no}。我们会尽快处理，"
        "回复「进度」可随时查看办理情况。"
    )


def photo_added_text(case_no: str) -> str:
    return f"照片已补充到案件 {case_no}。"


def daily_limit_text(limit: int) -> str:
    return (
        f"您今天已上报 {limit} 个问题，达到每日上限，请明天再报。"
        "您正在填写的内容已保留；紧急情况请拨打 12345。"
    )


def too_long_text(limit: int) -> str:
    return f"描述太长了（最多 {limit} 字），请精简后重新发送。"


def progress_text(lines: list[str]) -> str:
    return "您上报的问题：\n" + "\n".join(lines)
