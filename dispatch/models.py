"""Tables of the case workflow: departments, cases, their history and the calendar overrides."""

from __future__ import annotations

from datetime import date, datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Column,
    Date,
    ForeignKey,
    Index,
    Integer,
    PrimaryKeyConstraint,
    String,
    Text,
    UniqueConstraint,
    text,
)
from sqlmodel import Field, SQLModel

from core.db import GeometryType, UTCDateTime


class CaseStatus(StrEnum):
    REPORTED = "reported"  # 上报: waiting for the command centre
    REGISTERED = "registered"  # 立案
    DISPATCHED = "dispatched"  # 派遣: the unit's clock runs
    ACCEPTED = "accepted"  # 签收 / 处置中
    SUSPENDED = "suspended"  # 挂起: clock paused
    RESOLVED = "resolved"  # 反馈: the unit reports the result
    VERIFIED = "verified"  # 核查通过
    CLOSED = "closed"  # 结案
    REJECTED = "rejected"  # 不予立案 / 作废
    MERGED = "merged"  # 并单 into another case


# Cases still in the loop (not closed, rejected or merged), spelled out as constants: the SLA
# board's query uses this very predicate, the one of the partial index `ix_gg_case_open`
# (migration 0023), which a planner matches only when the query says the same; the triggers
# that keep `case_card` spell it out too.
OPEN_LOOP_STATUSES = tuple(
    sorted(
        s.value
        for s in CaseStatus
        if s not in (CaseStatus.CLOSED, CaseStatus.REJECTED, CaseStatus.MERGED)
    )
)
OPEN_LOOP_PREDICATE = "status IN ({})".format(", ".join(f"'{s}'" for s in OPEN_LOOP_STATUSES))


class Channel(StrEnum):
    """How a case came in (the contract's names)."""

    GRID_WORKER = "grid_worker"  # a grid worker's phone (JSON API)
    WECHAT = "wechat"  # a resident through the WeChat official account
    OPEN311 = "open311"  # a civic app through Open311 GeoReport v2
    DISPATCHER = "dispatcher"  # filed by a command centre


class WarningLevel(StrEnum):
    NONE = "none"
    YELLOW = "yellow"  # 黄牌: most of the limit used
    RED = "red"  # 红牌: past the limit


class Department(SQLModel, table=True):
    __tablename__ = "department"

    id: int | None = Field(default=None, primary_key=True)
    code: str = Field(max_length=16, unique=True, index=True)
    name: str = Field(max_length=100)
    short_name: str = Field(default="", max_length=32)
    # e.g. "08:30-12:00,14:00-17:30"; None → the service-wide office hours.
    office_hours: str | None = Field(default=None, max_length=100)
    active: bool = Field(default=True)


_VERSION = Column("version", Integer, nullable=False)


