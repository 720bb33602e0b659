"""Images by content: the type from the magic bytes and Pillow's decoder, the pixel count checked
from the header before any decoding, and what is kept re-encoded from the decoded pixels (so no
metadata, no trailing payload survives), with a small JPEG thumbnail."""

from __future__ import annotations

import hashlib
import io
from dataclasses import dataclass

from PIL import Image, ImageOps

from core.errors import AttachmentTooLarge, ImageTooManyPixels, InvalidImage, UnsupportedAttachment

# The types accepted, by their first bytes (WebP: a RIFF container whose form type is WEBP).
JPEG, PNG, WEBP = "image/jpeg", "image/png", "image/webp"
_PIL_FORMAT = {JPEG: "JPEG", PNG: "PNG", WEBP: "WEBP"}
THUMB_TYPE = JPEG
# Modes Pillow writes as PNG as they are (others are converted to RGB or RGBA).
_PNG_MODES = frozenset({"1", "L", "LA", "P", "RGB", "RGBA", "I;16"})


@dataclass(frozen=True)
class Limits:
    """How much an upload may be: bytes, pixels (width × height, from the header), and the
    longest side of its thumbnail."""

    max_bytes: int = 10 * 1024 * 1024
    max_pixels: int = 40_000_000
    thumb_px: int = 320


@dataclass(frozen=True)
class Encoded:
    """Bytes to store and serve, with their type, size and digest."""

    data: bytes
    content_type: str
    width: int
    height: int

    @property
    def sha256(self) -> str:
        return hashlib.sha256(self.data).hexdigest()

    @property
    def size(self) -> int:
        return len(self.data)


@dataclass(frozen=True)
class Cleaned:
    """An upload made harmless: the image re-encoded and its thumbnail."""

    image: Encoded
    thumb: Encoded


def sniff(data: bytes) -> str | None:
    """The accepted type these bytes start with, if any (the file name and the client's
    Content-Type are never believed)."""
    if data.startswith(b"\xff\xd8\xff"):
        return JPEG
    if data.startswith(b"\x89PNG\r\n\x1a\n"):
        return PNG
    if len(data) >= 12 and data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return WEBP
    return None


def clean(data: bytes, limits: Limits) -> Cleaned:
    """Check an upload and re-encode it: 413 over the byte or pixel limits (pixels read from
    the header, before decoding: an image bomb is refused in microseconds), 415 for anything
    but JPEG/PNG/WebP, 422 when it cannot be decoded. Orientation (EXIF) is applied to the
    pixels before the metadata is dropped."""
    if len(data) > limits.max_bytes:
        raise AttachmentTooLarge(limit=limits.max_bytes)
    content_type = sniff(data)
    if content_type is None:
        raise UnsupportedAttachment()
    fmt = _PIL_FORMAT[content_type]
    try:
        opened = Image.open(io.BytesIO(data), formats=[fmt])
    except Image.DecompressionBombError:  # Pillow's own limit, if ours was set above it
        raise ImageTooManyPixels(limit=limits.max_pixels) from None
    except Exception:  # hostile input: whatever the parser trips on, it is not an image
        raise InvalidImage() from None
    with opened as image:
        width, height = image.size
        if width * height > limits.max_pixels:
            raise ImageTooManyPixels(limit=limits.max_pixels)
        try:
            image.seek(0)  # animations: the first frame only
            image.load()
            upright = ImageOps.exif_transpose(image)
        except Exception:
            raise InvalidImage() from None
    try:
        pixels = _plain(upright, content_type)
        return Cleaned(
            image=_encode(pixels, content_type),
            thumb=_encode(_thumbnail(pixels, limits.thumb_px), THUMB_TYPE),
        )
    except (OSError, ValueError):  # a decoded mode the encoder refuses: not a photo we keep
        raise InvalidImage() from None


def _plain(image: Image.Image, content_type: str) -> Image.Image:
    """The pixels alone, in a mode the output format writes: no `info` (EXIF, XMP, ICC, text
    chunks, comments) is carried over, but a palette's transparency."""
    mode = image.mode
    has_alpha = "A" in mode or "transparency" in image.info
    if content_type == JPEG:
        target = mode if mode in ("L", "RGB") else "RGB"
    elif content_type == WEBP:
        target = "RGBA" if has_alpha else "RGB"
    else:
        target = mode if mode in _PNG_MODES else ("RGBA" if has_alpha else "RGB")
    transparency = image.info.get("transparency") if target == mode else None
    plain = image.convert(target) if target != mode else image.copy()
    plain.info = {} if transparency is None else {"transparency": transparency}
    return plain


def _encode(image: Image.Image, content_type: str) -> Encoded:
    out = io.BytesIO()
    fmt = _PIL_FORMAT[content_type]
    if content_type == JPEG:
        image.save(out, fmt, quality=88, exif=b"", icc_profile=None)
    elif content_type == WEBP:
        image.save(out, fmt, quality=88, exif=b"", icc_profile=None, xmp=b"")
    else:
        image.save(out, fmt, exif=b"", icc_profile=None)
    return Encoded(out.getvalue(), content_type, image.width, image.height)


def _thumbnail(image: Image.Image, longest: int) -> Image.Image:
    """A JPEG-ready copy at most `longest` pixels on its longer side (transparency on white)."""
    small = image.copy()
    small.thumbnail((longest, longest), Image.Resampling.LANCZOS)
    if small.mode in ("RGB", "L"):
        return small
    rgba = small.convert("RGBA")
    flat = Image.new("RGB", rgba.size, (255, 255, 255))
    flat.paste(rgba, mask=rgba.getchannel("A"))
    return flat
