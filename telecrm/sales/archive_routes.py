"""Archive contacts and deals, change a deal's expected amount (nothing is deleted).

- ``POST /api/contacts/{id}/archive`` ``{"reason"?, "restore"?}``;
- ``POST /api/deals/{id}/archive`` ``{"reason"?, "restore"?}``;
- ``PUT /api/deals/{id}/amount`` ``{"amount"}``.

Someone who may not open the client gets 404; a manager archiving gets 403.
"""

from __future__ import annotations

from typing import Any

from aiohttp import web

from crm_core.clients.models import Contact
from crm_core.errors import DomainError, NotAllowedError, NotFoundError
from crm_core.people import access
from crm_core.people.models import User
from crm_core.sales.archive import archive_contact, archive_deal, set_deal_amount
from crm_core.sales.deals import deal_to_dict
from crm_core.sales.models import Deal
from crm_core.timestamps import isoformat
from telecrm.web.auth import api_user
from telecrm.web.keys import WRITER_SESSIONS
from telecrm.web.params import json_object, path_id


def _user(request: web.Request) -> User:
    user = api_user(request)
    if not access.may_see_clients(user):
        raise NotAllowedError("sales.role_no_clients", "your role has no access to clients")
    return user


def _options(body: dict[str, Any]) -> tuple[bool, str | None]:
    restore, reason = body.get("restore", False), body.get("reason")
    if not isinstance(restore, bool):
        raise DomainError("request.not_boolean", "restore must be true or false",
                          name="restore")
    if reason is not None and not isinstance(reason, str):
        raise DomainError("request.not_string", "reason must be a string", name="reason")
    return restore, reason


async def post_contact_archive(request: web.Request) -> web.Response:
    user = _user(request)
    contact_id = path_id(request)
    restore, reason = _options(await json_object(request))
    async with request.app[WRITER_SESSIONS]() as session, session.begin():
        contact = await session.get(Contact, contact_id)
        if contact is None or await access.visible_client(
                session, user, contact.client_id) is None:
            raise NotFoundError("sales.contact.not_visible", "no such contact")
        await archive_contact(session, contact_id, by=user, restore=restore, reason=reason,
                              actor=user.username)
        row = {"id": contact.id, "client_id": contact.client_id, "name": contact.name,
               "archived_at": isoformat(contact.archived_at)}
    return web.json_response(row)


async def _deal(session: Any, user: User, deal_id: int) -> Deal:
    deal = await session.get(Deal, deal_id)
    if deal is None or await access.visible_client(session, user, deal.client_id) is None:
        raise NotFoundError("sales.deal.not_visible", "no such deal")
    return deal


async def post_deal_archive(request: web.Request) -> web.Response:
    user = _user(request)
    deal_id = path_id(request)
    restore, reason = _options(await json_object(request))
    async with request.app[WRITER_SESSIONS]() as session, session.begin():
        deal = await _deal(session, user, deal_id)
        await archive_deal(session, deal_id, by=user, restore=restore, reason=reason,
                           actor=user.username)
        row = {**deal_to_dict(deal), "archived_at": isoformat(deal.archived_at)}
    return web.json_response(row)


async def put_deal_amount(request: web.Request) -> web.Response:
    user = _user(request)
    deal_id = path_id(request)
    body = await json_object(request)
    async with request.app[WRITER_SESSIONS]() as session, session.begin():
        deal = await _deal(session, user, deal_id)
        await set_deal_amount(session, deal, body.get("amount"), by=user,
                              actor=user.username)
        row = deal_to_dict(deal)
    return web.json_response(row)


def add_routes(router: web.UrlDispatcher) -> None:
    router.add_post("/api/contacts/{id}/archive", post_contact_archive)
    router.add_post("/api/deals/{id}/archive", post_deal_archive)
    router.add_put("/api/deals/{id}/amount", put_deal_amount)