class Case(SQLModel, table=True):
    __tablename__ = "gg_case"
    __table_args__ = (
        Index("ix_gg_case_status_id", "status", "id"),
        Index("ix_gg_case_location", "location", postgresql_using="gist"),
        Index("ix_gg_case_closed_at", "closed_at"),
        # 并单 candidates at intake: one category, a latitude band, then longitude (duplicates).
        Index("ix_gg_case_category_lat_lng", "category_code", "lat", "lng"),
        # Heat (热力) and the early-warning scans: cases by report time, of one category or all.
        Index("ix_gg_case_reported_at", "reported_at"),
        Index("ix_gg_case_category_reported_at", "category_code", "reported_at"),
        # The console: a unit's queue by deadline.
        Index("ix_gg_case_department_due", "department_code", "due_at"),
        # The SLA board and the map's colours: open cases by place and unit, read from the
        # index alone, joined to their cards (`case_card`) by id. No index names
        # `warning_level` (see CaseCard).
        Index(
            "ix_gg_case_open",
            "grid_code",
            "department_code",
            "due_at",
            "id",
            postgresql_where=text(OPEN_LOOP_PREDICATE),
            sqlite_where=text(OPEN_LOOP_PREDICATE),
        ),
    )
    # Optimistic lock: an UPDATE that finds another version fails (two dispatchers at once).
    __mapper_args__ = {"version_id_col": _VERSION}  # noqa: RUF012

    id: int | None = Field(default=None, primary_key=True)
    case_no: str = Field(max_length=32, unique=True, index=True)
    status: str = Field(max_length=16)
    # Set at intake. Before 0007 this column was `source` (`command_centre` for `dispatcher`).
    channel: str = Field(max_length=16, index=True)
    # The account that filed the report (None: a resident or civic app without one).
    reporter_id: int | None = Field(
        default=None, sa_column=Column(ForeignKey("app_user.id"), nullable=True, index=True)
    )
    description: str = Field(sa_column=Column(Text, nullable=False))
    lat: float
    lng: float
    location: Any = Field(sa_column=Column("location", GeometryType("POINT"), nullable=False))
    grid_code: str = Field(
        sa_column=Column(String(15), ForeignKey("area.code"), nullable=False, index=True)
    )
    grid_rule: str = Field(max_length=16)
    category_code: str = Field(max_length=2)
    subcategory_code: str = Field(max_length=8)
    classification_score: float | None = None
    # The classifier was not sure (its best category below its threshold or close to the
    # second): the command centre looks first. None: given by the reporter, or before 0021.
    classification_uncertain: bool | None = None
    # The item (条) the case was registered as, and the catalogue revision it was routed by (0:
    # the packaged one): an import since does not change an open case's ladder or limits.
    item_code: str | None = Field(default=None, max_length=8)
    catalogue_revision: int = Field(
        default=0, sa_column=Column(Integer, nullable=False, server_default=text("0"))
    )
    # The item's stage limits in working hours (None: the service's settings).
    accept_hours: float | None = None
    verify_hours: float | None = None
    department_code: str = Field(
        sa_column=Column(String(16), ForeignKey("department.code"), nullable=False, index=True)
    )
    urgency: str = Field(max_length=16)
    time_limit_value: int
    time_limit_unit: str = Field(max_length=16)
    merged_into_id: int | None = Field(
        default=None, sa_column=Column(ForeignKey("gg_case.id"), nullable=True)
    )
    warning_level: str = Field(default=WarningLevel.NONE, max_length=8)
    escalation_level: int = Field(default=0)
    extension_count: int = Field(default=0)
    # 延期: hours a department asked for, waiting for the command centre (None: no request).
    extension_request_hours: int | None = Field(default=None)
    # Working seconds added to the deadline by approved requests (`approve_extension`).
    extension_seconds: float = Field(default=0.0)
    # 回访 after closure: the resident's satisfaction, when, and until when `dissatisfied`
    # allows a reopen.
    visit_satisfaction: str | None = Field(default=None, max_length=24)
    visited_at: datetime | None = Field(default=None, sa_column=Column(UTCDateTime()))
    reopen_until: datetime | None = Field(default=None, sa_column=Column(UTCDateTime()))
    # The running stage's limit (签收 while dispatched, 核查 while resolved; dispatch.stages).
    stage_warn_at: datetime | None = Field(default=None, sa_column=Column(UTCDateTime()))
    stage_due_at: datetime | None = Field(default=None, sa_column=Column(UTCDateTime()))
    stage_warning: str = Field(default=WarningLevel.NONE, max_length=8)
    return_count: int = Field(default=0)
    redo_count: int = Field(default=0)
    # Clock time (in the limit's kind of time) spent suspended (挂起): it does not count.
    paused_seconds: float = Field(default=0.0)
    suspended_at: datetime | None = Field(default=None, sa_column=Column(UTCDateTime()))
    status_before_suspend: str | None = Field(default=None, max_length=16)
    clock_started_at: datetime = Field(sa_column=Column(UTCDateTime(), nullable=False))
    warn_at: datetime | None = Field(default=None, sa_column=Column(UTCDateTime()))
    due_at: datetime | None = Field(default=None, sa_column=Column(UTCDateTime()))
    next_check_at: datetime | None = Field(default=None, sa_column=Column(UTCDateTime()))
    occurred_at: datetime | None = Field(default=None, sa_column=Column(UTCDateTime()))
    reported_at: datetime = Field(sa_column=Column(UTCDateTime(), nullable=False))
    registered_at: datetime | None = Field(default=None, sa_column=Column(UTCDateTime()))
    dispatched_at: datetime | None = Field(default=None, sa_column=Column(UTCDateTime()))
    accepted_at: datetime | None = Field(default=None, sa_column=Column(UTCDateTime()))
    resolved_at: datetime | None = Field(default=None, sa_column=Column(UTCDateTime()))
    verified_at: datetime | None = Field(default=None, sa_column=Column(UTCDateTime()))
    closed_at: datetime | None = Field(default=None, sa_column=Column(UTCDateTime()))
    # Working seconds from dispatch to the (last) result, set by `resolve` (statistics).
    handling_seconds: float | None = Field(default=None)
    updated_at: datetime = Field(sa_column=Column(UTCDateTime(), nullable=False))
    history_seq: int = Field(default=0)
    history_head: str = Field(default="", max_length=64)
    version: int = Field(default=1, sa_column=_VERSION)


