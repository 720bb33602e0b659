"""GeoReport v2 over the case workflow: the catalogue as services, a service request filed
through the one intake, cases answered as requests.

Choices (README, "Open311"):
- services are the catalogue's subcategories (service_code = subcategory code, group = the
  category's name), `metadata` false (no attributes), `type` realtime;
- a POST needs lat/long (WGS-84): cases are placed in a micro-grid by their point;
- the case's description is the request's description (or the service's name when empty)
  with notes for the command centre: address_string, media_url (kept, never fetched) and
  the phone for 回访. email, first_name and last_name are not kept: the command centre calls
  back by phone, the app knows its users by account_id. In the case text the phone is masked
  for everyone outside the command centre and its clear reads are logged (`core.privacy`);
- client_id (intake's idempotency key) is a digest of the request's fields and its UTC day:
  an app's retry of the same POST that day gets the same case, as Open311 has no key of its
  own; the reporter is the app (by name, so a key rotation keeps it) and the app's account
  or device;
- GET lists only the cases filed through Open311 (any app's): the spec's list is public, and
  reports of grid workers and residents (disputes, special groups, security clues) are not
  for publication. Descriptions and addresses are masked (`core.privacy`), the contact note
  left out;
- closed, rejected and merged cases are `closed`; everything else (a resolved case waits for
  the grid worker's check and may be redone) is `open`.
"""

from __future__ import annotations

import hashlib
import json
import secrets
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

from sqlalchemy import select
from sqlmodel import Session, col

from channels.open311.models import Open311Key, Open311Request
from core import privacy
from core.errors import (
    GridgovError,
    Open311DateRange,
    Open311InvalidDate,
    Open311InvalidField,
    Open311InvalidStatus,
    Open311LocationRequired,
    Open311RepeatedParameter,
    Open311RequestNotFound,
    Open311ServiceRequired,
    Open311TokenNotFound,
    Open311UnknownParameter,
    Open311UnknownService,
)
from core.text import strip_controls
from dispatch.models import Case, CaseHistory, CaseStatus, Channel
from dispatch.names import STATUS_LABELS, CaseNames, case_names, name_cache
from dispatch.workflow import Action
from events import service as events_service
from events.schemas import ReportIn
from events.service import IntakeContext, Reporter
from grid import service as grid_service
from taxonomy.catalogue import Catalogue, Subcategory, TimeUnit

SPECIFICATION = "http://wiki.open311.org/GeoReport_v2"
CLOSED_STATUSES = frozenset({CaseStatus.CLOSED, CaseStatus.REJECTED, CaseStatus.MERGED})
MAX_SPAN = timedelta(days=90)  # the spec's window: default and longest range
MAX_RESULTS = 1000  # the spec's default volume; also the most ids one query may name
CONTACT_LABEL = "回访电话："
# Spark convention: these names hold lists of values (a service_code list, a status list).
_LIST_PARAMS = frozenset({"service_code", "status"})
_COMMON = ("jurisdiction_id", "api_key")
_QUERY_PARAMS = (*_COMMON, "service_request_id", "service_code", "start_date", "end_date", "status")
_FORM_PARAMS = (
    *_COMMON,
    "service_code",
    "lat",
    "long",
    "address_string",
    "address_id",
    "email",
    "device_id",
    "account_id",
    "first_name",
    "last_name",
    "phone",
    "description",
    "media_url",
)
_UNIT_ZH = {
    TimeUnit.NATURAL_HOURS: "小时",
    TimeUnit.WORKING_HOURS: "工作小时",
    TimeUnit.WORKING_DAYS: "个工作日",
}


class Refused(Exception):
    """Everything wrong with one GeoReport call, answered together as the spec's error list."""

    def __init__(self, errors: Sequence[GridgovError]) -> None:
        super().__init__(", ".join(e.code for e in errors))
        self.errors = list(errors)


def georeport_status(status: str) -> str:
    return "closed" if status in CLOSED_STATUSES else "open"


def w3c(moment: datetime | None, tz: ZoneInfo) -> str | None:
    """A W3C datetime in local time with its offset (2026-11-24T09:00:00+08:00)."""
    return None if moment is None else moment.astimezone(tz).isoformat(timespec="seconds")


