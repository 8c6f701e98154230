"""What an API token may do: read or write, feature by feature.

A scope is ``<feature>:read`` or ``<feature>:write``; write includes read (a system that
creates clients may also look them up). Which route belongs to which feature is the
application's table (``telecrm.integrations.scopes``).
"""

from __future__ import annotations

from collections.abc import Iterable

from crm_core.errors import DomainError

READ, WRITE = "read", "write"

# feature -> what the admin's form calls it
FEATURES: dict[str, str] = {
    "calls": "Звонки и записи",
    "clients": "Клиенты, контакты, заметки",
    "deals": "Сделки, счета, платежи, план",
    "tasks": "Задачи",
    "calltracking": "Коллтрекинг",
    "talktime": "Норма разговоров",
    "speech": "Расшифровки и проверка по скрипту (ККП)",
    "reports": "Отчёты",
    "people": "Пользователи",
    "presence": "Присутствие",
    "dialer": "Обзвон",
    "routing": "Звонки своему менеджеру",
    "wallboard": "Табло",
}
ACCESS: dict[str, str] = {READ: "чтение", WRITE: "запись"}


def scope(feature: str, access: str) -> str:
    return f"{feature}:{access}"


def normalize_scopes(given: Iterable[str]) -> list[str]:
    """The scopes as stored: known ones only, sorted, without repeats; write implies
    read, so ``clients:write`` is kept with ``clients:read`` beside it."""
    out: set[str] = set()
    for item in given:
        feature, _, access = item.strip().partition(":")
        if feature not in FEATURES or access not in ACCESS:
            raise DomainError("integrations.scope_unknown", f"unknown scope {item!r}",
                              scope=item)
        out.add(scope(feature, READ))
        if access == WRITE:
            out.add(scope(feature, WRITE))
    if not out:
        raise DomainError("integrations.scopes_missing", "choose at least one scope")
    return sorted(out)


def allows(scopes: Iterable[str], feature: str, access: str) -> bool:
    """Whether a token with ``scopes`` may ``access`` (read, write) ``feature``."""
    held = set(scopes)
    return scope(feature, access) in held or (access == READ and scope(feature, WRITE) in held)


def describe(scopes: Iterable[str]) -> list[str]:
    """Russian: «Клиенты, контакты, заметки — чтение и запись», one line per feature."""
    held = set(scopes)
    lines = []
    for feature, label in FEATURES.items():
        if scope(feature, WRITE) in held:
            lines.append(f"{label} — чтение и запись")
        elif scope(feature, READ) in held:
            lines.append(f"{label} — чтение")
    return lines