class CaseDue(SQLModel, table=True):
    """The sweep's queue: each case with a next SLA instant, by that instant. Kept by database
    triggers from `gg_case.next_check_at` (migration 0013), never written by the application:
    the sweep claims due cases here, so `gg_case` has no index on the instant and a swept case
    row is updated in place (see the migration)."""

    __tablename__ = "case_due"

    case_id: int = Field(
        sa_column=Column(ForeignKey("gg_case.id", ondelete="CASCADE"), primary_key=True)
    )
    next_check_at: datetime = Field(sa_column=Column(UTCDateTime(), nullable=False, index=True))


class CaseCard(SQLModel, table=True):
    """The yellow and red cards of the cases in the loop: one row per case with an open-loop
    status and a `warning_level` other than `none`, with that level, the status and the
    deadline. Kept by database triggers (migration 0023), never written by the application, so
    that no index of `gg_case` names `warning_level`: the sweep changes it on most cases it
    touches, and a row whose indexed columns do not change is updated in place. The SLA board
    counts cards here and reads a level's cases by deadline from `ix_case_card_warning_due`."""

    __tablename__ = "case_card"
    __table_args__ = (Index("ix_case_card_warning_due", "warning_level", "due_at"),)

    case_id: int = Field(
        sa_column=Column(ForeignKey("gg_case.id", ondelete="CASCADE"), primary_key=True)
    )
    warning_level: str = Field(sa_column=Column(String(8), nullable=False))
    status: str = Field(sa_column=Column(String(16), nullable=False))
    due_at: datetime | None = Field(default=None, sa_column=Column(UTCDateTime(), nullable=True))


class DuplicateCandidate(SQLModel, table=True):
    """并单 candidate: an open case of the same category near a new case when it came in
    (found once at intake, nearest first; see dispatch.duplicates)."""

    __tablename__ = "duplicate_candidate"

    case_id: int = Field(
        sa_column=Column(ForeignKey("gg_case.id", ondelete="CASCADE"), primary_key=True)
    )
    candidate_case_id: int = Field(
        sa_column=Column(ForeignKey("gg_case.id", ondelete="CASCADE"), primary_key=True, index=True)
    )
    distance_m: float
    found_at: datetime = Field(sa_column=Column(UTCDateTime(), nullable=False))


class CaseHistory(SQLModel, table=True):
    """One row per state change; rows of a case form an HMAC chain (tamper-evident)."""

    __tablename__ = "case_history"
    __table_args__ = (
        UniqueConstraint("case_id", "seq"),
        Index("ix_case_history_action_at", "action", "at"),
    )

    id: int | None = Field(default=None, primary_key=True)
    # Looked up by case through the unique (case_id, seq) constraint's index.
    case_id: int = Field(sa_column=Column(ForeignKey("gg_case.id"), nullable=False))
    seq: int
    action: str = Field(max_length=32)
    from_status: str | None = Field(default=None, max_length=16)
    to_status: str = Field(max_length=16)
    actor_id: int | None = Field(default=None)
    actor_role: str = Field(max_length=16)
    actor_name: str = Field(max_length=64)
    at: datetime = Field(sa_column=Column(UTCDateTime(), nullable=False))
    reason: str | None = Field(default=None, sa_column=Column(Text, nullable=True))
    data: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))
    prev_hash: str = Field(max_length=64)
    hash: str = Field(max_length=64)
    # Digest of the case's audited fields after this change (dispatch.audit.state_digest);
    # None on rows written before migration 0003.
    state_hash: str | None = Field(default=None, max_length=64)
    # The global chain: place in the whole log, link to the row before it (and that row's
    # case, so a removed case is named). None on rows from before 0003 (see dispatch/audit.py).
    gseq: int | None = Field(
        default=None, sa_column=Column(BigInteger, nullable=True, unique=True, index=True)
    )
    gprev_hash: str | None = Field(default=None, max_length=64)
    prev_case_id: int | None = Field(default=None)
    ghash: str | None = Field(default=None, max_length=64)


