"""Uploading and serving attachments through HTTP, on SQLite and PostGIS: types by content,
size and pixel limits, re-encoding (no metadata, no payload), thumbnails, content addressing."""

from __future__ import annotations

import hashlib
import io
import time
from pathlib import Path
from typing import Any

import anyio
import pytest
from PIL import ExifTags, Image
from sqlalchemy import func, select
from sqlmodel import Session

from app.main import create_app
from core.settings import Settings
from media.models import Attachment
from tests.conftest import Api, FakeClock
from tests.media.images import encoded, jpeg_with_gps, png_claiming, upload, uploaded

WORKER = "gw440604011001001"
SERVE_HEADERS = {
    "x-content-type-options": "nosniff",
    "content-security-policy": "default-src 'none'; sandbox",
}


def _rows(api: Api) -> int:
    with Session(api.engine) as s:
        return int(s.execute(select(func.count()).select_from(Attachment)).scalar_one())


def _files(settings: Settings) -> list[Path]:
    assert settings.attachment_dir is not None
    root = Path(settings.attachment_dir)
    return sorted(p for p in root.rglob("*") if p.is_file()) if root.exists() else []


@pytest.mark.parametrize(
    ("fmt", "mode", "content_type"),
    [
        ("JPEG", "RGB", "image/jpeg"),
        ("PNG", "RGBA", "image/png"),
        ("PNG", "P", "image/png"),
        ("WEBP", "RGB", "image/webp"),
    ],
)
def test_each_accepted_type_is_stored_and_served_as_itself(
    api: Api, settings: Settings, fmt: str, mode: str, content_type: str
) -> None:
    res = upload(api, WORKER, encoded(fmt, (120, 80), mode=mode), name="x.gif")
    assert res.status_code == 201, res.text
    out = res.json()
    assert (out["content_type"], out["width"], out["height"]) == (content_type, 120, 80)
    assert 20 <= len(out["id"]) <= 64
    served = api.get(WORKER, f"/v1/attachments/{out['id']}")
    assert served.status_code == 200
    assert served.headers["content-type"] == content_type
    for name, value in SERVE_HEADERS.items():
        assert served.headers[name] == value
    assert served.headers["cache-control"].startswith("private")
    assert hashlib.sha256(served.content).hexdigest() == out["sha256"]
    assert len(served.content) == out["size"]
    assert Image.open(io.BytesIO(served.content)).size == (120, 80)
    assert _files(settings)[0].parent.parent.parent == Path(str(settings.attachment_dir))


@pytest.mark.parametrize(
    ("name", "data"),
    [
        ("gif", encoded("GIF")),
        ("pdf", encoded("PDF")),
        ("text", "井盖丢失，请尽快处理".encode()),
        ("html", b"<!doctype html><html><script>alert(1)</script></html>"),
        ("svg", b'<svg xmlns="http://www.w3.org/2000/svg"><script>alert(1)</script></svg>'),
        ("empty", b""),
    ],
)
def test_anything_but_jpeg_png_webp_is_415_and_stores_nothing(
    api: Api, settings: Settings, name: str, data: bytes
) -> None:
    res = upload(api, WORKER, data, name="photo.jpg")
    assert res.status_code == 415, res.text
    assert res.json()["error"] == "unsupported_attachment_type"
    assert _rows(api) == 0
    assert _files(settings) == []


