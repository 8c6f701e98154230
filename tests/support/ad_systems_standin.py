"""A STAND-IN for the Yandex Metrica management API and the Google Ads API (offline
conversions only), on loopback: those services cannot be reached from the tests.

It follows their documented protocol closely enough to catch a client that does not:

- Metrica: ``POST /management/v1/counter/{counter}/offline_conversions/upload_calls`` and
  ``.../upload``, ``Authorization: OAuth <token>``, a multipart ``file`` field holding a
  UTF-8 CSV whose first line names the columns (``DateTime`` in Unix time in the past;
  ``ClientId`` or ``Yclid`` on each line; ``Target`` for offline conversions); answers
  ``{"uploading": {"id", "create_time", "source_quantity", "line_quantity",
  "client_id_type", "status": "UPLOADED", "comment"}}``, errors as
  ``{"errors": [{"error_type", "message"}], "code", "message"}``;
- Google Ads: ``POST /{version}/customers/{id}:uploadClickConversions`` with
  ``Authorization: Bearer <token>`` and ``developer-token``, JSON ``{"conversions": [...],
  "partialFailure": true}``; each conversion needs ``gclid``, ``conversionAction``
  (``customers/{id}/conversionActions/{n}``) and ``conversionDateTime``
  (``yyyy-mm-dd hh:mm:ss+hh:mm``); a gclid starting ``bad`` is refused in partial
  failure (an empty result and ``partialFailureError``), and, as Google Ads does, a
  conversion it already holds (same gclid, conversion action and time) is refused as
  ``CLICK_CONVERSION_ALREADY_EXISTS``.

``fail_next(n, status)`` makes the next ``n`` requests fail (503, 429 with Retry-After)
to prove the client's retries. Everything received is kept in ``received``.
"""

from __future__ import annotations

import csv
import io
import re
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

from tests.support.browser import serve_on_loopback

