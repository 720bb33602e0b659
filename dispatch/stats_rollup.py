"""The 考核 rollup: the additive parts of every figure per local day, department and grid
(`stats_daily`) and per month (`stats_monthly`), computed by the same queries as the live
figures (dispatch/stats.py), so that reading a year is summing a few thousand rows.

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
from dispatch.models import AuditHead, Case, CaseHistory, StatsDaily, StatsMonthly, StatsRollup
from dispatch.stats import (
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


def daily_rows_query(session: Session, days: list[date], tz: ZoneInfo) -> Select[Any]:
    """The daily rows of consecutive local `days` (one chunk), by (day, department, grid):
    the live figures' own queries (`count_queries`), added up inside the database."""
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
    sums = [func.sum(parts.c[name]) for name in COUNT_FIELDS]
    return select(day, parts.c.k0, parts.c.k1, *sums).group_by(*keys)


def write_days(session: Session, days: list[date], tz: ZoneInfo) -> int:
    """Replace the daily rows of `days` and the monthly rows of their months; the rows written."""
    no_jit(session)
    session.execute(delete(DAILY).where(DAILY.c.day.between(days[0], days[-1])))
    columns = ["day", "department_code", "grid_code", *COUNT_FIELDS]
    session.execute(insert(DAILY).from_select(columns, daily_rows_query(session, days, tz)))
    for month in sorted({d.replace(day=1) for d in days}):
        _sum_month(session, month)
    # (psycopg gives no row count for INSERT … SELECT: counted by the primary key's index.)
    written = select(func.count()).where(DAILY.c.day.between(days[0], days[-1]))
    return int(session.execute(written).scalar_one())


def _sum_month(session: Session, month: date) -> None:
    """The month's two projections of its daily rows (see `StatsMonthly`)."""
    following = (month + timedelta(days=32)).replace(day=1)
    session.execute(delete(MONTHLY).where(MONTHLY.c.month == month))
    sums = [func.sum(DAILY.c[name]) for name in COUNT_FIELDS]
    in_month = [DAILY.c.day >= month, DAILY.c.day < following]
    village = func.substr(DAILY.c.grid_code, 1, VILLAGE_DIGITS)
    by_department = (
        select(literal(month, Date), DAILY.c.department_code, village, *sums)
        .where(*in_month)
        .group_by(DAILY.c.department_code, village)
    )
    by_grid = (
        select(literal(month, Date), literal(ALL_DEPARTMENTS), DAILY.c.grid_code, *sums)
        .where(*in_month)
        .group_by(DAILY.c.grid_code)
    )
    columns = ["month", "department_code", "area_code", *COUNT_FIELDS]
    for summed in (by_department, by_grid):
        session.execute(insert(MONTHLY).from_select(columns, summed))
