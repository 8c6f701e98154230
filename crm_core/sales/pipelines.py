"""Changing pipelines after they were made: rename, reorder, add stages, stage tasks, archive.

The head of sales reshapes his directions as the business changes, but a deal's
history must stay readable, so nothing is deleted: stages, pipelines and lose reasons
are archived. A stage that still holds open deals cannot be archived (its deals would
sit on a stage nobody sees); they are moved first. Every change is an audit row.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import func, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from crm_core.audit import ACTION_CREATE, ACTION_UPDATE, write_audit
from crm_core.people.models import User
from crm_core.sales.deals import DealError, _boss, _code
from crm_core.sales.models import Deal, DealStatus, LoseReason, Pipeline, PipelineStage
from crm_core.timestamps import isoformat, utcnow

TASK_KINDS = ("call", "email", "meeting", "other")


def _audit(session: AsyncSession, by: User | None, actor: str, entity: str, entity_id: int,
           changes: dict[str, Any]) -> None:
    write_audit(session, actor=actor, user_id=by.id if by else None, entity=entity,
                entity_id=entity_id, action=ACTION_UPDATE, changes=changes)


async def _open_deals(session: AsyncSession, **where: int) -> int:
    stmt = select(func.count(Deal.id)).where(Deal.status == DealStatus.OPEN.value,
                                             Deal.archived_at.is_(None))
    for name, value in where.items():
        stmt = stmt.where(getattr(Deal, name) == value)
    return int(await session.scalar(stmt) or 0)


async def _pipeline(session: AsyncSession, pipeline_id: int) -> Pipeline:
    pipeline = await session.get(Pipeline, pipeline_id)
    if pipeline is None:
        raise DealError("sales.pipeline.not_found", f"There is no pipeline with id {pipeline_id}.",
                        pipeline=pipeline_id)
    return pipeline


async def _stage(session: AsyncSession, stage_id: int) -> PipelineStage:
    stage = await session.get(PipelineStage, stage_id)
    if stage is None:
        raise DealError("sales.stage.not_found", f"There is no stage with id {stage_id}.",
                        stage=stage_id)
    return stage


async def rename_pipeline(session: AsyncSession, pipeline_id: int, name: str, *,
                          by: User | None, actor: str = "user") -> Pipeline:
    _boss(by)
    pipeline = await _pipeline(session, pipeline_id)
    name = (name or "").strip()[:200]
    if not name:
        raise DealError("sales.pipeline.no_name", "A pipeline needs a name.")
    if name == pipeline.name:
        return pipeline
    if await session.scalar(select(Pipeline.id).where(Pipeline.name == name,
                                                      Pipeline.id != pipeline.id)):
        raise DealError("sales.pipeline.exists", f"Pipeline {name!r} exists already.", name=name)
    _audit(session, by, actor, "pipeline", pipeline.id, {"name": [pipeline.name, name]})
    pipeline.name = name
    await session.flush()
    return pipeline


async def archive_pipeline(session: AsyncSession, pipeline_id: int, *, by: User | None,
                           restore: bool = False, actor: str = "user") -> Pipeline:
    """Archive a pipeline (no open deals may remain on it) or restore it."""
    _boss(by)
    pipeline = await _pipeline(session, pipeline_id)
    if not restore:
        left = await _open_deals(session, pipeline_id=pipeline.id)
        if left:
            raise DealError("sales.pipeline.open_deals",
                            f"Pipeline {pipeline.name!r} still has {left} open deal(s).",
                            name=pipeline.name, count=left)
    new = None if restore else (pipeline.archived_at or utcnow())
    _audit(session, by, actor, "pipeline", pipeline.id,
           {"archived_at": [isoformat(pipeline.archived_at), isoformat(new)]})
    pipeline.archived_at = new
    await session.flush()
    return pipeline


async def update_stage(session: AsyncSession, stage_id: int, values: dict[str, Any], *,
                       by: User | None, actor: str = "user") -> PipelineStage:
    """Change a stage's name, position (1 = first) or task (kind, title, days, who).

    ``task_kind`` None means entering the stage creates no task. Closing stages (won,
    lost) have no task of their own (the lost one gives the supervisor a re-check).
    """
    _boss(by)
    stage = await _stage(session, stage_id)
    changes = _apply(stage, values)
    if "position" in values:
        await _move_to(session, stage, values["position"], changes)
    if changes:
        _audit(session, by, actor, "pipeline_stage", stage.id,
               {**changes, "pipeline_id": stage.pipeline_id})
    await session.flush()
    return stage


async def add_stage(session: AsyncSession, pipeline_id: int, values: dict[str, Any], *,
                    by: User | None, actor: str = "user") -> PipelineStage:
    """A new working stage (name and task as in :func:`update_stage`), audited.

    It goes after the last working stage, before won and lost, unless ``position``
    says where; deals already in the pipeline are not touched.
    """
    _boss(by)
    pipeline = await _pipeline(session, pipeline_id)
    stages = list(await session.scalars(select(PipelineStage).where(
        PipelineStage.pipeline_id == pipeline.id).order_by(PipelineStage.position)))
    stage = PipelineStage(pipeline_id=pipeline.id, position=len(stages) + 1, name="",
                          code="", outcome=DealStatus.OPEN.value, task_kind=None,
                          task_due_days=1, task_assignee="owner")
    _apply(stage, {"name": values.get("name"), **values})
    stage.code = _code(stage.name, stage.position)
    session.add(stage)
    await session.flush()
    working = [s.position for s in stages if s.outcome == DealStatus.OPEN.value]
    position = values.get("position", max(working, default=0) + 1)
    await _move_to(session, stage, position, {})
    write_audit(session, actor=actor, user_id=by.id if by else None, entity="pipeline_stage",
                entity_id=stage.id, action=ACTION_CREATE,
                changes={"pipeline_id": pipeline.id, "name": stage.name,
                         "position": stage.position, "task_kind": stage.task_kind,
                         "task_title": stage.task_title, "task_due_days": stage.task_due_days,
                         "task_assignee": stage.task_assignee})
    await session.flush()
    return stage


def _apply(stage: PipelineStage, values: dict[str, Any]) -> dict[str, Any]:
    """Check and set name and task fields of ``values``; returns what changed (old, new)."""
    changes: dict[str, Any] = {}
    if "name" in values:
        name = str(values["name"] or "").strip()[:200]
        if not name:
            raise DealError("sales.stage.no_name", "A stage needs a name.")
        if name != stage.name:
            changes["name"] = [stage.name, name]
            stage.name = name
    if "task_kind" in values:
        kind = values["task_kind"] or None
        if kind is not None and kind not in TASK_KINDS:
            raise DealError("sales.stage.kind_invalid",
                            "The task kind must be call, email, meeting or other.")
        if kind is not None and stage.outcome != DealStatus.OPEN:
            raise DealError("sales.stage.closing_no_task",
                            "A won or lost stage has no task of its own.")
        if kind != stage.task_kind:
            changes["task_kind"] = [stage.task_kind, kind]
            stage.task_kind = kind
    if "task_title" in values:
        title = str(values["task_title"] or "").strip()[:300] or None
        if title != stage.task_title:
            changes["task_title"] = [stage.task_title, title]
            stage.task_title = title
    if "task_due_days" in values:
        days = values["task_due_days"]
        if isinstance(days, str) and days.strip().isdigit():
            days = int(days)
        if isinstance(days, bool) or not isinstance(days, int) or not 0 <= days <= 365:
            raise DealError("sales.stage.days_invalid",
                            "The task deadline must be a whole number of days from 0 to 365.")
        if days != stage.task_due_days:
            changes["task_due_days"] = [stage.task_due_days, days]
            stage.task_due_days = days
    if "task_assignee" in values:
        who = values["task_assignee"]
        if who not in ("owner", "supervisor"):
            raise DealError("sales.stage.assignee_invalid",
                            "The stage's task is for the owner or the supervisor.")
        if who != stage.task_assignee:
            changes["task_assignee"] = [stage.task_assignee, who]
            stage.task_assignee = who
    return changes


async def _move_to(session: AsyncSession, stage: PipelineStage, raw: Any,
                   changes: dict[str, Any]) -> None:
    """Reorder: the stage takes ``raw`` (1-based) among its pipeline's stages."""
    if isinstance(raw, str) and raw.strip().isdigit():
        raw = int(raw)
    stages = list(await session.scalars(select(PipelineStage).where(
        PipelineStage.pipeline_id == stage.pipeline_id).order_by(PipelineStage.position)))
    if isinstance(raw, bool) or not isinstance(raw, int) or not 1 <= raw <= len(stages):
        raise DealError("sales.stage.position_invalid",
                        f"The position must be a whole number from 1 to {len(stages)}.",
                        max=len(stages))
    order = [s for s in stages if s.id != stage.id]
    order.insert(raw - 1, stage)
    if order[0].outcome != DealStatus.OPEN:
        raise DealError("sales.pipeline.first_stage_working",
                        "The first stage must be a working stage.")
    if [s.id for s in order] == [s.id for s in stages]:
        return
    changes["position"] = [stage.position, raw]
    # Two steps, because (pipeline_id, position) is unique at every moment.
    await session.execute(update(PipelineStage).where(
        PipelineStage.pipeline_id == stage.pipeline_id)
        .values(position=-PipelineStage.position).execution_options(synchronize_session=False))
    for position, item in enumerate(order, start=1):
        await session.execute(update(PipelineStage).where(PipelineStage.id == item.id)
                              .values(position=position)
                              .execution_options(synchronize_session=False))
    for position, item in enumerate(order, start=1):
        item.position = position


