"""``telecrm demo``: the newcomer's first run, on a real Asterisk.

Starts the sandbox Asterisk (the product's own configuration, real SIP phones and
a real SIP carrier in a second Asterisk), creates demo users and clients, starts the
CRM exactly as ``telecrm serve`` wires it, places a handful of real calls and prints
the call log the CRM made of them.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import shutil
import sys
from dataclasses import dataclass
from datetime import datetime
from importlib import resources
from pathlib import Path
from zoneinfo import ZoneInfo

from aiohttp import web
from sqlalchemy.ext.asyncio import AsyncSession

from asterisk_conf.render import PbxConfig
from asterisk_conf.sandbox import Sandbox, SandboxUnavailable
from crm_core.calls.services import export_calls
from crm_core.calltracking.services import add_static
from crm_core.clients.importing import import_clients_csv
from crm_core.people.users import add_user, set_team_queue
from crm_core.sales.deals import StageSpec, add_lose_reason, create_pipeline
from crm_core.speech.scripts import add_version, team_by_name
from crm_core.timestamps import utcnow
from recordings.worker import wait_until_finalized
from speech.script import parse_script_text
from telecrm.app import LISTENER, SESSIONS, WRITER_SESSIONS, create_app
from telecrm.messages import done
from telecrm.passwords import hash_password
from telecrm.recordings.routes import RECORDINGS_STORE
from telecrm.settings import Settings
from telecrm.web import server as http_server
from telecrm.web.present import number
from telecrm.wiring import call_hooks

log = logging.getLogger(__name__)

DEMO_PASSWORD = "demo-password"
DEMO_TEAM = "Отдел продаж"
DEMO_USERS: list[tuple[str, str, str, str | None]] = [
    # username, full name, role, extension
    ("petrov", "Иван Петров", "manager", "101"),
    ("smirnova", "Ольга Смирнова", "manager", "102"),
    ("kuznetsov", "Алексей Кузнецов", "manager", "103"),
    ("sokolova", "Мария Соколова", "supervisor", "201"),
    ("volkova", "Елена Волкова", "marketer", None),
    ("admin", "Администратор", "admin", None),
]
DEMO_DIDS = {"74951110001": "queue:sales", "74951110002": "101", "74951110003": "102"}


@dataclass(frozen=True)
class DemoCall:
    title: str
    kind: str  # "client" (inbound through the carrier) or "manager" (from a phone)
    caller: str
    target: str
    mode: str = "answer"
    talk: float = 4.0
    ring_timeout: float = 30.0


DEMO_CALLS = [
    DemoCall("ООО Ромашка звонит на прямой номер Петрова", "client",
             "79161234567", "74951110002", talk=5),
    DemoCall("Смирнова звонит ИП Сидорову", "manager", "102", "89031234567", talk=4),
    DemoCall("Кузнецов звонит в АО Вектор: занято", "manager", "103", "89265550011",
             mode="busy"),
    DemoCall("ООО Северный ветер звонит Смирновой, она не успевает ответить", "client",
             "79857770011", "74951110003", mode="ring", ring_timeout=6),
    DemoCall("Новый номер звонит в отдел продаж", "client", "79990001122", "74951110001",
             talk=3),
]

_DIRECTION = {"inbound": "входящий", "outbound": "исходящий", "internal": "внутренний"}
_STATUS = {"answered": "отвечен", "missed": "пропущен", "busy": "занято",
           "no_answer": "нет ответа", "failed": "ошибка", "in_progress": "идёт"}


def demo_config() -> PbxConfig:
    return PbxConfig(dids=dict(DEMO_DIDS), ring_timeout=15)


async def seed(sessions: object, clients_csv: Path) -> None:
    """Demo users (password ``demo-password``) and clients from the bundled CSV."""
    async with sessions() as session, session.begin():  # type: ignore[operator]
        for username, name, role, extension in DEMO_USERS:
            await add_user(session, username, name=name, role=role, extension=extension,
                           team=DEMO_TEAM if extension else None,
                           password_hash=hash_password(DEMO_PASSWORD))
        await set_team_queue(session, DEMO_TEAM, "sales")
    async with sessions() as session, session.begin():  # type: ignore[operator]
        report = await import_clients_csv(session, clients_csv)
    print(f"Клиенты загружены: {report.imported}")
    async with sessions() as session, session.begin():  # type: ignore[operator]
        await seed_sales_floor(session)


async def seed_sales_floor(session: AsyncSession) -> None:
    """What every page needs to show something on the first run.

    A static call-tracking number on the sales DID (the demo's call from a new number
    comes in on it), a deal pipeline with lose reasons, and the sales script the QC
    queue checks calls against.
    """
    team = await team_by_name(session, DEMO_TEAM)
    await add_static(session, "74951110001", "Билборд на Садовом", campaign="осень-2026",
                     source="billboard", medium="offline", cost_per_month=45000,
                     actor="demo")
    await create_pipeline(session, "B2B новые", [StageSpec.parse(stage) for stage in (
        "Квалификация:call:1", "Коммерческое предложение:email:2", "Встреча:meeting:3",
        "Выиграна:won", "Проиграна:lost")], by=None, actor="demo")
    for reason in ("Дорого", "Выбрали другого поставщика", "Нет потребности"):
        await add_lose_reason(session, reason, by=None, actor="demo")
    text = (resources.files("telecrm") / "demo_data" / "kkp_script.yaml").read_text("utf-8")
    await add_version(session, name=parse_script_text(text).name or "Скрипт продаж",
                      text=text, team_id=team.id if team else None, stage=None,
                      effective_from=utcnow(), fine_amount=500, actor="demo")


async def place_calls(sandbox: Sandbox, calls: list[DemoCall]) -> None:
    """One after another, so the log reads like a morning on the sales floor."""
    async with sandbox.phones() as phones:
        for call in calls:
            print(f"  звонок: {call.title}")
            if call.kind == "client":
                await phones.set_behaviour(_extension_of(call.target), mode=call.mode)
                await phones.client_calls(call.caller, call.target, talk=call.talk,
                                          ring_timeout=call.ring_timeout)
            else:
                await phones.set_behaviour(call.target, mode=call.mode, talk=call.talk)
                await phones.manager_calls(call.caller, call.target, talk=call.talk + 30,
                                           ring_timeout=call.ring_timeout)
            await phones.wait_idle(timeout=call.ring_timeout + call.talk + 30)
        await phones.reset_behaviours()


def _extension_of(did: str) -> str:
    destination = DEMO_DIDS.get(did, "queue:sales")
    return "101" if destination.startswith("queue:") else destination


_ROLES = {"manager": "менеджер", "supervisor": "руководитель", "marketer": "маркетолог",
          "admin": "администратор"}


def format_sign_in(url: str) -> str:
    """Where the web app is and who can sign in, for the newcomer's terminal."""
    lines = [f"Веб-приложение: {url}",
             f"Войдите одним из демо-пользователей (пароль у всех: {DEMO_PASSWORD}):"]
    width = max(len(username) for username, *_ in DEMO_USERS)
    for username, name, role, extension in DEMO_USERS:
        phone = f", телефон {extension}" if extension else ""
        lines.append(f"  {username.ljust(width)}  {name} — {_ROLES[role]}{phone}")
    return "\n".join(lines)


