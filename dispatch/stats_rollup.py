"""The 考核 rollup: the additive parts of every figure per local day (`stats_daily`) and per
month (`stats_monthly`), computed by the same queries as the live figures (dispatch/stats.py)
per day, department and grid and kept as the readers group them: per department and village,
per grid, per department (see `StatsDaily`). So a department's year is 12 rows and a day
holds 16 + 921 + ~1,000, not one row per day, department and grid (~3,300 a day on a million
cases a year, which made a period cutting months miss the 300 ms target).

`refresh` brings it up to date: the days not rolled yet up to yesterday, and every day of the
cases changed since the last refresh. A change can alter the figures of old days (a 回访 weeks
after closure is counted on its own day, but a reopen takes the case out of its closure day, a
改类 moves its earlier entries to the new department), so the days of a changed case are all the
days of its history and its closure. "Changed since" is read from the global history position
(`gseq`): writers take it under the audit head's lock, so a position is visible only once every
position before it is committed, and nothing committed is missed.

Each chunk of days (at most a calendar month) is rewritten in one transaction (delete, then
insert; the months it touches are summed again from the daily rows), so a reader sees a day
whole, before or after. One refresher at a time: it claims the state row with a lease, the
others skip.
"""

from __future__ import annotations

import secrets
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass
from datetime import date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import (
    CompoundSelect,
    Date,
    Select,
    Table,
    cast,
    delete,
    func,
    insert,
    literal,
    literal_column,
    or_,
    select,
    union_all,
    update,
)
from sqlalchemy.engine import Engine
from sqlmodel import Session, col

from core.db import session_scope, unbounded
from core.security import SYSTEM_ACTOR
from dispatch.changes import change
from dispatch.clock import CalendarProvider
from dispatch.models import AuditHead, Case, CaseHistory, StatsDaily, StatsMonthly, StatsRollup
from dispatch.policy import Policy
from dispatch.stats import (
    ALL_AREAS,
    ALL_DEPARTMENTS,
    COUNT_FIELDS,
    COUNTED_ACTIONS,
    VILLAGE_DIGITS,
    count_queries,
    day_start,
    department_of_history,
    no_jit,
)

DAILY: Table = StatsDaily.__table__  # type: ignore[attr-defined]
MONTHLY: Table = StatsMonthly.__table__  # type: ignore[attr-defined]
STATE: Table = StatsRollup.__table__  # type: ignore[attr-defined]
# Days computed by one INSERT … SELECT and written in one transaction, never across a month's
# end (each month is summed once). PostgreSQL joins the history rows to the whole case table
# (a hash join) whatever their number, so longer chunks cost little more than short ones.
CHUNK_DAYS = 31
# A refresher's claim; renewed with every chunk, so only a dead refresher's claim runs out.
LEASE = timedelta(minutes=10)

Clock = Callable[[], datetime]


@dataclass
class RefreshResult:
    """What one refresh did (printed by `gridgov stats refresh`)."""

    skipped: bool = False  # another refresher held the claim
    days: int = 0  # days recomputed
    rows: int = 0  # daily rows written
    first_day: date | None = None
    last_day: date | None = None
    rolled_through: date | None = None
    gseq: int = 0
    seconds: float = 0.0

    def as_json(self) -> dict[str, Any]:
        out = asdict(self)
        for name in ("first_day", "last_day", "rolled_through"):
            out[name] = None if out[name] is None else out[name].isoformat()
        return out


class LostClaim(RuntimeError):
    """Another refresher took over after this one's lease ran out."""


def refresh(
    engine: Engine,
    *,
    clock: Clock,
    tz: ZoneInfo,
    first: date | None = None,
    last: date | None = None,
    rebuild: bool = False,
) -> RefreshResult:
    """Bring the rollup up to date (see the module's docstring); also recompute the local days
    [first, last] (up to yesterday) when given, or every day with `rebuild`. Days after
    yesterday are never rolled: today is always computed live."""
    started = clock()
    token = secrets.token_hex(16)
    with session_scope(engine) as session:
        state = _claim(session, token, started)
        if state is None:
            return RefreshResult(skipped=True)
        head = session.execute(select(col(AuditHead.gseq)).where(col(AuditHead.id) == 1))
        target_gseq = int(head.scalar_one_or_none() or 0)
    try:
        yesterday = started.astimezone(tz).date() - timedelta(days=1)
        with session_scope(engine) as session:
            days = _days_due(
                session,
                state=state,
                target_gseq=target_gseq,
                yesterday=yesterday,
                tz=tz,
                explicit=(first, last),
                rebuild=rebuild,
            )
        result = RefreshResult(days=len(days), gseq=target_gseq)
        if days:
            result.first_day, result.last_day = days[0], days[-1]
        for chunk in chunks(days, tz):
            with session_scope(engine) as session:
                _renew(session, token, clock())
                # Background maintenance, not a request: a month of a million cases can take
                # longer than the statement timeout on a busy server (only stats_daily rows
                # are locked meanwhile; readers never wait on them).
                with unbounded(session.connection()):
                    result.rows += write_days(session, chunk, tz)
        through = max(state.rolled_through or yesterday, yesterday)
        with session_scope(engine) as session:
            done = session.execute(
                update(STATE)
                .where(STATE.c.id == 1, STATE.c.lease_token == token)
                .values(
                    rolled_through=through,
                    gseq=target_gseq,
                    refreshed_at=clock(),
                    lease_token=None,
                    leased_until=None,
                )
            )
            if done.rowcount != 1:  # type: ignore[attr-defined]
                raise LostClaim("the stats rollup was claimed by another refresher")
        result.rolled_through = through
        result.seconds = round((clock() - started).total_seconds(), 3)
        return result
    except BaseException:
        _release(engine, token)
        raise


