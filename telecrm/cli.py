"""The ``telecrm`` command line.

Every command takes ``--db URL``. Bad input ends with one clear sentence on
stderr (``telecrm: <the Russian sentence of telecrm.messages>``, exit status 2),
never a traceback.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import signal
import sys
from collections.abc import Sequence
from datetime import date, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

from crm_core.clock import local_today
from crm_core.errors import DomainError
from telecrm.cli_support import (
    Command,
    UsageError,
    database,
    open_sessions,
    parse_moment,
    print_json,
    upgrade_schema,
    workday_timezone,
)
from telecrm.logs import configure_logging
from telecrm.messages import done, russian, sentence
from telecrm.settings import Settings, SettingsError, describe

# -- commands -------------------------------------------------------------------

async def cmd_db_upgrade(args: argparse.Namespace, settings: Settings) -> int:
    await upgrade_schema(settings, quiet=False)
    print(done("db.upgraded"))
    return 0


async def cmd_clients_import(args: argparse.Namespace, settings: Settings) -> int:
    from crm_core.clients.importing import import_clients_csv

    path = Path(args.file)
    if not path.is_file():
        raise UsageError("cli.no_such_file", f"no such file: {path}", path=str(path))
    async with database(settings) as sessions:
        async with sessions() as session, session.begin():
            report = await import_clients_csv(session, path)
    print(done("clients.imported", imported=report.imported, updated=report.updated))
    for error in report.errors:
        print(sentence("clients.import.row", {"line": error.line, "error": error.error}),
              file=sys.stderr)
    if report.errors:
        print(done("clients.rows_skipped", rows=len(report.errors)), file=sys.stderr)
        return 1
    return 0


async def cmd_calls_export(args: argparse.Namespace, settings: Settings) -> int:
    from crm_core.calls.services import export_calls
    from telecrm.wiring import call_hooks

    tz = workday_timezone(settings)
    since = parse_moment(args.since, tz) if args.since else None
    until = parse_moment(args.until, tz, end=True) if args.until else None
    async with database(settings, writer=False) as sessions:
        async with sessions() as session:
            async for call in export_calls(session, since, until,
                                           include_in_progress=args.include_in_progress,
                                           hooks=call_hooks()):
                sys.stdout.write(json.dumps(call, ensure_ascii=False) + "\n")
    return 0


async def cmd_ami_replay(args: argparse.Namespace, settings: Settings) -> int:
    from pbx_bridge.replay import replay
    from pbx_bridge.store import CallStore
    from pbx_bridge.tracker import CallTracker
    from telecrm.pbxes.targets import replay_target
    from telecrm.wiring import call_hooks, party_rules

    paths = [Path(p) for p in args.files]
    for path in paths:
        if not path.is_file():
            raise UsageError("cli.no_such_file", f"no such file: {path}", path=str(path))
    async with database(settings) as sessions:
        async with sessions() as session:
            rules = await party_rules(session, settings)
            target = await replay_target(session, settings, args.pbx)
        tracker = CallTracker(rules)
        store = CallStore(sessions, call_hooks(), recordings_root=target.recordings_source,
                          pbx=target.name)
        start = parse_moment(args.start, workday_timezone(settings)) if args.start else None
        stats = await replay(paths, store, tracker, start=start)
    print(done("ami.replayed", events=stats.events, ended=stats.calls_ended,
               open=stats.calls_open))
    return 0


async def cmd_users_add(args: argparse.Namespace, settings: Settings) -> int:
    from crm_core.people.management import claim_headless_team, set_user_phones
    from crm_core.people.users import add_user
    from telecrm.passwords import hash_password
    from telecrm.people.cli import ROLE_NAMES, since_moment

    since = since_moment(args.since, settings)
    password_hash = (hash_password(args.password, settings.password_hashing)
                     if args.password else None)
    async with database(settings) as sessions:
        async with sessions() as session, session.begin():
            user = await add_user(
                session, args.username, name=args.full_name or args.username,
                role=args.role, extension=args.extension, team=args.team,
                password_hash=password_hash, created_at=since)
            await claim_headless_team(session, user)
            await set_user_phones(session, user, args.devices or [], args.mobiles or [])
    print(done("users.created", username=user.username,
               role=ROLE_NAMES.get(user.role, user.role)))
    return 0


async def cmd_talktime(args: argparse.Namespace, settings: Settings) -> int:
    from sqlalchemy import select

    from crm_core.people.models import Role, User
    from crm_core.talktime.metric import Rules, day_report
    from crm_core.timestamps import utcnow

    tz = workday_timezone(settings)
    day = _parse_date(args.date, tz)
    async with database(settings, writer=False) as sessions:
        async with sessions() as session:
            managers = list(await session.scalars(select(User).where(
                User.role == Role.MANAGER.value, User.active.is_(True)).order_by(User.extension)))
            rows = await day_report(session, managers, day, tz, now=utcnow(),
                                    default=Rules())
    print_json(rows)
    return 0


async def cmd_talktime_close_day(args: argparse.Namespace, settings: Settings) -> int:
    from sqlalchemy import select

    from crm_core.people.models import Role, User
    from crm_core.talktime.metric import close_day

    tz = workday_timezone(settings)
    day = _parse_date(args.date, tz, default=local_today(tz) - timedelta(days=1))
    if day >= local_today(tz):
        raise UsageError("talktime.day_not_over", f"{day} has not ended yet; close only past days",
                         day=day)
    async with database(settings) as sessions:
        async with sessions() as session, session.begin():
            managers = list(await session.scalars(select(User).where(
                User.role == Role.MANAGER.value, User.active.is_(True))))
            created = await close_day(session, managers, day, tz, actor="close-day")
    print(done("talktime.day_closed", day=day, count=len(created)))
    return 0


def _parse_date(value: str | None, tz: ZoneInfo, default: date | None = None) -> date:
    if not value:
        return default or local_today(tz)
    try:
        return date.fromisoformat(value)
    except ValueError as exc:
        raise UsageError("cli.not_a_date", f"{value!r} is not a date (YYYY-MM-DD)",
                         value=value) from exc


async def cmd_recordings(args: argparse.Namespace, settings: Settings) -> int:
    """Finalize the backlog of recordings (or retry failed ones), or apply retention."""
    from crm_core.recordings.jobs import retry_failed
    from recordings.retention import apply_retention
    from recordings.store import open_store
    from recordings.worker import FinalizeWorker
    from telecrm.app import recordings_config

    config = recordings_config(settings)
    try:
        store = open_store(config)
    except ValueError as exc:
        raise UsageError("cli.recordings_store", f"TELECRM_RECORDINGS_STORE: {exc}",
                         reason=str(exc)) from None
    async with database(settings) as sessions:
        if args.recordings_command == "retention":
            removed = await apply_retention(sessions, store, config.retention_days)
            print(done("recordings.retention_done", removed=len(removed)))
            return 0
        from telecrm.pbxes.targets import pbx_targets

        async with sessions() as session:
            if args.retry_failed:
                await retry_failed(session)
            roots = {t.name: t.recordings_source for t in await pbx_targets(session, settings)}
        worker = FinalizeWorker(sessions, settings.recordings_source, store, config,
                                pbx_roots=roots)
        totals: dict[str, int] = {}
        while outcomes := await worker.run_once():  # until nothing is due right now
            for key, n in outcomes.items():
                totals[key] = totals.get(key, 0) + n
            if not set(outcomes) <= {"stored", "failed"}:
                break  # the rest is backing off: a later run (or `serve`) takes it
    if totals:
        stored, failed = totals.get("stored", 0), totals.get("failed", 0)
        print(done("recordings.finalized", stored=stored, failed=failed,
                   waiting=sum(totals.values()) - stored - failed))
    else:
        print(done("recordings.nothing_to_finalize"))
    return 1 if totals.get("failed") else 0


async def cmd_serve(args: argparse.Namespace, settings: Settings) -> int:
    from telecrm.app import run_app

    # Neither flag: both roles, as one machine runs them.
    web_role = args.web or not args.listener
    listener_role = args.listener or not args.web
    stopped_by = await run_app(settings, web_role=web_role, listener_role=listener_role)
    return 130 if stopped_by == signal.SIGINT else 0  # a shell's code for Ctrl-C


async def cmd_demo(args: argparse.Namespace, settings: Settings) -> int:
    from telecrm.demo import run_demo

    return await run_demo(settings, once=args.once)


async def cmd_transcribe(args: argparse.Namespace, settings: Settings) -> int:
    from speech.model import load_model, resolve_model_dir
    from speech.transcribe import transcribe_files

    if args.backlog:
        if args.files:
            raise UsageError("cli.files_or_backlog", "give either FILE... or --backlog, not both")
        from telecrm.speech.cli import run_backlog

        return await run_backlog(args, settings)
    if not args.files:
        raise UsageError("cli.transcribe_nothing", "give the files to transcribe, or --backlog "
                         "for every call without a transcript")
    paths = [Path(p) for p in args.files]
    for path in paths:
        if not path.is_file():
            raise UsageError("cli.no_such_file", f"no such file: {path}", path=str(path))
    model = load_model(resolve_model_dir(args.model or settings.vosk_model))
    transcript = await asyncio.to_thread(transcribe_files, model, paths)
    print(json.dumps(transcript, ensure_ascii=False))
    return 0


async def cmd_kkp_check(args: argparse.Namespace, settings: Settings) -> int:
    from speech.kkp import check, load_script, load_transcript, load_vocabulary

    script = load_script(Path(args.script))
    transcript = load_transcript(Path(args.transcript))
    vocabulary = load_vocabulary(Path(args.vocabulary)) if args.vocabulary else None
    print(json.dumps(check(script, transcript, vocabulary=vocabulary), ensure_ascii=False))
    return 0


async def cmd_worker(args: argparse.Namespace, settings: Settings) -> int:
    from speech.jobs import InProcessQueue, JobQueue, RedisStreamQueue
    from speech.model import load_model, resolve_model_dir
    from speech.worker import KkpScript, SpeechWorker

    script = KkpScript.load(Path(args.script)) if args.script else None
    model = load_model(resolve_model_dir(args.model or settings.vosk_model))
    redis_url = args.redis or settings.redis_url
    queue: JobQueue = (RedisStreamQueue(redis_url, claim_after=args.claim_after)
                       if redis_url else InProcessQueue())
    from telecrm.app import recordings_config
    from telecrm.speech.cli import recordings_store

    engine, sessions = await open_sessions(settings)
    worker = SpeechWorker(sessions, queue, model,
                          Path(args.recordings or settings.recordings_source),
                          script=script, threads=args.threads,
                          recordings=recordings_store(recordings_config(settings)))
    try:
        await worker.run(max_jobs=args.max_jobs)
    finally:
        worker.close()
        await queue.close()
        await engine.dispose()
    return 0


# -- parser ---------------------------------------------------------------------

def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="telecrm", description="CRM для B2B-продаж по телефону на основе Asterisk.",
        epilog=describe(), formatter_class=argparse.RawDescriptionHelpFormatter)
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--db", metavar="URL",
                        help="адрес базы данных (по умолчанию — из настроек)")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    db = sub.add_parser("db", help="обслуживание базы данных")
    db_sub = db.add_subparsers(dest="db_command", required=True, metavar="ACTION")
    db_sub.add_parser("upgrade", parents=[common], help="применить миграции схемы").set_defaults(
        handler=cmd_db_upgrade)

    clients = sub.add_parser("clients", help="клиенты")
    clients_sub = clients.add_subparsers(dest="clients_command", required=True, metavar="ACTION")
    imp = clients_sub.add_parser("import", parents=[common],
                                 help="загрузить клиентов из CSV с заголовком name,phones,manager")
    imp.add_argument("file")
    imp.set_defaults(handler=cmd_clients_import)

    calls = sub.add_parser("calls", help="журнал звонков")
    calls_sub = calls.add_subparsers(dest="calls_command", required=True, metavar="ACTION")
    exp = calls_sub.add_parser("export", parents=[common], help="по объекту JSON на звонок")
    exp.add_argument("--format", choices=["jsonl"], default="jsonl")
    exp.add_argument("--since", metavar="D", help="с этой даты или времени (включительно)")
    exp.add_argument("--until", metavar="D", help="по эту дату (включительно) или до этого времени")
    exp.add_argument("--include-in-progress", action="store_true",
                     help="и звонки, которые ещё идут")
    exp.set_defaults(handler=cmd_calls_export)

    rep = sub.add_parser("ami-replay", parents=[common],
                         help="прогнать записи событий AMI через обработку звонков")
    rep.add_argument("files", nargs="+", metavar="FILE")
    rep.add_argument("--start", metavar="ISO",
                     help="время первого события, если у событий записи нет Timestamp "
                          "(тогда события идут по порядку через 1 мс)")
    rep.add_argument("--pbx", default="main", metavar="NAME",
                     help="АТС, с которой сняты записи (telecrm pbx list; по умолчанию main)")
    rep.set_defaults(handler=cmd_ami_replay)

    users = sub.add_parser("users", help="пользователи")
    users_sub = users.add_subparsers(dest="users_command", required=True, metavar="ACTION")
    add = users_sub.add_parser("add", parents=[common], help="создать пользователя")
    add.add_argument("username")
    add.add_argument("--password", help="пароль для входа")
    add.add_argument("--role", choices=["manager", "supervisor", "marketer", "admin"],
                     default="manager", help="роль (по умолчанию manager — менеджер)")
    add.add_argument("--extension", help="внутренний номер, от 2 до 8 цифр")
    add.add_argument("--device", dest="devices", action="append", metavar="TECH/RESOURCE",
                     help="его телефон, как его называет Asterisk (PJSIP/ivanov, SIP/150010001); "
                          "можно несколько раз")
    add.add_argument("--mobile", dest="mobiles", action="append", metavar="NUMBER",
                     help="его мобильный: звонок, переадресованный туда и принятый им, — его "
                          "звонок; можно несколько раз")
    add.add_argument("--team", help="отдел (создаётся, если его ещё нет)")
    add.add_argument("--name", dest="full_name", help="имя, как его показывает CRM")
    add.add_argument("--since", metavar="YYYY-MM-DD",
                     help="день выхода на работу, если сотрудника заводят задним числом (норма "
                          "разговоров не судит дни до него; по умолчанию — сейчас)")
    add.set_defaults(handler=cmd_users_add)
    from telecrm.people import cli as cli_people
    cli_people.add_actions(users_sub, common)

    talk = sub.add_parser("talktime", parents=[common],
                          help="время разговоров менеджеров за день (и итоги дня)")
    talk.add_argument("--date", metavar="YYYY-MM-DD", help="день (по умолчанию — сегодня)")
    talk.add_argument("--format", choices=["json"], default="json")
    talk.set_defaults(handler=cmd_talktime)
    talk_sub = talk.add_subparsers(dest="talktime_command", metavar="ACTION")
    close = talk_sub.add_parser("close-day", parents=[common],
                                help="записать нарушения за закончившийся рабочий день (повтор "
                                     "безопасен)")
    close.add_argument("--date", metavar="YYYY-MM-DD", help="день (по умолчанию — вчера)")
    close.set_defaults(handler=cmd_talktime_close_day)
    from telecrm.talktime import cli as cli_talktime
    cli_talktime.add_actions(talk_sub, common)

    recs = sub.add_parser("recordings", help="записи разговоров")
    recs_sub = recs.add_subparsers(dest="recordings_command", required=True, metavar="ACTION")
    fin = recs_sub.add_parser("finalize", parents=[common],
                              help="сжать и сохранить записи закончившихся звонков")
    fin.add_argument("--pending", action="store_true", help="все ждущие записи (по умолчанию)")
    fin.add_argument("--retry-failed", action="store_true",
                     help="сначала вернуть в очередь записи, которые не удалось сохранить")
    fin.set_defaults(handler=cmd_recordings)
    recs_sub.add_parser("retention", parents=[common],
                        help="удалить записи старше срока хранения отдела").set_defaults(
        handler=cmd_recordings)
    from telecrm.recordings import cli as cli_recordings
    from telecrm.routing import cli as cli_routing
    cli_recordings.add_actions(recs_sub, common)

    serve = sub.add_parser("serve", parents=[common], help="приём событий AMI и веб-приложение")
    serve.add_argument("--host", help="адрес веб-приложения")
    serve.add_argument("--port", type=int, help="порт веб-приложения")
    serve.add_argument("--web", action="store_true",
                       help="только веб-приложение: страницы, API и живые события, без AMI")
    serve.add_argument("--listener", action="store_true",
                       help="только приём событий AMI и фоновые задачи (по одному активному "
                            "процессу на АТС, остальные в резерве); отвечает лишь на /healthz")
    serve.set_defaults(handler=cmd_serve)

    demo = sub.add_parser("demo", parents=[common],
                          help="Asterisk в песочнице, демо-клиенты и настоящие демо-звонки")
    demo.add_argument("--once", action="store_true", help="выйти после демо-звонков")
    demo.set_defaults(handler=cmd_demo)

    tr = sub.add_parser("transcribe", parents=[common],
                        help="расшифровать записи с помощью Vosk (по файлу на сторону разговора)")
    tr.add_argument("files", nargs="*", metavar="FILE")
    tr.add_argument("--backlog", action="store_true",
                    help="все звонки с записью и без расшифровки (можно прервать и продолжить), "
                         "ход работы — в stderr")
    tr.add_argument("--threads", type=int, default=2,
                    help="с --backlog: распознавателей одновременно (по одному на ядро)")
    tr.add_argument("--format", choices=["json"], default="json")
    tr.add_argument("--model", metavar="DIR", help="папка модели Vosk (по умолчанию — из настроек)")
    tr.set_defaults(handler=cmd_transcribe)

    kkp = sub.add_parser("kkp", help="соблюдение скрипта продаж (ККП)")
    kkp_sub = kkp.add_subparsers(dest="kkp_command", required=True, metavar="ACTION")
    chk = kkp_sub.add_parser("check", parents=[common], help="проверить расшифровку по скрипту")
    chk.add_argument("--script", required=True, metavar="S.yaml")
    chk.add_argument("--transcript", required=True, metavar="T.json")
    chk.add_argument("--vocabulary", metavar="FILE",
                     help="слова, которые знает модель распознавания, по одному в строке (фразы с "
                          "другими словами уходят на проверку, а не считаются пропущенными)")
    chk.add_argument("--format", choices=["json"], default="json")
    chk.set_defaults(handler=cmd_kkp_check)
    from telecrm.speech import cli as cli_speech
    cli_speech.add_kkp_commands(kkp_sub, common)

    wk = sub.add_parser("worker", parents=[common],
                        help="обработчик расшифровок и ККП (один на машину)")
    wk.add_argument("--redis", metavar="URL",
                    help="Redis для общей очереди задач (по умолчанию — из настроек; без него — в "
                         "процессе)")
    wk.add_argument("--model", metavar="DIR", help="папка модели Vosk (по умолчанию — из настроек)")
    wk.add_argument("--recordings", metavar="DIR",
                    help="папка записей (по умолчанию — TELECRM_RECORDINGS_SOURCE)")
    wk.add_argument("--script", metavar="S.yaml",
                    help="скрипт ККП для проверки каждого звонка (вместо сохранённых "
                         "версий: telecrm kkp scripts)")
    wk.add_argument("--threads", type=int, default=2,
                    help="распознавателей одновременно (по одному на ядро)")
    wk.add_argument("--claim-after", type=float, default=300.0, metavar="SECONDS",
                    help="забрать задачу, которую другой обработчик не закончил за столько секунд")
    wk.add_argument("--max-jobs", type=int, metavar="N",
                    help="выйти после N задач (пусть супервизор перезапустит: память Vosk растёт)")
    wk.set_defaults(handler=cmd_worker)

    from telecrm.backup import cli as cli_backup
    from telecrm.calltracking import cli as cli_calltracking
    from telecrm.integrations import cli as cli_integrations
    from telecrm.missed import cli as cli_missed
    from telecrm.pbxes import cli as cli_pbxes
    from telecrm.recordings import cli as cli_recordings
    from telecrm.sales import cli as cli_sales
    from telecrm.speech import cli as cli_speech
    from telecrm.talktime import cli as cli_talktime
    for feature in (cli_talktime, cli_recordings, cli_speech, cli_calltracking, cli_sales,
                    cli_pbxes, cli_missed, cli_routing, cli_backup, cli_integrations):
        feature.add_commands(sub, common)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        settings = Settings.load().with_overrides(
            database_url=getattr(args, "db", None),
            http_host=getattr(args, "host", None),
            http_port=getattr(args, "port", None))
    except SettingsError as exc:
        print(f"telecrm: {russian(exc)}", file=sys.stderr)
        return 2
    configure_logging(settings.log_level, settings.log_format)
    handler: Command = args.handler
    try:
        return asyncio.run(handler(args, settings))
    except DomainError as exc:  # UsageError included
        print(f"telecrm: {russian(exc)}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130
    except OSError as exc:
        print(f"telecrm: {exc.strerror or exc}: {getattr(exc, 'filename', '') or ''}".rstrip(": "),
              file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
