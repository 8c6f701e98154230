"""``telecrm tokens``: API tokens from the shell, the services of ``/admin/tokens``.

- ``telecrm tokens create --name N --user LOGIN --scope calls:read [--scope ...]``: a new
  token acting as that user within its scopes; the token alone is printed on stdout
  (``TOKEN=$(telecrm tokens create ...)``), shown this once; the sentence goes to stderr;
- ``telecrm tokens list [--format table|json]``: every token, live ones first, by their
  first characters (never the token);
- ``telecrm tokens revoke ID``: revoke one for good (it stays listed, revoked).

Audited as the pages are, with ``cli`` as the actor.
"""

from __future__ import annotations

import argparse
import sys
from typing import Any

from crm_core.integrations.scopes import ACCESS, FEATURES
from telecrm.cli_support import UsageError, database, print_rows, text_table
from telecrm.messages import done
from telecrm.settings import Settings


def token_row(row: Any) -> dict[str, Any]:
    """A token as ``tokens list --format json`` prints it: never the token itself."""
    return {"id": row.id, "name": row.name, "prefix": row.prefix, "user": row.user.username,
            "scopes": list(row.scopes),
            "created_at": row.created_at.isoformat(),
            "last_used_at": row.last_used_at.isoformat() if row.last_used_at else None,
            "revoked_at": row.revoked_at.isoformat() if row.revoked_at else None}


def _table(rows: list[dict[str, Any]]) -> str:
    head = ["№", "Название", "Начало токена", "Пользователь", "Права", "Последний запрос",
            "Состояние"]
    body = [[r["id"], r["name"], r["prefix"] + "…", r["user"], " ".join(r["scopes"]),
             (r["last_used_at"] or "—")[:16].replace("T", " "),
             "отозван" if r["revoked_at"] else "действует"] for r in rows]
    return text_table(head, body)


async def cmd_create(args: argparse.Namespace, settings: Settings) -> int:
    from sqlalchemy import select

    from crm_core.integrations.tokens import create_token
    from crm_core.people.models import User

    async with database(settings) as sessions:
        async with sessions() as session, session.begin():
            user = await session.scalar(select(User).where(User.username == args.user))
            if user is None:
                raise UsageError("integrations.token_user_unknown", f"no user {args.user!r}")
            row, token = await create_token(session, name=args.name, user_id=user.id,
                                            scopes=args.scope or [], actor=None)
            name, username = row.name, user.username
    print(done("tokens.created", name=name, user=username), file=sys.stderr)
    print(token)
    return 0


async def cmd_list(args: argparse.Namespace, settings: Settings) -> int:
    from crm_core.integrations.tokens import list_tokens

    async with database(settings, writer=False) as sessions:
        async with sessions() as session:
            rows = [token_row(row) for row in await list_tokens(session)]
    print_rows(rows, args.format, _table, "Токенов нет.")
    return 0


async def cmd_revoke(args: argparse.Namespace, settings: Settings) -> int:
    from crm_core.integrations.tokens import revoke_token

    async with database(settings) as sessions:
        async with sessions() as session, session.begin():
            row = await revoke_token(session, args.token_id, actor=None)
            name = row.name
    print(done("tokens.revoked", name=name))
    return 0


def add_commands(sub: argparse._SubParsersAction, common: argparse.ArgumentParser) -> None:
    tokens = sub.add_parser("tokens", help="API-токены для других систем")
    tokens_sub = tokens.add_subparsers(dest="tokens_command", required=True, metavar="ACTION")
    scopes = ", ".join(f"{f}:{a}" for f in FEATURES for a in ACCESS)
    create = tokens_sub.add_parser(
        "create", parents=[common],
        help="создать токен: он выводится один раз, сохраните его")
    create.add_argument("--name", required=True, help="название (кто и зачем им пользуется)")
    create.add_argument("--user", required=True, metavar="LOGIN",
                        help="пользователь, от имени которого действует токен")
    create.add_argument("--scope", action="append", metavar="SCOPE",
                        help=f"право (можно несколько раз; запись включает чтение): {scopes}")
    create.set_defaults(handler=cmd_create)
    ls = tokens_sub.add_parser("list", parents=[common],
                               help="все токены, сначала действующие (без самих токенов)")
    ls.add_argument("--format", choices=["table", "json"], default="table",
                    help="таблица для человека или JSON для программ")
    ls.set_defaults(handler=cmd_list)
    rv = tokens_sub.add_parser("revoke", parents=[common], help="отозвать токен навсегда")
    rv.add_argument("token_id", type=int, metavar="ID", help="номер токена из tokens list")
    rv.set_defaults(handler=cmd_revoke)