def _limit_text(sub: Subcategory) -> str:
    return f"{sub.time_limit.value}{_UNIT_ZH[sub.time_limit.unit]}"


# --- services -------------------------------------------------------------------------------


def services(catalogue: Catalogue, departments: Mapping[str, str]) -> list[dict[str, object]]:
    """Every subcategory as a GeoReport service, in catalogue order."""
    out: list[dict[str, object]] = []
    for category, sub in catalogue.iter_subcategories():
        department = departments.get(sub.department_code, sub.department_code)
        out.append(
            {
                "service_code": sub.code,
                "service_name": sub.name,
                "description": (
                    f"{category.name} · {sub.name}：由{department}处置，"
                    f"派遣后时限{_limit_text(sub)}"
                ),
                "metadata": False,
                "type": "realtime",
                "keywords": ", ".join(sub.keywords),
                "group": category.name,
            }
        )
    return out


def service_definition(catalogue: Catalogue, service_code: str) -> dict[str, object]:
    """A service's definition: no attributes (every service has `metadata` false)."""
    if catalogue.subcategory(service_code) is None:
        raise Open311UnknownService(service_code=service_code[:64])
    return {"service_code": service_code, "attributes": []}


def department_names(session: Session, catalogue: Catalogue) -> dict[str, str]:
    codes = {sub.department_code for _, sub in catalogue.iter_subcategories()}
    return name_cache(session).lookup(session, codes, set())[0]


# --- parameters -----------------------------------------------------------------------------


def check_parameters(items: Sequence[tuple[str, str]], extra: Sequence[str]) -> None:
    """Refuse parameters a method without filters does not take (it takes `_COMMON`)."""
    _single(items, (*_COMMON, *extra))


def api_key_of(items: Sequence[tuple[str, str]]) -> str | None:
    """The POST's api_key (checked before anything else: a wrong key is 403 whatever the rest)."""
    keys = [value for name, value in items if name == "api_key"]
    if len(keys) > 1:
        raise Refused([Open311RepeatedParameter(name="api_key")])
    return keys[0] if keys else None


def _single(items: Sequence[tuple[str, str]], accepted: Sequence[str]) -> dict[str, str]:
    """Parameters by name, refusing unknown and repeated ones (lists are comma-separated, and
    `service_code` and `status` may also repeat). `attribute[…]` is ignored: no service has
    attributes. Empty values count as absent (the spec's "optional" rule)."""
    errors: list[GridgovError] = []
    values: dict[str, str] = {}
    for name, value in items:
        if name.startswith("attribute["):
            continue
        if name not in accepted:
            errors.append(Open311UnknownParameter(name=name[:64], accepted=", ".join(accepted)))
            continue
        if name in values and name not in _LIST_PARAMS:
            errors.append(Open311RepeatedParameter(name=name))
            continue
        if value.strip() == "":
            continue
        values[name] = f"{values[name]},{value}" if name in values else value
    if errors:
        raise Refused(errors)
    return values


@dataclass(frozen=True)
class RequestForm:
    """A POST's fields once checked; the api_key is checked apart (403 comes first)."""

    service_code: str
    lat: float
    long: float
    description: str | None
    address_string: str | None
    media_url: str | None
    phone: str | None
    device_id: str | None
    account_id: str | None


def _prose(values: Mapping[str, str], name: str, limit: int, *, lines: bool = False) -> str | None:
    """Text with control characters dropped and spaces collapsed; line breaks kept if `lines`
    (a description may have them, the spec says)."""
    raw = values.get(name)
    if raw is None:
        return None
    kept = strip_controls(raw).replace("\r\n", "\n").replace("\r", "\n")
    parts = kept.split("\n") if lines else [kept]
    text = "\n".join(p for p in (" ".join(part.split()) for part in parts) if p)
    if len(text) > limit:
        raise Open311InvalidField(
            name=name, rule_zh=f"最长 {limit} 个字符", rule_en=f"at most {limit} characters"
        )
    return text or None


def _identifier(values: Mapping[str, str], name: str) -> str | None:
    raw = values.get(name)
    if raw is None:
        return None
    if len(raw) > 64 or raw != raw.strip() or strip_controls(raw) != raw or "\t" in raw:
        raise Open311InvalidField(
            name=name,
            rule_zh="最长 64 个字符，不含控制字符或首尾空白",
            rule_en="at most 64 characters, no control characters or surrounding spaces",
        )
    return raw


