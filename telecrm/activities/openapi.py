"""The OpenAPI paths of the client card (merged into ``PATHS`` by telecrm.web.openapi)."""

from __future__ import annotations

from typing import Any

from telecrm.sales.openapi import _DATE, _ID, _ID_PARAM, _MOMENT, _change, _error, _get

_TEXT = {"type": "string", "minLength": 1, "maxLength": 4000}
_CONFLICT = {"409": _error("contradicts what is stored (a name taken, a call still going on)")}


def _with(item: dict[str, Any], extra: dict[str, Any]) -> dict[str, Any]:
    for operation in item.values():
        operation["responses"].update(extra)
    return item


ACTIVITY_PATHS: dict[str, Any] = {
    "/api/clients/{id}/notes": _change(
        "post", "Write a note on the client's card (audited; archived, never deleted)",
        {"type": "object", "required": ["text"], "properties": {"text": _TEXT}}, "201",
        params=[_ID_PARAM]),
    "/api/clients/{id}/activities": _change(
        "post", "Log a contact that was not a call: an e-mail sent or received, a meeting "
        "held; it counts as a contact for the status rules and the reports", {
            "type": "object", "required": ["kind", "text"], "properties": {
                "kind": {"enum": ["email_out", "email_in", "meeting"]}, "text": _TEXT,
                "at": {**_MOMENT, "description": "when (default now; not in the future)"},
                "people": {"type": "string", "maxLength": 300}}}, "201", params=[_ID_PARAM]),
    "/api/clients/{id}/timeline": _get(
        "The client's timeline, newest first: calls, notes, e-mails, meetings, tasks done, "
        "deals, invoices, payments, status and owner changes", [
            _ID_PARAM, {"name": "group", "in": "query", "schema": {"enum": [
                "calls", "notes", "contacts", "tasks", "deals", "money", "changes"]}}]),
    "/api/activities/{id}/archive": _change(
        "post", "Take a note or a logged contact off the card (its author, or a supervisor)",
        {"type": "object", "properties": {"reason": {"type": "string", "maxLength": 500}}},
        params=[_ID_PARAM]),
    "/api/call-outcomes": {
        **_get("The call outcomes a manager picks from (?archived=1: with archived ones, "
               "for supervisors)", [{"name": "archived", "in": "query",
                                      "schema": {"enum": ["0", "1"]}}]),
        **_with(_change("post", "Add an outcome to the list (supervisor, admin; audited)", {
            "type": "object", "required": ["name"],
            "properties": {"name": {"type": "string", "minLength": 1, "maxLength": 100}}},
            "201"), _CONFLICT),
    },
    "/api/call-outcomes/{id}": _with(_change(
        "patch", "Rename an outcome, archive it (no longer offered) or restore it", {
            "type": "object", "properties": {
                "name": {"type": "string", "minLength": 1, "maxLength": 100},
                "archived": {"type": "boolean"}}}, params=[_ID_PARAM]), _CONFLICT),
    "/api/call-outcomes/missing": _get(
        "Calls that needed an outcome and have none, counted per manager (supervisor: his "
        "team; admin: everyone)", [
            {"name": "from", "in": "query", "schema": _DATE},
            {"name": "to", "in": "query", "schema": _DATE},
            {"name": "manager_id", "in": "query", "schema": _ID}]),
    "/api/calls/{id}/outcome": _with(_change(
        "post", "Give a call its outcome from the list, with a note (a second answer "
        "replaces the first; audited)", {
            "type": "object", "required": ["outcome_id"], "properties": {
                "outcome_id": _ID, "note": {"type": "string", "maxLength": 1000}}},
        params=[_ID_PARAM]), _CONFLICT),
}
