"""The supervisor's talk-time settings: a page with forms and the same as JSON.

- ``GET /talktime/settings``: rules of his team (an admin: every team and the
  company defaults), holidays and absences, with forms (CSRF like every form);
- ``POST /talktime/settings/rules|holidays|holidays/import|absences`` and
  ``POST /talktime/settings/holidays/{id}/remove|absences/{id}/cancel``: the forms;
- ``GET|POST /api/talktime/rules``, ``GET|POST /api/talktime/holidays``,
  ``POST /api/talktime/holidays/import``, ``DELETE /api/talktime/holidays/{id}``,
  ``GET|POST /api/talktime/absences``, ``DELETE /api/talktime/absences/{id}``.

Who may change what is decided in :mod:`crm_core.talktime.rules`; a refusal is a
coded :class:`~crm_core.errors.DomainError`: the API answers it through the error
middleware, the page shows its sentence above the forms (``telecrm.messages``).
"""

from __future__ import annotations

import asyncio
from datetime import date, timedelta
from typing import Any
from urllib.parse import quote

import aiohttp_jinja2
from aiohttp import web

from crm_core.clock import local_today
from crm_core.errors import DomainError, NotAllowedError, NotFoundError
from crm_core.people import access
from crm_core.people.models import Role, Team, User
from crm_core.talktime.metric import Rules
from crm_core.talktime.rules import (
    KIND_NAMES,
    RuleChange,
    SettingsError,
    absence_to_dict,
    add_absence,
    add_holiday,
    add_holidays,
    cancel_absence,
    clock,
    holiday_to_dict,
    list_absences,
    list_holidays,
    list_rules,
    parse_clock,
    parse_fine,
    parse_holiday_csv,
    parse_weekdays,
    remove_holiday,
    rule_in_force,
    rule_to_dict,
    team_names,
)
from telecrm.messages import http_status, russian
from telecrm.web.auth import api_user, page_user
from telecrm.web.errors import ApiError
from telecrm.web.keys import SESSIONS, WEB_CONFIG, WRITER_SESSIONS, workday_tz
from telecrm.web.params import json_object, parse_day, path_id

WEEKDAYS = [("1", "Пн"), ("2", "Вт"), ("3", "Ср"), ("4", "Чт"), ("5", "Пт"), ("6", "Сб"),
            ("7", "Вс")]
DONE = {"rule": "Правила сохранены.", "holiday": "Праздник добавлен.",
        "removed": "Праздник убран из календаря.", "absence": "Отсутствие записано.",
        "cancelled": "Запись об отсутствии отменена.", "import": "Праздники загружены."}
MAX_CSV_BYTES = 100_000


def _today(request: web.Request) -> date:
    return local_today(workday_tz(request))


def _default(request: web.Request) -> Rules:
    return Rules(target_seconds=request.app[WEB_CONFIG].daily_target_seconds)


def _reader(user: User) -> User:
    if not access.may_see_talk_time(user):
        raise NotAllowedError("talktime.role_no_access", "your role has no access to talk time")
    return user


def _editor(user: User) -> User:
    if user.role not in (Role.SUPERVISOR, Role.ADMIN):
        raise NotAllowedError("talktime.settings_for_bosses",
                              "only a supervisor or an admin changes talk-time settings")
    return user


# -- parsing what the forms and the API send ----------------------------------------------


def _int(value: Any, name: str) -> int | None:
    if value is None or (isinstance(value, str) and not value.strip()):
        return None
    if isinstance(value, bool) or not (isinstance(value, int) or (
            isinstance(value, str) and value.strip().isdigit() and len(value.strip()) < 10)):
        raise SettingsError("talktime.not_whole", f"{name} must be a whole number", field=name)
    return int(value)


def _text(value: Any, name: str) -> str | None:
    if value is None or (isinstance(value, str) and not value.strip()):
        return None
    if not isinstance(value, str | int | float):
        raise SettingsError("talktime.bad_value", f"{name} must be a string", field=name)
    return str(value)


def _day(value: Any, name: str) -> date:
    if not isinstance(value, str) or not value.strip():
        raise SettingsError("talktime.day_required", f"{name} is required (YYYY-MM-DD)",
                            field=name)
    try:
        return parse_day(value.strip(), name)
    except DomainError:
        raise SettingsError("talktime.day_invalid", f"{name} must be a date (YYYY-MM-DD)",
                            field=name) from None


