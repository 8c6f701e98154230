"""Template filters and the context every page gets (user, CSRF token, navigation)."""

from __future__ import annotations

import contextlib
import logging
import os
from functools import partial
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import aiohttp_jinja2.helpers
import jinja2
from aiohttp import web

from crm_core.people.models import Role
from telecrm.settings import Settings
from telecrm.web import present
from telecrm.web.headers import csp_nonce
from telecrm.web.keys import USER, WEB_SESSION

log = logging.getLogger(__name__)

# (path, label, roles that see it): the navigation grows by adding a line.
NAV = [
    ("/today", "Сегодня", {Role.MANAGER, Role.SUPERVISOR, Role.ADMIN}),
    ("/clients", "Клиенты", {Role.MANAGER, Role.SUPERVISOR, Role.ADMIN}),
    ("/team", "Команда", {Role.SUPERVISOR, Role.ADMIN}),
    ("/calls/live", "Прослушка", {Role.SUPERVISOR, Role.ADMIN}),
    ("/wallboard", "Табло", {Role.SUPERVISOR, Role.ADMIN}),
    ("/outcomes", "Без итога", {Role.SUPERVISOR, Role.ADMIN}),
    ("/calls", "Звонки", {Role.MANAGER, Role.SUPERVISOR, Role.ADMIN}),
    ("/talktime", "Норма", {Role.MANAGER, Role.SUPERVISOR, Role.ADMIN}),
    ("/presence", "Присутствие", {Role.SUPERVISOR, Role.ADMIN}),
    ("/routing", "Свой менеджер", {Role.SUPERVISOR, Role.ADMIN}),
    ("/tasks", "Задачи", {Role.MANAGER, Role.SUPERVISOR, Role.ADMIN}),
    ("/dialer", "Обзвон", {Role.MANAGER, Role.SUPERVISOR, Role.ADMIN}),
    ("/deals", "Сделки", {Role.MANAGER, Role.SUPERVISOR, Role.ADMIN}),
    ("/plan", "План", {Role.MANAGER, Role.SUPERVISOR, Role.ADMIN}),
    ("/reports/summary", "Отчёты", {Role.MANAGER, Role.SUPERVISOR, Role.ADMIN}),
    ("/qc", "Контроль качества", {Role.MANAGER, Role.SUPERVISOR, Role.ADMIN}),
    ("/transcripts/search", "Поиск по разговорам", {Role.MANAGER, Role.SUPERVISOR, Role.ADMIN}),
    ("/alerts", "Оповещения", {Role.SUPERVISOR, Role.ADMIN}),
    ("/calltracking", "Коллтрекинг", {Role.MARKETER, Role.ADMIN}),
    ("/leads", "Заявки", {Role.MANAGER, Role.SUPERVISOR, Role.MARKETER, Role.ADMIN}),
    ("/admin/users", "Пользователи", {Role.ADMIN}),
    ("/admin/mail", "Почта", {Role.ADMIN}),
    ("/admin/tokens", "API-токены", {Role.ADMIN}),
    ("/admin/webhooks", "Вебхуки", {Role.ADMIN}),
]


class _QuietBytecodeCache(jinja2.FileSystemBytecodeCache):
    """Compiled templates on disk; a cache that cannot be read or written is no cache.

    A full disk or a folder removed under a running process must not fail a page.
    """

    def load_bytecode(self, bucket: jinja2.bccache.Bucket) -> None:
        try:
            super().load_bytecode(bucket)
        except (OSError, EOFError, ValueError):
            bucket.reset()

    def dump_bytecode(self, bucket: jinja2.bccache.Bucket) -> None:
        with contextlib.suppress(OSError):
            super().dump_bytecode(bucket)


def bytecode_cache(settings: Settings) -> jinja2.BytecodeCache | None:
    """Where compiled templates outlive the process: compiling all of them costs about
    0.4 s of a core, loading them back 10 ms, in every process that starts (each web
    process behind the proxy, each restart). Jinja checks each template's source against
    what it compiled, so an upgrade never serves an old page."""
    if settings.template_cache.lower() == "off":
        return None
    try:
        if settings.template_cache:
            directory = Path(settings.template_cache).expanduser()
        else:  # the user's cache folder, as pip's: not a temporary folder left behind
            cache_home = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
            directory = Path(cache_home) / "telecrm" / "templates"
        directory.mkdir(parents=True, exist_ok=True)
        return _QuietBytecodeCache(str(directory))
    except (OSError, RuntimeError) as exc:
        log.warning("compiled templates are not kept between starts: %s", exc)
        return None


class StaticUrls:
    """``url('static', filename=...)`` with the file's version, worked out once per file
    (and again when the file changes).

    aiohttp's versioned static URL reads and hashes the whole file on every call: five
    times per client card (``app.css`` and the page's scripts), about a twentieth of the
    card's processor time. The file's size and modification time, checked on each call,
    stand in for its content.
    """

    def __init__(self) -> None:
        self._known: dict[tuple[int, str], tuple[tuple[int, int], str]] = {}

    @jinja2.pass_context
    def url(self, context: Any, route_name: str, query_: Any = None, **parts: Any) -> Any:
        app = context["app"]
        if route_name != "static" or query_ is not None or set(parts) != {"filename"}:
            return aiohttp_jinja2.helpers.url_for(context, route_name, query_=query_, **parts)
        resource = app.router[route_name]
        filename = str(parts["filename"])
        try:
            stat = os.stat(Path(resource.get_info()["directory"]) / filename)
        except OSError:  # no such file: aiohttp says what it says for it
            return resource.url_for(filename=filename)
        key, signature = (id(resource), filename), (stat.st_mtime_ns, stat.st_size)
        known = self._known.get(key)
        if known is None or known[0] != signature:
            known = self._known[key] = (signature, str(resource.url_for(filename=filename)))
        return known[1]


def install_filters(env: jinja2.Environment, settings: Settings) -> None:
    env.globals["url"] = StaticUrls().url  # other routes' URLs as aiohttp_jinja2 makes them
    tz = ZoneInfo(settings.timezone)
    env.filters["duration"] = present.duration
    env.filters["money"] = present.money
    env.filters["number"] = present.number
    env.filters["percent"] = present.percent
    env.filters["hm"] = partial(present.local_time, tz=tz)
    env.filters["dm_hm"] = partial(present.local_time, tz=tz, fmt="%d.%m %H:%M")
    env.filters["dmy_hm"] = partial(present.local_time, tz=tz, fmt="%d.%m.%Y %H:%M")
    env.filters["ru_date"] = present.ru_date
    env.filters["phone"] = present.phone
    env.filters["minutes"] = lambda seconds: int((seconds or 0) // 60)
    env.globals.update(
        DIRECTIONS=present.DIRECTIONS, STATUSES=present.STATUSES,
        CLIENT_STATUSES=present.CLIENT_STATUSES, ROLES=present.ROLES,
        TASK_KINDS=present.TASK_KINDS, PHONE_KINDS=present.PHONE_KINDS)


async def context_processor(request: web.Request) -> dict[str, Any]:
    user = request.get(USER)
    web_session = request.get(WEB_SESSION)
    # Until he changes a temporary password, a user has nowhere else to go.
    nav = [(path, label) for path, label, roles in NAV if user is not None
           and user.role in roles and not user.must_change_password]
    return {"user": user, "csrf_token": web_session.csrf_token if web_session else "",
            "csp_nonce": csp_nonce(request),
            "nav": nav, "path": request.path, "title": "telecrm", "staff": {}}