class AuditHead(SQLModel, table=True):
    """The one row (id 1) naming the last row of the global log; writers lock it to link."""

    __tablename__ = "audit_head"

    id: int = Field(sa_column=Column(Integer, primary_key=True, autoincrement=False))
    gseq: int = Field(sa_column=Column(BigInteger, nullable=False))
    hash: str = Field(max_length=64)
    case_id: int | None = Field(default=None)


class CalendarSource(StrEnum):
    """Where a row of `calendar_override` came from."""

    OVERRIDE = "override"  # `gridgov calendar set`: a local decision, wins over everything
    OFFICIAL = "official"  # `gridgov calendar import`: a date named by a State Council notice


class CalendarOverride(SQLModel, table=True):
    """One date's status (holiday or 调休 working day) above the packaged calendar and the rule."""

    __tablename__ = "calendar_override"

    day: date = Field(sa_column=Column(Date, primary_key=True))
    is_workday: bool
    note: str = Field(default="", max_length=100)
    source: str = Field(
        default=CalendarSource.OVERRIDE.value,
        sa_column=Column(String(16), nullable=False, server_default=CalendarSource.OVERRIDE.value),
    )
    # For an imported date: the year of the notice that named it (a re-import replaces them).
    schedule_year: int | None = Field(default=None)


class CalendarYear(SQLModel, table=True):
    """A year whose published schedule was entered: its rule holidays and warnings stop."""

    __tablename__ = "calendar_year"

    year: int = Field(sa_column=Column(Integer, primary_key=True, autoincrement=False))
    note: str = Field(default="", max_length=200)
    published_at: datetime = Field(sa_column=Column(UTCDateTime(), nullable=False))


class StatsCounts(SQLModel):
    """The additive parts of the 考核 figures (dispatch/stats.py): rates and means are worked out
    from these sums when read, so rows of any days add up to the figures of their period."""

    received: int = Field(default=0)
    closed: int = Field(default=0)
    on_time: int = Field(default=0)
    returned: int = Field(default=0)
    extended: int = Field(default=0)
    redone: int = Field(default=0)
    visited: int = Field(default=0)
    satisfied: int = Field(default=0)
    # Working seconds of the closed cases that carry a handling time, and how many they are.
    handling_seconds: float = Field(default=0.0)
    handled: int = Field(default=0)


class StatsDaily(StatsCounts, table=True):
    """One local day's counts (the rollup that `refresh` rewrites), kept as the readers group
    them (migration 0012): per department and village (`area_code` 12 digits: a 镇街 or 村居
    command centre's scope is a prefix of it), per grid over all departments
    (`department_code` ''), and per department over all areas (`area_code` '')."""

    __tablename__ = "stats_daily"
    __table_args__ = (PrimaryKeyConstraint("day", "department_code", "area_code"),)

    day: date = Field(sa_column=Column(Date, nullable=False))
    department_code: str = Field(sa_column=Column(String(16), nullable=False))
    area_code: str = Field(sa_column=Column(String(15), nullable=False))


class StatsMonthly(StatsCounts, table=True):
    """The daily rows of a calendar month (`month`: its first day) summed, with the same three
    projections, so a long period reads a few thousand rows instead of one per day."""

    __tablename__ = "stats_monthly"
    __table_args__ = (PrimaryKeyConstraint("month", "department_code", "area_code"),)

    month: date = Field(sa_column=Column(Date, nullable=False))
    department_code: str = Field(sa_column=Column(String(16), nullable=False))
    area_code: str = Field(sa_column=Column(String(15), nullable=False))


class StatsRollup(SQLModel, table=True):
    """The one row (id 1) saying how far the rollup is complete: every local day up to
    `rolled_through` holds all history rows up to `gseq` of the global log; later days are
    computed live. A refresher claims the row (`lease_token`, `leased_until`) so that two
    processes never rewrite the same days at once."""

    __tablename__ = "stats_rollup"

    id: int = Field(sa_column=Column(Integer, primary_key=True, autoincrement=False))
    rolled_through: date | None = Field(default=None, sa_column=Column(Date, nullable=True))
    gseq: int = Field(default=0, sa_column=Column(BigInteger, nullable=False))
    refreshed_at: datetime | None = Field(default=None, sa_column=Column(UTCDateTime()))
    lease_token: str | None = Field(default=None, max_length=32)
    leased_until: datetime | None = Field(default=None, sa_column=Column(UTCDateTime()))
