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
    # the client card: notes, logged contacts (crm_core.activities.notes)
    "activities.empty_note": "Напишите текст заметки.",
    "activities.empty_result": "Опишите, о чём было письмо или чем закончилась встреча.",
    "activities.too_long": "Слишком длинный текст: не больше {limit} знаков.",
    "activities.no_client": "Такого клиента нет.",
    "activities.unknown_kind": "Выберите: письмо отправлено, письмо получено или встреча.",
    "activities.bad_time": "Укажите дату и время.",
    "activities.in_future": "Контакт ещё не состоялся: время не может быть в будущем.",
    "activities.not_yours": "Убрать запись может её автор или руководитель.",
    # call outcomes (crm_core.activities.outcomes)
    "outcomes.not_allowed": "Список итогов меняет руководитель или администратор.",
    "outcomes.empty_name": "Укажите название итога.",
    "outcomes.too_long": "Слишком длинное название: не больше {limit} знаков.",
    "outcomes.name_taken": "Итог «{name}» уже есть в списке.",
    "outcomes.not_found": "Такого итога нет в списке.",
    "outcomes.archived": "Итог «{name}» убран в архив: выберите другой.",
    "outcomes.not_a_client_call": "У внутреннего звонка итога не бывает.",
    "outcomes.call_in_progress": "Звонок ещё идёт: итог указывается после него.",
    # tasks (crm_core.sales.tasks)
    "tasks.due_in_past": "Это время уже прошло: выберите срок в будущем.",
    "tasks.assignee_not_in_team": "{name} не из вашего отдела: выберите менеджера своего "
                                  "отдела.",
    # people: users, teams, passwords (crm_core.people, telecrm.passwords)
    "people.admin_only": "Пользователями и отделами управляет администратор.",
    "people.user_not_found": "Пользователя «{username}» нет.",
    "people.team_not_found": "Такого отдела нет.",
    "people.username_invalid": "Логин — от 1 до 100 символов без пробелов.",
    "people.username_taken": "Логин «{username}» уже занят.",
    "people.role_unknown": "Неизвестная роль «{role}»: выберите менеджера, руководителя, "
                           "маркетолога или администратора.",
    "people.extension_invalid": "Внутренний номер — 3 или 4 цифры, а не «{extension}».",
    "people.extension_taken": "Внутренний номер {extension} уже занят: он у пользователя "
                              "{user}.",
    "people.name_empty": "Укажите имя.",
    "people.team_name_empty": "Укажите название отдела.",
    "people.team_name_taken": "Отдел «{team}» уже есть.",
    "people.last_admin": "{user} — последний действующий администратор: без него "
                         "пользователями некому будет управлять.",
    "people.deactivate_self": "Отключить самого себя нельзя.",
    "people.already_inactive": "Пользователь {user} уже отключён.",
    "people.already_active": "Пользователь {user} и так активен.",
    "people.head_not_supervisor": "Руководителем отдела может быть только действующий "
                                  "пользователь с ролью «Руководитель», а {user} — нет.",
    "people.password_short": "Пароль должен быть не короче {min} символов.",
    "people.password_wrong": "Текущий пароль введён неверно.",
    "people.password_mismatch": "Новый пароль и его повтор не совпадают.",
    "people.password_same": "Новый пароль должен отличаться от прежнего.",
    "people.password_change_required": "Сначала смените временный пароль: до этого "
                                       "остальное недоступно.",
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
