"""Two dispatchers at once, and a grid change seen by a running process."""

from __future__ import annotations

import threading
from typing import Any

from sqlmodel import Session

from core.errors import GridgovError
from core.models import Role
from core.security import Actor
from dispatch import service as dispatch_service
from dispatch.workflow import Action
from grid import service as grid_service
from tests.conftest import Api, new_client_id

GRID = "440604012001001"


def test_simultaneous_dispatch_clicks_apply_once(api: Api, demo_points: Any) -> None:
    lng, lat = demo_points(GRID)
    case = api.post(
        f"gw{GRID}",
        "/v1/reports",
        {"client_id": new_client_id(), "lat": lat, "lng": lng, "description": "路灯不亮"},
    ).json()
    assert api.post("dispatcher", f"/v1/cases/{case['id']}/register", {}).status_code == 200
    runtime = api.client.app.state.runtime  # type: ignore[attr-defined]
    catalogue = runtime.taxonomy.get().catalogue
    barrier = threading.Barrier(2)
    outcomes: list[str] = []

    def click(username: str) -> None:
        actor = Actor(id=None, username=username, role=Role.DISPATCHER)
        barrier.wait()
        session = Session(api.engine)
        try:
            dispatch_service.act(
                session,
                case_id=case["id"],
                action=Action.DISPATCH,
                params=dispatch_service.ActionParams(),
                actor=actor,
                now=api.clock.now,
                calendars=runtime.calendars,
                policy=runtime.policy,
                catalogue=catalogue,
                grid_exists=lambda code: True,
            )
            session.commit()
            outcomes.append("ok")
        except GridgovError as exc:
            session.rollback()
            outcomes.append(exc.code)
        finally:
            session.close()

    threads = [threading.Thread(target=click, args=(n,)) for n in ("d1", "d2")]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    assert sorted(outcomes) == ["illegal_transition", "ok"]
    history = api.get("dispatcher", f"/v1/cases/{case['id']}").json()["history"]
    assert [h["action"] for h in history].count("dispatch") == 1


def test_running_process_sees_redrawn_grid(api: Api, demo_points: Any) -> None:
    """Grids change (a grid redrawn): every process's index follows the revision."""
    runtime = api.client.app.state.runtime  # type: ignore[attr-defined]
    before = runtime.grids.get().revision
    with Session(api.engine) as session:
        area = grid_service.area_path(session, GRID)[-1]
        grid_service.upsert_areas(
            session,
            [grid_service.AreaIn(code=area.code, name=area.name, geometry=area.geom)],
            now=api.clock.now,
        )
        session.commit()
    assert runtime.grids.get().revision == before + 1  # refresh interval is 0 in tests
