"""The OpenAPI paths of call tracking (merged into ``PATHS`` by telecrm.web.openapi)."""

from __future__ import annotations

from typing import Any

_ID = {"type": "integer", "minimum": 1, "maximum": 2**31 - 1}
_DAY = "(19|20|21)[0-9]{2}-(0[1-9]|1[0-2])-(0[1-9]|1[0-9]|2[0-8])"
_DATE = {"type": "string", "format": "date", "example": "2026-11-23", "pattern": f"^{_DAY}$"}
_SIGNED_IN = [{"session": []}]
_OBJECT = {"type": "object"}
_PERIOD = [{"name": "from", "in": "query", "schema": _DATE,
            "description": "first day (default: the first of this month)"},
           {"name": "to", "in": "query", "schema": _DATE,
            "description": "last day, inclusive (default: today)"}]


def _error(description: str) -> dict[str, Any]:
    return {"description": description,
            "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}}


def _json(description: str, schema: dict[str, Any]) -> dict[str, Any]:
    return {"description": description, "content": {"application/json": {"schema": schema}}}


_MARKETING_ERRORS = {"400": _error("bad parameters"), "401": _error("not signed in"),
                     "403": _error("call tracking is for marketers and admins")}

_SESSION_BODY = {
    "type": "object", "required": ["site", "url"],
    "properties": {
        "site": {"type": "string", "maxLength": 253, "example": "shop.example"},
        "url": {"type": "string", "maxLength": 1000,
                "example": "https://shop.example/?utm_source=yandex"},
        "referrer": {"type": ["string", "null"], "maxLength": 1000},
        "client_id": {"type": ["string", "null"], "maxLength": 100},
        "client_ids": {"type": "object", "properties": {
            "ga": {"type": "string", "maxLength": 100},
            "ym_uid": {"type": "string", "maxLength": 100}}},
        "session": {"type": ["string", "null"], "maxLength": 64},
        "activity": {"type": "boolean", "description": "false: record the visit only"},
    }}
_SESSION_ANSWER = {
    "type": "object", "required": ["session", "number", "tracked"],
    "properties": {"session": {"type": "string"}, "number": {"type": ["string", "null"]},
                   "tracked": {"type": "boolean"}, "heartbeat": {"type": "integer"}}}

CT_PATHS: dict[str, Any] = {
    "/api/ct/session": {
        "post": {
            "summary": "Public: record a website visit and keep or lease it a pool number",
            "description": "Called by /ct.js on the customer's site (CORS for the site's "
                           "origins only; rate limited per IP; body at most 4 KiB). "
                           "tracked: false means the site's fallback number (pool "
                           "exhausted, a bot, or no activity yet).",
            "security": [],
            "requestBody": {"required": True, "content": {
                "application/json": {"schema": _SESSION_BODY},
                "text/plain": {"schema": {"type": "string"}}}},
            "responses": {"200": _json("the visit's session and number", _SESSION_ANSWER),
                          "400": _error("bad input (one sentence)"),
                          "403": _error("origin not allowed"),
                          "404": _error("unknown site"),
                          "413": _error("request body too large"),
                          "429": _error("too many requests from this address")}},
        "options": {
            "summary": "CORS pre-flight for a site's origin",
            "security": [],
            "parameters": [{"name": "site", "in": "query", "schema": {"type": "string"}}],
            "responses": {"204": {"description": "allowed"},
                          "403": _error("origin not allowed")}},
    },
    "/api/ct/report": {"get": {
        "summary": "Calls, visits and money per channel, source, medium or campaign; "
                   "pool health per site",
        "security": _SIGNED_IN,
        "parameters": [*_PERIOD,
                       {"name": "by", "in": "query",
                        "schema": {"enum": ["channel", "source", "medium", "campaign"]}},
                       {"name": "target", "in": "query",
                        "schema": {"type": "integer", "minimum": 1, "maximum": 3600},
                        "description": "seconds an answered call needs to be a target call"},
                       {"name": "format", "in": "query", "schema": {"enum": ["json", "csv"]}}],
        "responses": {"200": {"description": "the report", "content": {
            "application/json": {"schema": _OBJECT},
            "text/csv": {"schema": {"type": "string"}}}}, **_MARKETING_ERRORS}}},
    "/api/ct/calls": {"get": {
        "summary": "The call log: each inbound call's source, the visit's pages, first or "
                   "repeat, target or not (no recordings)",
        "security": _SIGNED_IN,
        "parameters": [*_PERIOD,
                       {"name": "target", "in": "query",
                        "schema": {"type": "integer", "minimum": 1, "maximum": 3600},
                        "description": "seconds an answered call needs to be a target call"}],
        "responses": {"200": _json("calls, newest first", {"type": "array", "items": _OBJECT}),
                      **_MARKETING_ERRORS}}},
    "/api/ct/calls/{id}/source": {"get": {
        "summary": "Where a call came from, for the screen pop (whoever may see the call)",
        "security": _SIGNED_IN,
        "parameters": [{"name": "id", "in": "path", "required": True, "schema": _ID}],
        "responses": {"200": _json("the source", {"type": "object", "properties": {
            "source": {"type": ["string", "null"]},
            "tracking": {"$ref": "#/components/schemas/Tracking"}}}),
            "400": _error("bad parameters"), "401": _error("not signed in"),
            "404": _error("no such call, or not yours")}}},
}
