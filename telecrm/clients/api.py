"""The clients' JSON API (routes fixed by architecture.md, extended here).

- ``GET /api/clients?q=TEXT&…``: the clients this user may open, found by name, INN,
  contact, e-mail or a phone in any written form, with the list's filters
  (:mod:`telecrm.clients.listing`): ``{"clients": [...], "next": cursor|null}``;
- ``POST /api/clients`` ``{"name", "phones": [...], "emails"?, "inn"?, …, "owner_id"?,
  "annual_potential"?, "contacts"?: [{"name", "position"?, "phones"?, "emails"?}]}``: 201
  and the card; at most :data:`MAX_CONTACTS` contacts, :data:`MAX_LIST` phones or
  e-mails per list and :data:`MAX_ITEMS` in all, refused before the write transaction
  (which holds the write lock: each is a row, each contact a few statements);
- ``PATCH /api/clients/{id}``: the fields given (``phones``/``emails`` replace the
  company's own);
- ``POST /api/clients/{id}/contacts``, ``PATCH /api/clients/{id}/contacts/{contact}``;
- ``POST /api/clients/{id}/merge`` ``{"duplicate_id"}``: supervisors and admins.

A phone another client has is refused (409, ``clients.phone_taken``) with his name.
"""

from __future__ import annotations

from typing import Any

from aiohttp import web

from crm_core.errors import DomainError
from telecrm.clients import service
from telecrm.clients.listing import find, parse_filters
from telecrm.web.auth import api_user
from telecrm.web.errors import ApiError
from telecrm.web.keys import SESSIONS, SETTINGS, WRITER_SESSIONS, workday_tz
from telecrm.web.params import id_field, id_value, json_object, path_id
from telecrm.web.present import client_list_item, client_to_dict, contact_to_dict

MAX_CONTACTS = 20  # contact persons created with a card; more go one by one
MAX_LIST = 50  # phones or e-mails of one card or one person
MAX_ITEMS = 100  # phones and e-mails of one request, its contact persons' included


def _strings(body: dict[str, Any], name: str) -> list[str] | None:
    value = body.get(name)
    if value is None:
        return None
    if isinstance(value, str):
        return [value]
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise ApiError(400, "request.phone_list", name=name)
    if len(value) > MAX_LIST:
        raise ApiError(400, "request.list_too_long", name=name, max=MAX_LIST)
    return value


def _text(body: dict[str, Any], name: str) -> str | None:
    value = body.get(name)
    if value is not None and not isinstance(value, str):
        raise ApiError(400, "request.not_string", name=name)
    return value


def company_input(body: dict[str, Any], *, creating: bool) -> service.CompanyInput:
    """A JSON body as the card's input; unknown keys are refused (a typo must not pass)."""
    known = {"name", "phones", "emails", "owner_id", "annual_potential", "contacts",
             *service.DETAIL_FIELDS}
    unknown = sorted(set(body) - known)
    if unknown:
        raise ApiError(400, "request.unknown_field", name=", ".join(unknown))
    owner = id_field(body, "owner_id", required=False)
    potential = body.get("annual_potential")
    if potential is not None and (isinstance(potential, bool)
                                  or not isinstance(potential, (int, float, str))):
        raise ApiError(400, "clients.potential_not_amount")
    contacts = body.get("contacts") or []
    if not isinstance(contacts, list) or not all(isinstance(c, dict) for c in contacts):
        raise ApiError(400, "clients.contacts_list")
    if contacts and not creating:
        raise ApiError(400, "clients.contacts_elsewhere")
    if len(contacts) > MAX_CONTACTS:  # each is a few statements in the write transaction
        raise ApiError(400, "clients.contacts_too_many", max=MAX_CONTACTS)
    if creating and not isinstance(body.get("name"), str):
        raise ApiError(400, "request.string_required", name="name")
    data = service.CompanyInput(
        name=_text(body, "name"), phones=_strings(body, "phones"),
        emails=_strings(body, "emails"),
        details={f: _text(body, f) for f in service.DETAIL_FIELDS if f in body},
        owner_id=owner, potential=None if potential is None else str(potential),
        contacts=[contact_input(c) for c in contacts])
    items = len(data.phones or ()) + len(data.emails or ()) + sum(
        len(c.phones) + len(c.emails) for c in data.contacts)
    if items > MAX_ITEMS:
        raise ApiError(400, "clients.card_too_many_items", max=MAX_ITEMS)
    return data


