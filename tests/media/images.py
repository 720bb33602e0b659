"""Images (and non-images) for the attachment tests, built here with Pillow or by hand."""

from __future__ import annotations

import io
import struct
import zlib
from typing import Any

from PIL import ExifTags, Image

from tests.conftest import Api


def encoded(fmt: str, size: tuple[int, int] = (64, 48), mode: str = "RGB", **save: Any) -> bytes:
    """A real image of `size` in `fmt` (JPEG, PNG, WEBP, GIF, PDF), a gradient so it is not
    trivially compressible."""
    image = Image.linear_gradient("L").resize(size).convert(mode)
    out = io.BytesIO()
    image.save(out, fmt, **save)
    return out.getvalue()


def jpeg_with_gps(size: tuple[int, int] = (40, 20), orientation: int = 6) -> bytes:
    """A JPEG whose EXIF holds a GPS position (Chancheng) and an orientation, plus a comment
    and an ICC profile: all of it personal data or payload the served copy must not carry."""
    exif = Image.Exif()
    exif[ExifTags.Base.Orientation] = orientation
    exif[ExifTags.Base.Make] = "PhoneMaker"
    gps = exif.get_ifd(ExifTags.IFD.GPSInfo)
    gps[ExifTags.GPS.GPSLatitudeRef] = "N"
    gps[ExifTags.GPS.GPSLatitude] = (23.0, 1.0, 30.0)
    gps[ExifTags.GPS.GPSLongitudeRef] = "E"
    gps[ExifTags.GPS.GPSLongitude] = (113.0, 6.0, 0.0)
    return encoded(
        "JPEG", size, exif=exif, comment=b"owner: 13812345678", icc_profile=b"ICCSECRET" * 20
    )


def _chunk(kind: bytes, body: bytes) -> bytes:
    return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))


def png_claiming(width: int, height: int) -> bytes:
    """A small PNG whose header claims `width` × `height` RGB pixels (decoded: 7.5 GB for
    50,000 × 50,000), with one compressed row of data."""
    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + _chunk(b"IHDR", header)
        + _chunk(b"IDAT", zlib.compress(b"\x00" * (1 + 3 * min(width, 4096))))
        + _chunk(b"IEND", b"")
    )


def upload(api: Api, user: str, data: bytes, *, name: str = "photo.jpg") -> Any:
    """POST /v1/attachments as `user` (the client's file name and type are not believed)."""
    return api.client.post(
        "/v1/attachments",
        files={"file": (name, data, "image/jpeg")},
        headers=api.headers(user),
    )


def uploaded(api: Api, user: str, data: bytes | None = None) -> str:
    """The id of a fresh upload (a small JPEG unless `data`)."""
    res = upload(api, user, data if data is not None else encoded("JPEG"))
    assert res.status_code == 201, res.text
    attachment_id: str = res.json()["id"]
    return attachment_id
