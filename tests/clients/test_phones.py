"""Phone normalization: every way people type a number is one number; nothing else is."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from crm_core.clients.phones import format_phone, is_extension, is_withheld, normalize_phone


@pytest.mark.parametrize(
    "raw",
    [
        "8 (916) 123-45-67",
        "+7 916 1234567",
        "79161234567",
        "9161234567",
        "8-916-123-45-67",
        "  +7 (916) 123 45 67  ",
        "89161234567",
    ],
)
def test_mobile_formats_are_one_number(raw: str) -> None:
    assert normalize_phone(raw) == "+79161234567"


@pytest.mark.parametrize("raw", ["8 495 111-00-01", "74951110001", "+7 (495) 111-00-01"])
def test_moscow_landline(raw: str) -> None:
    assert normalize_phone(raw) == "+74951110001"


def test_foreign_number_keeps_its_country() -> None:
    assert normalize_phone("+44 20 7946 0958") == "+442079460958"


@pytest.mark.parametrize(
    "raw",
    ["", "   ", "abc", "12", "12345", "+7 000 000 00 00", "----", "+", "8 (916) 123", "None",
     "123456789"],
)
def test_garbage_is_none(raw: str) -> None:
    assert normalize_phone(raw) is None


@pytest.mark.parametrize("raw", ["101", "1001", " 205 ", "999", "10", "12345", "20104567"])
def test_extensions_are_never_clients(raw: str) -> None:
    """Any 2–8 digit internal number: the company's PBX may number its phones so."""
    assert is_extension(raw)
    assert normalize_phone(raw) is None


@pytest.mark.parametrize("raw", ["1", "123456789", "+101", "10a", "", "٠١٢"])
def test_not_extensions(raw: str) -> None:
    assert not is_extension(raw)


@pytest.mark.parametrize("raw", [
    "anonymous", "Anonymous", "Unknown", "unavailable", "restricted", "<unknown>", "", "  ",
    "+7495xxxxxxx", "8495XXXXXXX", "+7 916 XXX-45-67", "+7495ABCDEFG", "8800FLOWERS",
])
def test_withheld_caller_ids_are_no_number(raw: str) -> None:
    """Letters are never keypad letters: ``+7495xxxxxxx`` is not +7 495 999-99-99."""
    assert is_withheld(raw)
    assert normalize_phone(raw) is None


@pytest.mark.parametrize("raw, e164", [
    ("+7 916 123-45-67", "+79161234567"), ("8 495 111-00-01 доб. 12", "+74951110001"),
    ("84951110001 ext 7", "+74951110001"), ("84951110001x7", "+74951110001"),
])
def test_real_numbers_are_not_withheld(raw: str, e164: str) -> None:
    assert not is_withheld(raw)
    assert normalize_phone(raw) == e164


def test_format_phone() -> None:
    assert format_phone("+79161234567") == "+7 916 123-45-67"
    assert format_phone("+74951110001") == "+7 495 111-00-01"
    assert format_phone("nonsense") == "nonsense"


@settings(max_examples=300, deadline=None)
@given(st.text())
def test_any_text_never_raises(raw: str) -> None:
    result = normalize_phone(raw)
    assert result is None or (result.startswith("+") and result[1:].isdigit())
    is_extension(raw)
    format_phone(raw)


@settings(max_examples=200, deadline=None)
@given(st.from_regex(r"[0-9+()\- ]{0,30}", fullmatch=True))
def test_phone_like_text_never_raises_and_is_stable(raw: str) -> None:
    result = normalize_phone(raw)
    if result is not None:
        assert normalize_phone(result) == result
        assert normalize_phone(format_phone(result)) == result
