"""What the notification tests share: filing cases, subscribing, delivering with the test clock."""

from __future__ import annotations

import random
from collections.abc import Callable
from typing import Any

from sqlmodel import select

from core.db import session_scope
from grid.coords import wgs84_to_gcj02
from notify import webhooks
from notify.delivery import Breaker, DeliveryPolicy, deliver_once, make_client
from notify.models import OutboxDelivery, OutboxEvent
from tests.conftest import Api, new_client_id

GRID = "440604011001001"  # 石湾镇街道, first village, first micro-grid
SECRET = "receiver-secret-0123456789"


def report(api: Api, point: Callable[[str], tuple[float, float]], grid: str = GRID) -> int:
    lng, lat = point(grid)
    g_lng, g_lat = wgs84_to_gcj02(lng, lat)
    body = {
        "client_id": new_client_id(),
        "lat": g_lat,
        "lng": g_lng,
        "crs": "gcj02",
        "description": "石湾镇街道某路口井盖丢失，很危险",
    }
    res = api.post(f"gw{grid}", "/v1/reports", body)
    assert res.status_code == 201, res.text
    return int(res.json()["id"])


def act(api: Api, who: str, case_id: int, action: str, body: Any = None) -> dict[str, Any]:
    res = api.post(who, f"/v1/cases/{case_id}/{action}", body or {})
    assert res.status_code == 200, (action, res.text)
    return res.json()  # type: ignore[no-any-return]


def subscribe(api: Api, url: str, **scope: Any) -> int:
    with session_scope(api.engine) as session:
        sub = webhooks.add(
            session,
            url=url,
            secret=SECRET,
            department_code=scope.get("department"),
            area_code=scope.get("area"),
            event_types=scope.get("events"),
            now=api.clock.now,
        )
        assert sub.id is not None
        return sub.id


def deliver(
    api: Api, policy: DeliveryPolicy | None = None, seed: int = 1, breaker: Breaker | None = None
) -> dict[str, int]:
    policy = policy or DeliveryPolicy(timeout_seconds=5.0, concurrency=1)
    runtime = api.client.app.state.runtime  # type: ignore[attr-defined]
    with make_client(policy) as client:
        return deliver_once(
            api.engine,
            now=api.clock.now,
            policy=policy,
            catalogue=runtime.taxonomy.get().catalogue,
            client=client,
            rng=random.Random(seed),
            breaker=breaker,
        )


def deliveries(api: Api) -> list[tuple[OutboxDelivery, OutboxEvent]]:
    with session_scope(api.engine) as session:
        rows = session.exec(
            select(OutboxDelivery, OutboxEvent)
            .join(OutboxEvent, OutboxEvent.id == OutboxDelivery.event_id)  # type: ignore[arg-type]
            .order_by(OutboxDelivery.id)  # type: ignore[arg-type]
        ).all()
        return [(d, e) for d, e in rows]