def _media_url(values: Mapping[str, str]) -> str | None:
    raw = values.get("media_url")
    if raw is None:
        return None
    url = raw.strip()
    if (
        len(url) > 2000
        or not url.lower().startswith(("http://", "https://"))
        or any(ch.isspace() for ch in url)
        or strip_controls(url) != url
    ):
        raise Open311InvalidField(
            name="media_url",
            rule_zh="须为 http:// 或 https:// 地址，最长 2000 个字符",
            rule_en="an http:// or https:// URL of at most 2000 characters",
        )
    return url


def _phone(values: Mapping[str, str]) -> str | None:
    """A mainland mobile or landline number, as `core.privacy` recognises (and masks) it."""
    raw = values.get("phone")
    if raw is None:
        return None
    phone = raw.strip()
    if len(phone) > 32 or privacy.find_pii(phone) != {privacy.PiiKind.PHONE}:
        raise Open311InvalidField(
            name="phone",
            rule_zh="须为中国大陆手机或固定电话号码",
            rule_en="a mainland China mobile or landline number",
        )
    return phone


def parse_request_form(items: Sequence[tuple[str, str]], catalogue: Catalogue) -> RequestForm:
    """The checked form; every defect is reported at once (`Refused`)."""
    values = _single(items, _FORM_PARAMS)
    errors: list[GridgovError] = []
    service_code = values.get("service_code")
    if service_code is None:
        errors.append(Open311ServiceRequired())
    elif catalogue.subcategory(service_code) is None:
        errors.append(Open311UnknownService(service_code=service_code[:64]))
    lat = lng = 0.0
    if "lat" not in values or "long" not in values:
        errors.append(Open311LocationRequired())
    else:
        try:
            point = grid_service.check_point(values["lat"], values["long"], "wgs84")
            lat, lng = point.lat, point.lng
        except GridgovError as exc:
            errors.append(exc)
    checked: dict[str, str | None] = {}
    checks: tuple[tuple[str, Callable[[], str | None]], ...] = (
        ("description", lambda: _prose(values, "description", 4000, lines=True)),
        ("address_string", lambda: _prose(values, "address_string", 500)),
        ("media_url", lambda: _media_url(values)),
        ("phone", lambda: _phone(values)),
        ("device_id", lambda: _identifier(values, "device_id")),
        ("account_id", lambda: _identifier(values, "account_id")),
    )
    for name, check in checks:
        try:
            checked[name] = check()
        except GridgovError as exc:
            errors.append(exc)
    if errors:
        raise Refused(errors)
    assert service_code is not None
    return RequestForm(
        service_code=service_code,
        lat=lat,
        long=lng,
        description=checked["description"],
        address_string=checked["address_string"],
        media_url=checked["media_url"],
        phone=checked["phone"],
        device_id=checked["device_id"],
        account_id=checked["account_id"],
    )


def _w3c_param(values: Mapping[str, str], name: str) -> datetime | None:
    raw = values.get(name)
    if raw is None:
        return None
    text = raw.strip()
    try:
        moment = datetime.fromisoformat(text[:-1] + "+00:00" if text.endswith("Z") else text)
    except ValueError:
        raise Open311InvalidDate(name=name) from None
    if "T" not in text or moment.tzinfo is None or not 1900 <= moment.year <= 2200:
        raise Open311InvalidDate(name=name)
    return moment.astimezone(UTC)


@dataclass(frozen=True)
class RequestQuery:
    """GET requests' filters: either ids (then nothing else counts, as the spec says), or a
    requested_datetime window of at most 90 days with optional service codes and statuses."""

    ids: tuple[str, ...] | None
    service_codes: frozenset[str] | None
    statuses: frozenset[str] | None
    start: datetime
    end: datetime


def _comma_list(raw: str) -> list[str]:
    return [part.strip() for part in raw.split(",") if part.strip()]


