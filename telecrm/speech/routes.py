"""Routes of the speech feature: transcripts as dialogues, the QC queue, stored scripts.

- ``/qc``: the supervisor's queue of checked calls (lowest score first), the
  evidence of each, confirm (a fine) / dismiss (with a reason), metrics per manager;
  a manager sees his own results and cannot decide; marketers get 403. A manager
  appeals his confirmed fine there; another reviewer cancels or keeps it.
- ``/qc/scripts``: versioned KKP scripts, edited as a form (stages, phrases, forbidden
  words; :mod:`telecrm.speech.script_form`) or imported as YAML; versions are named by
  their start date and author; ``/qc/scripts/{id}/yaml`` exports one.
- ``/api/calls/{id}/transcript``, ``/api/clients/{id}/transcripts``: dialogue turns,
  with the same role rules as the recording.
"""

from __future__ import annotations

import asyncio
from datetime import date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import aiohttp_jinja2
from aiohttp import web
from sqlalchemy import select

from crm_core.calls.models import Call
from crm_core.clock import utcnow
from crm_core.errors import DomainError, NotAllowedError, NotFoundError
from crm_core.people import access
from crm_core.people.models import Role, Team, User
from crm_core.sales.models import Pipeline, PipelineStage
from crm_core.speech import review as kkp_review
from crm_core.speech import scorecards
from crm_core.speech import scripts as kkp_scripts
from crm_core.speech.models import KkpScriptVersion, Transcript
from speech.dialogue import turns
from speech.script import MAX_SCRIPT_CHARS, KkpError, parse_script_text
from telecrm.messages import sentence
from telecrm.speech import (
    appeal_routes,
    openapi_paths,  # noqa: F401  (adds the paths to the document)
    sample_routes,
    scorecard_routes,
)
from telecrm.speech.roles import qc_user
from telecrm.speech.scenario import scenario_api, scenario_fragment
from telecrm.speech.script_form import (
    ScriptFormError,
    form_from_post,
    form_of,
    script_from_form,
)
from telecrm.web.auth import api_user, audible_call, page_user
from telecrm.web.keys import SESSIONS, WRITER_SESSIONS, workday_tz
from telecrm.web.params import json_object, parse_moment, path_id, period

QC_DAYS = 7  # the queue's default period



# -- transcripts ----------------------------------------------------------------------------


async def call_transcript(request: web.Request) -> web.Response:
    """GET /api/calls/{id}/transcript: the dialogue (who said what, from which second)."""
    user = api_user(request)
    call_id = path_id(request)
    async with request.app[SESSIONS]() as session:
        await audible_call(session, user, call_id)
        row = await session.scalar(select(Transcript).where(Transcript.call_id == call_id))
    if row is None:
        raise NotFoundError("speech.no_transcript", "this call has no transcript yet")
    return web.json_response({"call_id": call_id, "duration": row.duration, "model": row.model,
                              "turns": turns(row.data)})


async def client_transcripts(request: web.Request) -> web.Response:
    """GET /api/clients/{id}/transcripts: every visible call of the client with a transcript."""
    user = api_user(request)
    client_id = path_id(request)
    async with request.app[SESSIONS]() as session:
        if await access.visible_client(session, user, client_id) is None:
            raise NotFoundError("clients.not_found", "no such client")
        if not access.may_hear_recordings(user):
            raise NotAllowedError("speech.role_no_transcripts", "your role may not see transcripts")
        stmt = (select(Call.id, Call.started_at, Transcript.duration, Transcript.data)
                .join(Transcript, Transcript.call_id == Call.id)
                .where(Call.client_id == client_id, await access.calls_filter(session, user))
                .order_by(Call.started_at.desc()).limit(50))
        rows = (await session.execute(stmt)).all()
    tz = workday_tz(request)
    return web.json_response([{"call_id": cid, "started_at": started.isoformat(),
                               "when": started.astimezone(tz).strftime("%d.%m.%Y %H:%M"),
                               "duration": duration, "turns": turns(data)}
                              for cid, started, duration, data in rows])


# -- the QC queue ---------------------------------------------------------------------------


def _filters(request: web.Request) -> dict[str, Any]:
    since, until = period(request, workday_tz(request), default_days=QC_DAYS)
    manager = request.query.get("manager", "").strip() or None
    if manager is not None and (not manager.isdigit() or len(manager) > 4):
        raise DomainError("request.not_extension", "manager must be an extension (digits)",
                          name="manager")
    review = request.query.get("needs_review", "") in ("1", "true", "on")
    return {"since": since, "until": until, "manager": manager, "needs_review_only": review}


