"""The OpenAPI paths and schemas of the integrations API (merged by telecrm.web.openapi).

Signed-in admins only: these operations take no API token (``telecrm.integrations.auth``
lists them in ``NO_TOKENS``)."""

from __future__ import annotations

from typing import Any

from crm_core.integrations.scopes import ACCESS, FEATURES
from crm_core.integrations.webhooks import EVENTS
from telecrm.web.openapi_parts import (
    CSRF,
    ID,
    ID_PARAM,
    SIGNED_IN,
    error_response,
    schema_response,
)

_TIME = {"type": "string", "format": "date-time"}
_NULLABLE_TIME = {"type": ["string", "null"], "format": "date-time"}
_SCOPES = sorted(f"{feature}:{access}" for feature in FEATURES for access in ACCESS)


_ERRORS = {"401": error_response("not signed in"),
           "403": error_response("not an admin, or the CSRF token is wrong")}
_CHANGE_ERRORS = {**_ERRORS, "400": error_response("bad input (one sentence)"),
                  "413": error_response("body too large"), "415": error_response("not JSON")}


def _change(method: str, summary: str, body: dict[str, Any] | None, ok: dict[str, Any],
            errors: dict[str, Any], params: list[dict[str, Any]] | None = None
            ) -> dict[str, Any]:
    operation: dict[str, Any] = {
        "summary": summary, "security": SIGNED_IN, "parameters": [CSRF, *(params or [])],
        "responses": {**ok, **errors}}
    if body is not None:
        operation["requestBody"] = {"required": True, "content": {
            "application/json": {"schema": body}}}
    return {method: operation}


INTEGRATION_SCHEMAS: dict[str, Any] = {
    "ApiToken": {
        "type": "object",
        "required": ["id", "name", "prefix", "user", "scopes", "described", "created_at",
                     "last_used_at", "revoked", "revoked_at"],
        "properties": {
            "id": ID, "name": {"type": "string"},
            "prefix": {"type": "string", "description": "the token's first characters"},
            "user": {"type": "object", "required": ["id", "username", "name"],
                     "properties": {"id": ID, "username": {"type": "string"},
                                    "name": {"type": "string"}},
                     "description": "whom the token acts as"},
            "scopes": {"type": "array", "items": {"enum": _SCOPES}},
            "described": {"type": "array", "items": {"type": "string"},
                          "description": "the scopes in Russian, one line per feature"},
            "created_at": _TIME, "last_used_at": _NULLABLE_TIME,
            "revoked": {"type": "boolean"}, "revoked_at": _NULLABLE_TIME,
            "token": {"type": "string", "pattern": "^tcrm_",
                      "description": "only in the answer to its creation, never again"},
        },
    },
    "WebhookEndpoint": {
        "type": "object",
        "required": ["id", "name", "url", "events", "active", "created_at"],
        "properties": {
            "id": ID, "name": {"type": "string"}, "url": {"type": "string"},
            "events": {"type": "array", "items": {"enum": list(EVENTS)}},
            "active": {"type": "boolean",
                       "description": "false: switched off, queued nothing new"},
            "created_at": _TIME,
            "secret": {"type": "string", "pattern": "^whsec_",
                       "description": "only in the answer to its creation, never again"},
        },
    },
    "WebhookDelivery": {
        "type": "object",
        "required": ["id", "delivery_id", "event", "endpoint", "state", "attempts",
                     "created_at", "last_attempt_at", "next_attempt_at", "last_status",
                     "last_error", "delivered_at"],
        "properties": {
            "id": ID, "delivery_id": {"type": "string"}, "event": {"enum": list(EVENTS)},
            "endpoint": {"type": "object", "required": ["id", "name"],
                         "properties": {"id": ID, "name": {"type": "string"}}},
            "state": {"enum": ["pending", "delivered", "failed"]},
            "attempts": {"type": "integer", "minimum": 0},
            "created_at": _TIME, "last_attempt_at": _NULLABLE_TIME,
            "next_attempt_at": _NULLABLE_TIME,
            "last_status": {"type": ["integer", "null"]},
            "last_error": {"type": ["string", "null"]}, "delivered_at": _NULLABLE_TIME,
        },
    },
}

_NAME = {"type": "string", "minLength": 1, "maxLength": 200}

