"""The admin's pages of integrations: API tokens, webhook endpoints, the delivery log.

- ``GET|POST /admin/tokens``: the tokens (only their first characters), a form to create
  one (name, the user it acts as, read/write per feature); the new token is shown once,
  in the answer to the form, never in a URL; ``POST /admin/tokens/revoke``
- ``GET|POST /admin/webhooks``: the endpoints and a form to register one (its secret
  shown once likewise); ``POST /admin/webhooks/active`` switches one on or off
- ``GET /admin/webhooks/deliveries``: the delivery log; ``POST
  /admin/webhooks/deliveries/resend``: «Отправить снова»
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

import aiohttp_jinja2
from aiohttp import web
from multidict import MultiDictProxy
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from crm_core.errors import DomainError, NotAllowedError
from crm_core.integrations.models import DeliveryState, WebhookDelivery
from crm_core.integrations.outbox import MAX_ATTEMPTS, counts, delivery_log, resend
from crm_core.integrations.scopes import ACCESS, FEATURES, describe
from crm_core.integrations.tokens import create_token, list_tokens, revoke_token
from crm_core.integrations.webhooks import (
    EVENTS,
    create_endpoint,
    list_endpoints,
    set_endpoint_active,
)
from crm_core.people.models import Role, User
from telecrm.messages import http_status, russian
from telecrm.web.auth import page_user
from telecrm.web.keys import SESSIONS, SETTINGS, WRITER_SESSIONS

STATES = {DeliveryState.PENDING.value: "ждёт отправки",
          DeliveryState.DELIVERED.value: "доставлено",
          DeliveryState.FAILED.value: "не доставлено"}


def _admin(request: web.Request) -> User:
    user = page_user(request)
    if user.role != Role.ADMIN:
        raise NotAllowedError("integrations.admin_only", "only an admin manages integrations")
    return user


def _id(form: MultiDictProxy[Any], name: str) -> int:
    try:
        value = int(str(form.get(name, "")))
    except ValueError:
        raise DomainError("request.malformed_form", f"bad {name}") from None
    if not 0 < value < 2**31:
        raise DomainError("request.malformed_form", f"bad {name}")
    return value


# -- the pages' shared steps ------------------------------------------------------------------

Context = Callable[..., Awaitable[dict[str, Any]]]
Page = tuple[str, Context]  # a page's template and the function that gathers its context
Write = Callable[[AsyncSession], Awaitable[None]]
Make = Callable[[AsyncSession], Awaitable[dict[str, str]]]


async def _render(request: web.Request, page: Page, *, status: int = 200,
                  **extra: Any) -> web.Response:
    template, context = page
    return aiohttp_jinja2.render_template(template, request, await context(request, **extra),
                                          status=status)


def _shown_once(response: web.Response) -> web.Response:
    """An answer that holds a new token or secret: its only showing, never kept by a cache."""
    response.headers["Cache-Control"] = "no-store"
    return response


async def _create(request: web.Request, page: Page, make: Make, *, chosen: set[str],
                  form: dict[str, str]) -> web.Response:
    """Create a row in a transaction and show it once (``created``); a refusal is shown on
    ``page`` with what the form held (``chosen``, ``form``)."""
    try:
        async with request.app[WRITER_SESSIONS]() as session, session.begin():
            created = await make(session)
    except DomainError as exc:
        return await _render(request, page, error=russian(exc), chosen=chosen, form=form,
                             status=http_status(exc))
    return _shown_once(await _render(request, page, created=created))


async def _write(request: web.Request, page: Page, write: Write, done: str) -> web.Response:
    """Run one change in a transaction, then go to ``done``; a refusal is shown on ``page``."""
    try:
        async with request.app[WRITER_SESSIONS]() as session, session.begin():
            await write(session)
    except DomainError as exc:
        return await _render(request, page, error=russian(exc), status=http_status(exc))
    raise web.HTTPSeeOther(done)


# -- API tokens -------------------------------------------------------------------------------


async def _tokens_context(request: web.Request, **extra: Any) -> dict[str, Any]:
    async with request.app[SESSIONS]() as session:
        tokens = await list_tokens(session)
        people = list(await session.scalars(select(User).where(User.active.is_(True))
                                            .order_by(User.name)))
    return {"title": "API-токены", "tokens": tokens, "people": people,
            "features": FEATURES, "access": ACCESS, "describe": describe,
            "created": None, "notice": "", "error": "", "form": {}, "chosen": set(),
            **extra}


TOKENS: Page = ("integrations_tokens.html", _tokens_context)


async def tokens_page(request: web.Request) -> web.Response:
    _admin(request)
    notice = "Токен отозван: запросы с ним больше не принимаются." \
        if request.query.get("revoked") else ""
    return await _render(request, TOKENS, notice=notice)


async def tokens_submit(request: web.Request) -> web.Response:
    admin = _admin(request)
    form = await request.post()
    chosen = {str(v) for v in form.getall("scope", [])}
    name = str(form.get("name", ""))

    async def make(session: AsyncSession) -> dict[str, str]:
        user_id = _id(form, "user_id") if form.get("user_id") else 0
        row, token = await create_token(session, name=name, user_id=user_id,
                                        scopes=sorted(chosen), actor=admin)
        return {"name": row.name, "token": token}
    return await _create(request, TOKENS, make, chosen=chosen,
                         form={"name": name, "user_id": str(form.get("user_id", ""))})


async def tokens_revoke(request: web.Request) -> web.Response:
    admin = _admin(request)
    form = await request.post()

    async def revoke(session: AsyncSession) -> None:
        await revoke_token(session, _id(form, "token_id"), actor=admin)
    return await _write(request, TOKENS, revoke, "/admin/tokens?revoked=1")


# -- webhook endpoints ------------------------------------------------------------------------


async def _webhooks_context(request: web.Request, **extra: Any) -> dict[str, Any]:
    async with request.app[SESSIONS]() as session:
        endpoints = await list_endpoints(session)
    return {"title": "Вебхуки", "endpoints": endpoints, "events": EVENTS, "created": None,
            "notice": "", "error": "", "form": {}, "chosen": set(), **extra}


WEBHOOKS: Page = ("integrations_webhooks.html", _webhooks_context)


async def webhooks_page(request: web.Request) -> web.Response:
    _admin(request)
    notice = {"on": "Получатель включён.", "off": "Получатель выключен: новые события ему "
              "не отправляются."}.get(request.query.get("saved", ""), "")
    return await _render(request, WEBHOOKS, notice=notice)


async def webhooks_submit(request: web.Request) -> web.Response:
    admin = _admin(request)
    form = await request.post()
    chosen = {str(v) for v in form.getall("event", [])}
    name, url = str(form.get("name", "")), str(form.get("url", ""))

    async def make(session: AsyncSession) -> dict[str, str]:
        row = await create_endpoint(
            session, name=name, url=url, events=sorted(chosen), actor=admin,
            allow_private=request.app[SETTINGS].webhooks_allow_private)
        return {"name": row.name, "secret": row.secret}
    return await _create(request, WEBHOOKS, make, chosen=chosen,
                         form={"name": name, "url": url})


async def webhooks_active(request: web.Request) -> web.Response:
    admin = _admin(request)
    form = await request.post()
    active = form.get("active") == "1"

    async def switch(session: AsyncSession) -> None:
        await set_endpoint_active(session, _id(form, "endpoint_id"), active, actor=admin)
    return await _write(request, WEBHOOKS, switch,
                        "/admin/webhooks?saved=" + ("on" if active else "off"))


# -- the delivery log -------------------------------------------------------------------------


def _result(row: WebhookDelivery) -> str:
    """What became of a delivery, as the log's «Результат» reads."""
    if row.state == DeliveryState.DELIVERED.value:
        return "Доставлено"
    if row.state == DeliveryState.FAILED.value:
        return "Не доставлено: " + (row.last_error or "попытки исчерпаны")
    if row.attempts == 0:
        return "Ждёт отправки"
    return f"Ошибка, повтор: {row.last_error or ''}".rstrip(": ")


