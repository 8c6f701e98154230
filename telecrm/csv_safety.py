"""The one CSV writer of the product: every export goes through it, no cell runs as a formula.

Excel (and LibreOffice, Google Sheets) runs a cell starting with ``=``, ``+``, ``-``, ``@``
(or a tab or carriage return) as a formula; such text gets an apostrophe, which the
spreadsheet shows as text (OWASP: CSV injection). A plain number (``-5``, ``+7.5``,
an ``int`` or ``float``) stays a number. Text in exports comes from anonymous visitors
(UTM tags), clients' names and users' input, so no export may write a cell by itself:
:func:`writer` and :class:`DictWriter` make every cell :func:`inert`, and a test checks
that no module of the product calls :mod:`csv`'s writers directly.
"""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Iterable, Mapping
from typing import Any

FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")
_NUMBER = re.compile(r"[+-]?(?:[0-9]+(?:[.,][0-9]*)?|[.,][0-9]+)(?:[eE][+-]?[0-9]+)?")


def inert(value: Any) -> Any:
    """``value`` as a safe CSV cell: empty for None, formula-like text made inert."""
    if value is None:
        return ""
    if isinstance(value, str) and value.startswith(FORMULA_STARTS) \
            and not _NUMBER.fullmatch(value):
        return "'" + value
    return value


class SafeWriter:
    """:func:`csv.writer` whose every cell is :func:`inert`."""

    def __init__(self, out: Any, **fmt: Any) -> None:
        self._writer = csv.writer(out, **fmt)

    def writerow(self, row: Iterable[Any]) -> Any:
        return self._writer.writerow([inert(cell) for cell in row])

    def writerows(self, rows: Iterable[Iterable[Any]]) -> None:
        for row in rows:
            self.writerow(row)


def writer(out: Any, **fmt: Any) -> SafeWriter:
    """A CSV writer on ``out`` (``csv.writer``'s format arguments) that writes no formula."""
    return SafeWriter(out, **fmt)


class DictWriter(csv.DictWriter):  # type: ignore[type-arg]
    """:class:`csv.DictWriter` whose every cell (header included) is :func:`inert`."""

    def writerow(self, rowdict: Mapping[str, Any]) -> Any:
        return super().writerow({key: inert(value) for key, value in rowdict.items()})

    def writerows(self, rowdicts: Iterable[Mapping[str, Any]]) -> None:
        for row in rowdicts:
            self.writerow(row)


def csv_text(rows: Iterable[Iterable[Any]], **fmt: Any) -> str:
    """Rows as CSV text (lines end with ``\\n`` unless ``lineterminator`` says otherwise)."""
    out = io.StringIO()
    writer(out, **{"lineterminator": "\n", **fmt}).writerows(rows)
    return out.getvalue()
