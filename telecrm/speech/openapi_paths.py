"""OpenAPI paths of the speech feature: transcripts, the QC queue, fines and appeals,
scripts, scorecards, the weekly sample and calibration (added to the app's document)."""

from __future__ import annotations

from typing import Any

from telecrm.web import openapi


def _err(text: str) -> dict[str, Any]:
    return {"description": text, "content": {"application/json": {
        "schema": {"$ref": "#/components/schemas/Error"}}}}


def _ok(text: str, kind: str = "object") -> dict[str, Any]:
    return {"description": text, "content": {"application/json": {"schema": {"type": kind}}}}


_ID = {"name": "id", "in": "path", "required": True,
       "schema": {"type": "integer", "minimum": 1}}
_CSRF = {"name": "X-CSRF-Token", "in": "header", "required": True, "schema": {"type": "string"}}
_PERIOD = [{"name": n, "in": "query", "schema": {"type": "string"},
            "description": "YYYY-MM-DD or an ISO 8601 time"} for n in ("since", "until")]
_SEC = [{"session": []}]


def _get(summary: str, ok: dict[str, Any], params: list[dict[str, Any]],
         *codes: str) -> dict[str, Any]:
    errors = {c: _err("error") for c in ("400", "401", "403", *codes)}
    return {"get": {"summary": summary, "security": _SEC, "parameters": params,
                    "responses": {"200": ok, **errors}}}


def _post(summary: str, schema: dict[str, Any], params: list[dict[str, Any]],
          *codes: str) -> dict[str, Any]:
    errors = {c: _err("error") for c in ("400", "401", "403", "413", "415", *codes)}
    return {"post": {"summary": summary, "security": _SEC, "parameters": [*params, _CSRF],
                     "requestBody": {"required": True,
                                     "content": {"application/json": {"schema": schema}}},
                     "responses": {"201": _ok("created"), **errors}}}


