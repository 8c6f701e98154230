"""Routes of appeals: the fined manager disputes a confirmed fine, another reviewer
decides (crm_core.speech.appeals); the /qc page's evidence panel calls them."""

from __future__ import annotations

from typing import Any

from aiohttp import web
from sqlalchemy import select

from crm_core.errors import DomainError
from crm_core.people.models import User
from crm_core.speech import appeals as kkp_appeals
from crm_core.speech import review as kkp_review
from telecrm.speech.roles import qc_user
from telecrm.web.auth import api_user
from telecrm.web.keys import WRITER_SESSIONS
from telecrm.web.params import json_object, path_id


async def _appeal_body(request: web.Request, field: str) -> dict[str, Any]:
    body = await json_object(request)
    for name in ("decision", field):
        value = body.get(name)
        if value is not None and not isinstance(value, str):
            raise DomainError("speech.appeal.not_string", f"{name} must be a string")
    return body


async def qc_appeal(request: web.Request) -> web.Response:
    """POST /api/kkp/fines/{id}/appeal {"reason"}: the fined manager disputes his fine."""
    user = qc_user(api_user(request))
    body = await _appeal_body(request, "reason")
    async with request.app[WRITER_SESSIONS]() as session:
        appeal = await kkp_appeals.file_appeal(session, user, path_id(request),
                                               body.get("reason"))
        await session.commit()
        out = kkp_review.appeal_to_dict(appeal, {user.id: user.name})
    return web.json_response(out, status=201)


async def qc_appeal_decision(request: web.Request) -> web.Response:
    """POST /api/kkp/fines/{id}/appeal/decision {"decision": "cancelled"|"kept", "comment"}."""
    user = qc_user(api_user(request))
    body = await _appeal_body(request, "comment")
    async with request.app[WRITER_SESSIONS]() as session:
        appeal = await kkp_appeals.decide_appeal(session, user, path_id(request),
                                                 str(body.get("decision") or ""),
                                                 body.get("comment"))
        await session.commit()
        names = {k: v for k, v in await session.execute(select(User.id, User.name))}
        out = kkp_review.appeal_to_dict(appeal, names)
    return web.json_response(out, status=201)
