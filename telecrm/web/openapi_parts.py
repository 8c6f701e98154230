"""The pieces every part of the OpenAPI document is written with: a database id and the
``{id}`` path parameter, the CSRF header, the session requirement, and responses that name
a schema of ``components/schemas``.

Features write their paths with these (``telecrm.<feature>.openapi``);
``telecrm.web.openapi`` puts the parts together and defines the schemas (``Error`` among
them).
"""

from __future__ import annotations

from typing import Any

ID = {"type": "integer", "minimum": 1, "maximum": 2**31 - 1}
ID_PARAM = {"name": "id", "in": "path", "required": True, "schema": ID}
CSRF = {"name": "X-CSRF-Token", "in": "header", "required": True,
        "schema": {"type": "string"},
        "description": "The csrf_token from POST /api/login (or the page's meta tag)."}
SIGNED_IN = [{"session": []}]


def schema_response(description: str, name: str) -> dict[str, Any]:
    """A JSON response whose body is the schema ``name``."""
    return {"description": description, "content": {"application/json": {
        "schema": {"$ref": f"#/components/schemas/{name}"}}}}


def error_response(description: str) -> dict[str, Any]:
    """A refusal: the ``Error`` body (a Russian sentence and its code)."""
    return schema_response(description, "Error")
