"""The OpenAPI 3.1 document of ``/api/``, written as data (served at ``/api/openapi.json``)."""

from __future__ import annotations

import copy
from typing import Any

from telecrm.activities.openapi import ACTIVITY_PATHS
from telecrm.calltracking.openapi import CT_PATHS
from telecrm.clients.openapi import CLIENT_PATHS, CLIENT_SCHEMAS
from telecrm.dialer.openapi import DIALER_PATHS
from telecrm.integrations.auth import ANY, feature_of
from telecrm.integrations.openapi import INTEGRATION_PATHS, INTEGRATION_SCHEMAS
from telecrm.missed.openapi import MISSED_PATHS
from telecrm.people.openapi import USER_PATHS, USER_SCHEMAS
from telecrm.presence.openapi import PRESENCE_PATHS
from telecrm.routing.openapi import ROUTING_PATHS
from telecrm.sales.openapi import SALES_PATHS

_NULLABLE_STR = {"type": ["string", "null"]}
_NULLABLE_TIME = {"type": ["string", "null"], "format": "date-time"}
_ID = {"type": "integer", "minimum": 1}

SCHEMAS: dict[str, Any] = {
    "Error": {
        "type": "object",
        "required": ["error", "code"],
        "properties": {
            "error": {"type": "string", "description": "one sentence in Russian for the user"},
            "code": {"type": "string", "description": "stable dotted code of the refusal, "
                                                      "e.g. sales.deal.stage_archived"},
        },
    },
    "User": {
        "type": "object",
        "required": ["id", "username", "name", "role", "extension"],
        "properties": {
            "id": _ID,
            "username": {"type": "string"},
            "name": {"type": "string"},
            "role": {"enum": ["manager", "supervisor", "marketer", "admin"]},
            "extension": _NULLABLE_STR,
            "team_id": {"type": ["integer", "null"]},
            "must_change_password": {
                "type": "boolean",
                "description": "A reset password: until it is changed (POST /api/me/password) "
                               "every other call answers 403."},
        },
    },
    "Session": {
        "type": "object",
        "required": ["user", "csrf_token"],
        "properties": {
            "user": {"$ref": "#/components/schemas/User"},
            "csrf_token": {"type": "string",
                           "description": "Send it as X-CSRF-Token on state-changing requests."},
        },
    },
    "Tracking": {
        "type": ["object", "null"],
        "properties": {
            "kind": {"enum": ["static", "dynamic", "repeat"]},
            "channel": _NULLABLE_STR, "source": _NULLABLE_STR, "medium": _NULLABLE_STR,
            "campaign": _NULLABLE_STR, "landing": _NULLABLE_STR,
            "ambiguous": {"type": "boolean"},
            "candidates": {"type": "array", "items": {"type": "string"}},
        },
    },
    "Call": {
        "type": "object",
        "required": ["id", "linkedid", "direction", "status", "client_number", "did",
                     "client_id", "client_name", "managers", "started_at", "answered_at",
                     "ended_at", "ring_seconds", "talk_seconds", "transferred", "recordings",
                     "tracking"],
        "properties": {
            "id": _ID,
            "linkedid": {"type": "string",
                         "description": "As the PBX wrote it; unique together with pbx."},
            "pbx": {"type": "string",
                    "description": "The PBX the call happened on (telecrm pbx list); "
                                   "main for the one of TELECRM_AMI_*."},
            "direction": {"enum": ["inbound", "outbound", "internal"]},
            "status": {"enum": ["answered", "missed", "busy", "no_answer", "failed",
                                "in_progress"]},
            "client_number": _NULLABLE_STR,
            "did": _NULLABLE_STR,
            "client_id": {"type": ["integer", "null"]},
            "client_name": _NULLABLE_STR,
            "managers": {"type": "array", "items": {"type": "string"}},
            "started_at": {"type": "string", "format": "date-time"},
            "answered_at": _NULLABLE_TIME,
            "ended_at": _NULLABLE_TIME,
            "ring_seconds": {"type": "number"},
            "talk_seconds": {"type": "number"},
            "transferred": {"type": "boolean"},
            "recordings": {"type": "array", "items": {"type": "string"},
                           "description": "Relative paths; empty for roles that may not "
                                          "listen (marketers)."},
            "recording_legs": {
                "type": "array",
                "description": "Each file of recordings: the side it holds and the leg "
                               "(channel uniqueid) that recorded it; empty for roles "
                               "that may not listen.",
                "items": {
                    "type": "object",
                    "required": ["path", "side", "leg"],
                    "properties": {
                        "path": {"type": "string"},
                        "side": {"enum": ["mix", "manager", "client", "caller", "callee",
                                          None]},
                        "leg": _NULLABLE_STR,
                    },
                },
            },
            "tracking": {"$ref": "#/components/schemas/Tracking"},
            "queue": _NULLABLE_STR,
            "attempts": {
                "type": "array",
                "description": "Who placed or received each attempt: the staff phone that "
                               "dialled (outbound, internal) and every staff phone that "
                               "rang, in order, one entry per extension; talked: that "
                               "phone was in the conversation (managers lists who talked).",
                "items": {
                    "type": "object",
                    "required": ["extension", "user_id", "name", "kind", "talked",
                                 "talk_seconds"],
                    "properties": {
                        "extension": {"type": "string"},
                        "user_id": {"type": ["integer", "null"]},
                        "name": _NULLABLE_STR,
                        "kind": {"enum": ["dialled", "rang"]},
                        "talked": {"type": "boolean"},
                        "talk_seconds": {"type": "number"},
                    },
                },
            },
        },
    },
    "CallPage": {
        "type": "object",
        "required": ["calls", "next"],
        "properties": {
            "calls": {"type": "array", "items": {"$ref": "#/components/schemas/Call"}},
            "next": {"type": ["string", "null"],
                     "description": "Opaque cursor of the next page (send it back as cursor= "
                                    "with the same filters); null on the last page."},
        },
    },
    "TalkTime": {
        "type": "object",
        "required": ["extension", "name", "talk_seconds", "calls", "target_seconds", "met"],
        "properties": {
            "extension": _NULLABLE_STR,
            "name": {"type": "string"},
            "talk_seconds": {"type": "number"},
            "calls": {"type": "integer"},
            "target_seconds": {"type": "integer"},
            "met": {"type": "boolean"},
        },
    },
    "Task": {
        "type": "object",
        "required": ["id", "kind", "title", "status", "due_at", "overdue"],
        "properties": {
            "id": _ID,
            "kind": {"enum": ["callback", "call", "meeting", "email", "other"]},
            "title": {"type": "string"},
            "status": {"enum": ["open", "done", "cancelled"]},
            "client_id": {"type": ["integer", "null"]},
            "client_name": _NULLABLE_STR,
            "call_id": {"type": ["integer", "null"]},
            "assignee_id": {"type": ["integer", "null"]},
            "assignee": _NULLABLE_STR,
            "team_id": {"type": ["integer", "null"]},
            "due_at": _NULLABLE_TIME,
            "overdue": {"type": "boolean"},
        },
    },
    "Phone": {
        "type": "object",
        "required": ["e164", "display", "kind"],
        "properties": {"e164": {"type": "string"}, "display": {"type": "string"},
                       "kind": {"type": "string"}},
    },
    "Client": {
        "type": "object",
        "required": ["id", "name", "status", "owner", "phones", "contacts", "calls",
                     "next_contact"],
        "properties": {
            "id": _ID,
            "name": {"type": "string"},
            "status": {"enum": ["potential", "new", "regular", "lost"]},
            "is_new_lead": {"type": "boolean"},
            "owner": {
                "type": ["object", "null"],
                "properties": {"id": _ID, "name": {"type": "string"},
                               "extension": _NULLABLE_STR},
            },
            "phones": {"type": "array", "items": {"$ref": "#/components/schemas/Phone"}},
            "contacts": {"type": "array", "items": {"type": "object"}},
            "calls": {"type": "array", "items": {"$ref": "#/components/schemas/Call"}},
            "next_contact": {"oneOf": [{"type": "null"},
                                       {"$ref": "#/components/schemas/Task"}]},
        },
    },
    "Originated": {
        "type": "object",
        "required": ["status", "action_id", "extension", "number", "repeat"],
        "properties": {
            "status": {"enum": ["calling", "failed"]},
            "action_id": {"type": "string"},
            "extension": {"type": "string"},
            "number": {"type": "string"},
            "repeat": {"type": "boolean",
                       "description": "True when this repeated a request still in progress: "
                                      "the phone is not rung twice."},
        },
    },
}


