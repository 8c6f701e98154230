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
    # the call log's filters (telecrm.calls)
    "calls.filter_too_long": "Слишком длинное значение в поле «{label}».",
    "calls.bad_number_field": "В поле «{label}» нужно целое число, а не «{value}».",
    "calls.bad_choice": "В поле «{label}» нет варианта «{value}».",
    "calls.bad_moment": "«{value}» — не дата. Укажите дату в поле «{label}».",
    "calls.period_reversed": "Начало периода позже его конца.",
    "calls.period_too_long": "Выберите период не длиннее {days} дней.",
    "calls.unknown_manager": "Такого сотрудника нет в вашем списке.",
    "calls.unknown_team": "Такой команды нет в вашем списке.",
    "calls.unknown_client": "Такого клиента нет или он вам недоступен.",
    "calls.client_name_too_broad": "Под «{text}» подходит слишком много клиентов — "
                                   "уточните название.",
    "calls.bad_phone": "«{number}» — не номер телефона. Напишите номер целиком, "
                       "например +7 926 555-00-99.",
    "calls.recordings_not_allowed": "Фильтры по записям и проверкам скрипта недоступны "
                                    "для вашей роли.",
    "calls.log_not_allowed": "Журнал звонков недоступен для вашей роли: источники звонков "
                             "— в коллтрекинге.",
    "calls.bad_cursor": "Ссылка на страницу списка устарела — откройте список заново.",
    "calls.bad_sort": "Такой сортировки нет.",
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