async def _deliveries_context(request: web.Request, **extra: Any) -> dict[str, Any]:
    state = request.query.get("state") or None
    if state not in STATES:
        state = None
    async with request.app[SESSIONS]() as session:
        rows = await delivery_log(session, state=state)
        totals = await counts(session)
    return {"title": "Журнал вебхуков", "rows": rows, "events": EVENTS, "states": STATES,
            "state": state or "", "totals": totals, "result": _result,
            "max_attempts": MAX_ATTEMPTS, "notice": "", "error": "", **extra}


DELIVERIES: Page = ("integrations_deliveries.html", _deliveries_context)


async def deliveries_page(request: web.Request) -> web.Response:
    _admin(request)
    notice = "Отправка поставлена в очередь: уйдёт в ближайшие секунды." \
        if request.query.get("resent") else ""
    return await _render(request, DELIVERIES, notice=notice)


async def deliveries_resend(request: web.Request) -> web.Response:
    admin = _admin(request)
    form = await request.post()

    async def send_again(session: AsyncSession) -> None:
        await resend(session, _id(form, "delivery"), actor=admin)
    return await _write(request, DELIVERIES, send_again, "/admin/webhooks/deliveries?resent=1")


def add_routes(router: web.UrlDispatcher) -> None:
    router.add_get("/admin/tokens", tokens_page)
    router.add_post("/admin/tokens", tokens_submit)
    router.add_post("/admin/tokens/revoke", tokens_revoke)
    router.add_get("/admin/webhooks", webhooks_page)
    router.add_post("/admin/webhooks", webhooks_submit)
    router.add_post("/admin/webhooks/active", webhooks_active)
    router.add_get("/admin/webhooks/deliveries", deliveries_page)
    router.add_post("/admin/webhooks/deliveries/resend", deliveries_resend)