def _claim(session: Session, token: str, now: datetime) -> StatsRollup | None:
    """Take the refresher's lease unless another holds a live one (a conditional UPDATE: two
    processes never both win)."""
    claimed = session.execute(
        update(STATE)
        .where(
            STATE.c.id == 1,
            or_(STATE.c.leased_until.is_(None), STATE.c.leased_until <= now),
        )
        .values(lease_token=token, leased_until=now + LEASE)
    )
    if claimed.rowcount != 1:  # type: ignore[attr-defined]
        return None
    row = session.execute(select(StatsRollup).where(col(StatsRollup.id) == 1)).scalar_one()
    return StatsRollup(rolled_through=row.rolled_through, gseq=row.gseq, id=1)


def _renew(session: Session, token: str, now: datetime) -> None:
    renewed = session.execute(
        update(STATE)
        .where(STATE.c.id == 1, STATE.c.lease_token == token)
        .values(leased_until=now + LEASE)
    )
    if renewed.rowcount != 1:  # type: ignore[attr-defined]
        raise LostClaim("the stats rollup was claimed by another refresher")


def _release(engine: Engine, token: str) -> None:
    """Best effort after a failure: the next tick may start at once instead of after the lease."""
    try:
        with session_scope(engine) as session:
            session.execute(
                update(STATE)
                .where(STATE.c.id == 1, STATE.c.lease_token == token)
                .values(lease_token=None, leased_until=None)
            )
    except Exception:  # the database is failing: the lease runs out by itself
        pass


def _days_due(
    session: Session,
    *,
    state: StatsRollup,
    target_gseq: int,
    yesterday: date,
    tz: ZoneInfo,
    explicit: tuple[date | None, date | None],
    rebuild: bool,
) -> list[date]:
    """The local days to recompute, in order."""
    through = state.rolled_through
    days: set[date] = set()
    if through is None or rebuild:
        earliest = earliest_day(session, tz)
        if earliest is not None:
            days.update(_span(earliest, yesterday))
    else:
        days.update(_span(through + timedelta(days=1), yesterday))
        if target_gseq > state.gseq:
            changed = changed_days(session, after=state.gseq, upto=target_gseq, tz=tz)
            days.update(d for d in changed if d <= through)
    first, last = explicit
    if first is not None or last is not None:
        lo = first or earliest_day(session, tz) or yesterday
        days.update(_span(lo, min(last or yesterday, yesterday)))
    return sorted(days)


def _span(first: date, last: date) -> Iterable[date]:
    return (first + timedelta(days=i) for i in range((last - first).days + 1))


def earliest_day(session: Session, tz: ZoneInfo) -> date | None:
    """The first local day any figure can count (one index probe per counted action, and the
    first closure)."""
    action, at = col(CaseHistory.action), col(CaseHistory.at)
    firsts: list[Any] = [
        select(func.min(at)).where(action == a).scalar_subquery() for a in COUNTED_ACTIONS
    ]
    firsts.append(select(func.min(col(Case.closed_at))).scalar_subquery())
    found = [t for t in session.execute(select(*firsts)).one() if t is not None]
    return min(found).astimezone(tz).date() if found else None


