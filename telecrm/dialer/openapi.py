"""The OpenAPI paths of «Обзвон» (merged into ``PATHS`` by telecrm.web.openapi)."""

from __future__ import annotations

from typing import Any

from telecrm.sales.openapi import _ID, _change, _error, _get

_EMPTY: dict[str, Any] = {"type": "object"}
_STATE = ("the session, the current client's card and script, the list left, the "
          "session's calls and today's talk minutes against the norm")
_CONFLICT = {"409": _error("a call still going on, the session paused, or nobody to call")}


def _with(item: dict[str, Any], extra: dict[str, Any]) -> dict[str, Any]:
    for operation in item.values():
        operation["responses"].update(extra)
    return item


DIALER_PATHS: dict[str, Any] = {
    "/api/dialer": _get(f"A manager's dialer: {_STATE}"),
    "/api/dialer/start": _change(
        "post", "Start the dialer session (or go back to it), on the first client of the "
        "day's call tasks: overdue first, then by ABC group, then by due time", _EMPTY, "201"),
    "/api/dialer/call": _with(_change(
        "post", "Ring the manager's phone, then the current client (click-to-call)", _EMPTY,
        "202"), {**_CONFLICT, "502": _error("Asterisk refused the call"),
                 "503": _error("telephony unavailable")}),
    "/api/dialer/hangup": _with(_change(
        "post", "The call placed for the current client ended: a busy, unanswered or failed "
        "one closes the task with a retry task by the rules; an answered one (or the last "
        "try) opens the outcome form", {
            "type": "object", "required": ["call_id"], "properties": {"call_id": _ID}}),
        _CONFLICT),
    "/api/dialer/saved": _change("post", "The outcome form was saved: the countdown runs",
                                 _EMPTY),
    "/api/dialer/next": _with(_change(
        "post", "The next client (after the countdown; skip: put the current one aside)", {
            "type": "object", "properties": {"skip": {"type": "boolean"}}}), _CONFLICT),
    "/api/dialer/pause": _change("post", "Pause the session (no call comes by itself)", _EMPTY),
    "/api/dialer/resume": _change("post", "Go on after a pause", _EMPTY),
    "/api/dialer/end": _change("post", "End the session («Завершить обзвон»)", _EMPTY),
    "/api/dialer/team": _get("Who of the team (supervisor) or of everyone (admin) is in a "
                             "dialer session, and there on a call, paused or idle"),
    "/api/dialer/rules": {
        **_get("The retry rules: how many tries and how many minutes apart (a supervisor's "
               "team; an admin's ?team_id=, or the company's)",
               [{"name": "team_id", "in": "query", "schema": _ID}]),
        **_change("put", "Set the retry rules (supervisor: his team; admin: any team, or the "
                  "company's without team_id); audited", {
                      "type": "object", "required": ["max_attempts", "retry_minutes"],
                      "properties": {"team_id": _ID,
                                     "max_attempts": {"type": "integer", "minimum": 1,
                                                      "maximum": 20},
                                     "retry_minutes": {"type": "integer", "minimum": 1,
                                                       "maximum": 10080}}}),
    },
}