def _change(data: dict[str, Any]) -> RuleChange:
    weekdays = data.get("working_weekdays")
    if isinstance(weekdays, list):
        weekdays = "".join(str(d) for d in weekdays)
    fine, start, end = (_text(data.get(k), k) for k in ("fine_amount", "day_start", "day_end"))
    return RuleChange(
        target_minutes=_int(data.get("target_minutes"), "target_minutes"),
        working_weekdays=parse_weekdays(weekdays) if _text(weekdays, "working_weekdays")
        else None,
        min_call_seconds=_int(data.get("min_call_seconds"), "min_call_seconds"),
        fine_amount=parse_fine(fine) if fine is not None else None,
        day_start=parse_clock(start, "day_start") if start else None,
        day_end=parse_clock(end, "day_end") if end else None)


def _team_id(data: dict[str, Any], user: User) -> int | None:
    """The team a change is for: given (``""``/null: company-wide), else the user's own."""
    if "team_id" not in data:
        return user.team_id
    raw = data["team_id"]
    if raw is None or raw == "":
        return None
    return _int(raw, "team_id")


# -- the services behind both the page and the API ---------------------------------------------


async def _set_rule(request: web.Request, user: User, data: dict[str, Any]) -> dict[str, Any]:
    from crm_core.talktime.rules import set_rule

    team_id = _team_id(data, user)
    effective_from = _day(data.get("effective_from"), "effective_from")
    change = _change(data)
    async with request.app[WRITER_SESSIONS]() as session, session.begin():
        if team_id is not None and await session.get(Team, team_id) is None:
            raise NotFoundError("talktime.team_missing", "no such team")
        row = await set_rule(session, user, team_id, effective_from, change,
                             today=_today(request), default=_default(request))
        return rule_to_dict(row, await team_names(session))


async def _add_holiday(request: web.Request, user: User, data: dict[str, Any]) -> dict[str, Any]:
    day = _day(data.get("date"), "date")
    name = _text(data.get("name"), "name") or ""
    team_id = _team_id(data, user) if user.role == Role.ADMIN else user.team_id
    async with request.app[WRITER_SESSIONS]() as session, session.begin():
        row = await add_holiday(session, user, day, name, team_id)
        return holiday_to_dict(row, await team_names(session))


async def _import(request: web.Request, user: User, text: str,
                  data: dict[str, Any]) -> dict[str, int]:
    team_id = _team_id(data, user) if user.role == Role.ADMIN else user.team_id
    rows = await asyncio.to_thread(parse_holiday_csv, text)  # a user's file: off the loop
    async with request.app[WRITER_SESSIONS]() as session, session.begin():
        added, skipped = await add_holidays(session, user, rows, team_id)
    return {"added": added, "skipped": skipped}


async def _add_absence(request: web.Request, user: User, data: dict[str, Any]) -> dict[str, Any]:
    manager_id = _int(data.get("user_id"), "user_id")
    if manager_id is None:
        raise SettingsError("talktime.manager_required", "user_id (the manager) is required")
    first = _day(data.get("from"), "from")
    last = _day(data.get("to") or data.get("from"), "to")
    kind = _text(data.get("kind"), "kind") or ""
    note = _text(data.get("note"), "note") or ""
    async with request.app[WRITER_SESSIONS]() as session, session.begin():
        row = await add_absence(session, user, manager_id, first, last, kind, note)
        return absence_to_dict(row, await session.get(User, row.user_id))


# -- JSON API --------------------------------------------------------------------------------


async def api_rules(request: web.Request) -> web.Response:
    user = _reader(api_user(request))
    today = _today(request)
    async with request.app[SESSIONS]() as session:
        names = await team_names(session)
        rows = [rule_to_dict(r, names) for r in await list_rules(session, user)]
        teams = list(names) if user.role == Role.ADMIN else [user.team_id]
        in_force = []
        for team_id in [None, *teams] if user.role == Role.ADMIN else teams:
            rules, _ = await rule_in_force(session, team_id, today, _default(request))
            in_force.append(_rules_dict(rules, team_id, names))
    return web.json_response({"date": today.isoformat(), "in_force": in_force, "rules": rows})


def _rules_dict(rules: Rules, team_id: int | None, names: dict[int, str]) -> dict[str, Any]:
    return {"team_id": team_id, "team": names.get(team_id) if team_id else None,
            "target_minutes": rules.target_seconds // 60,
            "working_weekdays": rules.working_weekdays,
            "min_call_seconds": rules.min_call_seconds, "fine_amount": str(rules.fine_amount),
            "day_start": clock(rules.day_start_minute), "day_end": clock(rules.day_end_minute)}


