"""Personal data in free text: phone and ID-card numbers found, masked, and clear reads logged.

Masks follow DOMAIN.md: mobile `138****5678`, ID card `440604********1234`. Those outside the
command centre (grid workers, departments) get masked text; admins and dispatchers see it in
clear, and every answer that showed them something is logged in `pii_access_log`.

What counts (chosen to leave ordinary text alone, see `tests/app/test_privacy.py`):
- mobile: `1[3-9]` + 9 digits as a whole number, spaces or dashes allowed as 3-4-4, with an
  optional `+86`/`0086`/`86`/`(+86)` prefix (kept) → `138****5678`;
- landline: `0` + 2-3 digit area code (or `(0757)`), optional space/dash, a 7-8 digit local
  number starting 2-9 → area code kept, local number `****` + its last 4 (`0757-****6789`);
- ID card, 18 digits: area (first digit 1-9), a birth date 18xx/19xx/20xx with a real month and
  day, 3 digits and a digit or X check character (the checksum is not required: a mistyped ID
  is still personal) → first 6 + `********` + last 4; spaces between 6-8-4 groups allowed;
- ID card, 15 digits (first generation, invalid since 2013): only after a word that says so
  (身份证, 证件号, 公民身份号码, ID), because the district's 15-digit grid codes
  (440604011001001) have exactly that shape and are not personal → first 6 + `******` + last 3
  (the birth date hidden).
A number counts only as a whole: digits (or `digit.`) right before or after it mean it is part
of something longer (case numbers 20261123000042, amounts, order numbers) and it is left
alone. Full-width digits (typed in a Chinese IME) are read as digits. Text right after a mask
(`****`) does not start a number, so masking twice changes nothing.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from datetime import datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import Column, ForeignKey, Integer, insert
from sqlmodel import Field, Session, SQLModel

from core.db import UTCDateTime, session_scope
from core.security import Actor


class PiiKind(StrEnum):
    PHONE = "phone"
    ID_CARD = "id_card"


# Full-width digits, plus, minus, space and brackets read as ASCII (one character for one, so
# positions in the original text stay valid).
_FULL_WIDTH = str.maketrans(
    {
        **{0xFF10 + i: str(i) for i in range(10)},
        0xFF0B: "+",
        0xFF0D: "-",
        0x3000: " ",
        0xFF08: "(",
        0xFF09: ")",
    }
)

_NOT_AFTER = r"(?<![0-9])(?<![0-9]\.)(?<!\*\*\*\*)"  # not inside a longer number, not after a mask
_NOT_BEFORE = r"(?![0-9])(?!\.[0-9])"
_DATE8 = r"(?:18|19|20)[0-9]{2}(?:0[1-9]|1[0-2])(?:0[1-9]|[12][0-9]|3[01])"
_ID18 = rf"(?P<id18_head>[1-9][0-9]{{5}}) ?{_DATE8} ?(?P<id18_tail>[0-9]{{3}}[0-9Xx])"
_MOBILE = (
    rf"(?:{_NOT_AFTER}(?P<m_prefix>(?:\+ ?86|0086|86|\(\+?86\))[ -]?)|{_NOT_AFTER})"
    r"(?P<m_head>1[3-9][0-9])[ -]?[0-9]{4}[ -]?(?P<m_tail>[0-9]{4})"
)
_LANDLINE = (
    rf"{_NOT_AFTER}(?P<l_area>(?:\(0[0-9]{{2,3}}\)|0[0-9]{{2,3}})[ -]?)"
    r"[2-9][0-9]{2,3}[ -]?(?P<l_tail>[0-9]{4})"
)
_ID_WORDS = r"公民身份号码|身份证号码|身份证号|身份证|证件号码|证件号|\bID(?: ?(?:No\.?|number))?"
_ID15 = (
    rf"(?P<id15_ctx>(?:{_ID_WORDS})[^0-9\n]{{0,6}}?)"
    rf"{_NOT_AFTER}(?P<id15_head>[1-9][0-9]{{5}})[0-9]{{6}}(?P<id15_tail>[0-9]{{3}})"
)
_PATTERN = re.compile(
    # Only where a match can begin (a quarter faster on text full of digits).
    r"(?=[0-9+(公身证I])(?:"
    # The longest first: an 18-digit ID is never read as a phone inside it.
    rf"(?P<id18>{_NOT_AFTER}{_ID18}{_NOT_BEFORE})"
    rf"|(?P<mobile>{_MOBILE}{_NOT_BEFORE})"
    rf"|(?P<landline>{_LANDLINE}{_NOT_BEFORE})"
    rf"|(?P<id15>{_ID15}{_NOT_BEFORE}))"
)
_ANY_DIGIT = re.compile(r"[0-9\uff10-\uff19]")


def _replacement(m: re.Match[str], original: str) -> tuple[str, PiiKind]:
    """The masked form of one match and what it was; kept prefixes as the writer wrote them."""

    def kept(group: str) -> str:
        return original[m.start(group) : m.end(group)] if m.group(group) is not None else ""

    if m.group("id18") is not None:
        return f"{m['id18_head']}********{m['id18_tail'].upper()}", PiiKind.ID_CARD
    if m.group("mobile") is not None:
        return f"{kept('m_prefix')}{m['m_head']}****{m['m_tail']}", PiiKind.PHONE
    if m.group("landline") is not None:
        return f"{kept('l_area')}****{m['l_tail']}", PiiKind.PHONE
    return f"{kept('id15_ctx')}{m['id15_head']}******{m['id15_tail']}", PiiKind.ID_CARD


def _scan(text: str, *, mask: bool) -> tuple[str, frozenset[PiiKind]]:
    if not _ANY_DIGIT.search(text):
        return text, frozenset()
    folded = text.translate(_FULL_WIDTH)
    kinds: set[PiiKind] = set()
    parts: list[str] = []
    last = 0
    for m in _PATTERN.finditer(folded):
        masked, kind = _replacement(m, text)
        kinds.add(kind)
        if not mask:
            continue
        parts.append(text[last : m.start()])
        parts.append(masked)
        last = m.end()
    if not mask or not kinds:
        return text, frozenset(kinds)
    parts.append(text[last:])
    return "".join(parts), frozenset(kinds)


def mask_pii(text: str) -> str:
    """The text with every phone and ID-card number masked."""
    return _scan(text, mask=True)[0]


def find_pii(text: str) -> frozenset[PiiKind]:
    """Which kinds of personal data the text holds (what showing it in clear reveals)."""
    return _scan(text, mask=False)[1]


def mask_value(value: Any) -> Any:
    """`mask_pii` on every string inside JSON-like data (history `data`), keys left alone."""
    if isinstance(value, str):
        return mask_pii(value)
    if isinstance(value, dict):
        return {k: mask_value(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [mask_value(v) for v in value]
    return value


def find_pii_in(values: Iterable[Any]) -> frozenset[PiiKind]:
    """`find_pii` over strings, possibly nested in JSON-like data."""
    found: set[PiiKind] = set()
    stack = list(values)
    while stack:
        value = stack.pop()
        if isinstance(value, str):
            found |= find_pii(value)
        elif isinstance(value, dict):
            stack.extend(value.values())
        elif isinstance(value, list | tuple):
            stack.extend(value)
    return frozenset(found)


def sees_personal_data(viewer: Actor) -> bool:
    """Admins and the command centre (dispatchers) need the numbers; everyone else gets masks."""
    return viewer.is_command_centre


class PiiAccessLog(SQLModel, table=True):
    """One answer that showed a case's personal data in clear: who, in which role, what, when.

    No foreign key to the case: the record of a read outlives whatever happens to the case.
    """

    __tablename__ = "pii_access_log"

    id: int | None = Field(default=None, primary_key=True)
    at: datetime = Field(sa_column=Column(UTCDateTime(), nullable=False))
    user_id: int = Field(
        sa_column=Column(Integer, ForeignKey("app_user.id"), nullable=False, index=True)
    )
    username: str = Field(max_length=64)
    role: str = Field(max_length=16)
    case_id: int = Field(sa_column=Column(Integer, nullable=False, index=True))
    kinds: str = Field(max_length=32, description="comma-separated: id_card, phone")
    endpoint: str = Field(max_length=64)


_LOG = PiiAccessLog.__table__  # type: ignore[attr-defined]


def record_disclosures(
    session: Session,
    *,
    viewer: Actor,
    disclosed: Sequence[tuple[int, frozenset[PiiKind]]],
    endpoint: str,
    now: datetime,
) -> None:
    """Log the cases whose personal data an answer showed in clear: one INSERT, none if none.

    In the request's transaction, so an answer that cannot be logged is not given. A SQLite
    read-only request (GET) cannot safely turn into a writer (its WAL snapshot may be stale),
    so there the rows go in a short write transaction of their own, committed before the
    answer is sent.
    """
    rows = [
        {
            "at": now,
            "user_id": viewer.id,
            "username": viewer.username[:64],
            "role": str(viewer.role),
            "case_id": case_id,
            "kinds": ",".join(sorted(kinds)),
            "endpoint": endpoint[:64],
        }
        for case_id, kinds in disclosed
        if kinds
    ]
    if not rows or viewer.id is None:
        return
    statement = insert(_LOG).values(rows)
    connection = session.connection()
    if connection.dialect.name == "sqlite" and connection.get_execution_options().get(
        "gridgov_readonly"
    ):
        writer = connection.engine.execution_options(gridgov_readonly=False)
        with session_scope(writer) as own:
            own.connection().execute(statement)
        return
    connection.execute(statement)