async def archive_stage(session: AsyncSession, stage_id: int, *, by: User | None,
                        restore: bool = False, actor: str = "user") -> PipelineStage:
    """Archive a working stage that holds no open deals (or restore it)."""
    _boss(by)
    stage = await _stage(session, stage_id)
    if not restore:
        if stage.outcome != DealStatus.OPEN:
            raise DealError("sales.stage.closing_not_archivable",
                            "The won and lost stages cannot be archived.")
        working = await session.scalar(select(func.count(PipelineStage.id)).where(
            PipelineStage.pipeline_id == stage.pipeline_id, PipelineStage.id != stage.id,
            PipelineStage.outcome == DealStatus.OPEN.value, PipelineStage.archived_at.is_(None)))
        if not working:
            raise DealError("sales.pipeline.needs_working_stage",
                            "A pipeline needs at least one working stage.")
        left = await _open_deals(session, stage_id=stage.id)
        if left:
            raise DealError("sales.stage.open_deals",
                            f"Stage {stage.name!r} still has {left} open deal(s).",
                            name=stage.name, count=left)
    new = None if restore else (stage.archived_at or utcnow())
    _audit(session, by, actor, "pipeline_stage", stage.id,
           {"archived_at": [isoformat(stage.archived_at), isoformat(new)],
            "pipeline_id": stage.pipeline_id})
    stage.archived_at = new
    await session.flush()
    return stage


async def archive_lose_reason(session: AsyncSession, reason_id: int, *, by: User | None,
                              restore: bool = False, actor: str = "user") -> LoseReason:
    """Take a reason off the list (deals lost with it keep it), or put it back."""
    _boss(by)
    reason = await session.get(LoseReason, reason_id)
    if reason is None:
        raise DealError("sales.reason.not_found", f"There is no lose reason with id {reason_id}.",
                        reason=reason_id)
    if reason.active != restore:
        _audit(session, by, actor, "lose_reason", reason.id, {"active": [reason.active, restore]})
        reason.active = restore
    await session.flush()
    return reason


def stage_to_dict(stage: PipelineStage) -> dict[str, Any]:
    return {"id": stage.id, "pipeline_id": stage.pipeline_id, "position": stage.position,
            "name": stage.name, "code": stage.code, "outcome": stage.outcome,
            "task_kind": stage.task_kind, "task_title": stage.task_title,
            "task_due_days": stage.task_due_days,
            "task_assignee": stage.task_assignee, "archived_at": isoformat(stage.archived_at)}
