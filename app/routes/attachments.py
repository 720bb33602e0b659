"""HTTP glue for attachments: upload a photo, fetch it (or its thumbnail) when allowed."""

from __future__ import annotations

import logging
from datetime import datetime
from typing import Annotated, Literal

from fastapi import APIRouter, Path, Query, Request, Response
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import FileResponse
from pydantic import BaseModel
from sqlalchemy import select
from sqlmodel import Session, col
from starlette.datastructures import UploadFile
from starlette.exceptions import HTTPException

from app.deps import ActorDep, SessionDep, require_role, runtime_of
from app.runtime import Runtime
from core.db import session_scope
from core.errors import AttachmentFileMissing, AttachmentNotFound, AttachmentTooLarge
from core.models import Role
from core.security import Actor
from dispatch.cases import visibility
from dispatch.models import Case
from media import service as media_service
from media.models import Attachment

log = logging.getLogger("gridgov.attachments")

router = APIRouter(prefix="/v1/attachments", tags=["attachments"])

# What an upload's body may hold besides the file: the multipart boundaries and part headers.
MULTIPART_OVERHEAD_BYTES = 64 * 1024
# Served files are ours (re-encoded), but never let a browser run or sniff them.
SERVE_HEADERS = {
    "X-Content-Type-Options": "nosniff",
    "Content-Security-Policy": "default-src 'none'; sandbox",
    "Cache-Control": "private, max-age=86400",
    "Cross-Origin-Resource-Policy": "same-origin",
}
_UPLOADERS = (Role.GRID_WORKER, Role.DISPATCHER, Role.ADMIN, Role.DEPARTMENT)


class ThumbnailOut(BaseModel):
    content_type: str
    size: int
    width: int
    height: int


class AttachmentOut(BaseModel):
    """An uploaded image as it is stored and served (re-encoded: no metadata)."""

    id: str
    content_type: str
    size: int
    sha256: str
    width: int
    height: int
    thumbnail: ThumbnailOut
    created_at: datetime


def upload_limit(settings_max_bytes: int) -> int:
    """The body limit of `POST /v1/attachments` (the app's body limit middleware)."""
    return settings_max_bytes + MULTIPART_OVERHEAD_BYTES


@router.post(
    "",
    status_code=201,
    response_model=AttachmentOut,
    openapi_extra={
        "requestBody": {
            "required": True,
            "content": {
                "multipart/form-data": {
                    "schema": {
                        "type": "object",
                        "required": ["file"],
                        "properties": {"file": {"type": "string", "format": "binary"}},
                    }
                }
            },
        }
    },
)
async def upload_attachment(request: Request, actor: ActorDep) -> AttachmentOut:
    """Upload one JPEG, PNG or WebP photo (multipart field `file`); use its `id` in a report's,
    `resolve`'s or `verify`'s `attachment_ids`. Not used by a case within
    GRIDGOV_ATTACHMENT_ORPHAN_HOURS, it is removed."""
    require_role(actor, *_UPLOADERS)
    runtime = runtime_of(request)
    data = await _file_bytes(request, runtime.settings.attachment_max_bytes)
    attachment = await run_in_threadpool(_store, runtime, actor, data)
    return AttachmentOut.model_validate(media_service.describe(attachment))


async def _file_bytes(request: Request, max_bytes: int) -> bytes:
    """The `file` part, at most `max_bytes` (the body itself is capped as it arrives)."""
    try:
        async with request.form(max_files=1, max_fields=4) as form:
            parts = form.getlist("file")
            if len(parts) != 1 or not isinstance(parts[0], UploadFile):
                raise AttachmentFileMissing()
            data = await parts[0].read(max_bytes + 1)
    except HTTPException:  # a malformed multipart body, or more than one file
        raise AttachmentFileMissing() from None
    if len(data) > max_bytes:
        raise AttachmentTooLarge(limit=max_bytes)
    return data


def _store(runtime: Runtime, actor: Actor, data: bytes) -> Attachment:
    settings = runtime.settings
    with session_scope(runtime.engine) as session:
        return media_service.store(
            session,
            data,
            channel=media_service.ACCOUNT_CHANNEL,
            identity=str(actor.id),
            user_id=actor.id,
            now=runtime.now(),
            storage=media_service.storage_of(settings),
            limits=media_service.limits_of(settings),
        )


@router.get(
    "/{attachment_id}",
    response_class=FileResponse,
    responses={
        200: {"content": {"image/jpeg": {}, "image/png": {}, "image/webp": {}}},
        304: {"description": "unchanged (`If-None-Match` gave its ETag)"},
    },
)
def get_attachment(
    attachment_id: Annotated[str, Path(max_length=64)],
    request: Request,
    session: SessionDep,
    actor: ActorDep,
    size: Annotated[Literal["full", "thumb"], Query()] = "full",
) -> Response:
    """The image (re-encoded, no metadata), or with `size=thumb` its JPEG thumbnail: to its
    uploader and to whoever may see a case using it; to anyone else it does not exist."""
    attachment = session.get(Attachment, attachment_id)
    if attachment is None or not may_see(session, attachment, actor):
        raise AttachmentNotFound(attachment=attachment_id)
    thumb = size == "thumb"
    sha256 = attachment.thumb_sha256 if thumb else attachment.sha256
    content_type = attachment.thumb_content_type if thumb else attachment.content_type
    path = media_service.storage_of(runtime_of(request).settings).path_of(sha256)
    if not path.is_file():
        log.error("attachment %s: file %s is missing", attachment.id, sha256)
        raise AttachmentNotFound(attachment=attachment_id)
    etag = f'"{sha256}"'
    if request.headers.get("if-none-match") == etag:
        return Response(status_code=304, headers={"ETag": etag, **SERVE_HEADERS})
    return FileResponse(
        path,
        media_type=content_type,
        headers={"ETag": etag, **SERVE_HEADERS},
    )


def may_see(session: Session, attachment: Attachment, actor: Actor) -> bool:
    """The uploader, and whoever may see one of the cases using it (role and place, as for
    the case itself)."""
    if attachment.user_id is not None and attachment.user_id == actor.id:
        return True
    case_ids = media_service.case_ids_using(session, attachment.id)
    if not case_ids:
        return False
    query = select(col(Case.id)).where(col(Case.id).in_(case_ids))
    scope = visibility(actor)
    if scope is not None:
        query = query.where(scope)
    return session.execute(query.limit(1)).first() is not None
