"""The OpenAPI paths and schemas of the users API (merged by telecrm.web.openapi)."""

from __future__ import annotations

from typing import Any

from telecrm.web.openapi_parts import (
    CSRF,
    ID,
    ID_PARAM,
    SIGNED_IN,
    error_response,
    schema_response,
)

_ROLE = {"enum": ["manager", "supervisor", "marketer", "admin"]}
_EXTENSION = {"type": ["string", "null"], "pattern": "^[0-9]{2,8}$", "example": "201",
              "description": "The internal number, 2 to 8 digits; null: none"}
_DEVICES = {"type": "array", "maxItems": 50, "items": {
    "type": "string", "maxLength": 120, "pattern": "^[A-Za-z][A-Za-z0-9]{0,19}/[A-Za-z0-9_.-]+$",
    "example": "PJSIP/ivanov"},
    "description": "His phones as Asterisk names them (PJSIP/ivanov, SIP/150010001); "
                   "the list replaces his devices"}
_MOBILES = {"type": "array", "maxItems": 50, "items": {
    "type": "string", "maxLength": 120, "example": "+7 916 000-00-01"},
    "description": "His mobile numbers in any written form (a call forwarded there and "
                   "answered is his); the list replaces his mobiles"}
_NAME = {"type": "string", "minLength": 1, "maxLength": 200}


_ERRORS = {"400": error_response("bad input (one sentence)"),
           "401": error_response("not signed in"),
           "403": error_response("not your role (changes: admins; reading: supervisors and "
                                 "admins), or CSRF token wrong")}
_CHANGE_ERRORS = {
    **_ERRORS, "404": error_response("no such user or team"),
    "409": error_response("the login, extension, device or mobile belongs to another user "
                          "(named in the sentence), or the last admin would be lost"),
    "413": error_response("body too large"), "415": error_response("not JSON")}

USER_SCHEMAS: dict[str, Any] = {
    "UserDetails": {
        "type": "object",
        "required": ["id", "username", "name", "role", "team", "team_id", "extension",
                     "devices", "mobiles", "active", "heads_team", "must_change_password",
                     "created_at"],
        "properties": {
            "id": ID, "username": {"type": "string"}, "name": {"type": "string"},
            "role": _ROLE,
            "team": {"type": ["object", "null"], "required": ["id", "name"],
                     "properties": {"id": ID, "name": {"type": "string"}}},
            "team_id": {"type": ["integer", "null"]},
            "extension": {"type": ["string", "null"]},
            "devices": {"type": "array", "items": {"type": "string"}},
            "mobiles": {"type": "array", "items": {"type": "string"},
                        "description": "E.164 numbers"},
            "active": {"type": "boolean", "description": "false: switched off (never deleted)"},
            "heads_team": {"type": "boolean"},
            "must_change_password": {"type": "boolean"},
            "created_at": {"type": "string", "format": "date-time"},
        },
    },
    "UserList": {
        "type": "object", "required": ["users", "teams"],
        "properties": {
            "users": {"type": "array", "items": {"$ref": "#/components/schemas/UserDetails"}},
            "teams": {"type": "array", "items": {
                "type": "object", "required": ["id", "name", "head_id"],
                "properties": {"id": ID, "name": {"type": "string"},
                               "head_id": {"type": ["integer", "null"]}}},
                "description": "The teams a team_id may name"},
        },
    },
}


def _change(method: str, summary: str, body: dict[str, Any],
            ok: dict[str, Any], params: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    return {method: {
        "summary": summary, "security": SIGNED_IN, "parameters": [CSRF, *(params or [])],
        "requestBody": {"required": True, "content": {"application/json": {"schema": body}}},
        "responses": {**ok, **_CHANGE_ERRORS}}}


USER_PATHS: dict[str, Any] = {
    "/api/users": {
        "get": {
            "summary": "Users with their role, team, extension, devices and mobiles (admin: "
                       "everyone; supervisor: his team, to read)",
            "security": SIGNED_IN,
            "responses": {"200": schema_response("users and teams", "UserList"), **_ERRORS}},
        **_change("post", "Create a user (admins; audited)", {
            "type": "object", "additionalProperties": False,
            "required": ["username", "name", "role", "password"],
            "properties": {
                "username": {"type": "string", "minLength": 1, "maxLength": 100,
                             "pattern": "^\\S+$"},
                "name": _NAME, "role": _ROLE,
                "password": {"type": "string", "minLength": 8, "maxLength": 1000},
                "team_id": {**ID, "type": ["integer", "null"]},
                "extension": _EXTENSION, "devices": _DEVICES, "mobiles": _MOBILES,
                "must_change_password": {"type": "boolean"}}},
            {"201": schema_response("the user", "UserDetails")}),
    },
    "/api/users/{id}": {
        "get": {
            "summary": "One user (admin: anyone; supervisor: one of his team)",
            "security": SIGNED_IN, "parameters": [ID_PARAM],
            "responses": {"200": schema_response("the user", "UserDetails"), **_ERRORS,
                          "404": error_response("no such user, or not yours to see")}},
        **_change(
            "patch", "Change a user's name, role, team, extension, devices or mobiles, or "
            "switch him off (active: false; his sessions end, nothing is deleted) or on again "
            "(admins; audited; all or nothing)", {
                "type": "object", "additionalProperties": False,
                "properties": {
                    "name": _NAME, "role": _ROLE,
                    "team_id": {**ID, "type": ["integer", "null"],
                                "description": "null: no team"},
                    "extension": _EXTENSION, "devices": _DEVICES, "mobiles": _MOBILES,
                    "active": {"type": "boolean"}}},
            {"200": schema_response("the user", "UserDetails")}, [ID_PARAM]),
    },
}