def changed_days(session: Session, *, after: int, upto: int, tz: ZoneInfo) -> set[date]:
    """Every local day holding a history row or the closure of a case that got a history row
    at a global position in (after, upto]."""
    gseq = col(CaseHistory.gseq)
    changed = select(col(CaseHistory.case_id)).where(gseq > after, gseq <= upto).distinct()
    instants = session.execute(
        select(col(CaseHistory.at)).where(col(CaseHistory.case_id).in_(changed)).distinct()
    ).scalars()
    closures = session.execute(
        select(col(Case.closed_at)).where(
            col(Case.id).in_(changed), col(Case.closed_at).is_not(None)
        )
    ).scalars()
    return {t.astimezone(tz).date() for t in (*instants, *closures) if t is not None}


def chunks(days: list[date], tz: ZoneInfo) -> Iterable[list[date]]:
    """Runs of consecutive days of one UTC offset within one calendar month, at most CHUNK_DAYS
    each; a day whose offset changes (daylight saving) is a chunk of its own."""
    run: list[date] = []
    for day in days:
        if run and (
            day != run[-1] + timedelta(days=1)
            or day.day == 1
            or len(run) >= CHUNK_DAYS
            or _offset(day, tz) is None
            or _offset(day, tz) != _offset(run[-1], tz)
        ):
            yield run
            run = []
        run.append(day)
        if _offset(day, tz) is None:
            yield run
            run = []
    if run:
        yield run


def _offset(day: date, tz: ZoneInfo) -> int | None:
    """The day's UTC offset in seconds, None when it changes during the day."""
    begins = day_start(day, tz).utcoffset()
    ends = day_start(day + timedelta(days=1), tz).utcoffset()
    if begins is None or begins != ends:
        return None
    return int(begins.total_seconds())


def _local_day(session: Session, instant: Any, offset: int) -> Any:
    """The local date of a UTC instant column, for an offset that holds over the chunk."""
    if session.get_bind().dialect.name == "postgresql":
        utc_wall = func.timezone(literal_column("'UTC'"), instant)
        shifted = utc_wall + literal_column(f"interval '{offset} seconds'")
        return cast(shifted, Date)
    return func.date(instant, f"{offset:+d} seconds", type_=Date)


def detail_query(session: Session, days: list[date], tz: ZoneInfo) -> Select[Any]:
    """The counts of consecutive local `days` (one chunk) by day, department and grid: the
    live figures' own queries (`count_queries`), added up inside the database."""
    first, last = days[0], days[-1]
    history_keys: list[Any] = [department_of_history(), col(Case.grid_code)]
    case_keys: list[Any] = [col(Case.department_code), col(Case.grid_code)]
    if len(days) > 1:
        offset = _offset(first, tz)
        assert offset is not None  # chunks() keeps offset changes to single days
        history_keys.append(_local_day(session, col(CaseHistory.at), offset))
        case_keys.append(_local_day(session, col(Case.closed_at), offset))
    parts = union_all(
        *count_queries(
            history_keys=history_keys,
            case_keys=case_keys,
            start=day_start(first, tz),
            end=day_start(last + timedelta(days=1), tz),
        )
    ).subquery("parts")
    keys = [parts.c.k0, parts.c.k1] + ([parts.c.k2] if len(days) > 1 else [])
    day = parts.c.k2 if len(days) > 1 else literal(first, Date)
    sums = [func.sum(parts.c[name]).label(name) for name in COUNT_FIELDS]
    return select(
        day.label("day"), parts.c.k0.label("department"), parts.c.k1.label("grid"), *sums
    ).group_by(*keys)


def projections(rows: Any, period: Any) -> CompoundSelect[Any]:
    """Rows keyed by (`period`, `department`, `grid`) as the rollup keeps them (see
    `StatsDaily`): per department and village, per grid over all departments (department
    ''), per department over all areas (area '')."""
    sums = [func.sum(rows.c[name]) for name in COUNT_FIELDS]
    village = func.substr(rows.c.grid, 1, VILLAGE_DIGITS)
    return union_all(
        select(period, rows.c.department, village, *sums).group_by(
            period, rows.c.department, village
        ),
        select(period, literal(ALL_DEPARTMENTS), rows.c.grid, *sums).group_by(period, rows.c.grid),
        select(period, rows.c.department, literal(ALL_AREAS), *sums).group_by(
            period, rows.c.department
        ),
    )


def write_days(session: Session, days: list[date], tz: ZoneInfo) -> int:
    """Replace the daily rows of `days` and the monthly rows of their months; the rows written.
    The detail (day, department, grid) is computed once and projected three ways."""
    no_jit(session)
    session.execute(delete(DAILY).where(DAILY.c.day.between(days[0], days[-1])))
    detail = detail_query(session, days, tz).cte("detail")
    columns = ["day", "department_code", "area_code", *COUNT_FIELDS]
    session.execute(insert(DAILY).from_select(columns, projections(detail, detail.c.day)))
    for month in sorted({d.replace(day=1) for d in days}):
        _sum_month(session, month)
    # (psycopg gives no row count for INSERT … SELECT: counted by the primary key's index.)
    written = select(func.count()).where(DAILY.c.day.between(days[0], days[-1]))
    return int(session.execute(written).scalar_one())


