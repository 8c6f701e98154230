"""``telecrm backup DIR`` and ``telecrm restore DIR`` (administrators run them, e.g. from cron)."""

from __future__ import annotations

import argparse
import sys
from datetime import datetime
from pathlib import Path

from telecrm.cli_support import workday_timezone
from telecrm.messages import done
from telecrm.settings import Settings

BACKENDS = {"sqlite": "SQLite", "postgresql": "PostgreSQL"}


async def cmd_backup(args: argparse.Namespace, settings: Settings) -> int:
    from .service import make_backup

    report = await make_backup(settings, Path(args.dir))
    for problem in report.problems:
        call, path = problem["call_id"], problem["path"]
        if problem["problem"] == "checksum":
            said = done("backup.problem_checksum", call=call, path=path)
        elif problem["problem"] == "other_store":
            said = done("backup.problem_other_store", call=call, path=path,
                        backend=problem["backend"])
        else:
            said = done("backup.problem_missing", call=call, path=path)
        print(said, file=sys.stderr)
    print(done("backup.created", path=str(report.directory),
               backend=BACKENDS[report.backend], calls=report.tables.get("calls", 0),
               audit=report.tables.get("audit_log", 0), recordings=report.recordings))
    return 1 if report.problems else 0


async def cmd_restore(args: argparse.Namespace, settings: Settings) -> int:
    from .service import restore_backup

    report = await restore_backup(settings, Path(args.dir))
    try:
        created: datetime | str = datetime.fromisoformat(report.created_at).astimezone(
            workday_timezone(settings))
    except ValueError:
        created = report.created_at
    print(done("backup.restored", created=created, calls=report.tables.get("calls", 0),
               audit=report.tables.get("audit_log", 0)))
    if report.revision != report.head:
        print(done("backup.migrated", old=report.revision or "—", new=report.head or "—"))
    if report.stored or report.originals or report.in_bucket:
        print(done("backup.recordings_restored", stored=report.stored,
                   originals=report.originals,
                   bucket=report.in_bucket))
    return 0


def add_commands(sub: argparse._SubParsersAction,
                 common: argparse.ArgumentParser) -> None:
    backup = sub.add_parser(
        "backup", parents=[common],
        help="резервная копия: снимок базы данных, записи разговоров и опись с контрольными "
             "суммами (можно запускать при работающем сервере)")
    backup.add_argument("dir", metavar="DIR", help="новая или пустая папка для копии")
    backup.set_defaults(handler=cmd_backup)
    restore = sub.add_parser(
        "restore", parents=[common],
        help="восстановить резервную копию в пустую базу данных (сначала проверяются все "
             "контрольные суммы)")
    restore.add_argument("dir", metavar="DIR", help="папка резервной копии (telecrm backup)")
    restore.set_defaults(handler=cmd_restore)