async def api_set_rule(request: web.Request) -> web.Response:
    user = _editor(api_user(request))
    data = await json_object(request)
    body = await _set_rule(request, user, data)
    return web.json_response(body, status=201)


def _period(request: web.Request) -> tuple[date | None, date | None]:
    q = request.query
    first = parse_day(q["from"], "from") if q.get("from") else None
    last = parse_day(q["to"], "to") if q.get("to") else None
    if first and last and last < first:
        raise DomainError("request.range_reversed", "from must not be after to",
                          first="from", last="to")
    return first, last


async def api_holidays(request: web.Request) -> web.Response:
    user = _reader(api_user(request))
    first, last = _period(request)
    async with request.app[SESSIONS]() as session:
        names = await team_names(session)
        rows = [holiday_to_dict(h, names)
                for h in await list_holidays(session, user, first, last)]
    return web.json_response(rows)


async def api_add_holiday(request: web.Request) -> web.Response:
    user = _editor(api_user(request))
    data = await json_object(request)
    body = await _add_holiday(request, user, data)
    return web.json_response(body, status=201)


async def api_import_holidays(request: web.Request) -> web.Response:
    user = _editor(api_user(request))
    data = await json_object(request)
    text = data.get("csv")
    if not isinstance(text, str) or not text.strip():
        raise DomainError("talktime.import_csv_required", "csv is required: the file's text")
    if len(text) > MAX_CSV_BYTES:
        raise ApiError(413, "talktime.import_too_large")
    body = await _import(request, user, text, data)
    return web.json_response(body, status=201)


async def api_remove_holiday(request: web.Request) -> web.Response:
    user = _editor(api_user(request))
    holiday_id = path_id(request)
    async with request.app[WRITER_SESSIONS]() as session, session.begin():
        row = await remove_holiday(session, user, holiday_id)
        body = holiday_to_dict(row, await team_names(session))
    return web.json_response({**body, "archived": True})


async def api_absences(request: web.Request) -> web.Response:
    user = _reader(api_user(request))
    first, last = _period(request)
    async with request.app[SESSIONS]() as session:
        managers = await access.visible_managers(session, user)
        by_id = {m.id: m for m in managers}
        rows = [absence_to_dict(a, by_id.get(a.user_id))
                for a in await list_absences(session, managers, first, last)]
    return web.json_response(rows)


async def api_add_absence(request: web.Request) -> web.Response:
    user = _editor(api_user(request))
    data = await json_object(request)
    body = await _add_absence(request, user, data)
    return web.json_response(body, status=201)


async def api_cancel_absence(request: web.Request) -> web.Response:
    user = _editor(api_user(request))
    absence_id = path_id(request)
    async with request.app[WRITER_SESSIONS]() as session, session.begin():
        row = await cancel_absence(session, user, absence_id)
        body = absence_to_dict(row, await session.get(User, row.user_id))
    return web.json_response({**body, "archived": True})


# -- the page ----------------------------------------------------------------------------------


async def _page_context(request: web.Request, user: User) -> dict[str, Any]:
    today = _today(request)
    async with request.app[SESSIONS]() as session:
        names = await team_names(session)
        teams: list[int | None] = ([None, *names] if user.role == Role.ADMIN
                                   else [user.team_id])
        current = []
        for team_id in teams:
            rules, _ = await rule_in_force(session, team_id, today, _default(request))
            current.append(_rules_dict(rules, team_id, names))
        history = [rule_to_dict(r, names) for r in await list_rules(session, user)]
        holidays = [holiday_to_dict(h, names) for h in await list_holidays(
            session, user, today.replace(month=1, day=1))]
        managers = await access.visible_managers(session, user)
        by_id = {m.id: m for m in managers}
        absences = [absence_to_dict(a, by_id.get(a.user_id)) for a in await list_absences(
            session, managers, today - timedelta(days=31))]
    return {"title": "Настройки нормы", "today": today, "current": current,
            "history": history, "holidays": holidays, "absences": absences,
            "managers": managers, "teams": names, "weekdays": WEEKDAYS, "kinds": KIND_NAMES,
            "is_admin": user.role == Role.ADMIN, "error": None, "form": {},
            "done": _done(request)}


def _done(request: web.Request) -> str | None:
    """The notice after a successful form (the import says how many days it added)."""
    key = request.query.get("done", "")
    if key == "import":
        added, skipped = request.query.get("added", "0"), request.query.get("skipped", "0")
        if added.isdigit() and skipped.isdigit():
            return f"Праздники загружены: добавлено {added}, уже были в календаре {skipped}."
    return DONE.get(key)