async def qc_queue(request: web.Request) -> web.Response:
    """GET /api/kkp/queue: checked calls, lowest score first."""
    user = qc_user(api_user(request))
    f = _filters(request)
    async with request.app[SESSIONS]() as session:
        rows = await kkp_review.queue(session, user, **f)
    return web.json_response(rows)


async def qc_result(request: web.Request) -> web.Response:
    """GET /api/kkp/results/{id}: stages and violations with their evidence and decisions."""
    user = qc_user(api_user(request))
    async with request.app[SESSIONS]() as session:
        found = await kkp_review.visible_result(session, user, path_id(request))
        if found is None:
            raise NotFoundError("speech.review.result_not_found", "no such result")
        data = await kkp_review.detail(session, *found)
        version = (await kkp_scripts.get_version(session, data["script_id"])
                   if data["script_id"] else None)
    _add_titles(data, version)
    tz = workday_tz(request)
    for v in data["violations"]:
        review = v["review"]
        if review:  # shown in the working day's timezone, like the rest of the CRM
            review["when"] = _local(review["decided_at"], tz)
            appeal = review["appeal"]
            review["may_appeal"] = (user.role == Role.MANAGER and appeal is None
                                    and review["state"] == "active"
                                    and review["manager"] == user.extension)
            review["may_decide_appeal"] = (
                appeal is not None and appeal["state"] == kkp_review.OPEN
                and kkp_review.may_decide(user) and review["reviewer_id"] != user.id)
            if appeal:
                appeal["filed_when"] = _local(appeal["filed_at"], tz)
                appeal["decided_when"] = (_local(appeal["decided_at"], tz)
                                          if appeal["decided_at"] else None)
    data["may_decide"] = kkp_review.may_decide(user)
    return web.json_response(data)


def _local(moment: str, tz: ZoneInfo) -> str:
    return datetime.fromisoformat(moment).astimezone(tz).strftime("%d.%m.%Y %H:%M")


def _add_titles(data: dict[str, Any], version: KkpScriptVersion | None) -> None:
    """Stage and forbidden-list titles from the script version (ids when unknown)."""
    titles: dict[str, str] = {}
    if version is not None:
        try:
            script = parse_script_text(version.text)
        except KkpError:
            script = None
        if script is not None:
            titles = {stage.id: stage.title for stage in script.stages}
            titles.update({f.id: f.title for f in script.forbidden if f.title})
    for item in [*data["stages"], *data["violations"]]:
        item["title"] = titles.get(str(item.get("id")), str(item.get("id")))


async def qc_decide(request: web.Request) -> web.Response:
    """POST /api/kkp/results/{id}/violations/{index} {"decision", "reason"}."""
    user = qc_user(api_user(request))
    result_id = path_id(request)
    raw = request.match_info.get("index", "")
    if not raw.isdigit() or len(raw) > 4:
        raise NotFoundError("speech.review.violation_not_found", "no such violation", index=raw)
    body = await json_object(request)
    decision, reason = body.get("decision"), body.get("reason")
    if not isinstance(decision, str) or (reason is not None and not isinstance(reason, str)):
        raise DomainError("speech.review.decision_not_string",
                          "decision must be a string, reason a string")
    if reason and len(reason) > 2000:
        raise DomainError("request.too_long", "reason is too long (2000 characters at most)",
                          name="reason", max=2000)
    async with request.app[WRITER_SESSIONS]() as session:
        review = await kkp_review.decide(session, user, result_id, int(raw), decision, reason)
        await session.commit()
        out = kkp_review.review_to_dict(review, {user.id: user.name})
    return web.json_response(out, status=201)


async def qc_metrics(request: web.Request) -> web.Response:
    """GET /api/kkp/metrics: per manager average score and violations per week."""
    user = qc_user(api_user(request))
    since, until = period(request, workday_tz(request), default_days=28)
    async with request.app[SESSIONS]() as session:
        rows = await kkp_review.metrics(session, user, since=since, until=until)
    return web.json_response({"since": since.isoformat(), "until": until.isoformat(),
                              "managers": rows})


async def qc_fines(request: web.Request) -> web.Response:
    """GET /api/kkp/fines: confirmed violations in the period, for the pay system."""
    user = qc_user(api_user(request))
    since, until = period(request, workday_tz(request), default_days=31)
    async with request.app[SESSIONS]() as session:
        rows = await kkp_review.fines(session, user, since=since, until=until)
    return web.json_response(rows)