METRICA_TOKEN = "standin-metrica-oauth-token"
GOOGLE_TOKEN = "standin-google-oauth-token"
DEVELOPER_TOKEN = "standin-developer-token"
_GOOGLE_TIME = re.compile(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d[+-]\d\d:\d\d")


@dataclass
class Received:
    system: str  # "metrica" or "google_ads"
    path: str
    query: dict[str, str]
    rows: list[dict[str, Any]]


@dataclass
class StandIn:
    """The stand-in's state: what arrived, and the failures it was told to give."""

    base: str = ""
    received: list[Received] = field(default_factory=list)
    requests: int = 0
    google_held: set[tuple[str, str, str]] = field(default_factory=set)
    _failures: list[int] = field(default_factory=list)

    def fail_next(self, count: int, status: int = 503) -> None:
        self._failures.extend([status] * count)

    def rows(self, system: str) -> list[dict[str, Any]]:
        return [row for r in self.received if r.system == system for row in r.rows]


def _metrica_error(status: int, kind: str, message: str) -> web.Response:
    return web.json_response({"errors": [{"error_type": kind, "message": message}],
                              "code": status, "message": message}, status=status)


def _failure(state: StandIn) -> web.Response | None:
    state.requests += 1
    if not state._failures:
        return None
    status = state._failures.pop(0)
    headers = {"Retry-After": "0"} if status == 429 else {}
    return web.json_response({"message": "stand-in told to fail", "code": status},
                             status=status, headers=headers)


def _app(state: StandIn) -> web.Application:
    async def metrica(request: web.Request) -> web.Response:
        failed = _failure(state)
        if failed is not None:
            return failed
        if request.headers.get("Authorization") != f"OAuth {METRICA_TOKEN}":
            return _metrica_error(403, "access_denied", "Access is denied")
        kind = request.match_info["kind"]
        if kind not in ("upload", "upload_calls"):
            return _metrica_error(404, "not_found", "no such method")
        form = await request.post()
        upload = form.get("file")
        if not isinstance(upload, web.FileField):
            return _metrica_error(400, "invalid_parameter", "file is required (multipart)")
        text = upload.file.read().decode("utf-8")
        reader = csv.DictReader(io.StringIO(text))
        columns = reader.fieldnames or []
        if "DateTime" not in columns or not ({"ClientId", "Yclid", "UserId"} & set(columns)):
            return _metrica_error(400, "invalid_parameter", "no DateTime or id column")
        if kind == "upload" and "Target" not in columns:
            return _metrica_error(400, "invalid_parameter", "no Target column")
        rows = list(reader)
        for row in rows:
            if not (row.get("ClientId") or row.get("Yclid") or row.get("UserId")):
                return _metrica_error(400, "invalid_parameter", "a line without an id")
            if not row["DateTime"].isdigit() or int(row["DateTime"]) > time.time():
                return _metrica_error(400, "invalid_parameter", "DateTime: Unix time, past")
            if kind == "upload" and not row.get("Target"):
                return _metrica_error(400, "invalid_parameter", "a line without Target")
        state.received.append(Received("metrica", request.path, dict(request.query), rows))
        return web.json_response({"uploading": {
            "id": len(state.received), "create_time": "2026-12-01T10:00:00Z",
            "source_quantity": len(rows), "line_quantity": len(rows),
            "client_id_type": "CLIENT_ID", "status": "UPLOADED",
            "comment": request.query.get("comment", "")}})

    async def google(request: web.Request) -> web.Response:
        failed = _failure(state)
        if failed is not None:
            return failed
        customer, _, method = request.match_info["tail"].partition(":")
        if method != "uploadClickConversions":
            return web.json_response({"error": {"code": 404, "status": "NOT_FOUND"}},
                                     status=404)
        if (request.headers.get("Authorization") != f"Bearer {GOOGLE_TOKEN}"
                or request.headers.get("developer-token") != DEVELOPER_TOKEN):
            return web.json_response({"error": {"code": 401, "status": "UNAUTHENTICATED",
                                                "message": "bad credentials"}}, status=401)
        body = await request.json()
        if body.get("partialFailure") is not True:
            return web.json_response({"error": {"code": 400, "status": "INVALID_ARGUMENT",
                                                "message": "partialFailure must be true"}},
                                     status=400)
        results, errors, kept = [], [], []
        for index, item in enumerate(body.get("conversions") or []):
            action = item.get("conversionAction", "")
            valid = (item.get("gclid") and _GOOGLE_TIME.fullmatch(
                item.get("conversionDateTime", ""))
                and re.fullmatch(rf"customers/{customer}/conversionActions/\d+", action))
            if not valid:
                return web.json_response({"error": {"code": 400, "status": "INVALID_ARGUMENT",
                                                    "message": f"conversion {index}"}},
                                         status=400)
            held = (item["gclid"], action, item["conversionDateTime"])
            refusal = "UNPARSEABLE_GCLID" if item["gclid"].startswith("bad") else \
                "CLICK_CONVERSION_ALREADY_EXISTS" if held in state.google_held else None
            if refusal is not None:
                results.append({})
                errors.append({"errorCode": {"conversionUploadError": refusal},
                               "location": {"fieldPathElements": [
                                   {"fieldName": "conversions", "index": index}]}})
                continue
            state.google_held.add(held)
            results.append({"gclid": item["gclid"], "conversionAction": action,
                            "conversionDateTime": item["conversionDateTime"]})
            kept.append(item)
        state.received.append(Received("google_ads", request.path, {}, kept))
        answer: dict[str, Any] = {"results": results, "jobId": str(len(state.received))}
        if errors:
            answer["partialFailureError"] = {"code": 3, "message": "The gclid could not be "
                                             "decoded.", "details": [{"errors": errors}]}
        return web.json_response(answer)

    app = web.Application()
    app.router.add_post("/management/v1/counter/{counter:\\d+}/offline_conversions/{kind}",
                        metrica)
    app.router.add_post("/{version}/customers/{tail}", google)
    return app


@asynccontextmanager
async def ad_systems_standin() -> AsyncIterator[StandIn]:
    """The stand-in on a free loopback port; ``state.base`` is its URL."""
    state = StandIn()
    async with serve_on_loopback(_app(state)) as base:
        state.base = base
        yield state