def format_table(calls: list[dict], tz: ZoneInfo) -> str:
    """The call log as a plain table for the terminal."""
    names = {ext: name for _, name, _, ext in DEMO_USERS if ext}

    def who(extensions: list[str]) -> str:
        return ", ".join(f"{ext} {names.get(ext, '')}".strip() for ext in extensions) or "—"

    # "Вызов": whose phone dialled or rang (known even when nobody answered); "Говорили":
    # who talked.
    header = ("Начало", "Клиент", "Номер", "Вызов", "Говорили", "Направление", "Статус",
              "Разговор, с")
    rows = [header]
    for call in calls:
        started = datetime.fromisoformat(call["started_at"]).astimezone(tz)
        rows.append((
            started.strftime("%H:%M:%S"),
            call["client_name"] or "—",
            call["client_number"] or "—",
            who([attempt["extension"] for attempt in call.get("attempts", [])]),
            who(call["managers"]),
            _DIRECTION.get(call["direction"], call["direction"]),
            _STATUS.get(call["status"], call["status"]),
            number(call["talk_seconds"], 1),
        ))
    widths = [max(len(str(r[i])) for r in rows) for i in range(len(header))]
    lines = ["  ".join(str(v).ljust(w) for v, w in zip(r, widths, strict=True)) for r in rows]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)