async def qc_page(request: web.Request) -> web.Response:
    user = qc_user(page_user(request))
    f = _filters(request)
    tz = workday_tz(request)
    async with request.app[SESSIONS]() as session:
        rows = await kkp_review.queue(session, user, **f)
        metrics = await kkp_review.metrics(session, user, since=f["since"], until=f["until"])
        weekly = await scorecards.weekly(session, user, since=f["since"], until=f["until"],
                                         tz=tz)
        sample = await sample_routes.page_data(request, session, user)
        managers = await kkp_review.scope(session, user)
        if managers is None:
            found = await session.execute(
                select(User.extension, User.name).where(User.extension.is_not(None),
                                                        User.role == Role.MANAGER.value))
            managers = {ext: name for ext, name in found}
    for row in rows:
        row["when"] = datetime.fromisoformat(row["started_at"]).astimezone(tz)
    for week in weekly:
        week["monday"] = date.fromisoformat(week["week"])
    context = {"title": "Контроль качества", "rows": rows, "metrics": metrics,
               "weekly": weekly, "sample": sample,
               "managers": sorted(managers.items()), "may_decide": kkp_review.may_decide(user),
               "filters": {"manager": f["manager"] or "",
                           "since": f["since"].astimezone(tz).date().isoformat(),
                           "until": (f["until"].astimezone(tz) - timedelta(seconds=1))
                           .date().isoformat(),
                           "needs_review": f["needs_review_only"]}}
    return aiohttp_jinja2.render_template("qc.html", request, context)


# -- stored scripts -------------------------------------------------------------------------


def _may_edit_scripts(user: User) -> bool:
    return user.role in (Role.SUPERVISOR, Role.ADMIN)


def version_label(local_from: datetime, author: str | None) -> str:
    """How people name a version: «Версия от 01.12.2026, Мария Соколова» (the time when
    it starts other than at midnight). The digest stays for the API and the results."""
    when = local_from.strftime("%d.%m.%Y")
    if local_from.time() != time(0):
        when += local_from.strftime(" %H:%M")
    return f"Версия от {when}" + (f", {author}" if author else "")


def _version_dict(row: KkpScriptVersion, teams: dict[int, str], names: dict[int, str],
                  tz: ZoneInfo) -> dict[str, Any]:
    author = names.get(row.created_by or 0)
    return {"id": row.id, "name": row.name, "team": teams.get(row.team_id or 0),
            "stage": row.stage, "effective_from": row.effective_from.isoformat(),
            "version": row.digest, "fine_amount": row.fine_amount,
            "created_at": row.created_at.isoformat(), "author": author,
            "label": version_label(row.effective_from.astimezone(tz), author)}


async def _lookups(session: Any) -> tuple[dict[int, str], dict[int, str]]:
    """Team names and people's names by id, to name versions."""
    teams = {k: v for k, v in await session.execute(select(Team.id, Team.name))}
    names = {k: v for k, v in await session.execute(select(User.id, User.name))}
    return teams, names


async def _visible_versions(request: web.Request, user: User) -> list[dict[str, Any]]:
    async with request.app[SESSIONS]() as session:
        team = None if user.role == Role.ADMIN else (user.team_id or -1)
        rows = await kkp_scripts.list_versions(session, team)
        teams, names = await _lookups(session)
    return [_version_dict(r, teams, names, workday_tz(request)) for r in rows]


