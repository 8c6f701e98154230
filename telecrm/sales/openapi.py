"""The OpenAPI paths of the sales layer (merged into ``PATHS`` by telecrm.web.openapi)."""

from __future__ import annotations

from typing import Any

_ID = {"type": "integer", "minimum": 1, "maximum": 2**31 - 1}
_ID_PARAM = {"name": "id", "in": "path", "required": True, "schema": _ID}
_DAY = "(19|20|21)[0-9]{2}-(0[1-9]|1[0-2])-(0[1-9]|1[0-9]|2[0-8])"
_DATE = {"type": "string", "format": "date", "example": "2026-11-23", "pattern": f"^{_DAY}$"}
_MOMENT = {"type": "string", "example": "2026-11-23T10:00:00+03:00",
           "description": "YYYY-MM-DD or an ISO 8601 time (workday timezone when none)"}
_MONEY = {"type": ["string", "number"], "example": "12000.50",
          "description": "an amount greater than zero (\"12 000,50\" is accepted)"}
_CSRF = {"name": "X-CSRF-Token", "in": "header", "required": True,
         "schema": {"type": "string"},
         "description": "The csrf_token from POST /api/login (or the page's meta tag)."}
_SIGNED_IN = [{"session": []}]
_OBJECT = {"type": "object"}