def parse_query(items: Sequence[tuple[str, str]], *, now: datetime) -> RequestQuery:
    """The filters of GET requests; without dates the window is the last 90 days, with one
    date the 90 days from (or up to) it."""
    values = _single(items, _QUERY_PARAMS)
    if "service_request_id" in values:
        ids = tuple(dict.fromkeys(_comma_list(values["service_request_id"])))
        if len(ids) > MAX_RESULTS:
            raise Refused(
                [
                    Open311InvalidField(
                        name="service_request_id",
                        rule_zh=f"最多 {MAX_RESULTS} 个编号",
                        rule_en=f"at most {MAX_RESULTS} ids",
                    )
                ]
            )
        return RequestQuery(ids=ids, service_codes=None, statuses=None, start=now, end=now)
    errors: list[GridgovError] = []
    bounds: dict[str, datetime | None] = {}
    for name in ("start_date", "end_date"):
        try:
            bounds[name] = _w3c_param(values, name)
        except GridgovError as exc:
            errors.append(exc)
    statuses: frozenset[str] | None = None
    if "status" in values:
        given = _comma_list(values["status"])
        wrong = [s for s in given if s not in ("open", "closed")]
        if wrong:
            errors.append(Open311InvalidStatus(value=",".join(wrong)[:64]))
        statuses = frozenset(given)
    if errors:
        raise Refused(errors)
    start, end = bounds["start_date"], bounds["end_date"]
    if start is None and end is None:
        end = now
    if start is None:
        assert end is not None
        start = end - MAX_SPAN
    if end is None:
        end = start + MAX_SPAN
    if start > end or end - start > MAX_SPAN:
        raise Refused([Open311DateRange(max_days=MAX_SPAN.days)])
    codes = values.get("service_code")
    return RequestQuery(
        ids=None,
        service_codes=None if codes is None else frozenset(_comma_list(codes)),
        statuses=statuses,
        start=start,
        end=end,
    )


# --- filing ---------------------------------------------------------------------------------


def report_text(form: RequestForm, service_name: str) -> str:
    """The case's description: the reporter's words (or the service's name), then notes for
    the command centre; the contact note is the last line (left out of public answers)."""
    lines = [form.description or service_name]
    if form.address_string:
        lines.append(f"地址：{form.address_string}")
    if form.media_url:
        lines.append(f"图片：{form.media_url}")
    if form.phone:
        lines.append(f"{CONTACT_LABEL}{form.phone}")
    return "\n".join(lines)


def public_text(description: str) -> str:
    """A case description as the public sees it: without the contact note, numbers masked."""
    kept = [line for line in description.split("\n") if not line.startswith(CONTACT_LABEL)]
    return privacy.mask_pii("\n".join(kept))


def reporter_for(key: Open311Key, form: RequestForm) -> Reporter:
    """The app by name, and its user's account (else the device) when the app names it."""
    identity = key.name
    if form.account_id is not None:
        identity += f":a:{form.account_id}"
    elif form.device_id is not None:
        identity += f":d:{form.device_id}"
    return Reporter(Channel.OPEN311, identity)


def client_id_for(form: RequestForm, *, now: datetime) -> str:
    """The same request from the same reporter on the same UTC day is one case (a retry)."""
    fields = {
        "day": now.astimezone(UTC).date().isoformat(),
        "service_code": form.service_code,
        "lat": form.lat,
        "long": form.long,
        "description": form.description,
        "address_string": form.address_string,
        "media_url": form.media_url,
        "phone": form.phone,
    }
    body = json.dumps(fields, sort_keys=True, ensure_ascii=False, separators=(",", ":"))
    return "o311-" + hashlib.sha256(body.encode("utf-8")).hexdigest()[:40]


@dataclass(frozen=True)
class Filed:
    case: Case
    request: Open311Request
    created: bool


