"""HTTP glue for early warnings (预警): the list, acknowledge and close (command centres; a
scoped centre sees and acts on its own area's warnings)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Path, Query
from pydantic import BaseModel, ConfigDict, Field
from sqlmodel import Session

from app.deps import ActorDep, RuntimeDep, SessionDep, require_role
from app.params import only_params
from app.runtime import Runtime
from core.models import Role
from core.security import Actor
from core.text import CleanText
from dispatch.schemas import MAX_ID
from surveillance import alerts
from surveillance.alerts import WarningListOut, WarningOut
from surveillance.models import EarlyWarning, WarningStatus

router = APIRouter(prefix="/v1/warnings", tags=["warnings"])


class WarningNoteIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    note: CleanText | None = Field(
        default=None, max_length=2000, description="what the command centre does about it"
    )


@router.get("", response_model=WarningListOut)
def list_warnings(
    session: SessionDep,
    actor: ActorDep,
    _known: Annotated[
        None,
        Depends(only_params(("status", "category_code", "area_code", "limit", "offset"))),
    ],
    status: Annotated[WarningStatus | None, Query()] = None,
    category_code: Annotated[str | None, Query(pattern=r"^\d{2}$")] = None,
    area_code: Annotated[
        str | None,
        Query(pattern=r"^(\d{3}){2,5}$", description="warnings inside this area (any level)"),
    ] = None,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
    offset: Annotated[int, Query(ge=0, le=MAX_ID)] = 0,
) -> WarningListOut:
    """Warnings in the caller's area, newest first; `total` counts every page."""
    require_role(actor, Role.ADMIN, Role.DISPATCHER)
    return alerts.list_warnings(
        session,
        actor=actor,
        status=status.value if status else None,
        category_code=category_code,
        area_code=area_code,
        limit=limit,
        offset=offset,
    )


WarningId = Annotated[int, Path(ge=1, le=MAX_ID)]


@router.post("/{warning_id}/acknowledge", response_model=WarningOut)
def acknowledge(
    warning_id: WarningId,
    session: SessionDep,
    runtime: RuntimeDep,
    actor: ActorDep,
    body: WarningNoteIn | None = None,
) -> Any:
    """确认: the command centre has seen it (with what it does about it, as `note`)."""
    return _act(alerts.acknowledge, warning_id, session, runtime, actor, body)


@router.post("/{warning_id}/close", response_model=WarningOut)
def close(
    warning_id: WarningId,
    session: SessionDep,
    runtime: RuntimeDep,
    actor: ActorDep,
    body: WarningNoteIn | None = None,
) -> Any:
    """关闭: dealt with; the same cluster found later raises a new warning."""
    return _act(alerts.close, warning_id, session, runtime, actor, body)


def _act(
    move: Callable[..., EarlyWarning],
    warning_id: int,
    session: Session,
    runtime: Runtime,
    actor: Actor,
    body: WarningNoteIn | None,
) -> WarningOut:
    require_role(actor, Role.ADMIN, Role.DISPATCHER)
    note = body.note if body else None
    return alerts.warning_out(move(session, warning_id, actor=actor, note=note, now=runtime.now()))
