"""The OpenAPI paths of sticky routing's switches (merged by telecrm.web.openapi).

``POST /pbx/owner`` is the dialplan's, outside the API: asked with the PBX token, never
with a session (see asterisk_conf/README.md).
"""

from __future__ import annotations

from typing import Any

from telecrm.sales.openapi import _ID_PARAM, _change, _get

_RULES = ("Teams (enabled, ring_seconds, editable by you) and the DIDs with a switch of "
          "their own (mode: on, off or team)")

ROUTING_PATHS: dict[str, Any] = {
    "/api/routing": _get("Sticky routing: " + _RULES + " (supervisor, admin)"),
    "/api/routing/teams/{id}": _change(
        "put", "Switch sticky routing for a team (its head of sales, or an admin) and how "
        "long the owner's phones ring before the queue (audited)", {
            "type": "object", "properties": {
                "enabled": {"type": "boolean"},
                "ring_seconds": {"type": "integer", "minimum": 5, "maximum": 120}}},
        params=[_ID_PARAM]),
    "/api/routing/dids": _change(
        "put", "For calls to one DID: ring the owner first whatever his team says (on), "
        "always the queue (off), or as his team (team); supervisor, admin (audited). "
        "The older enabled: false is off, enabled: true is team", {
            "type": "object", "required": ["did"], "properties": {
                "did": {"type": "string", "minLength": 1, "maxLength": 30},
                "mode": {"type": "string", "enum": ["on", "off", "team"]},
                "enabled": {"type": "boolean", "deprecated": True}}}),
}
