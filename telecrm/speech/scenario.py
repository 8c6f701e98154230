"""The «Сценарий» panel: the script of the client's current stage, as the manager reads it.

One function, :func:`client_scenario`, answers "the script for this client now" for the
card, the task list and «Обзвон»: it asks the same lookup the check of a call uses
(:func:`crm_core.speech.scripts.script_for_client`: the stage of the client's deal, then
the team, then the company, in the version in force now), and turns the version into
readable parts: each stage with what to say, the words it is checked by, and the
answers to objections. ``GET /clients/{id}/scenario`` renders it for the pages,
``GET /api/clients/{id}/scenario`` gives it as JSON.
"""

from __future__ import annotations

import asyncio
import copy
from datetime import datetime
from typing import Any

import aiohttp_jinja2
from aiohttp import web
from sqlalchemy.ext.asyncio import AsyncSession

from crm_core.clients.models import Client
from crm_core.clock import utcnow
from crm_core.errors import NotAllowedError
from crm_core.people import access
from crm_core.people.models import Role, User
from crm_core.speech.scripts import ClientScript, script_for_client
from speech.script import KkpError, parse_script_text
from telecrm.web.auth import api_user, page_user
from telecrm.web.keys import SESSIONS
from telecrm.web.params import path_id

#: Roles that read scripts: the manager (they are his instructions) and those who set them.
READERS = frozenset({Role.MANAGER, Role.SUPERVISOR, Role.ADMIN})


def may_read_scripts(user: User) -> bool:
    return user.role in READERS


async def _team_for(session: AsyncSession, user: User, client: Client) -> int | None:
    """Whose team's script: the reader's own (never another team's); an administrator,
    who has no team, reads what the client's owner would."""
    if user.role != Role.ADMIN or user.team_id is not None:
        return user.team_id
    owner = await session.get(User, client.owner_id) if client.owner_id else None
    return owner.team_id if owner is not None else None


def _within(seconds: float | None) -> str | None:
    return f"в первые {seconds:g} с разговора" if seconds else None


def scenario_view(found: ClientScript) -> dict[str, Any]:
    """The version as the panel and the dialer's JSON show it (never YAML)."""
    stage = found.stage.name if found.stage is not None else None
    if found.version is None:
        return {"name": None, "stage": stage, "version": None, "description": None,
                "for_stage": False, "prompts": [], "objections": []}
    try:
        script = parse_script_text(found.version.text)
    except KkpError:  # validated on upload; show nothing rather than a broken text
        return {"name": found.version.name, "stage": stage, "version": found.version.name,
                "description": None, "for_stage": found.version.stage is not None,
                "prompts": [], "objections": []}
    prompts = []
    for step in script.stages:
        words = ", ".join(f"«{p}»" for p in step.phrases)
        text = f"Скажите: {words}" if words else ""
        if step.within_seconds:
            text += f" — {_within(step.within_seconds)}"
        prompts.append({"id": step.id, "title": step.title or step.id, "required": step.required,
                        "text": text, "say": list(step.say), "phrases": list(step.phrases),
                        "within": _within(step.within_seconds)})
    return {"name": script.name or found.version.name, "stage": stage,
            "version": found.version.name, "description": script.description or None,
            "for_stage": found.version.stage is not None,
            "prompts": prompts,
            "objections": [{"title": o.title, "say": list(o.say), "phrases": list(o.phrases)}
                           for o in script.objections]}


# Parsed views by (version id, digest, stage name): a version is never edited (a new upload
# is a new row), so the card, the most viewed page, parses each script once per process.
_VIEWS: dict[tuple[int, str, str | None], dict[str, Any]] = {}
_VIEWS_KEPT = 64


async def client_scenario(session: AsyncSession, user: User, client: Client,
                          at: datetime | None = None) -> dict[str, Any] | None:
    """The script for this client now, as ``user`` reads it; None for roles without scripts.

    The parse runs in a thread (a script is bounded but can be a few hundred kilobytes),
    once per version: later views take a copy of the parsed view."""
    if not may_read_scripts(user):
        return None
    team_id = await _team_for(session, user, client)
    found = await script_for_client(session, client.id, at or utcnow(), team_id=team_id)
    if found.version is None:
        return scenario_view(found)
    key = (found.version.id, found.version.digest,
           found.stage.name if found.stage is not None else None)
    view = _VIEWS.get(key)
    if view is None:
        view = await asyncio.to_thread(scenario_view, found)
        if len(_VIEWS) >= _VIEWS_KEPT:
            _VIEWS.pop(next(iter(_VIEWS)))
        _VIEWS[key] = view
    return copy.deepcopy(view)


async def _requested(request: web.Request, user: User) -> dict[str, Any] | None:
    if not may_read_scripts(user):
        raise NotAllowedError("speech.scenario.not_yours", "scripts are for the sales floor")
    async with request.app[SESSIONS]() as session:
        client = await access.openable_client(session, user, path_id(request))
        return await client_scenario(session, user, client)


async def scenario_fragment(request: web.Request) -> web.Response:
    """GET /clients/{id}/scenario: the panel's body, for the task list and «Обзвон»."""
    scenario = await _requested(request, page_user(request))
    return aiohttp_jinja2.render_template("_scenario.html", request, {"scenario": scenario})


async def scenario_api(request: web.Request) -> web.Response:
    """GET /api/clients/{id}/scenario: the same script as JSON."""
    return web.json_response(await _requested(request, api_user(request)))