def contact_input(body: dict[str, Any]) -> service.ContactInput:
    unknown = sorted(set(body) - {"name", "position", "phones", "emails"})
    if unknown:
        raise ApiError(400, "request.unknown_field", name=", ".join(unknown))
    return service.ContactInput(name=_text(body, "name") or "",
                                position=_text(body, "position"),
                                phones=_strings(body, "phones") or [],
                                emails=_strings(body, "emails") or [])


async def list_clients(request: web.Request) -> web.Response:
    user = api_user(request)
    tz = workday_tz(request)
    filters = parse_filters(request.query, tz)
    async with request.app[SESSIONS]() as session:
        page, _ = await find(session, user, filters, tz)
    return web.json_response({"clients": [client_list_item(c, page.phones[c.id])
                                          for c in page.clients],
                              "next": page.next})


async def _card(request: web.Request, client_id: int) -> dict[str, Any]:
    user = api_user(request)
    async with request.app[SESSIONS]() as session:
        client = await service.editable(session, user, client_id, edit=False)
        return client_to_dict(client, [], None)


async def create(request: web.Request) -> web.Response:
    user = api_user(request)
    data = company_input(await json_object(request), creating=True)
    async with request.app[WRITER_SESSIONS]() as session, session.begin():
        client = await service.create(session, user, data, request.app[SETTINGS])
    return web.json_response(await _card(request, client.id), status=201)


async def edit(request: web.Request) -> web.Response:
    user = api_user(request)
    client_id = path_id(request)
    data = company_input(await json_object(request), creating=False)
    async with request.app[WRITER_SESSIONS]() as session, session.begin():
        client = await service.editable(session, user, client_id)
        await service.edit(session, user, client, data, request.app[SETTINGS])
    return web.json_response(await _card(request, client_id))


async def add_contact(request: web.Request) -> web.Response:
    user = api_user(request)
    client_id = path_id(request)
    data = contact_input(await json_object(request))
    async with request.app[WRITER_SESSIONS]() as session, session.begin():
        client = await service.editable(session, user, client_id)
        contact = await service.add_person(session, user, client, data)
        contact_id = contact.id
    return web.json_response(await _contact(request, client_id, contact_id), status=201)


async def edit_contact(request: web.Request) -> web.Response:
    user = api_user(request)
    client_id = path_id(request)
    contact_id = path_id(request, "contact")
    data = contact_input(await json_object(request))
    async with request.app[WRITER_SESSIONS]() as session, session.begin():
        client = await service.editable(session, user, client_id)
        await service.edit_person(session, user, client, contact_id, data)
    return web.json_response(await _contact(request, client_id, contact_id))


async def _contact(request: web.Request, client_id: int, contact_id: int) -> dict[str, Any]:
    user = api_user(request)
    async with request.app[SESSIONS]() as session:
        client = await service.editable(session, user, client_id, edit=False)
        for contact in client.contacts:
            if contact.id == contact_id:
                return contact_to_dict(contact)
    raise DomainError("clients.contact_not_found", "no such contact")


async def merge(request: web.Request) -> web.Response:
    user = api_user(request)
    client_id = path_id(request)
    body = await json_object(request)
    duplicate = id_value(body.get("duplicate_id"), "duplicate_id")
    async with request.app[WRITER_SESSIONS]() as session, session.begin():
        result = await service.merge(session, user, client_id, duplicate,
                                     request.app[SETTINGS])
        answer = {"kept": result.kept.id, "merged": result.duplicate.id,
                  "moved": result.moved, "stayed_with_duplicate": result.stayed,
                  "filled": result.filled}
    return web.json_response(answer)


def add_routes(router: web.UrlDispatcher) -> None:
    router.add_get("/api/clients", list_clients)
    router.add_post("/api/clients", create)
    router.add_patch("/api/clients/{id:\\d+}", edit)
    router.add_post("/api/clients/{id:\\d+}/contacts", add_contact)
    router.add_patch("/api/clients/{id:\\d+}/contacts/{contact:\\d+}", edit_contact)
    router.add_post("/api/clients/{id:\\d+}/merge", merge)
