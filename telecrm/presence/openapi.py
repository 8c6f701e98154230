"""The OpenAPI paths of presence (merged into ``PATHS`` by telecrm.web.openapi)."""

from __future__ import annotations

from typing import Any

from telecrm.sales.openapi import _DATE, _ID, _ID_PARAM, _change, _error, _get

_NAME = {"type": "string", "minLength": 1, "maxLength": 60}
_CONFLICT = {"409": _error("a reason of that name exists")}
_STATE = {"oneOf": [{"enum": ["present"]}, {"type": "string", "pattern": "^[1-9][0-9]{0,9}$"},
                    _ID],
          "description": "«present» (на месте) or a pause reason's id"}


def _with(item: dict[str, Any], extra: dict[str, Any]) -> dict[str, Any]:
    for operation in item.values():
        operation["responses"].update(extra)
    return item


PRESENCE_PATHS: dict[str, Any] = {
    "/api/presence": {
        **_get("The pause reasons, your own state and the states of the managers you "
               "oversee (manager: himself; supervisor: his team; admin: everyone)"),
        **_with(_change(
            "post", "Change a manager's presence (yourself; a supervisor his team's; an "
            "admin anyone's): a pause reason pauses his queue membership in Asterisk (AMI "
            "QueuePause), «present» resumes it; the answer's `queue` says what Asterisk did "
            "(paused, unpaused, unreachable, not_member)", {
                "type": "object", "required": ["state"], "properties": {
                    "state": _STATE, "user_id": _ID}}), {}),
    },
    "/api/presence/report": _get(
        "Per manager for a day: talk time, calls and seconds in each state within his "
        "working hours (up to now for today)", [{"name": "date", "in": "query",
                                                 "schema": _DATE}]),
    "/api/presence/reasons": {
        **_get("The pause reasons (?archived=1: with archived ones, for supervisors)", [
            {"name": "archived", "in": "query", "schema": {"enum": ["0", "1"]}}]),
        **_with(_change("post", "Add a pause reason (supervisor, admin; audited)", {
            "type": "object", "required": ["name"], "properties": {
                "name": _NAME, "pauses_queue": {"type": "boolean"}}}, "201"), _CONFLICT),
    },
    "/api/presence/reasons/{id}": _with(_change(
        "patch", "Rename a pause reason, say whether it pauses the queue, archive or restore "
        "it (audited)", {"type": "object", "properties": {
            "name": _NAME, "pauses_queue": {"type": "boolean"}, "archived": {"type": "boolean"}}},
        params=[_ID_PARAM]), _CONFLICT),
}