async def wait_for_calls(sessions: object, count: int, timeout: float = 15) -> list[dict]:
    """The listener writes asynchronously: wait until every demo call has ended in the log."""
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        async with sessions() as session:  # type: ignore[operator]
            calls = [c async for c in export_calls(session, hooks=call_hooks())]
        done = [c for c in calls if c["ended_at"]]
        if len(done) >= count or asyncio.get_running_loop().time() > deadline:
            return calls
        await asyncio.sleep(0.3)


async def run_demo(settings: Settings, *, once: bool = False) -> int:
    if "TELECRM_LOG_LEVEL" not in os.environ:
        logging.getLogger().setLevel(logging.WARNING)  # the demo speaks through its table
    data_dir = settings.data_dir / "demo"
    if not settings.database_url:
        shutil.rmtree(data_dir, ignore_errors=True)  # every demo starts from a clean slate
    sandbox = Sandbox(demo_config())
    print("Запускаю Asterisk в песочнице…")
    try:
        await asyncio.to_thread(sandbox.start)
    except SandboxUnavailable as exc:
        print(f"telecrm: {done('demo.sandbox_unavailable', reason=exc)}", file=sys.stderr)
        return 1
    try:
        pbx = sandbox.pbx
        crm_settings = settings.with_overrides(
            data_dir=data_dir, ami_host=pbx.ami_host, ami_port=pbx.ami_port,
            ami_user=pbx.ami_user, ami_secret=pbx.ami_secret,
            recordings_source=pbx.monitor_dir)
        app = create_app(crm_settings)
        runner = http_server.runner(app)
        await runner.setup()
        site = web.TCPSite(runner, crm_settings.http_host, crm_settings.http_port)
        try:
            await site.start()
            sessions = app[SESSIONS]
            await seed(app[WRITER_SESSIONS], Path(str(resources.files("telecrm") / "demo_data" /
                                          "clients.csv")))
            await asyncio.wait_for(app[LISTENER].session.connected.wait(), 30)
            print("CRM подключена к AMI. Звонки:")
            await place_calls(sandbox, DEMO_CALLS)
            calls = await wait_for_calls(sessions, len(DEMO_CALLS))
            print()
            print(format_table(calls, ZoneInfo(settings.timezone)))
            print()
            # -- recordings feature (#6): the demo's recordings are finalized, then shown
            states = await wait_until_finalized(sessions, timeout=30)
            store = app[RECORDINGS_STORE]
            where = getattr(store, "root", None) or store
            print(f"Записи разговоров (сохранено {states.get('stored', 0)}): {where}")
            print()
            print(format_sign_in(f"http://{crm_settings.http_host}:{crm_settings.http_port}/"))
            if not once:
                print("Входящий звонок покажет карточку клиента в браузере менеджера. "
                      "Ctrl-C для выхода.")
                await asyncio.Event().wait()
        finally:
            with contextlib.suppress(Exception):
                await runner.cleanup()
    finally:
        await asyncio.to_thread(sandbox.stop)
    return 0
