"""``telecrm users list|edit|deactivate|reactivate|password``: people from the shell.

``users edit --device/--remove-device/--mobile/--remove-mobile`` add and take away a
user's phones (devices as Asterisk names them, mobile numbers); ``users list`` shows them.

The command line is the server's administrator: it may change anyone, and its
changes are audited with the actor ``cli``. Refusals are the domain's error codes,
printed as their Russian sentence (exit 2). ``NAME`` is the user's login.

Switching a user off or resetting his password ends his sessions in the database
at once. His open live-event streams end at once too when the web processes share a
Redis bus (``TELECRM_REDIS_URL``); otherwise within the stream's heartbeat (15 s),
when each stream checks that its session still exists.
"""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Callable
from datetime import datetime, time
from typing import TYPE_CHECKING, Any

from crm_core.clients.phones import format_phone
from telecrm.cli_support import (
    UsageError,
    database,
    print_rows,
    text_table,
    workday_timezone,
)
from telecrm.settings import Settings

if TYPE_CHECKING:
    from crm_core.people.management import Keep

log = logging.getLogger(__name__)

ROLES = ["manager", "supervisor", "marketer", "admin"]
ROLE_NAMES = {"manager": "менеджер", "supervisor": "руководитель", "marketer": "маркетолог",
              "admin": "администратор"}


def user_row(user: Any) -> dict[str, Any]:
    """A user as ``users list --format json`` prints him."""
    return {"username": user.username, "name": user.name, "role": user.role,
            "team": user.team.name if user.team is not None else None,
            "extension": user.extension, "devices": user.devices, "mobiles": user.mobiles,
            "active": user.active, "heads_team": user.heads_team,
            "must_change_password": user.must_change_password,
            "created_at": user.created_at.isoformat()}


def _table(rows: list[dict[str, Any]]) -> str:
    """A plain-text table a person reads in a terminal."""
    head = ["Логин", "Имя", "Роль", "Отдел", "Внутр.", "Телефоны", "Состояние"]
    body = [[r["username"], r["name"], ROLE_NAMES.get(r["role"], r["role"]), r["team"] or "—",
             r["extension"] or "—",
             ", ".join([*r["devices"], *(format_phone(m) for m in r["mobiles"])]) or "—",
             ("активен" if r["active"] else "отключён")
             + (", сменит пароль" if r["must_change_password"] else "")] for r in rows]
    return text_table(head, body)


async def _announce_signed_out(settings: Settings, user_id: int) -> None:
    """Tell the web processes (through Redis) to end the user's live streams now."""
    if not settings.redis_url:
        return
    from telecrm.bus import BusError, RedisBus
    from telecrm.live_events import PEOPLE_TOPIC, signed_out_message

    bus = RedisBus(settings.redis_url)
    try:
        await bus.publish(PEOPLE_TOPIC, signed_out_message(user_id))
    except BusError as exc:
        log.warning("the web processes were not told at once (their heartbeat will): %s", exc)
    finally:
        await bus.close()


async def cmd_users_list(args: argparse.Namespace, settings: Settings) -> int:
    from crm_core.people.management import list_users

    async with database(settings, writer=False) as sessions:
        async with sessions() as session:
            rows = [user_row(u) for u in await list_users(session)]
    print_rows(rows, args.format, _table, "Пользователей нет.")
    return 0


async def _team_by_name(session: Any, name: str) -> int | None:
    """The team called ``name`` (created on first use, as ``users add`` does); "" is none."""
    from sqlalchemy import select

    from crm_core.people.management import create_team
    from crm_core.people.models import Team

    name = name.strip()
    if not name:
        return None
    team_id = await session.scalar(select(Team.id).where(Team.name == name))
    return team_id if team_id is not None else (await create_team(session, None, name)).id


def _edited(current: list[str], add: list[str] | None, remove: list[str] | None,
            clean: Callable[[str], str]) -> list[str] | Keep:
    """His list after ``--device``/``--remove-device`` (or the mobile pair); KEEP if untouched.

    Values are compared as stored (``pjsip/ivanov`` is ``PJSIP/ivanov``, any written form
    of a mobile is its E.164), so a removal matches however it was typed.
    """
    from crm_core.people.management import KEEP

    if add is None and remove is None:
        return KEEP
    gone = {clean(value) for value in remove or []}
    return [v for v in current if v not in gone] + [v for v in add or [] if v.strip()]


async def cmd_users_edit(args: argparse.Namespace, settings: Settings) -> int:
    from crm_core.people.management import KEEP, UserChange, edit_user, find_user
    from crm_core.people.users import validate_device, validate_mobile

    phones = (args.devices, args.remove_devices, args.mobiles, args.remove_mobiles)
    if all(v is None for v in (args.full_name, args.role, args.team, args.extension, *phones)):
        raise UsageError("cli.users_nothing_to_change",
                         "nothing to change: give --name, --role, --team, --extension, "
                         "--device or --mobile")
    async with database(settings) as sessions:
        async with sessions() as session, session.begin():
            user = await find_user(session, args.username)
            change = UserChange(
                name=args.full_name, role=args.role,
                team_id=await _team_by_name(session, args.team) if args.team is not None
                else KEEP,
                extension=(args.extension.strip() or None) if args.extension is not None
                else KEEP,
                devices=_edited(user.devices, args.devices, args.remove_devices,
                                validate_device),
                mobiles=_edited(user.mobiles, args.mobiles, args.remove_mobiles,
                                validate_mobile))
            changes = await edit_user(session, None, user, change)
    if not changes:
        print(f"{user.username}: ничего не изменилось")
        return 0
    shown = {"name": "имя", "role": "роль", "team": "отдел", "extension": "внутренний номер",
             "heads_team": "руководит отделом", "devices": "телефоны",
             "mobiles": "мобильные"}
    for field, (old, new) in changes.items():
        if isinstance(new, list):
            old, new = ", ".join(old), ", ".join(new)
        if field == "role":
            old, new = ROLE_NAMES.get(old, old), ROLE_NAMES.get(new, new)
        if isinstance(new, bool):
            old, new = ("да" if old else "нет"), ("да" if new else "нет")
        print(f"{user.username}: {shown.get(field, field)}: {old or '—'} → {new or '—'}")
    return 0