def _error(description: str) -> dict[str, Any]:
    return {"description": description,
            "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}}


def _json(description: str, schema: dict[str, Any]) -> dict[str, Any]:
    return {"description": description, "content": {"application/json": {"schema": schema}}}


def _ref(name: str) -> dict[str, Any]:
    return {"$ref": f"#/components/schemas/{name}"}


def _list(name: str) -> dict[str, Any]:
    return {"type": "array", "items": _ref(name)}


_DAY = "(19|20|21)[0-9]{2}-(0[1-9]|1[0-2])-(0[1-9]|1[0-9]|2[0-8])"
_DATE = {"type": "string", "format": "date", "example": "2026-11-23", "pattern": f"^{_DAY}$"}
_TIME = "T([01][0-9]|2[0-3]):[0-5][0-9](:[0-5][0-9])?(Z|[+-](0[0-9]|1[0-4]):[0-5][0-9])?"
_MOMENT = {"type": "string", "example": "2026-11-23", "pattern": f"^{_DAY}({_TIME})?$",
           "description": "YYYY-MM-DD (a whole day in the workday timezone) or an ISO 8601 "
                          "time; years 1900-2199"}
_ID_PARAM = {"name": "id", "in": "path", "required": True, "schema": _ID}
_CSRF = {"name": "X-CSRF-Token", "in": "header", "required": True,
         "schema": {"type": "string"},
         "description": "The csrf_token from POST /api/login (or the page's meta tag)."}
_SIGNED_IN = [{"session": []}]
_AUTH_ERRORS = {"401": _error("not signed in")}


def _get(summary: str, ok: dict[str, Any], *, params: list[dict[str, Any]] | None = None,
         errors: dict[str, Any] | None = None) -> dict[str, Any]:
    return {"get": {"summary": summary, "security": _SIGNED_IN, "parameters": params or [],
                    "responses": {"200": ok, "400": _error("bad parameters"),
                                  **_AUTH_ERRORS, **(errors or {})}}}


def _change(summary: str, method: str, ok: dict[str, Any], *,
            body: dict[str, Any] | None = None, params: list[dict[str, Any]] | None = None,
            errors: dict[str, Any] | None = None) -> dict[str, Any]:
    """A state-changing signed-in operation (CSRF header required)."""
    operation: dict[str, Any] = {
        "summary": summary, "security": _SIGNED_IN, "parameters": [_CSRF, *(params or [])],
        "responses": {**ok, "400": _error("bad input (one sentence)"), **_AUTH_ERRORS,
                      "403": _error("not your team, not your role, or CSRF token wrong"),
                      **(errors or {})}}
    if body is not None:
        operation["requestBody"] = {"required": True,
                                    "content": {"application/json": {"schema": body}}}
    return {method: operation}


_HHMM = {"type": "string", "pattern": "^([01]?[0-9]|2[0-3]):[0-5][0-9]$", "example": "09:00"}
_TEAM = {"type": ["integer", "null"],
         "description": "The team (default: your own); null: the company-wide defaults "
                        "(admin only)"}
_TALKTIME_SETTINGS_PATHS: dict[str, Any] = {
    "/api/talktime/rules": {
        **_get("Talk-time rules: those in force today for your team (admin: every team and "
               "the company defaults) and every rule row with its start date",
               _json("rules", {"type": "object"}), errors={"403": _error("not for your role")}),
        **_change(
            "Change a team's rules from a date on (supervisor: his team; admin: any). A new "
            "row from that date; fields left out keep the value in force then. Dates before "
            "today are refused: past days are never re-judged.", "post",
            {"201": _json("the rule row", {"type": "object"})},
            body={"type": "object", "required": ["effective_from"], "properties": {
                "team_id": _TEAM, "effective_from": _DATE,
                "target_minutes": {"type": "integer", "minimum": 1, "maximum": 1440},
                "working_weekdays": {"type": "string", "pattern": "^[1-7]{1,7}$",
                                     "example": "12345",
                                     "description": "ISO weekdays, 1 = Monday"},
                "min_call_seconds": {"type": "integer", "minimum": 0, "maximum": 3600},
                "fine_amount": {"type": "string", "example": "500.00"},
                "day_start": _HHMM, "day_end": _HHMM}},
            errors={"404": _error("no such team")}),
    },
    "/api/talktime/holidays": {
        **_get("Holidays: the company's and your team's (admin: all)",
               _json("holidays", {"type": "array", "items": {"type": "object"}}),
               params=[{"name": n, "in": "query", "schema": _DATE} for n in ("from", "to")],
               errors={"403": _error("not for your role")}),
        **_change("Add a non-working day (supervisor: for his team; admin: any team or the "
                  "company)", "post", {"201": _json("the holiday", {"type": "object"})},
                  body={"type": "object", "required": ["date"], "properties": {
                      "date": _DATE, "name": {"type": "string", "maxLength": 200},
                      "team_id": _TEAM}},
                  errors={"409": _error("already a holiday")}),
    },
    "/api/talktime/holidays/import": _change(
        "Add the dates of a CSV (date[,name] per line; a header line is skipped); a bad line "
        "refuses the whole file", "post",
        {"201": _json("counts", {"type": "object", "properties": {
            "added": {"type": "integer"}, "skipped": {"type": "integer"}}})},
        body={"type": "object", "required": ["csv"], "properties": {
            "csv": {"type": "string"}, "team_id": _TEAM}},
        errors={"413": _error("the CSV is too large")}),
    "/api/talktime/holidays/{id}": _change(
        "Remove a holiday (archived, not deleted)", "delete",
        {"200": _json("the archived holiday", {"type": "object"})}, params=[_ID_PARAM],
        errors={"404": _error("no such holiday")}),
    "/api/talktime/absences": {
        **_get("Absences of the managers you may see (day off, sick leave, vacation)",
               _json("absences", {"type": "array", "items": {"type": "object"}}),
               params=[{"name": n, "in": "query", "schema": _DATE} for n in ("from", "to")],
               errors={"403": _error("not for your role")}),
        **_change("Record a manager's absence: those days are not judged (supervisor: his "
                  "team's managers; admin: any)", "post",
                  {"201": _json("the absence", {"type": "object"})},
                  body={"type": "object", "required": ["user_id", "from", "kind"],
                        "properties": {"user_id": _ID, "from": _DATE, "to": _DATE,
                                       "kind": {"enum": ["day_off", "sick", "vacation"]},
                                       "note": {"type": "string", "maxLength": 500}}},
                  errors={"404": _error("no such manager")}),
    },
    "/api/talktime/absences/{id}": _change(
        "Cancel an absence (archived, not deleted)", "delete",
        {"200": _json("the archived absence", {"type": "object"})}, params=[_ID_PARAM],
        errors={"404": _error("no such absence")}),
}


_FLAG = {"enum": ["yes", "no", "true", "false", "1", "0"]}
_CALL_LOG_PARAMS: list[dict[str, Any]] = [
    {"name": "since", "in": "query", "schema": _MOMENT,
     "description": "Alone: from then until now. Neither since nor until: today."},
    {"name": "until", "in": "query", "schema": _MOMENT,
     "description": "A date is inclusive, a time exclusive. Alone: the day before it. At "
                    "most 400 days between since and until."},
    {"name": "manager", "in": "query", "schema": {"type": "array", "items": _ID},
     "style": "form", "explode": True,
     "description": "User id (repeatable): calls whose phone dialled, rang or talked. A "
                    "supervisor picks his team, an admin anyone, everyone himself."},
    {"name": "team", "in": "query", "schema": _ID,
     "description": "Team id (admin; a supervisor his own): calls a member took part in or "
                    "that went through the team's queue"},
    {"name": "direction", "in": "query", "schema": {"enum": ["inbound", "outbound",
                                                             "internal"]}},
    {"name": "status", "in": "query", "schema": {"enum": ["answered", "missed", "busy",
                                                          "no_answer", "failed",
                                                          "in_progress"]}},
    {"name": "min_duration", "in": "query",
     "schema": {"type": "integer", "minimum": 0, "maximum": 86400},
     "description": "Talk time of at least this many seconds"},
    {"name": "client", "in": "query", "schema": _ID, "description": "A client's id"},
    {"name": "client_name", "in": "query", "schema": {"type": "string", "maxLength": 200},
     "description": "Part of the client's name, any letter case"},
    {"name": "number", "in": "query", "schema": {"type": "string", "maxLength": 50},
     "example": "8 926 555-00-99",
     "description": "The client's number in any written form (normalised to E.164)"},
    {"name": "source", "in": "query", "schema": {"type": "string", "maxLength": 200},
     "description": "Call-tracking channel the call is attributed to"},
    {"name": "recording", "in": "query", "schema": _FLAG,
     "description": "Has a recording one can play (not for marketers)"},
    {"name": "violation", "in": "query", "schema": _FLAG,
     "description": "Has a sales-script violation not dismissed by a supervisor (not for "
                    "marketers)"},
    {"name": "sort", "in": "query", "schema": {"enum": ["newest", "oldest", "longest"],
                                               "default": "newest"}},
    {"name": "limit", "in": "query",
     "schema": {"type": "integer", "minimum": 1, "maximum": 500, "default": 100}},
    {"name": "cursor", "in": "query", "schema": {"type": "string", "maxLength": 200},
     "description": "The next cursor of the previous page, with the same filters and sort"},
]

PATHS: dict[str, Any] = {
    "/api/login": {"post": {
        "summary": "Sign in; sets the session cookie and returns the CSRF token",
        "description": "Exempt from CSRF checks (no session yet) but JSON only, which "
                       "a cross-site form cannot send. Failed attempts are limited per "
                       "username and IP (429 with Retry-After).",
        "security": [],
        "requestBody": {"required": True, "content": {"application/json": {"schema": {
            "type": "object", "required": ["username", "password"],
            "properties": {"username": {"type": "string", "minLength": 1, "maxLength": 100},
                           "password": {"type": "string", "minLength": 1,
                                        "maxLength": 1000}}}}}},
        "responses": {"200": _json("signed in", _ref("Session")),
                      "400": _error("bad body"), "401": _error("wrong username or password"),
                      "413": _error("body too large"), "415": _error("not JSON"),
                      "429": _error("too many failed attempts")},
    }},
    "/api/logout": {"post": {
        "summary": "Sign out (ends the session on the server)",
        "security": _SIGNED_IN, "parameters": [_CSRF],
        "responses": {"200": _json("signed out", {"type": "object"}), **_AUTH_ERRORS,
                      "403": _error("missing or wrong CSRF token")},
    }},
    "/api/me": _get("The signed-in user and the session's CSRF token", _json("you",
                    _ref("Session"))),
    "/api/me/password": {"post": {
        "summary": "Change your own password (a temporary one must be changed first)",
        "description": "Ends your other sessions and their live event streams.",
        "security": _SIGNED_IN, "parameters": [_CSRF],
        "requestBody": {"required": True, "content": {"application/json": {"schema": {
            "type": "object", "required": ["current", "new"],
            "properties": {"current": {"type": "string", "minLength": 1, "maxLength": 1000},
                           "new": {"type": "string", "minLength": 8, "maxLength": 1000}}}}}},
        "responses": {"200": _json("changed", {"type": "object"}),
                      "400": _error("wrong current password, or a weak new one"),
                      **_AUTH_ERRORS, "403": _error("missing or wrong CSRF token"),
                      "413": _error("body too large"), "415": _error("not JSON")},
    }},
    "/api/openapi.json": {"get": {"summary": "This document", "security": [],
                                  "responses": {"200": _json("OpenAPI 3.1",
                                                             {"type": "object"})}}},
    "/api/calls": _get(
        "Calls this user may see, one page at a time, filtered and sorted",
        _json("a page of calls and the next page's cursor", _ref("CallPage")),
        params=_CALL_LOG_PARAMS,
        errors={"403": _error("recording and script-check filters are not for your role")}),
    "/api/calls/{id}": _get("One call", _json("the call", _ref("Call")),
                            params=[_ID_PARAM], errors={"404": _error("no such call, or "
                                                                      "not yours to see")}),
    "/api/calls/{id}/recording": _get(
        "The call's audio (supports HTTP Range)",
        {"description": "audio", "content": {"audio/wav": {"schema": {
            "type": "string", "contentMediaType": "audio/wav"}}}},
        params=[_ID_PARAM, {"name": "index", "in": "query", "schema": {
            "type": "integer", "minimum": 0}, "description": "Which file of the call "
            "(default: the mixed one). Send a Range header for part of the file."}],
        errors={"206": {"description": "partial audio"},
                "403": _error("your role may not listen to recordings"),
                "404": _error("no such call or recording"),
                "416": {"description": "unsatisfiable range"}}),
    "/api/talktime": _get(
        "Talk time per visible manager for a working day (target: 150 minutes)",
        _json("per manager", _list("TalkTime")),
        params=[{"name": "date", "in": "query", "schema": _DATE}],
        errors={"403": _error("not for your role")}),
    "/api/talktime/report": _get(
        "Talk time per visible manager and team for a day (date) or a period (from, to): "
        "days met and missed, per-day figures",
        _json("managers and teams", {"type": "object"}),
        params=[{"name": n, "in": "query", "schema": _DATE} for n in ("date", "from", "to")],
        errors={"403": _error("not for your role")}),
    "/api/talktime/live": _get(
        "Today's talk time live: who is on a call and with whom, pace and projection",
        _json("managers", {"type": "object"}),
        errors={"403": _error("not for your role")}),
    "/api/talktime/violations": _get(
        "Days below the talk-time threshold of visible managers, with the decisions",
        _json("violations", {"type": "array", "items": {"type": "object"}}),
        params=[{"name": n, "in": "query", "schema": _DATE} for n in ("date", "from", "to")],
        errors={"403": _error("not for your role")}),
    **_TALKTIME_SETTINGS_PATHS,
    "/api/calls/originate": {"post": {
        "summary": "Click-to-call: ring my phone, then dial the number from it",
        "description": "Answers 202 while the manager's phone rings. Repeating the "
                       "request for the same number while it is in progress does not "
                       "ring the phone again (repeat: true).",
        "security": _SIGNED_IN, "parameters": [_CSRF],
        "requestBody": {"required": True, "content": {"application/json": {"schema": {
            "type": "object", "required": ["number"],
            "properties": {"number": {"type": "string", "minLength": 5, "maxLength": 50,
                                      "example": "+7 916 123-45-67"}}}}}},
        "responses": {"202": _json("your phone is ringing", _ref("Originated")),
                      "400": _error("bad number"), **_AUTH_ERRORS,
                      "403": _error("no phone extension, or CSRF token wrong"),
                      "409": _error("your phone is placing another call"),
                      "413": _error("body too large"), "415": _error("not JSON"),
                      "502": _error("Asterisk refused"),
                      "503": _error("Asterisk AMI is unreachable")},
    }},
    "/api/events": {"get": {
        "summary": "Live events (Server-Sent Events): call facts and screen pops",
        "description": "Event types: call (a call fact), screenpop (your phone rings "
                       "with a customer), reload (events were dropped), signed_out.",
        "security": _SIGNED_IN,
        "responses": {"200": {"description": "an event stream",
                              "content": {"text/event-stream": {"schema": {
                                  "type": "string"}}}},
                      **_AUTH_ERRORS, "503": _error("live events unavailable")},
    }},
    **CLIENT_PATHS,
    "/api/clients/{id}": {
        **_get("A client card with its calls and next planned contact",
               _json("client", _ref("Client")), params=[_ID_PARAM],
               errors={"403": _error("not for your role"),
                       "404": _error("no such client, or not yours")}),
        **CLIENT_PATHS["/api/clients/{id}"],
    },
    "/api/tasks": _get(
        "Open tasks due by the end of the date (overdue included) and every open callback",
        _json("tasks", _list("Task")),
        params=[{"name": "date", "in": "query", "schema": _DATE}],
        errors={"403": _error("not for your role")}),
    **MISSED_PATHS,
    **SALES_PATHS,
    **ACTIVITY_PATHS,
    **DIALER_PATHS,
    **CT_PATHS,
    **PRESENCE_PATHS,
    **ROUTING_PATHS,
    **USER_PATHS,
    **INTEGRATION_PATHS,
}

_TOKEN_REFUSED = _error("the API token lacks the scope this operation needs (x-token-scope)")


def _with_tokens(paths: dict[str, Any]) -> dict[str, Any]:
    """Every signed-in operation also takes an API token (``Authorization: Bearer``) when
    one may use its route, with the scope it needs (``x-token-scope``) and the 403 of a
    token without it."""
    for path, item in paths.items():
        feature = feature_of(path)
        for method, operation in item.items():
            if feature is None or {"session": []} not in operation.get("security", []):
                continue
            operation["security"] = [{"session": []}, {"token": []}]
            if feature != ANY:
                access = "read" if method in ("get", "head") else "write"
                operation["x-token-scope"] = f"{feature}:{access}"
                operation["responses"].setdefault("403", _TOKEN_REFUSED)
    return paths


_DOCUMENT: dict[str, Any] = {
    "openapi": "3.1.0",
    "info": {
        "title": "telecrm API",
        "version": "1.0",
        "description": "JSON API of the telephony CRM. Sign in with POST /api/login; "
                       "the session cookie authenticates later requests, and "
                       "state-changing requests need the X-CSRF-Token header. Other "
                       "systems send an API token instead (Authorization: Bearer, see "
                       "the token security scheme). Errors are "
                       "{\"error\": \"...\"}. A call, client or recording the user may "
                       "not see answers 404, as if it did not exist.",
    },
    "paths": PATHS,  # features add theirs as their routes are imported
    "components": {
        "schemas": {**SCHEMAS, **CLIENT_SCHEMAS, **USER_SCHEMAS, **INTEGRATION_SCHEMAS},
        "securitySchemes": {
            "session": {"type": "apiKey", "in": "cookie", "name": "telecrm_session"},
            "token": {"type": "http", "scheme": "bearer",
                      "description": "An API token an admin created on /admin/tokens: "
                                     "it acts as its user within its scopes "
                                     "(x-token-scope of each operation: <feature>:read "
                                     "for GET, <feature>:write for changes; write "
                                     "includes read). No CSRF header is needed with it. "
                                     "Unknown or revoked: 401."},
        },
    },
}


def openapi_document() -> dict[str, Any]:
    """A fresh copy (callers may not mutate the module's data)."""
    document = copy.deepcopy(_DOCUMENT)
    _with_tokens(document["paths"])
    return document
