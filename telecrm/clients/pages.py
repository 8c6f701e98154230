"""The clients' pages: the list with search and filters, the card's forms, merging, reassigning.

- ``GET /clients``: search (name, INN, contact, e-mail, a phone however written), filters,
  sort and pages (:mod:`telecrm.clients.listing`); supervisors and admins tick clients and
  give them to another manager (``POST /clients/reassign``, audited);
- ``GET|POST /clients/new``, ``GET|POST /clients/{id}/edit``: the company card;
- ``POST /clients/{id}/contacts[/{contact}[/archive]]``: contact persons (archived, never
  deleted; archiving is a supervisor's or an admin's);
- ``GET|POST /clients/{id}/merge``: find the duplicate, pick it, confirm.

Refusals come back on the same form with the Russian sentence of their code.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlencode

import aiohttp_jinja2
from aiohttp import web
from multidict import MultiMapping
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from crm_core.calls.models import Call
from crm_core.clients.phones import format_phone
from crm_core.clients.search import ClientQuery, search_clients
from crm_core.clients.services import has_placeholder_name
from crm_core.errors import DomainError, NotAllowedError, NotFoundError
from crm_core.people import access
from crm_core.people.models import Role, Team, User
from crm_core.sales.archive import archive_contact
from crm_core.sales.clients import (
    SalesClientError,
    SalesNotAllowedError,
    bulk_client_ids,
    reassign_clients,
)
from crm_core.sales.deals import DealError, DealNotAllowedError
from crm_core.sales.models import Deal
from crm_core.tasks.models import Task
from telecrm.clients import service
from telecrm.clients.listing import PAGE, STATUSES, find, next_tasks, parse_filters, query_string
from telecrm.messages import http_status, russian
from telecrm.web.auth import page_user
from telecrm.web.keys import SESSIONS, SETTINGS, WRITER_SESSIONS, workday_tz
from telecrm.web.params import path_id
from telecrm.web.redirects import local_path

DONE = {  # the edit page's notes (the card's are telecrm.web.pages.CARD_DONE)
    "contact_added": "Контактное лицо добавлено.", "contact_saved": "Контактное лицо сохранено.",
    "contact_archived": "Контактное лицо убрано в архив.",
    "contact_restored": "Контактное лицо возвращено из архива.",
}
SORT_NAMES = {"name": "По названию", "last_contact": "Давно без контакта",
              "status": "По состоянию"}
FOUND_VIA = ["Рекомендация", "Сайт", "Поисковая реклама", "Выставка", "Холодный звонок",
             "Повторное обращение", "Соцсети"]



def _clients_user(request: web.Request) -> User:
    user = page_user(request)
    if not access.may_see_clients(user):
        raise NotAllowedError("clients.not_for_role", "your role has no access to clients")
    return user


def _refusal(exc: DomainError) -> tuple[int, str]:
    return http_status(exc), russian(exc)


# -- the list ---------------------------------------------------------------------------------


async def _list_context(request: web.Request, user: User) -> dict[str, Any]:
    tz = workday_tz(request)
    filters = parse_filters(request.query, tz)
    boss = user.role in (Role.SUPERVISOR, Role.ADMIN)
    async with request.app[SESSIONS]() as session:
        page, total = await find(session, user, filters, tz, with_count=True)
        due = await next_tasks(session, [c.id for c in page.clients])
        managers = await access.visible_managers(session, user) if boss else []
        teams = (list(await session.scalars(select(Team).order_by(Team.name)))
                 if user.role == Role.ADMIN else [])
    q = filters.query
    owners = {m.id: m.name for m in managers}
    notes = _report_notes(filters, owners)
    return {
        "title": "Клиенты", "clients": page.clients, "phones": page.phones, "due": due,
        "total": total,
        "filters": filters, "q": q, "statuses": STATUSES, "sorts": SORT_NAMES,
        "managers": managers, "teams": teams, "boss": boss, "notes": notes,
        "single_owner": q.owner_ids[0] if len(q.owner_ids) == 1 else None,
        "hidden": _hidden(filters), "next_url": (
            "/clients?" + query_string(filters.raw, cursor=page.next) if page.next else None),
        "first_url": ("/clients?" + query_string(filters.raw, cursor=None)
                      if q.cursor else None),
        "back": request.path_qs, "page_size": PAGE,
        "done": request.query.get("done_text"),
        "error": request.query.get("error_text"),
    }


def _hidden(filters: Any) -> list[tuple[str, str]]:
    """Parameters the form has no control for (a report's link): kept through a search."""
    keep = ["as_of", "stay", "over_max", "created_to"]
    out = [(k, v) for k in keep for v in filters.raw.get(k, [])]
    if len(filters.query.owner_ids) > 1:
        out += [("owner", str(i)) for i in filters.query.owner_ids]
    return out


def _report_notes(filters: Any, owners: dict[int, str]) -> list[str]:
    """What a report's link narrowed the list to, in words."""
    day = filters.as_of.strftime("%d.%m.%Y")
    notes = []
    if filters.abandoned:
        notes.append(f"заброшенные на {day} (без контакта дольше плановой частоты)")
    if filters.stay is not None:
        months = "6 и более" if filters.stay >= 6 else str(filters.stay)
        notes.append(f"полных месяцев у менеджера на {day}: {months}")
    if filters.over_max:
        notes.append(f"дольше максимума у менеджера на {day}")
    if filters.created_to:
        notes.append(f"появились по {filters.created_to.strftime('%d.%m.%Y')}")
    if len(filters.query.owner_ids) > 1:
        notes.append("менеджеры: " + ", ".join(
            owners.get(i, f"№{i}") for i in filters.query.owner_ids))
    return notes


async def clients_page(request: web.Request) -> web.Response:
    user = _clients_user(request)
    context = await _list_context(request, user)
    return aiohttp_jinja2.render_template("clients.html", request, context)


def _back_to_list(raw: str) -> str:
    target = local_path(raw)
    return target if target.startswith("/clients") else "/clients"


def _with_message(target: str, key: str, text: str) -> str:
    base, _, query = target.partition("?")
    params = [p for p in query.split("&") if p and not p.startswith(("done_text=",
                                                                     "error_text="))]
    params.append(urlencode({key: text}))
    return base + "?" + "&".join(params)


REASSIGN_RU = {
    "Give at least one client": "Отметьте хотя бы одного клиента.",
    "is archived": "Среди отмеченных есть клиент в архиве.",
    "is not a manager": "Выбранный сотрудник не менеджер.",
    "no active user": "Выберите, кому передать клиентов.",
    "is not in your team": "Передавать можно только клиентов своего отдела своим менеджерам.",
    "at most": "За один раз можно передать не больше 1 000 клиентов.",
}


async def reassign_form(request: web.Request) -> web.Response:
    user = _clients_user(request)
    form = await request.post()
    back = _back_to_list(str(form.get("back", "")))
    if user.role not in (Role.SUPERVISOR, Role.ADMIN):
        raise NotAllowedError("clients.reassign_not_allowed", "only supervisors reassign")
    ids = [int(v) for v in form.getall("client_id", []) if isinstance(v, str) and v.isdigit()
           and len(v) <= 9]
    owner_raw = str(form.get("owner_id", ""))
    reason = str(form.get("reason", "")).strip()[:300] or None
    try:
        ids = bulk_client_ids(ids)  # size and duplicates before the transaction
        async with request.app[WRITER_SESSIONS]() as session, session.begin():
            if await access.unopenable_clients(session, user, ids):
                raise NotFoundError("clients.not_found", "no such client")
            owner_id = int(owner_raw) if owner_raw.isdigit() else 0
            moved = await reassign_clients(session, ids, owner_id or -1, by=user, reason=reason,
                                           actor=user.username)
    except SalesClientError as exc:
        text = next((ru for key, ru in REASSIGN_RU.items() if key in str(exc)),
                    "Не удалось передать клиентов.")
        if isinstance(exc, SalesNotAllowedError):
            text = REASSIGN_RU["is not in your team"]
        raise web.HTTPSeeOther(_with_message(back, "error_text", text)) from None
    raise web.HTTPSeeOther(_with_message(back, "done_text", f"Передано клиентов: {len(moved)}."))


# -- the card's forms -------------------------------------------------------------------------


def _values(form: MultiMapping[Any]) -> dict[str, Any]:
    return {k: (v if isinstance(v, str) else "") for k, v in form.items()}


def _company_from(form: MultiMapping[Any], *, creating: bool) -> service.CompanyInput:
    def texts(name: str) -> list[str]:
        return [v for v in form.getall(name, []) if isinstance(v, str) and v.strip()][:50]

    owner = str(form.get("owner_id", ""))
    contacts = []
    if creating and str(form.get("contact_name", "")).strip():
        contacts.append(service.ContactInput(
            name=str(form.get("contact_name", "")),
            position=str(form.get("contact_position", "")) or None,
            phones=texts("contact_phone"), emails=texts("contact_email")))
    potential = form.get("annual_potential")
    return service.CompanyInput(
        name=str(form.get("name", "")), phones=texts("phone"), emails=texts("email"),
        details={f: str(form.get(f, "")) for f in service.DETAIL_FIELDS if f in form},
        owner_id=int(owner) if owner.isdigit() and len(owner) <= 10 else None,
        potential=potential if isinstance(potential, str) else None, contacts=contacts)


def _contact_from(form: MultiMapping[Any]) -> service.ContactInput:
    return service.ContactInput(
        name=str(form.get("name", "")), position=str(form.get("position", "")) or None,
        phones=[v for v in form.getall("phone", []) if isinstance(v, str) and v.strip()][:20],
        emails=[v for v in form.getall("email", []) if isinstance(v, str) and v.strip()][:20])


async def _form_context(request: web.Request, user: User, client_id: int | None
                        ) -> dict[str, Any]:
    async with request.app[SESSIONS]() as session:
        client = (await service.editable(session, user, client_id)
                  if client_id is not None else None)
        owners = await service.owners_for(session, user) if client is None else []
    boss = user.role in (Role.SUPERVISOR, Role.ADMIN)
    values: dict[str, Any] = {}
    phones: list[str] = []
    emails: list[str] = []
    if client is not None:
        values = {f: getattr(client, f) or "" for f in service.DETAIL_FIELDS}
        values["name"] = client.name
        values["annual_potential"] = (f"{client.annual_potential:f}".rstrip("0").rstrip(".")
                                      if client.annual_potential is not None else "")
        phones = [format_phone(p.e164) for p in client.phones if p.contact_id is None]
        emails = [m.address for m in client.emails if m.contact_id is None]
    return {
        "title": f"{client.name} — редактирование" if client else "Новый клиент",
        "client": client, "values": values, "phones": phones, "emails": emails,
        "owners": owners, "may_set_potential": boss, "boss": boss, "found_via": FOUND_VIA,
        "lead": client is not None and has_placeholder_name(client),
        "error": None, "done": DONE.get(request.query.get("done", "")),
        "may_archive": boss, "contact_values": {}, "contact_error": None,
    }


async def new_form(request: web.Request) -> web.Response:
    user = _clients_user(request)
    if not access.may_create_clients(user):
        raise NotAllowedError("clients.create_not_allowed", "your role does not create clients")
    return aiohttp_jinja2.render_template("client_form.html", request,
                                          await _form_context(request, user, None))


async def _form_refused(request: web.Request, user: User, client_id: int | None,
                        form: MultiMapping[Any], exc: DomainError) -> web.Response:
    context = await _form_context(request, user, client_id)
    status, context["error"] = _refusal(exc)
    context["values"] = {**context["values"], **_values(form)}
    context["phones"] = [v for v in form.getall("phone", []) if isinstance(v, str) and v.strip()]
    context["emails"] = [v for v in form.getall("email", []) if isinstance(v, str) and v.strip()]
    context["contact_values"] = _values(form)
    return aiohttp_jinja2.render_template("client_form.html", request, context, status=status)


async def new_submit(request: web.Request) -> web.Response:
    user = _clients_user(request)
    form = await request.post()
    try:
        data = _company_from(form, creating=True)
        async with request.app[WRITER_SESSIONS]() as session, session.begin():
            client = await service.create(session, user, data, request.app[SETTINGS])
            client_id = client.id
    except DomainError as exc:
        return await _form_refused(request, user, None, form, exc)
    raise web.HTTPSeeOther(f"/clients/{client_id}?done=created")


async def edit_form(request: web.Request) -> web.Response:
    user = _clients_user(request)
    client_id = path_id(request)
    return aiohttp_jinja2.render_template("client_form.html", request,
                                          await _form_context(request, user, client_id))


async def edit_submit(request: web.Request) -> web.Response:
    user = _clients_user(request)
    client_id = path_id(request)
    form = await request.post()
    try:
        data = _company_from(form, creating=False)
        async with request.app[WRITER_SESSIONS]() as session, session.begin():
            client = await service.editable(session, user, client_id)
            await service.edit(session, user, client, data, request.app[SETTINGS])
    except DomainError as exc:
        if exc.kind in ("not_found",):
            raise
        return await _form_refused(request, user, client_id, form, exc)
    raise web.HTTPSeeOther(f"/clients/{client_id}?done=saved")


async def contact_submit(request: web.Request) -> web.Response:
    """Add a contact person (no ``contact`` in the path) or save one."""
    user = _clients_user(request)
    client_id = path_id(request)
    contact_id = path_id(request, "contact") if "contact" in request.match_info else None
    form = await request.post()
    try:
        async with request.app[WRITER_SESSIONS]() as session, session.begin():
            client = await service.editable(session, user, client_id)
            data = _contact_from(form)
            region = request.app[SETTINGS].phone_region
            if contact_id is None:
                await service.add_person(session, user, client, data, region)
            else:
                await service.edit_person(session, user, client, contact_id, data, region)
    except DomainError as exc:
        if exc.kind == "not_found":
            raise
        context = await _form_context(request, user, client_id)
        status, context["error"] = _refusal(exc)
        context["contact_error"] = contact_id or "new"
        context["contact_values"] = _values(form)
        return aiohttp_jinja2.render_template("client_form.html", request, context,
                                              status=status)
    done = "contact_added" if contact_id is None else "contact_saved"
    raise web.HTTPSeeOther(f"/clients/{client_id}/edit?done={done}#contacts")


async def contact_archive(request: web.Request) -> web.Response:
    user = _clients_user(request)
    client_id = path_id(request)
    contact_id = path_id(request, "contact")
    form = await request.post()
    restore = form.get("action") == "restore"
    async with request.app[WRITER_SESSIONS]() as session, session.begin():
        client = await service.editable(session, user, client_id, edit=False)
        if contact_id not in {c.id for c in client.contacts}:
            raise NotFoundError("clients.contact_not_found", "no such contact")
        try:
            await archive_contact(session, contact_id, by=user, restore=restore,
                                  actor=user.username)
        except DealNotAllowedError:
            raise NotAllowedError("clients.contact_archive_not_allowed",
                                  "archiving a contact is a supervisor's") from None
        except DealError:
            pass  # archived (or restored) already: the page shows it as it is
    done = "contact_restored" if restore else "contact_archived"
    raise web.HTTPSeeOther(f"/clients/{client_id}/edit?done={done}#contacts")


# -- merging ----------------------------------------------------------------------------------


async def merge_page(request: web.Request) -> web.Response:
    """Search the duplicate (``q``), pick it (``with``), then confirm."""
    user = _clients_user(request)
    client_id = path_id(request)
    if not access.may_merge_clients(user):
        raise NotAllowedError("clients.merge_not_allowed", "only supervisors and admins merge")
    text = request.query.get("q", "")[:200]
    other_raw = request.query.get("with", "")
    async with request.app[SESSIONS]() as session:
        client = await service.editable(session, user, client_id, edit=False)
        other = None
        if other_raw.isdigit() and len(other_raw) <= 10 and int(other_raw) != client_id:
            other = await service.editable(session, user, int(other_raw), edit=False)
        found = []
        if text.strip() and other is None:
            visible = await access.clients_filter(session, user)
            page = await search_clients(session, ClientQuery(text=text, limit=20),
                                        visible=visible)
            found = [(c, page.phones[c.id]) for c in page.clients if c.id != client_id]
        counts = {}
        if other is not None:
            counts = {c.id: await _counts(session, c.id) for c in (client, other)}
    return aiohttp_jinja2.render_template("client_merge.html", request, {
        "title": f"Объединить: {client.name}", "client": client, "other": other, "q": text,
        "found": found, "searched": bool(text.strip()), "counts": counts, "error": None})


async def _counts(session: AsyncSession, client_id: int) -> dict[str, int]:
    """What the confirmation shows of each card: its calls, deals and tasks."""
    out = {}
    for name, model in (("calls", Call), ("deals", Deal), ("tasks", Task)):
        out[name] = int(await session.scalar(
            select(func.count()).select_from(model).where(model.client_id == client_id)) or 0)
    return out


async def merge_submit(request: web.Request) -> web.Response:
    user = _clients_user(request)
    client_id = path_id(request)
    form = await request.post()
    other_raw = str(form.get("duplicate_id", ""))
    if not other_raw.isdigit() or len(other_raw) > 10:
        raise DomainError("clients.merge_pick", "no duplicate picked")
    other_id = int(other_raw)
    kept, duplicate = ((other_id, client_id) if form.get("keep") == "other"
                       else (client_id, other_id))
    async with request.app[WRITER_SESSIONS]() as session, session.begin():
        await service.merge(session, user, kept, duplicate, request.app[SETTINGS])
    raise web.HTTPSeeOther(f"/clients/{kept}?done=merged")


def add_routes(router: web.UrlDispatcher) -> None:
    router.add_get("/clients", clients_page)
    router.add_post("/clients/reassign", reassign_form)
    router.add_get("/clients/new", new_form)
    router.add_post("/clients/new", new_submit)
    router.add_get("/clients/{id:\\d+}/edit", edit_form)
    router.add_post("/clients/{id:\\d+}/edit", edit_submit)
    router.add_post("/clients/{id:\\d+}/contacts", contact_submit)
    router.add_post("/clients/{id:\\d+}/contacts/{contact:\\d+}", contact_submit)
    router.add_post("/clients/{id:\\d+}/contacts/{contact:\\d+}/archive", contact_archive)
    router.add_get("/clients/{id:\\d+}/merge", merge_page)
    router.add_post("/clients/{id:\\d+}/merge", merge_submit)
