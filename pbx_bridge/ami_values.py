"""What the CRM may put into an AMI action: one safe alphabet for every value.

Asterisk expands ``${...}`` and ``$[...]`` in variables it later reads, and an
integrator's dialplan may hand a variable to ``System()`` or an AGI script; a CR or LF
in a header would start a new AMI command. So text that came from people (a visitor's
``utm_source``, a client's name) goes through :func:`ami_value`, which keeps letters,
digits, space and ``._-:/+@`` only, and every action passes :func:`check_action` on
its way out, which refuses the characters no value of ours ever needs.
"""

from __future__ import annotations

from typing import Any

SAFE_PUNCTUATION = frozenset("._-:/+@ ")
#: never in any header of an action the CRM sends (the structured ones included)
FORBIDDEN = frozenset("${};|`'\\\r\n\0")
_TRANSLIT = dict(zip(
    "абвгдеёжзийклмнопрстуфхцчшщъыьэюя",
    ["a", "b", "v", "g", "d", "e", "e", "zh", "z", "i", "i", "k", "l", "m", "n", "o", "p",
     "r", "s", "t", "u", "f", "kh", "ts", "ch", "sh", "shch", "", "y", "", "e", "yu", "ya"],
    strict=True,
))


class UnsafeActionError(ValueError):
    """An AMI action carried a character outside what the CRM ever sends."""


def ami_value(text: str, limit: int = 80) -> str:
    """``text`` reduced to the safe alphabet and at most ``limit`` characters.

    Cyrillic is transliterated (panoramisk writes AMI in ASCII, and phones show Latin
    reliably); every other character outside letters, digits, space and ``._-:/+@``
    becomes a space, and runs of spaces collapse."""
    out = []
    for char in text:
        lower = char.lower()
        if lower in _TRANSLIT:
            latin = _TRANSLIT[lower]
            out.append(latin.capitalize() if char != lower else latin)
        elif char.isascii() and (char.isalnum() or char in SAFE_PUNCTUATION):
            out.append(char)
        else:
            out.append(" ")
    return " ".join("".join(out).split())[:limit].strip()


def check_action(action: dict[str, Any]) -> dict[str, Any]:
    """``action`` unchanged, or :class:`UnsafeActionError` when a key or value holds a
    character no action of the CRM needs (the last guard before the wire)."""
    for key, value in action.items():
        values = value if isinstance(value, list | tuple) else [value]  # repeated headers
        for part in (str(key), *map(str, values)):
            bad = FORBIDDEN.intersection(part)
            if bad or not part.isascii():
                raise UnsafeActionError(
                    f"AMI action {action.get('Action')!r}: {key} holds unsafe characters")
    return action
