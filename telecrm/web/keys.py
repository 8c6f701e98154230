"""Typed keys of everything the app factory wires in, shared by app and handlers.

They live here rather than in ``telecrm.app`` so that handlers can import them
without importing the factory that imports the handlers.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from aiohttp import web
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from crm_core.calls.hooks import CallHooks
from crm_core.people.models import User, WebSession
from pbx_bridge.pipeline import Listener
from telecrm.bus import Bus
from telecrm.election import Election
from telecrm.live_prompts import LivePrompts
from telecrm.settings import Settings
from telecrm.web.clicktocall import ClickToCall
from telecrm.web.config import WebConfig
from telecrm.web.throttle import LoginThrottle

SETTINGS = web.AppKey("settings", Settings)
WEB_CONFIG = web.AppKey("web_config", WebConfig)
SESSIONS = web.AppKey("sessions", async_sessionmaker[AsyncSession])
WRITER_SESSIONS = web.AppKey("writer_sessions", async_sessionmaker[AsyncSession])
# The listener of the default PBX (or the first one running), for code that needs one;
# LISTENERS has every running PBX's by name (telecrm.pbxes.targets).
LISTENER = web.AppKey("listener", Listener)
LISTENERS = web.AppKey("listeners", dict[str, Listener])
# Where each running PBX's MixMonitor writes, by PBX name (its recordings source).
PBX_ROOTS = web.AppKey("pbx_roots", dict[str, Path])
BUS = web.AppKey("bus", Bus)
# The roles this process runs when elected (``listener:<pbx>``, ``jobs``), by name.
ELECTIONS = web.AppKey("elections", dict[str, Election])
# What features do with written calls and add to the call JSON (telecrm.wiring).
CALL_HOOKS = web.AppKey("call_hooks", CallHooks)
THROTTLE = web.AppKey("login_throttle", LoginThrottle)
CLICK_TO_CALL = web.AppKey("click_to_call", ClickToCall)
# Open Server-Sent Event streams (telecrm.web.sse.EventStream): closed at shutdown so the
# server can stop at once, and a user's at once when an admin signs him out.
EVENT_STREAMS = web.AppKey("event_streams", set[Any])
# Live prompts (TELECRM_LIVE_PROMPTS): the AudioSocket server and recognizers of this process.
LIVE_PROMPTS = web.AppKey("live_prompts", LivePrompts)

# Per request, set by the session middleware: the signed-in user and his session (or None).
USER = web.RequestKey("user", User | None)  # type: ignore[arg-type]
WEB_SESSION = web.RequestKey("web_session", WebSession | None)  # type: ignore[arg-type]


def workday_tz(request: web.Request) -> ZoneInfo:
    """The company's workday timezone: "today", periods and times on pages are read in it."""
    return ZoneInfo(request.app[SETTINGS].timezone)