INTEGRATION_PATHS: dict[str, Any] = {
    "/api/tokens": {
        "get": {
            "summary": "API tokens, live ones first (admins; never the token itself)",
            "security": SIGNED_IN,
            "responses": {"200": {"description": "the tokens", "content": {
                "application/json": {"schema": {
                    "type": "object", "required": ["tokens"],
                    "properties": {"tokens": {"type": "array", "items": {
                        "$ref": "#/components/schemas/ApiToken"}}}}}}}, **_ERRORS}},
        **_change("post", "Create an API token acting as a user within its scopes (admins; "
                  "audited); the answer's token is shown this once", {
                      "type": "object", "additionalProperties": False,
                      "required": ["name", "user_id", "scopes"],
                      "properties": {
                          "name": _NAME, "user_id": ID,
                          "scopes": {"type": "array", "minItems": 1, "maxItems": 100,
                                     "items": {"enum": _SCOPES},
                                     "description": "<feature>:read or <feature>:write "
                                                    "(write includes read)"}}},
                  {"201": schema_response("the token, with the token itself", "ApiToken")},
                  _CHANGE_ERRORS),
    },
    "/api/tokens/{id}/revoke": _change(
        "post", "Revoke a token for good (admins; audited; it stays listed, revoked)", None,
        {"200": schema_response("the token", "ApiToken")},
        {**_ERRORS, "404": error_response("no such token")}, [ID_PARAM]),
    "/api/webhooks": {
        "get": {
            "summary": "Webhook endpoints (admins; never their secrets) and the events",
            "security": SIGNED_IN,
            "responses": {"200": {"description": "the endpoints", "content": {
                "application/json": {"schema": {
                    "type": "object", "required": ["endpoints", "events"],
                    "properties": {
                        "endpoints": {"type": "array", "items": {
                            "$ref": "#/components/schemas/WebhookEndpoint"}},
                        "events": {"type": "object", "additionalProperties": {
                            "type": "string"},
                            "description": "event -> its Russian name"}}}}}}, **_ERRORS}},
        **_change("post", "Register a webhook endpoint (admins; audited); the answer's "
                  "secret is shown this once", {
                      "type": "object", "additionalProperties": False,
                      "required": ["name", "url", "events"],
                      "properties": {
                          "name": _NAME,
                          "url": {"type": "string", "minLength": 1, "maxLength": 2000,
                                  "description": "http(s), on the internet unless "
                                                 "TELECRM_WEBHOOKS_ALLOW_PRIVATE"},
                          "events": {"type": "array", "minItems": 1, "maxItems": 100,
                                     "items": {"enum": list(EVENTS)}}}},
                  {"201": schema_response("the endpoint, with its secret", "WebhookEndpoint")},
                  _CHANGE_ERRORS),
    },
    "/api/webhooks/{id}": _change(
        "patch", "Switch an endpoint off (nothing new is queued for it; never deleted) or on "
        "again (admins; audited)", {
            "type": "object", "additionalProperties": False, "required": ["active"],
            "properties": {"active": {"type": "boolean"}}},
        {"200": schema_response("the endpoint", "WebhookEndpoint")},
        {**_CHANGE_ERRORS, "404": error_response("no such endpoint")}, [ID_PARAM]),
    "/api/webhooks/deliveries": {
        "get": {
            "summary": "The delivery log, newest first (admins)",
            "security": SIGNED_IN,
            "parameters": [{"name": "state", "in": "query",
                            "schema": {"enum": ["pending", "delivered", "failed"]}}],
            "responses": {"200": {"description": "the deliveries", "content": {
                "application/json": {"schema": {
                    "type": "object", "required": ["deliveries"],
                    "properties": {"deliveries": {"type": "array", "items": {
                        "$ref": "#/components/schemas/WebhookDelivery"}}}}}}},
                **_ERRORS, "400": error_response("unknown state")}},
    },
    "/api/webhooks/deliveries/{id}/resend": _change(
        "post", "«Отправить снова»: the same delivery (same id and body) due at once, its "
        "retries counted afresh (admins; audited)", None,
        {"200": schema_response("the delivery", "WebhookDelivery")},
        {**_ERRORS, "400": error_response("the delivery is about to be sent anyway"),
         "404": error_response("no such delivery")}, [ID_PARAM]),
}
