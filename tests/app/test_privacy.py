"""Masking of phone and ID-card numbers in free text (core.privacy), property-tested."""

from __future__ import annotations

import re
from datetime import date

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from core.privacy import PiiKind, find_pii, mask_pii, mask_value

# Text around a number: anything without digits (or the mask's star), so the number stands alone.
_PROSE = st.text(
    alphabet=st.sampled_from("井盖丢失联系电话身份证号：，。 ()+-abcXx\n"), max_size=12
)
# Text built to trip the patterns: digits, separators, stars, prefixes and the words for IDs.
_TRICKY = st.lists(
    st.sampled_from(list("0123456789013789  --++()**..Xx０１８") + ["身份证", "ID "]), max_size=60
).map("".join)


def _digits(text: str) -> str:
    return re.sub(r"[^0-9]", "", text)


@st.composite
def mobiles(draw: st.DrawFn) -> str:
    return (
        "1" + draw(st.sampled_from("3456789")) + draw(st.text("0123456789", min_size=9, max_size=9))
    )


@st.composite
def written_mobiles(draw: st.DrawFn) -> tuple[str, str, str]:
    """(the number, the country prefix written, the separators written)."""
    number = draw(mobiles())
    sep = draw(st.sampled_from(["", " ", "-"]))
    prefix = draw(st.sampled_from(["", "+86 ", "+86-", "+86", "0086", "86", "(+86)"]))
    return number, prefix, f"{number[:3]}{sep}{number[3:7]}{sep}{number[7:]}"


@st.composite
def id_cards(draw: st.DrawFn) -> str:
    area = draw(st.sampled_from("123456789")) + draw(st.text("0123456789", min_size=5, max_size=5))
    born = draw(st.dates(min_value=date(1900, 1, 1), max_value=date(2026, 12, 31)))
    seq = draw(st.text("0123456789", min_size=3, max_size=3))
    check = draw(st.sampled_from("0123456789X"))
    return f"{area}{born:%Y%m%d}{seq}{check}"


@given(before=_PROSE, written=written_mobiles(), after=_PROSE)
def test_a_mobile_keeps_only_its_first_three_and_last_four_digits(
    before: str, written: tuple[str, str, str], after: str
) -> None:
    number, prefix, text = written
    masked = mask_pii(before + prefix + text + after)
    assert masked == before + prefix + f"{number[:3]}****{number[7:]}" + after
    # Whatever the separators, no other digit of the number is left.
    assert _digits(masked) == _digits(prefix) + number[:3] + number[7:]


@given(before=_PROSE, card=id_cards(), after=_PROSE)
def test_an_id_card_keeps_only_its_area_and_last_four(before: str, card: str, after: str) -> None:
    masked = mask_pii(before + card + after)
    assert masked == before + card[:6] + "********" + card[-4:] + after
    assert card[6:14] not in masked  # the birth date


@given(text=_TRICKY)
@example("440604199001010757-83456789")  # a landline right after an ID card's last four
@example("13812345678-0757 83456789")
def test_masking_twice_changes_nothing(text: str) -> None:
    once = mask_pii(text)
    assert mask_pii(once) == once


@given(text=_TRICKY)
def test_something_is_found_exactly_when_something_is_masked(text: str) -> None:
    assert bool(find_pii(text)) == (mask_pii(text) != text)


@st.composite
def ordinary_numbers(draw: st.DrawFn) -> str:
    """Numbers a report or a note holds that are not personal."""
    day = draw(st.dates(min_value=date(2000, 1, 1), max_value=date(2099, 12, 31)))
    case_id = draw(st.integers(min_value=1, max_value=999_999))
    grid = "440604" + draw(st.text("0123456789", min_size=9, max_size=9))
    amount = draw(st.integers(min_value=0, max_value=9_999_999_999))
    cents = draw(st.integers(min_value=0, max_value=99))
    return draw(
        st.sampled_from(
            [
                f"{day:%Y%m%d}{case_id:06d}",  # case number
                grid,  # 15-digit grid code: the shape of a first-generation ID card
                f"{day:%Y-%m-%d}",
                f"{day.year}年{day.month}月{day.day}日",
                f"{day:%Y-%m-%d}T09:30:00+08:00",
                f"{amount}元",
                f"{amount}.{cents:02d}元",
                f"{amount:,}元",
                f"{draw(st.integers(0, 23)):02d}:{draw(st.integers(0, 59)):02d}",
            ]
        )
    )


@settings(max_examples=300)
@given(parts=st.lists(ordinary_numbers(), min_size=1, max_size=4))
def test_dates_case_numbers_grid_codes_and_amounts_are_left_alone(parts: list[str]) -> None:
    text = "，网格员上报：".join(parts)
    assert mask_pii(text) == text
    assert find_pii(text) == frozenset()


@pytest.mark.parametrize(
    ("text", "masked"),
    [
        ("联系电话13812345678，请回电", "联系电话138****5678，请回电"),
        ("电话 138 1234 5678", "电话 138****5678"),
        ("+86 139-1234-5678", "+86 139****5678"),
        ("座机0757-83456789转801", "座机0757-****6789转801"),
        ("（0757）8345 6789", "（0757）****6789"),
        ("１３８１２３４５６７８", "138****5678"),  # full-width digits from a Chinese IME
        ("身份证440604199001011234", "身份证440604********1234"),
        ("证件 44060419900101123x", "证件 440604********123X"),
        ("身份证号：440604900101123", "身份证号：440604******123"),  # first generation
        ("网格440604011001001", "网格440604011001001"),  # same shape, no ID word: a grid code
        ("案件20261123000042已办结", "案件20261123000042已办结"),
        ("金额13800.50元", "金额13800.50元"),
        ("单号138123456789", "单号138123456789"),  # 12 digits: not a mobile
    ],
)
def test_examples(text: str, masked: str) -> None:
    assert mask_pii(text) == masked


def test_found_kinds() -> None:
    assert find_pii("电话13812345678") == {PiiKind.PHONE}
    assert find_pii("13812345678 440604199001011234") == {PiiKind.PHONE, PiiKind.ID_CARD}
    assert find_pii("井盖丢失") == frozenset()


def test_values_inside_history_data_are_masked_but_keys_and_other_types_kept() -> None:
    data = {"note": "已联系13812345678", "passed": True, "n": 3, "list": ["0757-83456789"]}
    assert mask_value(data) == {
        "note": "已联系138****5678",
        "passed": True,
        "n": 3,
        "list": ["0757-****6789"],
    }
