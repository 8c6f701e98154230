"""``telecrm pbx add|edit|list|disable|enable``: the PBXs of a company with branches.

A PBX is never deleted (its name labels its calls): ``pbx disable`` stops listening to
it. The AMI secret is stored as given and never printed, listed or shown on a page.
``serve`` reads the PBXs when it starts: restart it after a change.
"""

from __future__ import annotations

import argparse
from typing import Any

from crm_core.calls.snapshot import DEFAULT_PBX
from crm_core.errors import DomainError
from crm_core.pbxes.services import (
    add_pbx,
    describe_pbx,
    edit_pbx,
    list_pbxes,
    set_pbx_enabled,
)
from telecrm.cli_support import database, print_json, text_table
from telecrm.messages import done
from telecrm.settings import Settings

SERVE = "telecrm serve"  # the command to restart, named in the sentences


def _port(value: str | None) -> int | None:
    """The port as typed; anything but a number is the domain's refusal, in Russian."""
    if value is None:
        return None
    try:
        return int(value.strip())
    except ValueError:
        raise DomainError("pbx.bad_port", f"bad AMI port {value!r}", port=value) from None


def _table(rows: list[dict[str, Any]]) -> str:
    head = ["АТС", "Адрес AMI", "Пользователь", "Записи", "Состояние"]
    body = [[r["name"], f"{r['host']}:{r['port']}", r["user"],
             r["recordings_source"] or "как у основной",
             "включена" if r["enabled"] else "отключена"] for r in rows]
    return text_table(head, body)


async def cmd_pbx_add(args: argparse.Namespace, settings: Settings) -> int:
    async with database(settings) as sessions:
        async with sessions() as session, session.begin():
            pbx = await add_pbx(session, args.name, host=args.host, port=_port(args.port) or 0,
                                username=args.user, secret=args.secret,
                                recordings_source=args.recordings_source)
    print(done("pbx.added", pbx=pbx.name, address=f"{pbx.host}:{pbx.port}", command=SERVE))
    return 0


async def cmd_pbx_edit(args: argparse.Namespace, settings: Settings) -> int:
    async with database(settings) as sessions:
        async with sessions() as session, session.begin():
            pbx = await edit_pbx(session, args.name, host=args.host, port=_port(args.port),
                                 username=args.user, secret=args.secret,
                                 recordings_source=args.recordings_source)
    print(done("pbx.edited", pbx=pbx.name, command=SERVE))
    return 0


async def cmd_pbx_switch(args: argparse.Namespace, settings: Settings) -> int:
    enabled = args.pbx_command == "enable"
    async with database(settings) as sessions:
        async with sessions() as session, session.begin():
            pbx = await set_pbx_enabled(session, args.name, enabled)
    print(done("pbx.enabled" if enabled else "pbx.disabled", pbx=pbx.name, command=SERVE))
    return 0


async def cmd_pbx_list(args: argparse.Namespace, settings: Settings) -> int:
    async with database(settings, writer=False) as sessions:
        async with sessions() as session:
            rows = [describe_pbx(pbx) for pbx in await list_pbxes(session)]
    if not any(row["name"] == DEFAULT_PBX for row in rows):
        rows.insert(0, {"name": DEFAULT_PBX, "host": settings.ami_host,
                        "port": settings.ami_port, "user": settings.ami_user,
                        "recordings_source": str(settings.recordings_source),
                        "enabled": True, "from_settings": True})
    if args.format == "json":
        print_json({"pbxes": rows})
    else:
        print(_table(rows))
    return 0


def add_commands(sub: argparse._SubParsersAction,  # type: ignore[type-arg]
                  common: argparse.ArgumentParser) -> None:
    pbx = sub.add_parser("pbx", help="АТС компании с филиалами (у каждой свой приём событий AMI)")
    pbx_sub = pbx.add_subparsers(dest="pbx_command", required=True, metavar="ACTION")

    add = pbx_sub.add_parser("add", parents=[common], help="добавить АТС")
    add.add_argument("name", help="короткое латинское имя (msk, spb): им помечаются звонки")
    add.add_argument("--host", required=True, help="адрес AMI")
    add.add_argument("--port", default="5038", help="порт AMI (по умолчанию 5038)")
    add.add_argument("--user", required=True, help="пользователь AMI (раздел manager.conf)")
    add.add_argument("--secret", required=True,
                     help="пароль AMI (хранится, но нигде не показывается)")
    add.add_argument("--recordings-source", metavar="DIR",
                     help="куда MixMonitor этой АТС пишет записи, как эту папку видит сервер CRM "
                          "(по умолчанию TELECRM_RECORDINGS_SOURCE)")
    add.set_defaults(handler=cmd_pbx_add)

    edit = pbx_sub.add_parser("edit", parents=[common], help="изменить подключение к АТС")
    edit.add_argument("name")
    edit.add_argument("--host")
    edit.add_argument("--port")
    edit.add_argument("--user")
    edit.add_argument("--secret")
    edit.add_argument("--recordings-source", metavar="DIR")
    edit.set_defaults(handler=cmd_pbx_edit)

    for action, text in (("disable", "перестать слушать АТС (её звонки остаются)"),
                         ("enable", "снова слушать отключённую АТС")):
        switch = pbx_sub.add_parser(action, parents=[common], help=text)
        switch.add_argument("name")
        switch.set_defaults(handler=cmd_pbx_switch)

    lst = pbx_sub.add_parser("list", parents=[common], help="список АТС (без паролей)")
    lst.add_argument("--format", choices=["table", "json"], default="table")
    lst.set_defaults(handler=cmd_pbx_list)