async def cmd_users_deactivate(args: argparse.Namespace, settings: Settings) -> int:
    from crm_core.people.management import deactivate_user, find_user

    async with database(settings) as sessions:
        async with sessions() as session, session.begin():
            user = await find_user(session, args.username)
            ended = await deactivate_user(session, None, user)
    await _announce_signed_out(settings, user.id)
    print(f"Пользователь {user.username} ({user.name}) отключён: войти больше не может, "
          f"завершено сеансов: {ended}. Звонки, клиенты и задачи сохранены.")
    return 0


async def cmd_users_reactivate(args: argparse.Namespace, settings: Settings) -> int:
    from crm_core.people.management import find_user, reactivate_user

    async with database(settings) as sessions:
        async with sessions() as session, session.begin():
            user = await find_user(session, args.username)
            await reactivate_user(session, None, user)
    print(f"Пользователь {user.username} ({user.name}) снова может входить.")
    return 0


async def cmd_users_password(args: argparse.Namespace, settings: Settings) -> int:
    """Print a temporary password (alone on stdout); he must change it at his next sign-in."""
    from crm_core.people.management import find_user, reset_password
    from telecrm.passwords import hash_password, temporary_password

    temporary = temporary_password()
    async with database(settings) as sessions:
        async with sessions() as session, session.begin():
            user = await find_user(session, args.username)
            ended = await reset_password(session, None, user,
                                         hash_password(temporary, settings.password_hashing))
    await _announce_signed_out(settings, user.id)
    print(temporary)
    print(f"Это временный пароль для логина {user.username} ({user.name}): при следующем "
          f"входе его нужно будет сменить. Завершено сеансов: {ended}.", file=sys.stderr)
    return 0


def since_moment(value: str | None, settings: Settings) -> datetime | None:
    """``--since YYYY-MM-DD``: the start of that day where the sales floor works."""
    if value is None:
        return None
    from datetime import date

    try:
        day = date.fromisoformat(value)
    except ValueError:
        raise UsageError("cli.not_a_date", f"--since {value!r} is not a date (YYYY-MM-DD)",
                         value=value) from None
    return datetime.combine(day, time(0), tzinfo=workday_timezone(settings))


def add_actions(users_sub: argparse._SubParsersAction, common: argparse.ArgumentParser) -> None:
    """Register ``list``, ``edit``, ``deactivate``, ``reactivate`` and ``password``."""
    ls = users_sub.add_parser("list", parents=[common], help="все пользователи, сначала активные")
    ls.add_argument("--format", choices=["table", "json"], default="table",
                    help="таблица для человека или JSON для программ")
    ls.set_defaults(handler=cmd_users_list)

    ed = users_sub.add_parser("edit", parents=[common],
                              help="изменить имя, роль, отдел или внутренний номер (с записью в "
                                   "журнал)")
    ed.add_argument("username", metavar="NAME", help="логин пользователя")
    ed.add_argument("--name", dest="full_name", help="имя, как его показывает CRM")
    ed.add_argument("--role", choices=ROLES, help="новая роль")
    ed.add_argument("--team", help='отдел (создаётся, если его нет); "" — без отдела')
    ed.add_argument("--extension", help='внутренний номер из 2–8 цифр; "" — без номера')
    ed.add_argument("--device", dest="devices", action="append", metavar="TECH/RESOURCE",
                    help="добавить его телефон, как его называет Asterisk (PJSIP/ivanov); можно "
                         "несколько раз")
    ed.add_argument("--remove-device", dest="remove_devices", action="append",
                    metavar="TECH/RESOURCE", help="убрать у него телефон; можно несколько раз")
    ed.add_argument("--mobile", dest="mobiles", action="append", metavar="NUMBER",
                    help="добавить его мобильный номер; можно несколько раз")
    ed.add_argument("--remove-mobile", dest="remove_mobiles", action="append",
                    metavar="NUMBER", help="убрать у него мобильный номер; можно несколько раз")
    ed.set_defaults(handler=cmd_users_edit)

    off = users_sub.add_parser(
        "deactivate", parents=[common],
        help="отключить пользователя: вход закрыт, сеансы завершены; звонки, клиенты и задачи "
             "остаются")
    off.add_argument("username", metavar="NAME", help="логин пользователя")
    off.set_defaults(handler=cmd_users_deactivate)

    on = users_sub.add_parser("reactivate", parents=[common],
                              help="снова разрешить пользователю вход")
    on.add_argument("username", metavar="NAME", help="логин пользователя")
    on.set_defaults(handler=cmd_users_reactivate)

    pw = users_sub.add_parser(
        "password", parents=[common],
        help="выдать временный пароль; при следующем входе его нужно сменить")
    pw.add_argument("username", metavar="NAME", help="логин пользователя")
    pw.set_defaults(handler=cmd_users_password)
