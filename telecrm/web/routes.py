"""The route table: every URL of the app in one place."""

from __future__ import annotations

from pathlib import Path

from aiohttp import web

from telecrm import clients as clients_routes
from telecrm.activities import routes as activities_routes
from telecrm.calls import routes as calls_routes
from telecrm.calltracking import leads_pages
from telecrm.calltracking import routes as calltracking_routes
from telecrm.dialer import routes as dialer_routes
from telecrm.integrations import api as integrations_api
from telecrm.integrations import pages as integrations_pages
from telecrm.missed import routes as missed_routes
from telecrm.people import admin_pages as people_admin_pages
from telecrm.people import api as people_api
from telecrm.people import password as people_password
from telecrm.presence import routes as presence_routes
from telecrm.recordings import routes as recordings_routes
from telecrm.routing import routes as routing_routes
from telecrm.sales import routes as sales_routes
from telecrm.speech import alert_routes as speech_alert_routes
from telecrm.speech import dictionary_routes as phrase_dictionary_routes
from telecrm.speech import routes as speech_routes
from telecrm.speech import search_routes as transcript_search_routes
from telecrm.talktime import routes as talktime_routes
from telecrm.wallboard import routes as wallboard_routes
from telecrm.web import api, pages, sse

STATIC_DIR = Path(__file__).resolve().parent.parent / "static"


def add_routes(app: web.Application) -> None:
    r = app.router
    # JSON API (fixed routes: architecture.md)
    r.add_post("/api/login", api.login)
    r.add_post("/api/logout", api.logout)
    r.add_get("/api/me", api.me)
    r.add_get("/api/openapi.json", api.openapi)
    r.add_post("/api/calls/originate", api.originate)
    r.add_get("/api/calls/{id}", api.get_call)
    r.add_get("/api/calls/{id}/recording", api.call_recording)
    r.add_get("/api/talktime", api.talktime)
    r.add_get("/api/events", sse.events)
    r.add_get("/api/clients/{id}", api.get_client)
    clients_routes.add_routes(r)  # /clients, /clients/new, /api/clients ...
    r.add_get("/api/tasks", api.list_tasks)
    # pages
    r.add_get("/", pages.index)
    r.add_get("/login", pages.login_form)
    r.add_post("/login", pages.login_submit)
    r.add_post("/logout", pages.logout_submit)
    r.add_get("/today", pages.today)
    r.add_get("/today/talk", pages.today_talk)
    r.add_get("/clients/{id}", pages.client_card)
    r.add_get("/clients/{id}/history", pages.client_history)
    r.add_get("/team", pages.team_page)
    calls_routes.add_routes(r)
    talktime_routes.add_routes(r)
    wallboard_routes.add_routes(r)
    recordings_routes.add_routes(r)
    speech_routes.add_routes(r)
    transcript_search_routes.add_routes(r)
    phrase_dictionary_routes.add_routes(r)
    speech_alert_routes.add_routes(r)
    calltracking_routes.add_routes(r)
    leads_pages.add_routes(r)
    missed_routes.add_routes(r)  # /reports/missed before the sales reports' /reports/{name}
    sales_routes.add_routes(r)
    activities_routes.add_routes(r)
    dialer_routes.add_routes(r)
    people_admin_pages.add_routes(r)
    people_password.add_routes(r)
    people_api.add_routes(r)  # /api/users ...
    presence_routes.add_routes(r)  # /presence, /api/presence ...
    routing_routes.add_routes(r)  # /pbx/owner (the dialplan's), /routing, /api/routing
    integrations_pages.add_routes(r)  # /admin/tokens, /admin/webhooks (and its log)
    integrations_api.add_routes(r)  # /api/tokens, /api/webhooks (and its log)
    r.add_get("/favicon.ico", favicon)
    r.add_static("/static/", STATIC_DIR, name="static", append_version=True)


async def favicon(request: web.Request) -> web.FileResponse:
    """Browsers ask for /favicon.ico on every site; answering it keeps their consoles clean."""
    return web.FileResponse(STATIC_DIR / "favicon.ico",
                            headers={"Cache-Control": "public, max-age=86400"})
