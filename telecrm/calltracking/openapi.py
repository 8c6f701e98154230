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


# -- what the marketer manages (telecrm.calltracking.manage_api) ------------------------

_MONTH = {"type": "string", "pattern": "^(19|20|21)[0-9]{2}-(0[1-9]|1[0-2])$",
          "example": "2026-11"}
_PHONE = {"type": "string", "maxLength": 40, "example": "+74951110041"}
_WRITE_ERRORS = {**_MARKETING_ERRORS, "400": _error("bad input (one sentence)"),
                 "413": _error("request body too large"),
                 "415": _error("the body is not JSON")}
_COST = {"type": "object", "required": ["month", "channel", "amount"],
         "properties": {"month": _MONTH, "channel": {"type": "string"},
                        "amount": {"type": "number"}}}
_STATIC = {"type": "object", "required": ["did", "channel"], "properties": {
    "did": {"type": "string"}, "channel": {"type": "string"},
    "source": {"type": ["string", "null"]}, "medium": {"type": ["string", "null"]},
    "campaign": {"type": ["string", "null"]}, "cost_per_month": {"type": "number"}}}
_SITE = {"type": "object", "required": ["host", "numbers", "default_numbers"], "properties": {
    "host": {"type": "string"}, "numbers": {"type": "array", "items": {"type": "string"}},
    "default_numbers": {"type": "array", "items": {"type": "string"}},
    "channel": {"type": "string"}}}


def _body(schema: dict[str, Any]) -> dict[str, Any]:
    return {"required": True, "content": {"application/json": {"schema": schema}}}


CT_PATHS.update({
    "/api/ct/costs": {
        "get": {"summary": "Ad costs per month and channel, newest month first",
                "security": _SIGNED_IN,
                "parameters": [{"name": "from", "in": "query", "schema": _MONTH,
                                "description": "first month (YYYY-MM), inclusive"},
                               {"name": "to", "in": "query", "schema": _MONTH,
                                "description": "last month (YYYY-MM), inclusive"}],
                "responses": {"200": _json("costs", {"type": "array", "items": _COST}),
                              **_MARKETING_ERRORS}},
        "put": {"summary": "Set a channel's cost of a month; setting it again corrects it "
                           "(the old amount stays in the audit log; never deleted)",
                "security": _SIGNED_IN,
                "requestBody": _body({"type": "object", "required": ["month", "channel",
                                                                     "amount"],
                                      "properties": {"month": _MONTH,
                                                     "channel": {"type": "string",
                                                                 "maxLength": 200},
                                                     "amount": {"type": ["number", "string"],
                                                                "example": "45000.00"}}}),
                "responses": {"200": _json("the cost as stored", _COST), **_WRITE_ERRORS}}},
    "/api/ct/static": {
        "get": {"summary": "Tracked static numbers with their channels",
                "security": _SIGNED_IN,
                "responses": {"200": _json("numbers", {"type": "array", "items": _STATIC}),
                              **_MARKETING_ERRORS}},
        "post": {"summary": "Track a static number for a channel (an archived number may be "
                            "added again)",
                 "security": _SIGNED_IN,
                 "requestBody": _body({"type": "object", "required": ["did", "channel"],
                                       "properties": {
                                           "did": _PHONE,
                                           "channel": {"type": "string", "maxLength": 200},
                                           "campaign": {"type": ["string", "null"]},
                                           "source": {"type": ["string", "null"]},
                                           "medium": {"type": ["string", "null"]},
                                           "cost_per_month": {"type": ["number", "string"]}}}),
                 "responses": {"201": _json("the number", _STATIC), **_WRITE_ERRORS}}},
    "/api/ct/sites": {
        "get": {"summary": "Sites with their tracked pool numbers and fallback numbers",
                "security": _SIGNED_IN,
                "responses": {"200": _json("sites", {"type": "array", "items": _SITE}),
                              **_MARKETING_ERRORS}},
        "post": {"summary": "Create a site, or change its fallback numbers or channel",
                 "security": _SIGNED_IN,
                 "requestBody": _body({"type": "object", "required": ["site"], "properties": {
                     "site": {"type": "string", "maxLength": 253, "example": "shop.example"},
                     "default_numbers": {"type": "array", "items": _PHONE, "maxItems": 20},
                     "channel": {"type": ["string", "null"], "maxLength": 200}}}),
                 "responses": {"200": _json("the site", _SITE), **_WRITE_ERRORS}}},
    "/api/ct/pool": {"post": {
        "summary": "Add numbers to a site's pool (the site is created when new)",
        "security": _SIGNED_IN,
        "requestBody": _body({"type": "object", "required": ["site", "numbers"], "properties": {
            "site": {"type": "string", "maxLength": 253, "example": "shop.example"},
            "numbers": {"type": "array", "items": _PHONE, "minItems": 1, "maxItems": 500}}}),
        "responses": {"200": _json("the site", _SITE), **_WRITE_ERRORS}}},
    "/api/ct/numbers/archive": {"post": {
        "summary": "Stop tracking a static or pool number (archived, audited; its past "
                   "calls keep their source)",
        "security": _SIGNED_IN,
        "requestBody": _body({"type": "object", "required": ["number"],
                              "properties": {"number": _PHONE}}),
        "responses": {"200": _json("what the number was", {
            "type": "object", "required": ["number", "archived"],
            "properties": {"number": {"type": "string"},
                           "archived": {"enum": ["static", "pool"]}}}),
            **_WRITE_ERRORS}}},
})


