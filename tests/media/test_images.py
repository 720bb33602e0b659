"""`media.images` on its own (no database): any bytes end in a stable error or a clean image."""

from __future__ import annotations

import io

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from PIL import Image

from core.errors import GridgovError, ImageTooManyPixels
from media.images import Limits, clean, sniff
from tests.media.images import encoded, png_claiming

MAGICS = [b"\xff\xd8\xff", b"\x89PNG\r\n\x1a\n", b"RIFF\x00\x00\x00\x00WEBP"]


def _outcome(data: bytes) -> str:
    """`ok` (with a served image of an accepted type) or the error code."""
    try:
        result = clean(data, Limits())
    except GridgovError as exc:
        return exc.code
    assert sniff(result.image.data) is not None
    return "ok"


@settings(max_examples=150, deadline=None)
@given(magic=st.sampled_from(MAGICS), tail=st.binary(max_size=2048))
def test_any_bytes_after_a_magic_number_end_in_a_stable_error_or_an_image(
    magic: bytes, tail: bytes
) -> None:
    assert _outcome(magic + tail) in {"ok", "invalid_image", "image_too_many_pixels"}


@pytest.mark.parametrize("fmt", ["JPEG", "PNG", "WEBP"])
def test_every_truncation_of_an_image_is_refused_or_cleaned(fmt: str) -> None:
    data = encoded(fmt, (64, 64))
    outcomes = {_outcome(data[:cut]) for cut in range(1, len(data), max(1, len(data) // 60))}
    assert outcomes <= {"ok", "invalid_image", "unsupported_attachment_type"}
    assert "invalid_image" in outcomes


@pytest.mark.parametrize(
    ("mode", "fmt", "served_mode"),
    [
        ("CMYK", "JPEG", "RGB"),
        ("L", "JPEG", "L"),
        ("I;16", "PNG", "I;16"),
        ("LA", "PNG", "LA"),
        ("1", "PNG", "1"),
        ("P", "WEBP", "RGB"),
        ("RGBA", "WEBP", "RGBA"),
    ],
)
def test_each_decoded_mode_is_re_encoded_in_its_own_format(
    mode: str, fmt: str, served_mode: str
) -> None:
    out = io.BytesIO()
    Image.new(mode, (50, 40)).save(out, fmt)
    cleaned = clean(out.getvalue(), Limits())
    served = Image.open(io.BytesIO(cleaned.image.data))
    assert (served.format, served.mode, served.size) == (fmt, served_mode, (50, 40))
    assert Image.open(io.BytesIO(cleaned.thumb.data)).format == "JPEG"


def test_animation_keeps_its_first_frame_only() -> None:
    frames = [Image.new("RGB", (30, 30), (i * 80, 0, 0)) for i in range(3)]
    out = io.BytesIO()
    frames[0].save(out, "WEBP", save_all=True, append_images=frames[1:])
    served = Image.open(io.BytesIO(clean(out.getvalue(), Limits()).image.data))
    assert getattr(served, "n_frames", 1) == 1


def test_pixel_limit_is_the_setting() -> None:
    with pytest.raises(ImageTooManyPixels):
        clean(png_claiming(1001, 1000), Limits(max_pixels=1_000_000))
    within = clean(png_claiming(1000, 1000), Limits(max_pixels=1_000_000))  # decoded
    assert (within.image.width, within.image.height) == (1000, 1000)