OPENAPI_PATHS: dict[str, Any] = {
    "/api/calls/{id}/transcript": _get(
        "The call's transcript as a dialogue: turns of manager and client with times",
        _ok("call_id, duration, model, turns [{speaker, start, end, text, conf}]"), [_ID],
        "404"),
    "/api/clients/{id}/transcripts": _get(
        "Dialogues of the client's calls that have a transcript, newest first",
        _ok("calls with turns", "array"), [_ID], "404"),
    "/api/clients/{id}/scenario": _get(
        "The script for this client now, as the «Сценарий» panel shows it: the version in "
        "force for his deal's stage, else the reader's team's, else the company's",
        _ok("name, stage, version, description, for_stage, prompts [{title, required, text, "
            "say, phrases, within}], objections [{title, phrases, say}]"), [_ID], "404"),
    "/api/kkp/queue": _get(
        "The QC queue: checked calls of my team (a manager: his own), lowest score first",
        _ok("results", "array"),
        [*_PERIOD, {"name": "manager", "in": "query", "schema": {"type": "string"}},
         {"name": "needs_review", "in": "query", "schema": {"type": "string",
                                                            "enum": ["1", "0"]}}]),
    "/api/kkp/results/{id}": _get(
        "One KKP result: stages and violations with evidence (quote, start, end, conf) "
        "and the decisions taken", _ok("the result"), [_ID], "404"),
    "/api/kkp/results/{id}/violations/{index}": _post(
        "Confirm a violation (a fine of the script's amount) or dismiss it with a reason",
        {"type": "object", "required": ["decision"],
         "properties": {"decision": {"type": "string", "enum": ["confirmed", "dismissed"]},
                        "reason": {"type": "string", "maxLength": 2000}}},
        [_ID, {"name": "index", "in": "path", "required": True,
               "schema": {"type": "integer", "minimum": 0}}], "404", "409"),
    "/api/kkp/fines/{id}/appeal": _post(
        "The fined manager disputes his confirmed fine with a reason (one appeal per fine)",
        {"type": "object", "required": ["reason"],
         "properties": {"reason": {"type": "string", "maxLength": 2000}}}, [_ID], "404", "409"),
    "/api/kkp/fines/{id}/appeal/decision": _post(
        "A supervisor or admin who did not confirm the fine cancels or keeps it, "
        "with a comment", {"type": "object", "required": ["decision", "comment"],
                           "properties": {"decision": {"type": "string",
                                                       "enum": ["cancelled", "kept"]},
                                          "comment": {"type": "string", "maxLength": 2000}}},
        [_ID], "404", "409"),
    "/api/kkp/metrics": _get(
        "Per manager: checked calls, average score, violations per week, fines",
        _ok("since, until, managers"), _PERIOD),
    "/api/kkp/fines": _get(
        "Fines for the pay system: confirmed in the period or whose appeal was decided in "
        "it; amount is what is due now (0 once cancelled on appeal), status "
        "active|appealed|kept|cancelled", _ok("fines", "array"), _PERIOD),
    "/api/kkp/scripts": {
        **_get("Script versions of my team and the company default", _ok("versions", "array"),
               []),
        **_post("Upload a script (YAML) as a new version in force from effective_from",
                {"type": "object", "required": ["text"],
                 "properties": {"text": {"type": "string"}, "team": {"type": "string"},
                                "stage": {"type": "string"},
                                "effective_from": {"type": "string"},
                                "fine_amount": {"type": "integer", "minimum": 0}}}, []),
    },
    "/api/kkp/scripts/{id}": _get("One script version with its YAML text",
                                  _ok("the version"), [_ID], "404"),
    "/api/qc/scorecards": {
        **_get("Scorecard versions of my team and the company, newest first",
               _ok("versions", "array"), []),
        **_post("A new scorecard version (supervisor: his team; admin: any or the company)",
                {"type": "object", "required": ["name", "items"],
                 "properties": {"name": {"type": "string"}, "team": {"type": "string"},
                                "items": {"type": "array", "items": {
                                    "type": "object", "required": ["title"],
                                    "properties": {"title": {"type": "string"},
                                                   "weight": {"type": "integer", "minimum": 1,
                                                              "maximum": 100},
                                                   "instant_fail": {"type": "boolean"}}}}}},
                []),
    },
    "/api/calls/{id}/qc": _get(
        "The call's QC panel: the automatic check, the scorecard in force, every score",
        _ok("call_id, auto, scorecard, scores, mine, may_score"), [_ID], "404"),
    "/api/calls/{id}/scores": _post(
        "The reviewer's score of the call (answers yes|no|na per item; a second save "
        "corrects it)", {"type": "object", "required": ["scorecard_id", "answers"],
                         "properties": {"scorecard_id": {"type": "integer"},
                                        "answers": {"type": "object"},
                                        "comment": {"type": "string"}}}, [_ID], "404", "409"),
    "/api/qc/weekly": _get("Per manager and week: scores and their average",
                           _ok("since, until, weeks"), _PERIOD),
    "/api/qc/calibration": _get(
        "Agreement of reviewers who scored the same call: pairs, per checkpoint, overall",
        _ok("pairs, checkpoints, overall"), _PERIOD),
    "/api/qc/sample": {
        **_get("The week's random sample (and N per team for supervisors and admins)",
               _ok("week, settings, calls"),
               [{"name": "week", "in": "query", "schema": {"type": "string"},
                 "description": "any day of the week, YYYY-MM-DD; default the last full week"}]),
        **_post("Draw the week's sample for the teams I manage (tops up to N)",
                {"type": "object", "properties": {"week": {"type": "string"}}}, []),
    },
    "/api/qc/sample/settings": _post(
        "A team's N: calls per manager in the weekly sample",
        {"type": "object", "required": ["team", "per_manager"],
         "properties": {"team": {"type": "string"},
                        "per_manager": {"type": "integer", "minimum": 0, "maximum": 50}}}, []),
}
openapi.PATHS.update(OPENAPI_PATHS)