def test_truncated_image_is_422_invalid_image(api: Api, settings: Settings) -> None:
    data = encoded("PNG", (300, 300))
    res = upload(api, WORKER, data[: len(data) // 2])
    assert res.status_code == 422, res.text
    assert res.json()["error"] == "invalid_image"
    assert _rows(api) == 0
    assert _files(settings) == []


def test_20_mb_upload_is_413(api: Api, settings: Settings) -> None:
    data = encoded("JPEG") + b"\0" * (20 * 1024 * 1024)
    res = upload(api, WORKER, data)
    assert res.status_code == 413, res.text
    assert res.json()["error"] == "payload_too_large"
    assert _rows(api) == 0
    assert _files(settings) == []


def test_file_just_over_the_limit_is_413_attachment_too_large(
    api: Api, settings: Settings, engine: Any, clock: FakeClock
) -> None:
    from fastapi.testclient import TestClient

    small = settings.model_copy(update={"attachment_max_bytes": 4096})
    app = create_app(settings=small, engine=engine, clock=clock)
    with TestClient(app, raise_server_exceptions=False) as client:
        res = client.post(
            "/v1/attachments",
            files={"file": ("a.jpg", encoded("JPEG") + b"\0" * 4096, "image/jpeg")},
            headers=api.headers(WORKER),
        )
    assert res.status_code == 413, res.text
    assert res.json()["error"] == "attachment_too_large"


def test_streamed_upload_without_length_is_cut_off_at_the_limit(
    api: Api, settings: Settings, engine: Any, clock: FakeClock
) -> None:
    """A body sent in chunks with no Content-Length: the server stops reading at the limit."""
    app = create_app(settings=settings, engine=engine, clock=clock)
    chunk = b"\0" * (1024 * 1024)
    total = 20
    pulled = 0
    sent: list[dict[str, Any]] = []

    head = (
        b'--xyz\r\nContent-Disposition: form-data; name="file"; filename="a.jpg"\r\n'
        b"Content-Type: image/jpeg\r\n\r\n"
    )

    async def receive() -> dict[str, Any]:
        nonlocal pulled
        pulled += 1
        body = head + chunk if pulled == 1 else chunk
        return {"type": "http.request", "body": body, "more_body": pulled < total}

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "POST",
        "scheme": "http",
        "path": "/v1/attachments",
        "raw_path": b"/v1/attachments",
        "query_string": b"",
        "root_path": "",
        "headers": [
            (b"host", b"testserver"),
            (b"content-type", b"multipart/form-data; boundary=xyz"),
            (b"authorization", f"Bearer {api.token(WORKER)}".encode()),
        ],
        "client": ("127.0.0.1", 5000),
        "server": ("testserver", 80),
    }
    anyio.run(app, scope, receive, send)
    assert sent[0]["status"] == 413
    assert pulled <= 12  # 10 MiB + the multipart allowance, not the 20 MiB sent
    assert _rows(api) == 0


def test_png_claiming_50000_by_50000_pixels_is_refused_without_decoding(
    api: Api, settings: Settings
) -> None:
    bomb = png_claiming(50_000, 50_000)
    assert len(bomb) < 1000
    started = time.perf_counter()
    res = upload(api, WORKER, bomb)
    elapsed = time.perf_counter() - started
    assert res.status_code == 413, res.text
    assert res.json()["error"] == "image_too_many_pixels"
    assert elapsed < 1.0  # decoding 7.5 GB of pixels would take far longer (or fail)
    assert _rows(api) == 0
    assert _files(settings) == []


@pytest.mark.parametrize(
    "payload",
    [
        b"<html><body><script>alert(document.cookie)</script></body></html>",
        b"PK\x03\x04\x14\x00\x00\x00\x08\x00evil.js" + b"\x00" * 64,
        b"#!/bin/sh\nrm -rf /\n",
    ],
)
def test_polyglot_is_served_without_its_payload(api: Api, payload: bytes) -> None:
    original = encoded("JPEG", (50, 50))
    res = upload(api, WORKER, original + payload)
    assert res.status_code == 201, res.text
    served = api.get(WORKER, f"/v1/attachments/{res.json()['id']}").content
    assert payload not in served
    assert payload[:8] not in served
    assert served.endswith(b"\xff\xd9")  # ends where the JPEG ends
    assert Image.open(io.BytesIO(served)).size == (50, 50)


def test_exif_gps_and_other_metadata_are_stripped_and_orientation_applied(api: Api) -> None:
    data = jpeg_with_gps(size=(40, 20), orientation=6)
    assert b"PhoneMaker" in data
    assert b"13812345678" in data
    res = upload(api, WORKER, data)
    assert res.status_code == 201, res.text
    assert (res.json()["width"], res.json()["height"]) == (20, 40)  # turned upright
    served = api.get(WORKER, f"/v1/attachments/{res.json()['id']}").content
    image = Image.open(io.BytesIO(served))
    assert image.size == (20, 40)
    assert dict(image.getexif()) == {}
    assert image.getexif().get_ifd(ExifTags.IFD.GPSInfo) == {}
    assert "icc_profile" not in image.info
    assert "comment" not in image.info
    for secret in (b"Exif", b"PhoneMaker", b"13812345678", b"ICCSECRET"):
        assert secret not in served
    thumb = api.get(WORKER, f"/v1/attachments/{res.json()['id']}?size=thumb").content
    assert b"Exif" not in thumb
    assert b"ICCSECRET" not in thumb


def test_png_text_chunks_are_stripped(api: Api) -> None:
    from PIL import PngImagePlugin

    info = PngImagePlugin.PngInfo()
    info.add_text("Comment", "住址：某小区3栋")
    info.add_itxt("XML:com.adobe.xmp", "<x:xmpmeta>secret-xmp</x:xmpmeta>")
    res = upload(api, WORKER, encoded("PNG", (30, 30), pnginfo=info))
    served = api.get(WORKER, f"/v1/attachments/{res.json()['id']}").content
    assert b"secret-xmp" not in served
    assert b"Comment" not in served
    assert Image.open(io.BytesIO(served)).info == {}


def test_thumbnail_is_a_small_jpeg(api: Api) -> None:
    res = upload(api, WORKER, encoded("PNG", (1600, 1200), mode="RGBA"))
    assert res.status_code == 201, res.text
    assert res.json()["thumbnail"]["width"] == 320
    assert res.json()["thumbnail"]["height"] == 240
    thumb = api.get(WORKER, f"/v1/attachments/{res.json()['id']}?size=thumb")
    assert thumb.status_code == 200
    assert thumb.headers["content-type"] == "image/jpeg"
    assert thumb.headers["x-content-type-options"] == "nosniff"
    assert Image.open(io.BytesIO(thumb.content)).size == (320, 240)
    assert len(thumb.content) == res.json()["thumbnail"]["size"]


def test_unknown_size_parameter_is_422(api: Api) -> None:
    attachment_id = uploaded(api, WORKER)
    res = api.get(WORKER, f"/v1/attachments/{attachment_id}?size=huge")
    assert res.status_code == 422


def test_same_image_twice_is_two_attachments_and_one_file(api: Api, settings: Settings) -> None:
    data = encoded("JPEG", (600, 400))
    first, second = upload(api, WORKER, data).json(), upload(api, WORKER, data).json()
    assert first["id"] != second["id"]
    assert first["sha256"] == second["sha256"]
    assert len(_files(settings)) == 2  # the image and its thumbnail, once each
    assert {p.name for p in _files(settings)} == {
        first["sha256"],
        _thumb_sha(api, first["id"]),
    }


def _thumb_sha(api: Api, attachment_id: str) -> str:
    with Session(api.engine) as s:
        row = s.get(Attachment, attachment_id)
        assert row is not None
        return row.thumb_sha256


def test_served_file_has_an_etag_and_answers_304(api: Api) -> None:
    attachment_id = uploaded(api, WORKER)
    first = api.get(WORKER, f"/v1/attachments/{attachment_id}")
    etag = first.headers["etag"]
    again = api.client.get(
        f"/v1/attachments/{attachment_id}",
        headers={**api.headers(WORKER), "If-None-Match": etag},
    )
    assert again.status_code == 304
    assert again.content == b""


@pytest.mark.parametrize(
    "body",
    [
        {"data": {"file": "not a file"}},
        {"files": {"photo": ("a.jpg", b"\xff\xd8\xff", "image/jpeg")}},
    ],
)
def test_upload_without_a_file_field_is_422(api: Api, body: dict[str, Any]) -> None:
    res = api.client.post("/v1/attachments", headers=api.headers(WORKER), **body)
    assert res.status_code == 422, res.text
    assert res.json()["error"] == "attachment_file_missing"


def test_upload_needs_a_signed_in_account(api: Api) -> None:
    res = api.client.post("/v1/attachments", files={"file": ("a.jpg", encoded("JPEG"))})
    assert res.status_code == 401
    assert _rows(api) == 0


def test_every_role_may_upload(api: Api) -> None:
    for user in ("admin", "dispatcher", "dept-cgj", WORKER):
        assert upload(api, user, encoded("JPEG")).status_code == 201