async def _add_script(request: web.Request, user: User, data: dict[str, Any]) -> dict[str, Any]:
    """Validate and store an upload; a refusal (a DomainError) names the line at fault."""
    if not _may_edit_scripts(user):
        raise NotAllowedError("speech.scripts.bosses_only",
                              "only supervisors and admins upload scripts")
    text = data.get("text")
    if not isinstance(text, str) or not text.strip():
        raise DomainError("speech.scripts.text_required", "text is required: the script's YAML")
    if len(text) > MAX_SCRIPT_CHARS:
        raise DomainError("speech.scripts.too_long", "the script is too long")
    try:
        # off the event loop: the text is a user's upload
        script = await asyncio.to_thread(parse_script_text, text)
    except KkpError as exc:
        raise DomainError("speech.scripts.invalid", f"the script is not valid: {exc}",
                          error=exc) from None
    stage = data.get("stage") or None
    if stage is not None and (not isinstance(stage, str) or len(stage) > 100):
        raise DomainError("request.too_long", "stage must be a short string", name="stage",
                          max=100)
    raw_from = data.get("effective_from") or ""
    if not isinstance(raw_from, str):
        raise DomainError("request.not_a_moment",
                          "effective_from must be a date or an ISO 8601 time",
                          name="effective_from")
    since = (parse_moment(raw_from, "effective_from", workday_tz(request)) if raw_from
             else utcnow())
    fine = data.get("fine_amount") or 0
    try:
        fine = int(fine)
    except (TypeError, ValueError):
        raise DomainError("speech.scripts.fine_not_whole",
                          "fine_amount must be a whole number of rubles") from None
    if not 0 <= fine <= 1_000_000:
        raise DomainError("speech.scripts.fine_out_of_range",
                          "fine_amount must be between 0 and 1000000")
    team_name = data.get("team") or None
    async with request.app[WRITER_SESSIONS]() as session:
        team_id = None
        if team_name is not None:
            team = await kkp_scripts.team_by_name(session, str(team_name))
            if team is None:
                raise DomainError("speech.scripts.no_team", f"no team called {team_name!r}",
                                  team=str(team_name))
            team_id = team.id
        if user.role == Role.SUPERVISOR:
            if team_id is None:
                team_id = user.team_id
            if team_id is None or team_id != user.team_id:
                raise NotAllowedError("speech.scripts.own_team_only",
                                      "a supervisor uploads scripts for his own team only")
        row = await kkp_scripts.add_version(
            session, name=script.name or "Скрипт", text=text, team_id=team_id, stage=stage,
            effective_from=since, fine_amount=fine, actor=user.username, user_id=user.id)
        await session.commit()
        teams, names = await _lookups(session)
        return _version_dict(row, teams, names, workday_tz(request))


async def scripts_api(request: web.Request) -> web.Response:
    """GET /api/kkp/scripts: versions of my team and the company default."""
    user = qc_user(api_user(request))
    return web.json_response(await _visible_versions(request, user))


async def scripts_api_add(request: web.Request) -> web.Response:
    """POST /api/kkp/scripts {"text", "team", "stage", "effective_from", "fine_amount"}."""
    user = qc_user(api_user(request))
    body = await json_object(request)
    return web.json_response(await _add_script(request, user, body), status=201)


async def _readable_version(request: web.Request, user: User, version_id: int
                            ) -> KkpScriptVersion:
    async with request.app[SESSIONS]() as session:
        row = await kkp_scripts.get_version(session, version_id)
    if row is None or (user.role != Role.ADMIN and row.team_id not in (None, user.team_id)):
        raise NotFoundError("speech.scripts.not_found", "no such script version")
    return row


async def script_text(request: web.Request) -> web.Response:
    """GET /api/kkp/scripts/{id}: one version with its YAML."""
    user = qc_user(api_user(request))
    row = await _readable_version(request, user, path_id(request))
    async with request.app[SESSIONS]() as session:
        teams, names = await _lookups(session)
    return web.json_response({**_version_dict(row, teams, names, workday_tz(request)),
                              "text": row.text})


async def script_yaml(request: web.Request) -> web.Response:
    """GET /qc/scripts/{id}/yaml: a version's YAML as a file (the export)."""
    user = qc_user(page_user(request))
    row = await _readable_version(request, user, path_id(request))
    return web.Response(text=row.text, content_type="application/yaml", charset="utf-8",
                        headers={"Content-Disposition":
                                 f'attachment; filename="kkp-script-{row.id}.yaml"'})


async def _pipeline_stages(session: Any) -> list[tuple[str, str]]:
    """Stages of the working pipelines a version may be for: (code, «Этап (воронки)»)."""
    found = await session.execute(
        select(PipelineStage.code, PipelineStage.name, Pipeline.name)
        .join(Pipeline, Pipeline.id == PipelineStage.pipeline_id)
        .where(Pipeline.archived_at.is_(None), PipelineStage.archived_at.is_(None),
               PipelineStage.outcome == "open")
        .order_by(Pipeline.id, PipelineStage.position))
    labels: dict[str, tuple[str, list[str]]] = {}
    for code, stage, pipeline in found:
        labels.setdefault(code, (stage, []))[1].append(pipeline)
    return [(code, f"{stage} ({', '.join(pipelines)})")
            for code, (stage, pipelines) in labels.items()]