async def page(request: web.Request) -> web.Response:
    user = page_user(request)
    if user.role not in (Role.SUPERVISOR, Role.ADMIN):
        raise NotAllowedError("talktime.settings_page_for_bosses",
                              "the settings page is for supervisors and admins")
    return aiohttp_jinja2.render_template("talktime_settings.html", request,
                                          await _page_context(request, user))


async def _refused(request: web.Request, user: User, exc: DomainError,
                   form: dict[str, Any]) -> web.Response:
    context = await _page_context(request, user)
    context.update(error=russian(exc), form=form)
    return aiohttp_jinja2.render_template("talktime_settings.html", request, context,
                                          status=http_status(exc))


def _form_data(form: Any) -> dict[str, Any]:
    data: dict[str, Any] = {k: v for k, v in form.items() if isinstance(v, str)}
    data["working_weekdays"] = "".join(v for v in form.getall("working_weekdays", [])
                                       if isinstance(v, str))
    return data


async def form_post(request: web.Request) -> web.Response:
    """Every settings form: ``what`` from the path; success redirects with a notice."""
    user = page_user(request)
    if user.role not in (Role.SUPERVISOR, Role.ADMIN):
        raise NotAllowedError("talktime.settings_for_bosses",
                              "only a supervisor or an admin changes talk-time settings")
    what = request.match_info["what"]
    form = await request.post()
    data = _form_data(form)
    try:
        if what == "rules":
            if user.role == Role.ADMIN and "team_id" not in data:
                data["team_id"] = ""
            await _set_rule(request, user, data)
            done = "rule"
        elif what == "holidays":
            await _add_holiday(request, user, data)
            done = "holiday"
        elif what == "import":
            upload = form.get("file")
            raw = upload.file.read(MAX_CSV_BYTES + 1) if hasattr(upload, "file") else b""
            if not raw:
                raise SettingsError("talktime.import_no_file", "choose a CSV file")
            if len(raw) > MAX_CSV_BYTES:
                raise SettingsError("talktime.import_too_large", "the CSV is too large")
            try:
                text = raw.decode("utf-8")
            except UnicodeDecodeError:
                raise SettingsError("talktime.import_not_utf8", "the CSV must be UTF-8") from None
            result = await _import(request, user, text, data)
            raise web.HTTPSeeOther(f"/talktime/settings?done=import&added={result['added']}"
                                   f"&skipped={result['skipped']}#holidays")
        elif what == "absences":
            await _add_absence(request, user, data)
            done = "absence"
        else:
            raise NotFoundError("pages.form_not_found", "no such form")
    except DomainError as exc:
        return await _refused(request, user, exc, data)
    raise web.HTTPSeeOther(f"/talktime/settings?done={quote(done)}")


async def item_post(request: web.Request) -> web.Response:
    """Remove a holiday or cancel an absence from the page."""
    user = page_user(request)
    if user.role not in (Role.SUPERVISOR, Role.ADMIN):
        raise NotAllowedError("talktime.settings_for_bosses",
                              "only a supervisor or an admin changes talk-time settings")
    item_id = path_id(request)
    what = request.match_info["what"]
    try:
        async with request.app[WRITER_SESSIONS]() as session, session.begin():
            if what == "holidays":
                await remove_holiday(session, user, item_id)
                done = "removed"
            else:
                await cancel_absence(session, user, item_id)
                done = "cancelled"
    except DomainError as exc:
        return await _refused(request, user, exc, {})
    raise web.HTTPSeeOther(f"/talktime/settings?done={done}")


def add_routes(router: web.UrlDispatcher) -> None:
    """Register the settings page, its forms and the JSON API."""
    router.add_get("/talktime/settings", page)
    router.add_post(r"/talktime/settings/{what:rules|holidays|import|absences}", form_post)
    router.add_post(r"/talktime/settings/{what:holidays|absences}/{id}/remove", item_post)
    router.add_get("/api/talktime/rules", api_rules)
    router.add_post("/api/talktime/rules", api_set_rule)
    router.add_get("/api/talktime/holidays", api_holidays)
    router.add_post("/api/talktime/holidays", api_add_holiday)
    router.add_post("/api/talktime/holidays/import", api_import_holidays)
    router.add_delete("/api/talktime/holidays/{id}", api_remove_holiday)
    router.add_get("/api/talktime/absences", api_absences)
    router.add_post("/api/talktime/absences", api_add_absence)
    router.add_delete("/api/talktime/absences/{id}", api_cancel_absence)

