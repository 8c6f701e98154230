"""The OpenAPI path of the missed-calls report (merged into ``PATHS`` by telecrm.web.openapi)."""

from __future__ import annotations

from typing import Any

_DAY = "(19|20|21)[0-9]{2}-(0[1-9]|1[0-2])-(0[1-9]|1[0-9]|2[0-8])"
_DATE = {"type": "string", "format": "date", "example": "2026-11-23", "pattern": f"^{_DAY}$"}
_ERROR = {"content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}}
_FIGURES = {
    "missed": {"type": "integer"}, "called_back_5m": {"type": "integer"},
    "called_back_15m": {"type": "integer"}, "called_back_60m": {"type": "integer"},
    "never_called_back": {"type": "integer"},
    "median_callback_seconds": {"type": ["number", "null"]},
}
_ROW = {"type": "object", "properties": {"manager": {"type": "string"},
                                         "queue": {"type": "string"}, **_FIGURES}}

MISSED_PATHS: dict[str, Any] = {
    "/api/reports/missed": {"get": {
        "summary": "Missed calls per manager (extension) and per queue, and how fast they were "
                   "called back (a manager: his own row; a supervisor: his team and queue)",
        "security": [{"session": []}],
        "parameters": [{"name": "from", "in": "query", "schema": _DATE},
                       {"name": "to", "in": "query", "schema": _DATE},
                       {"name": "format", "in": "query", "schema": {"enum": ["json", "csv"]}}],
        "responses": {
            "200": {"description": "the figures (CSV with ?format=csv)", "content": {
                "application/json": {"schema": {"type": "object", "properties": {
                    "rows": {"type": "array", "items": _ROW},
                    "total": {"type": "object", "properties": _FIGURES},
                    "from": _DATE, "to": _DATE}}},
                "text/csv": {"schema": {"type": "string"}}}},
            "400": {"description": "bad period", **_ERROR},
            "401": {"description": "not signed in", **_ERROR},
            "403": {"description": "a marketer", **_ERROR}}}},
}