def _error(description: str) -> dict[str, Any]:
    return {"description": description,
            "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}}


def _ok(description: str) -> dict[str, Any]:
    return {"description": description, "content": {"application/json": {"schema": _OBJECT}}}


_ERRORS = {"400": _error("bad input (one sentence)"), "401": _error("not signed in"),
           "403": _error("not your team, not your role, or CSRF token wrong")}


def _get(summary: str, params: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    return {"get": {"summary": summary, "security": _SIGNED_IN, "parameters": params or [],
                    "responses": {"200": _ok("the data"), **_ERRORS,
                                  "404": _error("no such thing, or not yours")}}}


def _change(method: str, summary: str, body: dict[str, Any], status: str = "200",
            params: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    return {method: {
        "summary": summary, "security": _SIGNED_IN, "parameters": [_CSRF, *(params or [])],
        "requestBody": {"required": True, "content": {"application/json": {"schema": body}}},
        "responses": {status: _ok("done"), **_ERRORS,
                      "404": _error("no such client, or not yours"),
                      "413": _error("body too large"), "415": _error("not JSON")}}}


SALES_PATHS: dict[str, Any] = {
    "/api/sales/settings": {
        **_get("The status, ABC and contact-frequency rules (your team's, or ?team_id=)",
               [{"name": "team_id", "in": "query", "schema": _ID}]),
        **_change("put", "Change rules (supervisor: his team; admin: any, or the company with "
                  "no team_id); every client is re-judged", {
                      "type": "object", "properties": {
                          "team_id": _ID, "new_period_days": {"type": "integer"},
                          "lost_after_days": {"type": "integer"},
                          "max_potential_days": {"type": "integer"},
                          "max_new_days": {"type": "integer"}, "abc_a_min": _MONEY,
                          "abc_b_min": _MONEY, "contact_days_a": {"type": "integer"},
                          "contact_days_b": {"type": "integer"},
                          "contact_days_c": {"type": "integer"},
                          "contact_days_none": {"type": "integer"}}}),
    },
    "/api/invoices": _change("post", "Issue an invoice to a client you may open", {
        "type": "object", "required": ["client_id", "number", "amount", "issued_on"],
        "properties": {"client_id": _ID, "number": {"type": "string", "maxLength": 60},
                       "amount": _MONEY, "issued_on": _DATE, "due_on": _DATE}}, "201"),
    "/api/payments": _change("post", "Book a payment (supervisor: his team's clients; admin)", {
        "type": "object", "required": ["client_id", "amount", "paid_on"],
        "properties": {"client_id": _ID, "amount": _MONEY, "paid_on": _DATE,
                       "invoice": {"type": "string"}, "ref": {"type": "string"},
                       "note": {"type": "string"}}}, "201"),
    "/api/clients/reassign": _change("post", "Give clients to another manager (history kept)", {
        "type": "object", "required": ["client_ids"],
        "properties": {"client_ids": {"type": "array", "items": _ID},
                       "owner_id": {"type": ["integer", "null"], "minimum": 1},
                       "reason": {"type": "string"}}}),
    "/api/clients/{id}/sales": _get(
        "A client's status, ABC, contact frequency, invoices, payments, status and owner "
        "history", [_ID_PARAM]),
    "/api/clients/{id}/potential": _change(
        "put", "Set the annual potential (ABC follows) and/or the contact frequency", {
            "type": "object", "properties": {
                "amount": _MONEY, "items": {"type": "integer", "minimum": 0},
                "contact_every_days": {"type": ["integer", "null"], "minimum": 1}}},
        params=[_ID_PARAM]),
    "/api/clients/{id}/archive": _change(
        "post", "Archive a client, or restore him (nothing is ever deleted)", {
            "type": "object", "properties": {"reason": {"type": "string"},
                                             "restore": {"type": "boolean"}}},
        params=[_ID_PARAM]),
    "/api/clients/{id}/tasks": _change(
        "post", "Plan a task (call, email, meeting, other) for a client", {
            "type": "object", "required": ["kind", "due_at"], "properties": {
                "kind": {"enum": ["call", "email", "meeting", "other"]}, "due_at": _MOMENT,
                "title": {"type": "string"}, "assignee_id": _ID}}, "201", params=[_ID_PARAM]),
    "/api/clients/{id}/stop": _change(
        "post", "Stop working with a client: a manager asks, a supervisor approves",
        {"type": "object", "required": ["reason"], "properties": {"reason": {"type": "string"}}},
        "201", params=[_ID_PARAM]),
    "/api/tasks/{id}/complete": _change(
        "post", "Complete a task; the client's next task (or an approved stop) is required", {
            "type": "object", "properties": {
                "note": {"type": "string"},
                "next": {"type": "object", "required": ["kind", "due_at"], "properties": {
                    "kind": {"enum": ["call", "email", "meeting", "other"]}, "due_at": _MOMENT,
                    "title": {"type": "string"}, "assignee_id": _ID}}}},
        params=[_ID_PARAM]),
    "/api/tasks/{id}/reschedule": _change(
        "post", "Move a task's due time; the reason is required and audited", {
            "type": "object", "required": ["due_at", "reason"],
            "properties": {"due_at": _MOMENT, "reason": {"type": "string", "minLength": 1}}},
        params=[_ID_PARAM]),
    "/api/pipelines": _get("Pipelines with their stages, and the lose reasons"),
    "/api/deals": _change("post", "Open a deal on a pipeline's first stage (its task is made)", {
        "type": "object", "required": ["client_id", "pipeline_id", "title"],
        "properties": {"client_id": _ID, "pipeline_id": _ID, "title": {"type": "string"},
                       "amount": _MONEY, "owner_id": _ID}}, "201"),
    "/api/deals/{id}/move": _change(
        "post", "Move a deal to a stage (won: amount; lost: a listed reason)", {
            "type": "object", "required": ["stage_id"],
            "properties": {"stage_id": _ID, "amount": _MONEY, "lose_reason_id": _ID,
                           "note": {"type": "string"}}}, params=[_ID_PARAM]),
    "/api/pipelines/{id}": _change(
        "patch", "Rename a pipeline, archive it (no open deals left) or restore it", {
            "type": "object", "properties": {"name": {"type": "string", "maxLength": 200},
                                             "archived": {"type": "boolean"}}},
        params=[_ID_PARAM]),
    "/api/pipeline-stages/{id}": _change(
        "patch", "Change a stage: name, position (1 = first), the task entering it creates, "
        "or archive it (no open deals left) / restore it; audited", {
            "type": "object", "additionalProperties": False, "properties": {
                "name": {"type": "string", "maxLength": 200},
                "position": {"type": "integer", "minimum": 1},
                "task_kind": {"enum": ["call", "email", "meeting", "other", None]},
                "task_title": {"type": ["string", "null"], "maxLength": 300},
                "task_due_days": {"type": "integer", "minimum": 0, "maximum": 365},
                "task_assignee": {"enum": ["owner", "supervisor"]},
                "archived": {"type": "boolean"}}},
        params=[_ID_PARAM]),
    "/api/lose-reasons/{id}": _change(
        "patch", "Take a lose reason off the list (archived) or put it back", {
            "type": "object", "required": ["archived"],
            "properties": {"archived": {"type": "boolean"}}}, params=[_ID_PARAM]),
    "/api/contacts/{id}/archive": _change(
        "post", "Archive a client's contact, or restore him (supervisor, admin; audited)", {
            "type": "object", "properties": {"reason": {"type": "string"},
                                             "restore": {"type": "boolean"}}},
        params=[_ID_PARAM]),
    "/api/deals/{id}/archive": _change(
        "post", "Archive a deal, or restore it (supervisor, admin; audited)", {
            "type": "object", "properties": {"reason": {"type": "string"},
                                             "restore": {"type": "boolean"}}},
        params=[_ID_PARAM]),
    "/api/deals/{id}/amount": _change(
        "put", "Change an open deal's expected amount (audited)", {
            "type": "object", "required": ["amount"], "properties": {"amount": _MONEY}},
        params=[_ID_PARAM]),
    "/api/plan": _get("Monthly sales plan: % done per manager, team and company",
                      [{"name": "month", "in": "query", "schema": _DATE}]),
    "/api/reports/{name}": _get(
        "A sales report for a period (a manager: his own row; a supervisor: his team)", [
            {"name": "name", "in": "path", "required": True, "schema": {"enum": [
                "contact-frequency", "overdue-clients", "summary", "qualification",
                "activity", "deals"]}},
            {"name": "from", "in": "query", "schema": _DATE},
            {"name": "to", "in": "query", "schema": _DATE},
            {"name": "format", "in": "query", "schema": {"enum": ["json", "csv"]}}]),
}
# ?format=csv answers with the same rows as CSV.
SALES_PATHS["/api/reports/{name}"]["get"]["responses"]["200"]["content"]["text/csv"] = {
    "schema": {"type": "string"}}
