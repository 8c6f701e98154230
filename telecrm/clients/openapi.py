"""The OpenAPI paths and schemas of the clients feature (merged by telecrm.web.openapi)."""

from __future__ import annotations

from typing import Any

_ID = {"type": "integer", "minimum": 1, "maximum": 2**31 - 1}
_ID_PARAM = {"name": "id", "in": "path", "required": True, "schema": _ID}
_CONTACT_PARAM = {"name": "contact", "in": "path", "required": True, "schema": _ID}
_CSRF = {"name": "X-CSRF-Token", "in": "header", "required": True,
         "schema": {"type": "string"},
         "description": "The csrf_token from POST /api/login (or the page's meta tag)."}
_SIGNED_IN = [{"session": []}]
_DAY = "(19|20|21)[0-9]{2}-(0[1-9]|1[0-2])-(0[1-9]|1[0-9]|2[0-8])"
_DATE = {"type": "string", "format": "date", "example": "2026-11-30", "pattern": f"^{_DAY}$"}
_TEXT = {"type": ["string", "null"], "maxLength": 2000}
_STRINGS = {"type": "array", "items": {"type": "string", "maxLength": 320}, "maxItems": 50}
_NULLABLE_STR = {"type": ["string", "null"]}


def _error(description: str) -> dict[str, Any]:
    return {"description": description,
            "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}}


def _json(description: str, schema: dict[str, Any]) -> dict[str, Any]:
    return {"description": description, "content": {"application/json": {"schema": schema}}}


_ERRORS = {"400": _error("bad input (one sentence)"), "401": _error("not signed in"),
           "403": _error("not your client to change, not your role, or CSRF token wrong"),
           "404": _error("no such client, or not yours")}
_BODY_ERRORS = {"409": _error("a phone belongs to another client (named in the sentence)"),
                "413": _error("body too large"), "415": _error("not JSON")}

CLIENT_SCHEMAS: dict[str, Any] = {
    "ClientListItem": {
        "type": "object",
        "required": ["id", "name", "status", "owner", "phones"],
        "properties": {
            "id": _ID, "name": {"type": "string"},
            "status": {"enum": ["potential", "new", "regular", "lost"]},
            "owner": {"type": ["object", "null"],
                      "properties": {"id": _ID, "name": {"type": "string"},
                                     "extension": _NULLABLE_STR}},
            "phones": {"type": "array", "items": {"type": "string"},
                       "description": "E.164 numbers"},
            "inn": _NULLABLE_STR, "abc_group": _NULLABLE_STR,
            "last_contact_at": {"type": ["string", "null"], "format": "date-time"},
            "archived": {"type": "boolean"},
        },
    },
    "ClientList": {
        "type": "object", "required": ["clients", "next"],
        "properties": {
            "clients": {"type": "array",
                        "items": {"$ref": "#/components/schemas/ClientListItem"}},
            "next": {"type": ["string", "null"],
                     "description": "Pass as cursor for the next page; null on the last"},
        },
    },
    "Contact": {
        "type": "object", "required": ["id", "name", "position", "phones", "emails"],
        "properties": {"id": _ID, "name": {"type": "string"}, "position": _NULLABLE_STR,
                       "email": _NULLABLE_STR, "emails": {"type": "array",
                                                          "items": {"type": "string"}},
                       "phones": {"type": "array", "items": {"type": "string"}},
                       "archived_at": {"type": ["string", "null"], "format": "date-time"}},
    },
}

_CARD_FIELDS = {
    "inn": {"type": ["string", "null"], "maxLength": 14,
            "description": "10 digits (a company) or 12 (a person) with valid check digits"},
    "kpp": {"type": ["string", "null"], "maxLength": 11, "example": "773601001"},
    "legal_address": _TEXT, "actual_address": _TEXT, "site": _TEXT, "industry": _TEXT,
    "region": _TEXT, "found_via": {**_TEXT, "description": "How the client found us"},
    "comment": _TEXT,
    "phones": {**_STRINGS, "description": "The company's numbers in any written form; in an "
                                          "edit the list replaces them"},
    "emails": _STRINGS,
    "annual_potential": {"type": ["string", "number", "null"], "example": "1200000",
                         "description": "Roubles a year (supervisors and admins)"},
}
_CONTACT_BODY = {
    "type": "object", "required": ["name"], "additionalProperties": False,
    "properties": {"name": {"type": "string", "minLength": 1, "maxLength": 200},
                   "position": {"type": ["string", "null"], "maxLength": 200},
                   "phones": _STRINGS, "emails": _STRINGS},
}
_FILTERS = [
    {"name": "q", "in": "query", "schema": {"type": "string", "maxLength": 200},
     "description": "Name, INN, contact person, e-mail or a phone in any written form "
                    "(8 926 555-00-99, +7(926)5550099, 9265550099)"},
    {"name": "status", "in": "query", "schema": {
        "type": "array", "items": {"enum": ["potential", "new", "regular", "lost"]}},
     "style": "form", "explode": True},
    {"name": "abc", "in": "query", "schema": {
        "type": "array", "items": {"enum": ["A", "B", "C", "none"]}},
     "style": "form", "explode": True},
    {"name": "owner", "in": "query", "schema": {"type": "array", "items": _ID},
     "style": "form", "explode": True},
    {"name": "team", "in": "query", "schema": _ID},
    {"name": "abandoned", "in": "query", "schema": {"enum": ["1"]},
     "description": "Without a contact for longer than the planned frequency on as_of"},
    {"name": "no_task", "in": "query", "schema": {"enum": ["1"]},
     "description": "Nothing planned: no open task"},
    {"name": "stay", "in": "query", "schema": {"type": "integer", "minimum": 0, "maximum": 6},
     "description": "Full months (6: or more) with the manager in status potential/new"},
    {"name": "over_max", "in": "query", "schema": {"enum": ["1"]},
     "description": "With the manager longer than the status allows, on as_of"},
    {"name": "as_of", "in": "query", "schema": _DATE,
     "description": "The day abandoned, stay and over_max are judged on (default today)"},
    {"name": "created_to", "in": "query", "schema": _DATE},
    {"name": "archived", "in": "query", "schema": {"enum": ["1"]},
     "description": "The archive (merged duplicates too) instead of the working base"},
    {"name": "sort", "in": "query", "schema": {"enum": ["name", "last_contact", "status"]}},
    {"name": "cursor", "in": "query", "schema": {"type": "string", "maxLength": 500}},
    {"name": "limit", "in": "query", "schema": {"type": "integer", "minimum": 1,
                                                "maximum": 200}},
]


def _change(method: str, summary: str, body: dict[str, Any], ok: dict[str, Any],
            params: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    return {method: {
        "summary": summary, "security": _SIGNED_IN, "parameters": [_CSRF, *(params or [])],
        "requestBody": {"required": True, "content": {"application/json": {"schema": body}}},
        "responses": {**ok, **_ERRORS, **_BODY_ERRORS}}}


_CLIENT = {"$ref": "#/components/schemas/Client"}

CLIENT_PATHS: dict[str, Any] = {
    "/api/clients": {
        "get": {
            "summary": "Clients this user may open, found and filtered, a page at a time",
            "security": _SIGNED_IN, "parameters": _FILTERS,
            "responses": {"200": _json("a page", {"$ref": "#/components/schemas/ClientList"}),
                          **_ERRORS}},
        **_change("post", "Create a client (a manager's own; a supervisor or an admin names "
                  "the owner)", {
                      "type": "object", "required": ["name"], "additionalProperties": False,
                      "properties": {
                          "name": {"type": "string", "minLength": 1, "maxLength": 300},
                          **_CARD_FIELDS, "owner_id": _ID,
                          "contacts": {"type": "array", "maxItems": 20,
                                       "items": _CONTACT_BODY}}},
                  {"201": _json("the card", _CLIENT)}),
    },
    "/api/clients/{id}": _change(
        "patch", "Edit the card: the fields given (phones and emails replace the company's)",
        {"type": "object", "additionalProperties": False,
         "properties": {"name": {"type": "string", "minLength": 1, "maxLength": 300},
                        **_CARD_FIELDS}},
        {"200": _json("the card", _CLIENT)}, [_ID_PARAM]),
    "/api/clients/{id}/contacts": _change(
        "post", "Add a contact person with his position, phones and e-mails", _CONTACT_BODY,
        {"201": _json("the person", {"$ref": "#/components/schemas/Contact"})}, [_ID_PARAM]),
    "/api/clients/{id}/contacts/{contact}": _change(
        "patch", "Edit a contact person (his phones and e-mails: the lists replace them)",
        _CONTACT_BODY, {"200": _json("the person", {"$ref": "#/components/schemas/Contact"})},
        [_ID_PARAM, _CONTACT_PARAM]),
    "/api/clients/{id}/merge": _change(
        "post", "Merge a duplicate into this client (supervisor: his team's; admin): calls, "
        "deals, tasks, payments, history, phones and contacts move; the duplicate is archived",
        {"type": "object", "required": ["duplicate_id"], "additionalProperties": False,
         "properties": {"duplicate_id": _ID}},
        {"200": _json("what moved", {"type": "object", "required": ["kept", "merged", "moved"],
                                     "properties": {"kept": _ID, "merged": _ID,
                                                    "moved": {"type": "object"}}})},
        [_ID_PARAM]),
}
