"""The per-process names of departments and areas: reloaded after the TTL or for a missing code."""

from __future__ import annotations

from sqlalchemy import update
from sqlalchemy.engine import Engine
from sqlmodel import Session

from dispatch.models import Department
from dispatch.names import NameCache


class Ticks:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def _rename(session: Session, code: str, name: str) -> None:
    session.execute(update(Department).where(Department.code == code).values(name=name))


def test_a_rename_shows_after_the_ttl_not_before(engine: Engine) -> None:
    ticks = Ticks()
    cache = NameCache(ttl=60.0, miss_reload=5.0, monotonic=ticks)
    with Session(engine) as session:
        before, _ = cache.lookup(session, {"CGJ"}, set())
        _rename(session, "CGJ", "城管局（新）")
        ticks.now += 59
        assert cache.lookup(session, {"CGJ"}, set())[0] == before
        ticks.now += 2
        assert cache.lookup(session, {"CGJ"}, set())[0] == {"CGJ": "城管局（新）"}
        session.rollback()


def test_a_missing_code_reloads_at_most_every_few_seconds(engine: Engine) -> None:
    ticks = Ticks()
    cache = NameCache(ttl=60.0, miss_reload=5.0, monotonic=ticks)
    loads = 0
    original = cache._load

    def counting(session: Session) -> None:
        nonlocal loads
        loads += 1
        original(session)

    cache._load = counting  # type: ignore[method-assign]
    with Session(engine) as session:
        cache.lookup(session, {"CGJ"}, {"440604"})
        assert loads == 1
        cache.lookup(session, {"NOPE"}, set())  # unknown: not again within 5 s
        assert loads == 1
        ticks.now += 5
        departments, areas = cache.lookup(session, {"NOPE", "CGJ"}, {"440604"})
        assert loads == 2
        assert set(departments) == {"CGJ"}
        assert areas["440604"].level == "district"