# -- leads: site forms and callback requests (telecrm.calltracking.leads_public, leads_pages) ---

_LEAD_BODY = {
    "type": "object", "required": ["site"], "additionalProperties": False,
    "properties": {
        "site": {"type": "string", "maxLength": 253, "example": "shop.example"},
        "session": {"type": ["string", "null"], "maxLength": 64,
                    "description": "the visit's token from /api/ct/session"},
        "name": {"type": ["string", "null"], "maxLength": 200},
        "phone": {"type": ["string", "null"], "maxLength": 40, "example": "8 916 123-45-67"},
        "email": {"type": ["string", "null"], "maxLength": 254},
        "message": {"type": ["string", "null"], "maxLength": 2000},
        "url": {"type": ["string", "null"], "maxLength": 1000}}}
_LEAD_ANSWER = {"type": "object", "properties": {
    "status": {"enum": ["form", "calling", "off_hours", "later"]},
    "message": {"type": "string", "description": "a sentence for the visitor (Russian)"}}}
_PUBLIC_REFUSALS = {"400": _error("bad input (one sentence), nothing stored"),
                    "403": _error("origin not allowed"), "404": _error("unknown site"),
                    "413": _error("request body too large"),
                    "429": _error("too many requests or leads from this address")}


def _public_lead(summary: str) -> dict[str, Any]:
    return {
        "post": {"summary": summary, "security": [],
                 "requestBody": {"required": True, "content": {
                     "application/json": {"schema": _LEAD_BODY},
                     "text/plain": {"schema": {"type": "string"}}}},
                 "responses": {"201": _json("accepted", _LEAD_ANSWER), **_PUBLIC_REFUSALS}},
        "options": {"summary": "CORS pre-flight for a site's origin", "security": [],
                    "parameters": [{"name": "site", "in": "query",
                                    "schema": {"type": "string"}}],
                    "responses": {"204": {"description": "allowed"},
                                  "403": _error("origin not allowed")}}}


CT_PATHS.update({
    "/api/ct/lead": _public_lead(
        "Public: a site form becomes a lead with the visit's source, its client and a call "
        "task"),
    "/api/ct/callback": _public_lead(
        "Public: the callback widget; a free manager is rung, then the visitor (else a lead "
        "with a callback task)"),
    "/api/leads": {"get": {
        "summary": "Leads (forms, callback requests) of the period this user may see",
        "security": _SIGNED_IN,
        "parameters": [*_PERIOD, {"name": "kind", "in": "query",
                                  "schema": {"enum": ["form", "callback"]}}],
        "responses": {"200": _json("leads, newest first", {"type": "object", "properties": {
            "leads": {"type": "array", "items": _OBJECT}}}),
            "400": _error("bad parameters"), "401": _error("not signed in"),
            "403": _error("leads are not for this role")}}},
    "/api/ct/marketing": {"get": {
        "summary": "By keyword, by landing page, lost leads per channel, first and last touch",
        "security": _SIGNED_IN,
        "parameters": _PERIOD,
        "responses": {"200": _json("the reports", _OBJECT), **_MARKETING_ERRORS}}},
})