def file_request(
    session: Session,
    *,
    key: Open311Key,
    form: RequestForm,
    now: datetime,
    ctx: IntakeContext,
) -> Filed:
    """File the report through the one intake; a retry finds its case and token again.
    Nothing is written when anything is refused."""
    sub = ctx.taxonomy.catalogue.subcategory(form.service_code)
    if sub is None:  # the catalogue changed since the form was read
        raise Open311UnknownService(service_code=form.service_code)
    report = ReportIn(
        client_id=client_id_for(form, now=now),
        lat=form.lat,
        lng=form.long,
        crs="wgs84",
        description=report_text(form, sub.name),
        subcategory_code=sub.code,
    )
    case, created = events_service.intake(
        session, report=report, reporter=reporter_for(key, form), now=now, ctx=ctx
    )
    row = session.execute(
        select(Open311Request).where(col(Open311Request.case_id) == case.id)
    ).scalar_one_or_none()
    if row is None:
        assert case.id is not None
        assert key.id is not None
        row = Open311Request(
            case_id=case.id,
            key_id=key.id,
            token=secrets.token_urlsafe(16),
            account_id=form.account_id,
            device_id=form.device_id,
            address_string=form.address_string,
            media_url=form.media_url,
            created_at=now,
        )
        session.add(row)
        session.flush()
    return Filed(case=case, request=row, created=created)


def service_notice(case: Case, names: CaseNames) -> str:
    """What will happen: the responsible department and its time limit, or why it ended."""
    status = case.status
    if status == CaseStatus.REPORTED:
        head = f"已收到，待指挥中心受理（案件编号 {case.case_no}）"
    elif status in CLOSED_STATUSES:
        return f"{STATUS_LABELS.get(status, status)}（案件编号 {case.case_no}）"
    else:
        head = f"{STATUS_LABELS.get(status, status)}（案件编号 {case.case_no}）"
    department = names.department_name(case.department_code) or case.department_code
    unit = _UNIT_ZH.get(TimeUnit(case.time_limit_unit), case.time_limit_unit)
    return f"{head}；由{department}处置，派遣后时限{case.time_limit_value}{unit}"


def post_answer(filed: Filed, names: CaseNames) -> list[dict[str, object]]:
    """POST's answer: the request id (the case number), its notice, the app's account id and
    the token (tokens/{token} resolves it)."""
    return [
        {
            "service_request_id": filed.case.case_no,
            "token": filed.request.token,
            "service_notice": service_notice(filed.case, names),
            "account_id": filed.request.account_id,
        }
    ]


# --- reading --------------------------------------------------------------------------------


def _rows(session: Session, *conditions: object, limit: int) -> list[tuple[Case, Open311Request]]:
    statement = (
        select(Case, Open311Request)
        .join(Open311Request, col(Open311Request.case_id) == col(Case.id))
        .where(*conditions)  # type: ignore[arg-type]
        .order_by(col(Case.reported_at).desc(), col(Case.id).desc())
        .limit(limit)
    )
    return [(case, request) for case, request in session.execute(statement).all()]


def find_requests(session: Session, query: RequestQuery) -> list[tuple[Case, Open311Request]]:
    """The Open311 cases the query names, newest first, at most `MAX_RESULTS`."""
    if query.ids is not None:
        if not query.ids:
            return []
        return _rows(session, col(Case.case_no).in_(query.ids), limit=MAX_RESULTS)
    conditions: list[object] = [
        col(Case.reported_at) >= query.start,
        col(Case.reported_at) <= query.end,
    ]
    if query.service_codes is not None:
        conditions.append(col(Case.subcategory_code).in_(sorted(query.service_codes)))
    if query.statuses is not None and query.statuses != {"open", "closed"}:
        closed = [str(s) for s in sorted(CLOSED_STATUSES)]
        if query.statuses == {"closed"}:
            conditions.append(col(Case.status).in_(closed))
        else:
            conditions.append(col(Case.status).not_in(closed))
    return _rows(session, *conditions, limit=MAX_RESULTS)


def find_request(session: Session, service_request_id: str) -> tuple[Case, Open311Request]:
    rows = _rows(session, col(Case.case_no) == service_request_id, limit=1)
    if not rows:
        raise Open311RequestNotFound(service_request_id=service_request_id[:64])
    return rows[0]


def resolve_token(session: Session, token: str) -> list[dict[str, object]]:
    found = session.execute(
        select(col(Case.case_no))
        .join(Open311Request, col(Open311Request.case_id) == col(Case.id))
        .where(col(Open311Request.token) == token)
    ).scalar_one_or_none()
    if found is None:
        raise Open311TokenNotFound(token=token[:64])
    return [{"service_request_id": found, "token": token}]


