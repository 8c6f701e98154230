"""Domain error codes to Russian sentences and HTTP statuses: the one table.

Every :class:`~crm_core.errors.DomainError` raised anywhere has its code here; the
web layer (JSON and pages) and the command line print :func:`russian` of it, so a
user reads the same sentence wherever he meets the refusal. A test checks that each
code raised in the source has its sentence.
"""

from __future__ import annotations

import logging
import string

from crm_core.errors import DomainError, Kind

log = logging.getLogger(__name__)

STATUS: dict[Kind, int] = {"invalid": 400, "forbidden": 403, "not_found": 404,
                           "conflict": 409}

GENERIC: dict[Kind, str] = {
    "invalid": "Неверные данные.",
    "forbidden": "Недостаточно прав.",
    "not_found": "Не найдено.",
    "conflict": "Изменение противоречит уже сохранённым данным.",
}

# code -> sentence; ``{name}`` is filled from the error's params.
MESSAGES: dict[str, str] = {
}


class _Lenient(dict[str, object]):
    def __missing__(self, key: str) -> str:
        return "…"


def russian(exc: DomainError) -> str:
    """The sentence a user reads for ``exc``."""
    template = MESSAGES.get(exc.code)
    if template is None:
        log.warning("no Russian sentence for error code %r (%s)", exc.code, exc)
        return GENERIC[exc.kind]
    return string.Formatter().vformat(template, (), _Lenient(exc.params))


def http_status(exc: DomainError) -> int:
    return STATUS[exc.kind]