def _sum_month(session: Session, month: date) -> None:
    """The month's rows: its daily rows summed per key (they have the same projections)."""
    following = (month + timedelta(days=32)).replace(day=1)
    session.execute(delete(MONTHLY).where(MONTHLY.c.month == month))
    sums = [func.sum(DAILY.c[name]) for name in COUNT_FIELDS]
    keys = [DAILY.c.department_code, DAILY.c.area_code]
    summed = (
        select(literal(month, Date), *keys, *sums)
        .where(DAILY.c.day >= month, DAILY.c.day < following)
        .group_by(*keys)
    )
    columns = ["month", "department_code", "area_code", *COUNT_FIELDS]
    session.execute(insert(MONTHLY).from_select(columns, summed))


# The history entry a handling time worked out afterwards is recorded as (by the system).
BACKFILL_ACTION = "backfill_handling"
# Actions that fix which department has the case and since when (`dispatched_at`), and the
# result (`resolve`): what `effects.handling_seconds` read when the case was resolved.
_SPAN_ACTIONS = ("dispatch", "recategorize", "resolve")


@dataclass(frozen=True)
class HandlingSpan:
    """A case's last result, the dispatch it counted from and the department then."""

    dispatched_at: datetime
    resolved_at: datetime
    department_code: str


def backfill_handling(
    engine: Engine,
    *,
    calendars: CalendarProvider,
    policy: Policy,
    clock: Clock,
    batch: int = 500,
) -> int:
    """Give the resolved cases that carry no handling time (resolved before migration 0010) the
    one `resolve` would have written: working seconds in the department's calendar from the
    dispatch in force to the last result, both read from the case's history. The case's
    `handling_seconds` is audited, so each is recorded as a history entry by the system (the
    audit chain stays whole); a case whose history does not explain its result is left alone.
    Returns how many cases got one."""
    filled, after = 0, 0
    while True:
        with session_scope(engine) as session:
            cases = (
                session.execute(
                    select(Case)
                    .where(
                        col(Case.id) > after,
                        col(Case.resolved_at).is_not(None),
                        col(Case.handling_seconds).is_(None),
                    )
                    .order_by(col(Case.id))
                    .limit(batch)
                    .with_for_update()
                )
                .scalars()
                .all()
            )
            if not cases:
                return filled
            after = cases[-1].id or after
            spans = handling_spans(session, [c.id for c in cases if c.id is not None])
            now = clock()
            for case in cases:
                span = spans.get(case.id or 0)
                if span is None or span.resolved_at != case.resolved_at:
                    continue
                calendar = calendars.for_department(span.department_code)
                seconds = calendar.working_seconds_between(span.dispatched_at, span.resolved_at)
                case.handling_seconds = max(0.0, seconds)
                change(
                    session,
                    case,
                    policy=policy,
                    action=BACKFILL_ACTION,
                    from_status=str(case.status),
                    actor=SYSTEM_ACTOR,
                    now=now,
                    event_type=None,
                    data={
                        "handling_seconds": case.handling_seconds,
                        "dispatched_at": span.dispatched_at.isoformat(),
                        "department_code": span.department_code,
                    },
                )
                filled += 1
        if len(cases) < batch:
            return filled


def handling_spans(session: Session, case_ids: list[int]) -> dict[int, HandlingSpan]:
    """Per case, replaying its history as the workflow moved `dispatched_at`: set by every
    dispatch (派遣, 改派) and by a 改类 that moves a dispatched case to another department;
    a return, a failed check or a reopen leaves it. The span of the last `resolve`."""
    h = CaseHistory
    rows = session.execute(
        select(col(h.case_id), col(h.action), col(h.at), col(h.data))
        .where(col(h.case_id).in_(case_ids), col(h.action).in_(_SPAN_ACTIONS))
        .order_by(col(h.case_id), col(h.seq))
    ).tuples()
    spans: dict[int, HandlingSpan] = {}
    since: dict[int, tuple[datetime, str]] = {}
    for case_id, action, at, data in rows:
        department = (data or {}).get("department_code")
        if action == "dispatch" and department:
            since[case_id] = (at, department)
        elif action == "recategorize" and case_id in since:
            if department and department != (data or {}).get("department_from"):
                since[case_id] = (at, department)
        elif action == "resolve" and case_id in since:
            dispatched_at, department = since[case_id]
            spans[case_id] = HandlingSpan(dispatched_at, at, department)
    return spans
