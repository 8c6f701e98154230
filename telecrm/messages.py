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
    # clients (crm_core.clients, telecrm.clients)
    "clients.name_required": "Укажите название клиента.",
    "clients.contact_name_required": "Укажите имя контактного лица.",
    "clients.too_long": "Слишком длинное значение: сократите его и сохраните ещё раз.",
    "clients.unknown_field": "Такого поля в карточке клиента нет.",
    "clients.not_text": "Поля карточки заполняются текстом.",
    "clients.inn_invalid": "ИНН «{inn}» неверный: нужно 10 цифр у организации или 12 у "
                           "предпринимателя, и контрольные цифры должны сходиться.",
    "clients.kpp_invalid": "КПП «{kpp}» неверный: нужно 9 знаков, например 773601001.",
    "clients.email_invalid": "«{email}» — не адрес электронной почты.",
    "clients.phone_invalid": "«{phone}» — не номер телефона.",
    "clients.phone_extension": "«{phone}» — внутренний номер сотрудника, а не телефон клиента.",
    "clients.phone_taken": "Этот номер уже у клиента «{client}» ({phone}).",
    "clients.contact_not_found": "Такого контактного лица у клиента нет.",
    "clients.bad_cursor": "Ссылка на страницу списка устарела: откройте список заново.",
    "clients.bad_filter": "Неверный фильтр списка клиентов.",
    "clients.not_found": "Такого клиента нет или он вам недоступен.",
    "clients.not_for_role": "Клиенты недоступны для вашей роли.",
    "clients.edit_not_allowed": "Менять эту карточку может её ответственный менеджер или "
                                "его руководитель.",
    "clients.owner_invalid": "Ответственным можно назначить только менеджера своего отдела.",
    "clients.potential_invalid": "«{value}» — не сумма годового потенциала.",
    "clients.potential_not_allowed": "Годовой потенциал задаёт руководитель отдела.",
    "clients.contact_archive_not_allowed": "Убрать контактное лицо в архив может руководитель "
                                           "или администратор.",
    "clients.merge_same": "Нельзя объединить клиента с самим собой.",
    "clients.merge_archived": "Клиент «{client}» в архиве: объединять можно только работающих "
                              "клиентов.",
    "clients.merge_not_allowed": "Объединять клиентов может руководитель или администратор.",
    "clients.merge_not_in_team": "Клиент «{client}» не из вашего отдела.",
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