def _status_notes(session: Session, cases: Iterable[Case]) -> dict[int, str]:
    """Each case's status label; a rejection adds its reason (masked), a merge the case it
    lives on in."""
    cases = list(cases)
    rejected = [c.id for c in cases if c.status == CaseStatus.REJECTED]
    reasons: dict[int, str] = {}
    if rejected:
        rows = session.execute(
            select(col(CaseHistory.case_id), col(CaseHistory.reason))
            .where(
                col(CaseHistory.case_id).in_(rejected),
                col(CaseHistory.action) == Action.REJECT.value,
            )
            .order_by(col(CaseHistory.seq))
        ).all()
        reasons = {case_id: reason or "" for case_id, reason in rows}
    targets = {c.merged_into_id for c in cases if c.merged_into_id is not None}
    target_nos: dict[int, str] = {}
    if targets:
        found = session.execute(
            select(col(Case.id), col(Case.case_no)).where(col(Case.id).in_(targets))
        ).all()
        target_nos = {int(row[0]): str(row[1]) for row in found}
    notes: dict[int, str] = {}
    for case in cases:
        assert case.id is not None
        label = STATUS_LABELS.get(case.status, case.status)
        if case.status == CaseStatus.REJECTED and reasons.get(case.id):
            label += f"：{privacy.mask_pii(reasons[case.id])}"
        elif case.status == CaseStatus.MERGED and case.merged_into_id in target_nos:
            label = f"已并入 {target_nos[case.merged_into_id]}"
        notes[case.id] = label
    return notes


def _updated_at(case: Case) -> datetime:
    """The last change; for a closed case its closure (the spec's rule: a later 回访 is not
    a change of the request)."""
    if case.status == CaseStatus.CLOSED and case.closed_at is not None:
        return case.closed_at
    return case.updated_at


def _address(request: Open311Request, case: Case, names: CaseNames) -> str:
    """From the most specific to the most general: the app's address text (masked), then the
    micro-grid, village, town and district."""
    parts = [a.name for a in reversed(names.area_path(case.grid_code))]
    if request.address_string:
        parts.insert(0, privacy.mask_pii(request.address_string))
    return ", ".join(parts)


def request_answers(
    session: Session,
    rows: Sequence[tuple[Case, Open311Request]],
    *,
    catalogue: Catalogue,
    tz: ZoneInfo,
) -> list[dict[str, object]]:
    """Requests with the spec's fields in the spec's order; what a case lacks is null."""
    names = case_names(session, [case for case, _ in rows], catalogue=catalogue)
    notes = _status_notes(session, [case for case, _ in rows])
    out: list[dict[str, object]] = []
    for case, request in rows:
        assert case.id is not None
        out.append(
            {
                "service_request_id": case.case_no,
                "status": georeport_status(case.status),
                "status_notes": notes[case.id],
                "service_name": names.subcategory_name(case.subcategory_code),
                "service_code": case.subcategory_code,
                "description": public_text(case.description),
                "agency_responsible": names.department_name(case.department_code),
                "service_notice": service_notice(case, names),
                "requested_datetime": w3c(case.reported_at, tz),
                "updated_datetime": w3c(_updated_at(case), tz),
                "expected_datetime": w3c(case.due_at, tz),
                "address": _address(request, case, names),
                "address_id": case.grid_code,
                "zipcode": None,
                "lat": case.lat,
                "long": case.lng,
                "media_url": request.media_url,
            }
        )
    return out


def discovery(*, url: str, changeset: datetime | None, tz: ZoneInfo) -> dict[str, object]:
    """The Service Discovery document: one production GeoReport v2 endpoint, XML and JSON.
    The changeset moves with the catalogue (a new revision changes the services)."""
    stamp = w3c(changeset or datetime(1970, 1, 1, tzinfo=UTC), tz)
    return {
        "changeset": stamp,
        "contact": "请联系本区网格化服务管理指挥中心（gridgov 管理员）",
        "key_service": "api_key 由管理员签发：gridgov open311 keys add --name 应用名",
        "endpoints": [
            {
                "specification": SPECIFICATION,
                "url": url,
                "changeset": stamp,
                "type": "production",
                "formats": ["text/xml", "application/json"],
            }
        ],
    }
