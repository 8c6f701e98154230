"""Phone numbers: one canonical form (E.164) so a client is found however the number was typed.

Internal extensions (2–8 digits) are never client numbers: a call between two
extensions must not create a lead, and an import row must not attach an
extension to a client.

A withheld caller ID (``anonymous``, ``restricted``, empty, or a masked number
such as ``+7495xxxxxxx``) is no number at all: letters are never read as keypad
letters, so a masked number never becomes somebody's real one.
"""

from __future__ import annotations

import re
from functools import lru_cache

import phonenumbers
from phonenumbers import NumberParseException, PhoneNumberFormat, PhoneNumberType

DEFAULT_REGION = "RU"

# phonenumbers refuses longer input anyway; the cap keeps hostile input cheap.
_MAX_INPUT_LENGTH = 250
_EXTENSION = re.compile(r"[0-9]{2,8}")
# Letters are allowed only in an extension suffix (``... доб. 12``, ``... ext 12``, ``... x12``).
_EXTENSION_SUFFIX = re.compile(r"\s*(?:x|ext\.?|доб\.?|#)\s*[0-9]{1,6}\s*$", re.IGNORECASE)
_LETTER = re.compile(r"[^\W\d_]")


def is_extension(raw: str) -> bool:
    """True for an internal extension (2–8 ASCII digits, surrounding spaces allowed)."""
    return isinstance(raw, str) and _EXTENSION.fullmatch(raw.strip()) is not None


def is_withheld(raw: str | None) -> bool:
    """True for a caller ID that hides the number: a word, empty, or masked with letters.

    ``anonymous``, ``Unknown``, ``unavailable``, ``restricted``, ``<unknown>``, ``""``
    and ``+7495xxxxxxx`` all are; a real number or an extension is not.
    """
    if not isinstance(raw, str):
        return True
    text = raw.strip().strip("<>").strip()
    if not text:
        return True
    return _LETTER.search(_EXTENSION_SUFFIX.sub("", text)) is not None


def _parse(raw: str, region: str) -> phonenumbers.PhoneNumber | None:
    if not isinstance(raw, str):
        return None
    text = raw.strip()
    if not text or len(text) > _MAX_INPUT_LENGTH or is_extension(text) or is_withheld(text):
        return None
    try:
        number = phonenumbers.parse(text, region)
    except NumberParseException:
        return None
    except Exception:  # phonenumbers must never take the caller down on odd input
        return None
    return number if phonenumbers.is_valid_number(number) else None


def normalize_phone(raw: str, region: str = DEFAULT_REGION) -> str | None:
    """E.164 form of ``raw`` (``+79161234567``), or None for garbage and extensions.

    Russian habits are understood with the default region: a leading ``8`` or
    ``7`` without ``+``, or ten digits without any prefix. Letters outside an
    extension suffix make it None (a masked or withheld caller ID). Never raises.
    """
    if not isinstance(raw, str):
        return None
    return _normalized(raw, region)


@lru_cache(maxsize=8192)
def _normalized(raw: str, region: str) -> str | None:
    """``normalize_phone`` remembered: a replay looks the same few numbers up per call."""
    number = _parse(raw, region)
    if number is None:
        return None
    return phonenumbers.format_number(number, PhoneNumberFormat.E164)


def phone_kind(e164: str) -> str:
    """Coarse kind of a valid number (``mobile``, ``landline``, ``tollfree``, ``other``)."""
    number = _parse(e164, DEFAULT_REGION)
    if number is None:
        return "other"
    kind = phonenumbers.number_type(number)
    if kind == PhoneNumberType.MOBILE:
        return "mobile"
    if kind in (PhoneNumberType.FIXED_LINE, PhoneNumberType.FIXED_LINE_OR_MOBILE):
        return "landline"
    if kind == PhoneNumberType.TOLL_FREE:
        return "tollfree"
    return "other"


def format_phone(e164: str) -> str:
    """Human form for display (``+7 916 123-45-67``); unparseable input comes back as is."""
    number = _parse(e164, DEFAULT_REGION)
    if number is None:
        return e164
    number.extension = None
    return phonenumbers.format_number(number, PhoneNumberFormat.INTERNATIONAL)