async def scripts_page(request: web.Request, *, error: str | None = None,
                       form: dict[str, Any] | None = None,
                       editor: dict[str, Any] | None = None) -> web.Response:
    user = qc_user(page_user(request))
    async with request.app[SESSIONS]() as session:
        found = await session.execute(select(Team.id, Team.name).order_by(Team.name))
        teams = [(team_id, name) for team_id, name in found]
        stages = await _pipeline_stages(session)
    versions = await _visible_versions(request, user)
    tz = workday_tz(request)
    for v in versions:
        v["local_from"] = datetime.fromisoformat(v["effective_from"]).astimezone(tz)
    raw = request.query.get("from_version", "")
    base = next((v for v in versions if raw.isdigit() and v["id"] == int(raw)),
                versions[0] if versions else None)
    if editor is None:
        script = None
        if base is not None:
            async with request.app[SESSIONS]() as session:
                row = await kkp_scripts.get_version(session, base["id"])
            try:
                script = (await asyncio.to_thread(parse_script_text, row.text)
                          if row is not None else None)
            except KkpError:
                script = None
        editor = form_of(script)
        form = form or ({"team": base["team"] or "", "stage": base["stage"] or "",
                         "fine_amount": base["fine_amount"]} if base else {})
    pipeline_stages = list(stages)
    current = (form or {}).get("stage")
    if current and current not in dict(stages):  # a version keyed on a stage since renamed
        pipeline_stages.append((current, current))
    added = next((v for v in versions if str(v["id"]) == request.query.get("added")), None)
    context = {"title": "Скрипты продаж", "versions": versions,
               "may_edit": _may_edit_scripts(user), "is_admin": user.role == Role.ADMIN,
               "teams": teams, "error": error, "form": form or {}, "editor": editor,
               "base": base, "pipeline_stages": pipeline_stages, "added": added,
               "yaml_open": (form or {}).get("mode") == "yaml"}
    return aiohttp_jinja2.render_template("qc_scripts.html", request, context,
                                          status=400 if error else 200)


async def scripts_form(request: web.Request) -> web.Response:
    """POST /qc/scripts: the editor's form, or (mode=yaml) a YAML file or text; errors
    show the page again with what was typed."""
    user = qc_user(page_user(request))
    form = await request.post()
    data: dict[str, Any] = {k: v for k, v in form.items() if isinstance(v, str)}
    editor = None
    if data.get("mode") == "yaml":
        upload = form.get("file")
        if isinstance(upload, web.FileField) and upload.filename:
            try:
                data["text"] = upload.file.read(MAX_SCRIPT_CHARS + 1).decode("utf-8")
            except UnicodeDecodeError:
                return await scripts_page(
                    request, error=sentence("speech.scripts.upload_not_utf8"), form=data)
    else:
        editor = form_from_post(form.items())
        try:
            _, data["text"] = script_from_form(form.items())
        except ScriptFormError as exc:
            return await scripts_page(request, error=str(exc), form=data, editor=editor)
    try:
        row = await _add_script(request, user, data)
    except DomainError as exc:
        if isinstance(exc, NotAllowedError):
            raise
        return await scripts_page(request, error=sentence("speech.scripts.not_saved",
                                                          {"error": exc}),
                                  form=data, editor=editor)
    raise web.HTTPSeeOther(f"/qc/scripts?added={row['id']}")


def add_routes(router: web.UrlDispatcher) -> None:
    """Register this feature's pages and API routes."""
    router.add_get("/qc", qc_page)
    scorecard_routes.add_routes(router)
    sample_routes.add_routes(router)
    router.add_get("/qc/scripts", scripts_page)
    router.add_post("/qc/scripts", scripts_form)
    router.add_get("/qc/scripts/{id:\\d+}/yaml", script_yaml)
    router.add_get("/clients/{id:\\d+}/scenario", scenario_fragment)
    router.add_get("/api/clients/{id}/scenario", scenario_api)
    router.add_get("/api/calls/{id}/transcript", call_transcript)
    router.add_get("/api/clients/{id}/transcripts", client_transcripts)
    router.add_get("/api/kkp/queue", qc_queue)
    router.add_get("/api/kkp/metrics", qc_metrics)
    router.add_get("/api/kkp/fines", qc_fines)
    router.add_get("/api/kkp/results/{id}", qc_result)
    router.add_post("/api/kkp/fines/{id}/appeal", appeal_routes.qc_appeal)
    router.add_post("/api/kkp/fines/{id}/appeal/decision", appeal_routes.qc_appeal_decision)
    router.add_post("/api/kkp/results/{id}/violations/{index}", qc_decide)
    router.add_get("/api/kkp/scripts", scripts_api)
    router.add_post("/api/kkp/scripts", scripts_api_add)
    router.add_get("/api/kkp/scripts/{id}", script_text)
