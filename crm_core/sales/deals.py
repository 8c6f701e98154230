"""Deals in pipelines, lose reasons, and the monthly sales plan.

Entering a stage creates that stage's task (its kind, a deadline so many days
ahead, for the deal's owner or his supervisor), so a deal never sits without a
next step. The deadline falls inside working hours (the talk-time calendar of the
assignee's team: weekdays, hours, holidays), never on a Saturday night. A won deal
records the amount won; a lost deal needs a reason from the configured list and
gives the supervisor a task to re-check it (listen to its calls). Every stage entry
is a ``DealStageChange`` row and an audit row.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from decimal import Decimal
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from crm_core.audit import ACTION_CREATE, ACTION_UPDATE, write_audit
from crm_core.clients.models import Client
from crm_core.errors import DomainError, NotAllowedError
from crm_core.integrations.outbox import queue_event
from crm_core.people.models import Role, User
from crm_core.sales.client_status import DEFAULT_TIMEZONE
from crm_core.sales.models import (
    Deal,
    DealStageChange,
    DealStatus,
    LoseReason,
    Pipeline,
    PipelineStage,
    SalesPlan,
)
from crm_core.sales.payments import PaymentError, parse_amount
from crm_core.sales.tasks import check_assignee
from crm_core.talktime.workhours import next_working_moment
from crm_core.tasks.models import Task, TaskKind
from crm_core.tasks.services import create_task
from crm_core.timestamps import ensure_utc, isoformat, utcnow

RECHECK_DAYS = 2


class DealError(DomainError):
    """A deal, pipeline or plan change the rules refuse (``sales.deal.*``, ``sales.pipeline.*``,
    ``sales.stage.*``, ``sales.plan.*``)."""


class DealNotAllowedError(NotAllowedError, DealError):
    """The acting user may not do this (the web answers 403)."""


@dataclass(frozen=True)
class StageSpec:
    """A stage as configured: ``name[:task_kind[:days[:owner|supervisor]]]``, or won/lost."""

    name: str
    outcome: str = DealStatus.OPEN.value
    task_kind: str | None = None
    task_due_days: int = 1
    task_assignee: str = "owner"
    task_title: str | None = None

    @classmethod
    def parse(cls, text: str) -> StageSpec:
        """``Квалификация:call:2``, ``КП:email:3:owner``, ``Выиграна:won``, ``Проиграна:lost``."""
        parts = [p.strip() for p in text.split(":")]
        name = parts[0]
        if not name:
            raise DealError("sales.stage.spec_no_name", f"Stage {text!r} has no name.", text=text)
        if len(parts) > 1 and parts[1] in ("won", "lost"):
            return cls(name, outcome=parts[1])
        kind = parts[1] if len(parts) > 1 and parts[1] else None
        if kind is not None and kind not in ("call", "email", "meeting", "other"):
            raise DealError("sales.stage.spec_kind_invalid",
                            f"Stage {name!r}: task kind must be call, email, meeting or other.",
                            stage=name)
        try:
            days = int(parts[2]) if len(parts) > 2 else 1
        except ValueError:
            raise DealError("sales.stage.spec_days_invalid",
                            f"Stage {name!r}: days must be a whole number.", stage=name) from None
        if not 0 <= days <= 365:
            raise DealError("sales.stage.spec_days_invalid",
                            f"Stage {name!r}: days must be between 0 and 365.", stage=name)
        who = parts[3] if len(parts) > 3 else "owner"
        if who not in ("owner", "supervisor"):
            raise DealError("sales.stage.spec_assignee_invalid",
                            f"Stage {name!r}: the task is for the owner or the supervisor.",
                            stage=name)
        return cls(name, task_kind=kind, task_due_days=days, task_assignee=who)


def _code(name: str, position: int) -> str:
    slug = re.sub(r"[^0-9a-zа-яё]+", "-", name.lower()).strip("-")
    return (slug or f"stage-{position}")[:60]


def _boss(by: User | None) -> None:
    if by is not None and by.role not in (Role.SUPERVISOR, Role.ADMIN):
        raise DealNotAllowedError("sales.bosses_only",
                                  "Only a supervisor or an admin may change this.")


async def create_pipeline(session: AsyncSession, name: str, stages: list[StageSpec], *,
                          by: User | None, actor: str = "user") -> Pipeline:
    """A pipeline with its ordered stages; one won and one lost stage are required."""
    _boss(by)
    name = name.strip()
    if not name:
        raise DealError("sales.pipeline.no_name", "A pipeline needs a name.")
    if await session.scalar(select(Pipeline.id).where(Pipeline.name == name)):
        raise DealError("sales.pipeline.exists", f"Pipeline {name!r} exists already.", name=name)
    outcomes = [s.outcome for s in stages]
    if outcomes.count("won") != 1 or outcomes.count("lost") != 1 or "open" not in outcomes:
        raise DealError("sales.pipeline.stages_needed",
                        "A pipeline needs working stages, one won stage and one lost stage.")
    if stages[0].outcome != "open":
        raise DealError("sales.pipeline.first_stage_working",
                        "The first stage must be a working stage.")
    pipeline = Pipeline(name=name)
    session.add(pipeline)
    await session.flush()
    for position, spec in enumerate(stages, start=1):
        session.add(PipelineStage(
            pipeline_id=pipeline.id, position=position, name=spec.name[:200],
            code=_code(spec.name, position), outcome=spec.outcome, task_kind=spec.task_kind,
            task_title=spec.task_title, task_due_days=spec.task_due_days,
            task_assignee=spec.task_assignee))
    await session.flush()
    write_audit(session, actor=actor, user_id=by.id if by else None, entity="pipeline",
                entity_id=pipeline.id, action=ACTION_CREATE,
                changes={"name": name, "stages": [s.name for s in stages]})
    return pipeline


async def add_lose_reason(session: AsyncSession, name: str, *, by: User | None,
                          actor: str = "user") -> LoseReason:
    _boss(by)
    name = name.strip()
    if not name:
        raise DealError("sales.reason.no_name", "A lose reason needs a name.")
    reason = await session.scalar(select(LoseReason).where(LoseReason.name == name))
    if reason is None:
        reason = LoseReason(name=name[:200], active=True)
        session.add(reason)
    reason.active = True
    await session.flush()
    write_audit(session, actor=actor, user_id=by.id if by else None, entity="lose_reason",
                entity_id=reason.id, action=ACTION_CREATE, changes={"name": name})
    return reason


async def _supervisor_of(session: AsyncSession, user_id: int | None) -> User | None:
    if user_id is None:
        return None
    team_id = await session.scalar(select(User.team_id).where(User.id == user_id))
    if team_id is None:
        return None
    return await session.scalar(select(User).where(
        User.team_id == team_id, User.role == Role.SUPERVISOR.value, User.active.is_(True))
        .order_by(User.id).limit(1))


async def _due(session: AsyncSession, days: int, who: User | None, tz_name: str) -> datetime:
    """``days`` from now, moved into the working hours of the assignee's team."""
    return await next_working_moment(session, utcnow() + timedelta(days=days),
                                     team_id=who.team_id if who else None, tz_name=tz_name)


async def _stage_task(session: AsyncSession, deal: Deal, stage: PipelineStage, client: Client,
                      by: User | None, actor: str, tz_name: str) -> Task | None:
    if stage.outcome == DealStatus.LOST:
        who = await _supervisor_of(session, deal.owner_id)
        return await create_task(
            session, kind=TaskKind.OTHER.value,
            title=f"Перепроверить проигранную сделку «{deal.title}» (прослушать звонки)",
            client_id=client.id, assignee_id=who.id if who else None,
            team_id=who.team_id if who else None,
            due_at=await _due(session, RECHECK_DAYS, who, tz_name),
            created_by_id=by.id if by else None, actor=actor, audit_extra={"deal_id": deal.id})
    if stage.task_kind is None:
        return None
    who = (await _supervisor_of(session, deal.owner_id) if stage.task_assignee == "supervisor"
           else await session.get(User, deal.owner_id) if deal.owner_id else None)
    return await create_task(
        session, kind=stage.task_kind,
        title=f"{stage.task_title or stage.name}: {deal.title}", client_id=client.id,
        assignee_id=who.id if who else None, team_id=who.team_id if who else None,
        due_at=await _due(session, stage.task_due_days, who, tz_name),
        created_by_id=by.id if by else None, actor=actor, audit_extra={"deal_id": deal.id})


async def _enter(session: AsyncSession, deal: Deal, stage: PipelineStage, client: Client,
                 by: User | None, actor: str, from_stage: int | None,
                 tz_name: str = DEFAULT_TIMEZONE) -> DealStageChange:
    deal.stage_id = stage.id
    deal.stage_entered_at = utcnow()
    task = await _stage_task(session, deal, stage, client, by, actor, tz_name)
    change = DealStageChange(deal_id=deal.id, from_stage_id=from_stage, to_stage_id=stage.id,
                             by_id=by.id if by else None, task_id=task.id if task else None)
    session.add(change)
    await session.flush()
    return change


async def create_deal(session: AsyncSession, *, client_id: int, pipeline_id: int, title: str,
                      amount: Any = None, owner_id: int | None = None, by: User | None,
                      actor: str = "user", tz_name: str = DEFAULT_TIMEZONE) -> Deal:
    """A deal on the pipeline's first stage (whose task is created); the owner defaults to
    the client's. ``tz_name``: the workday's zone, for the task's working hours."""
    client = await session.get(Client, client_id)
    if client is None or client.archived_at is not None:
        raise DealError("sales.deal.client_not_found",
                        f"There is no active client with id {client_id}.", client=client_id)
    pipeline = await session.get(Pipeline, pipeline_id)
    if pipeline is None or pipeline.archived_at is not None:
        raise DealError("sales.pipeline.not_found", f"There is no pipeline with id {pipeline_id}.",
                        pipeline=pipeline_id)
    first = await session.scalar(select(PipelineStage).where(
        PipelineStage.pipeline_id == pipeline_id, PipelineStage.archived_at.is_(None))
        .order_by(PipelineStage.position).limit(1))
    if first is None:
        raise DealError("sales.pipeline.no_stages",
                        f"The pipeline with id {pipeline_id} has no stages.", pipeline=pipeline_id)
    title = (title or "").strip()
    if not title:
        raise DealError("sales.deal.no_title", "A deal needs a title.")
    try:
        expected = parse_amount(amount, "amount") if amount not in (None, "") else None
    except PaymentError as exc:  # the same refusal, as this service's error
        raise DealError(exc.code, str(exc), **exc.params) from None
    owner_id = owner_id or client.owner_id or (by.id if by else None)
    if by is not None and by.role == Role.MANAGER and owner_id != by.id:
        raise DealNotAllowedError("sales.deal.manager_own_only",
                                  "A manager opens deals for himself only.")
    owner = await session.get(User, owner_id) if owner_id else None
    if by is not None and owner is not None:
        # the deal's stages give its owner tasks: the same rule as giving a task
        await check_assignee(session, by, owner, client, error=DealNotAllowedError)
    deal = Deal(title=title[:300], client_id=client_id, pipeline_id=pipeline_id,
                stage_id=first.id, owner_id=owner_id, status=DealStatus.OPEN.value,
                amount=expected)
    session.add(deal)
    await session.flush()
    write_audit(session, actor=actor, user_id=by.id if by else None, entity="deal",
                entity_id=deal.id, action=ACTION_CREATE,
                changes={"title": deal.title, "client_id": client_id, "pipeline_id": pipeline_id,
                         "stage_id": first.id, "owner_id": owner_id,
                         "amount": str(expected) if expected is not None else None})
    await _enter(session, deal, first, client, by, actor, None, tz_name)
    return deal


async def move_deal(session: AsyncSession, deal: Deal, stage_id: int, *, by: User | None,
                    amount: Any = None, lose_reason_id: int | None = None,
                    note: str | None = None, actor: str = "user",
                    tz_name: str = DEFAULT_TIMEZONE) -> DealStageChange:
    """Put an open deal on another stage of its pipeline (won: amount; lost: a reason)."""
    if deal.archived_at is not None:
        raise DealError("sales.deal.archived", f"Deal {deal.id} is archived.", deal=deal.id)
    if deal.status != DealStatus.OPEN:
        raise DealError("sales.deal.closed", f"Deal {deal.id} is {deal.status} already.",
                        deal=deal.id)
    stage = await session.get(PipelineStage, stage_id)
    if stage is None or stage.pipeline_id != deal.pipeline_id:
        raise DealError("sales.deal.stage_foreign",
                        f"Stage {stage_id} is not a stage of this deal's pipeline.",
                        stage=stage_id)
    if stage.id == deal.stage_id:
        raise DealError("sales.deal.stage_same", "The deal is on this stage already.")
    if stage.archived_at is not None:
        raise DealError("sales.deal.stage_archived", f"Stage {stage.name!r} is archived.",
                        stage=stage.name)
    changes: dict[str, Any] = {"stage_id": [deal.stage_id, stage.id]}
    if stage.outcome == DealStatus.WON:
        try:
            won = parse_amount(amount, "won_amount")
        except DomainError as exc:
            raise DealError("sales.deal.won_needs_amount", f"A won deal needs the amount: {exc}",
                            error=exc) from None
        deal.won_amount = won
        changes["won_amount"] = [None, str(won)]
    elif stage.outcome == DealStatus.LOST:
        reason = await session.get(LoseReason, lose_reason_id) if lose_reason_id else None
        if reason is None or not reason.active:
            names = ", ".join(await session.scalars(select(LoseReason.name).where(
                LoseReason.active.is_(True)).order_by(LoseReason.name)))
            if not names:
                raise DealError("sales.deal.no_lose_reasons",
                                "A lost deal needs a reason from the list: none set.")
            raise DealError("sales.deal.lost_needs_reason",
                            f"A lost deal needs a reason from the list: {names}.", reasons=names)
        deal.lose_reason_id = reason.id
        deal.lose_note = (note or "").strip()[:500] or None
        changes["lose_reason"] = reason.name
    if stage.outcome != DealStatus.OPEN:
        deal.status = stage.outcome
        deal.closed_at = utcnow()
        changes["status"] = [DealStatus.OPEN.value, stage.outcome]
    client = await session.get(Client, deal.client_id)
    change = await _enter(session, deal, stage, client, by, actor,  # type: ignore[arg-type]
                          deal.stage_id, tz_name)
    write_audit(session, actor=actor, user_id=by.id if by else None, entity="deal",
                entity_id=deal.id, action=ACTION_UPDATE, changes=changes)
    if deal.status == DealStatus.WON:  # other systems hear it (webhooks), in this transaction
        await queue_event(session, "deal.won",
                          {**deal_to_dict(deal), "client_name": client.name if client else None,
                           "stage": stage.name}, key=str(deal.id))
    return change


async def client_stage(session: AsyncSession, client_id: int) -> PipelineStage | None:
    """The stage of the client's most recent open deal (e.g. to pick a call script), or None."""
    return await session.scalar(
        select(PipelineStage).join(Deal, Deal.stage_id == PipelineStage.id)
        .where(Deal.client_id == client_id, Deal.status == DealStatus.OPEN.value,
               Deal.archived_at.is_(None))
        .order_by(Deal.stage_entered_at.desc(), Deal.id.desc()).limit(1))


async def client_stage_at(session: AsyncSession, client_id: int,
                          at: datetime) -> PipelineStage | None:
    """The stage the client was at, at ``at``: of his deal open then and last moved by then.

    Read from the stage history (``deal_stage_changes``), so a call is judged by the
    stage of its start even after the deal moved on; at the present moment it agrees with
    :func:`client_stage`. A deal archived later still counted while it was live.
    """
    at = ensure_utc(at)
    entered = (select(DealStageChange.deal_id, func.max(DealStageChange.at).label("at"))
               .join(Deal, Deal.id == DealStageChange.deal_id)
               .where(Deal.client_id == client_id, DealStageChange.at <= at,
                      (Deal.closed_at.is_(None)) | (Deal.closed_at > at),
                      (Deal.archived_at.is_(None)) | (Deal.archived_at > at))
               .group_by(DealStageChange.deal_id).subquery())
    return await session.scalar(
        select(PipelineStage)
        .join(DealStageChange, DealStageChange.to_stage_id == PipelineStage.id)
        .join(entered, (entered.c.deal_id == DealStageChange.deal_id)
              & (entered.c.at == DealStageChange.at))
        .order_by(DealStageChange.at.desc(), DealStageChange.deal_id.desc(),
                  DealStageChange.id.desc()).limit(1))


def deal_to_dict(deal: Deal) -> dict[str, Any]:
    return {"id": deal.id, "title": deal.title, "client_id": deal.client_id,
            "pipeline_id": deal.pipeline_id, "stage_id": deal.stage_id,
            "owner_id": deal.owner_id, "status": deal.status,
            "amount": str(deal.amount) if deal.amount is not None else None,
            "won_amount": str(deal.won_amount) if deal.won_amount is not None else None,
            "lose_reason_id": deal.lose_reason_id, "closed_at": isoformat(deal.closed_at)}


# -- the monthly plan -----------------------------------------------------------------------


def month_start(day: date) -> date:
    return day.replace(day=1)


def next_month(day: date) -> date:
    return (day.replace(day=28) + timedelta(days=4)).replace(day=1)


async def set_plan(session: AsyncSession, user_id: int, month: date, kind: str, target: Any, *,
                   by: User | None, actor: str = "user") -> SalesPlan:
    """A manager's plan for a month (amount of money won, or count of deals won); audited."""
    _boss(by)
    if kind not in ("amount", "count"):
        raise DealError("sales.plan.kind_invalid", "A plan is an amount or a count of deals.")
    manager = await session.get(User, user_id)
    if manager is None:
        raise DealError("sales.user_not_found", f"There is no user with id {user_id}.",
                        user=user_id)
    if by is not None and by.role == Role.SUPERVISOR and manager.team_id != by.team_id:
        raise DealNotAllowedError("sales.user_not_in_team", f"{manager.name} is not in your team.",
                                  name=manager.name)
    try:
        value = parse_amount(target, "target")
    except PaymentError as exc:
        raise DealError(exc.code, str(exc), **exc.params) from None
    if kind == "count" and value != value.to_integral_value():
        raise DealError("sales.plan.count_not_whole", "A plan in deals is a whole number.")
    month = month_start(month)
    plan = await session.scalar(select(SalesPlan).where(SalesPlan.user_id == user_id,
                                                        SalesPlan.month == month))
    old = None if plan is None else [plan.kind, str(plan.target)]
    if plan is None:
        plan = SalesPlan(user_id=user_id, month=month, kind=kind, target=value)
        session.add(plan)
    plan.kind, plan.target = kind, value
    plan.updated_at, plan.updated_by_id = utcnow(), by.id if by else None
    await session.flush()
    write_audit(session, actor=actor, user_id=by.id if by else None, entity="sales_plan",
                entity_id=plan.id, action=ACTION_UPDATE,
                changes={"user_id": user_id, "month": month.isoformat(),
                         "plan": [old, [kind, str(value)]]})
    return plan


def _pct(done: Decimal, target: Decimal) -> float | None:
    return None if not target else round(float(done / target * 100), 1)


async def plan_progress(session: AsyncSession, month: date, managers: list[User],
                        tz: Any) -> dict[str, Any]:
    """% of the plan done per manager, per team and for the company (the managers given).

    Done = deals won (``closed_at`` within the month in ``tz``): their amount for an
    amount plan, their number for a count plan. Teams and the company sum their
    managers' plans of each kind.
    """
    start = datetime.combine(month_start(month), datetime.min.time(), tzinfo=tz)
    end = datetime.combine(next_month(month), datetime.min.time(), tzinfo=tz)
    ids = [m.id for m in managers]
    plans = {p.user_id: p for p in await session.scalars(select(SalesPlan).where(
        SalesPlan.user_id.in_(ids), SalesPlan.month == month_start(month)))}
    won = {uid: (Decimal(total or 0), int(n)) for uid, total, n in await session.execute(
        select(Deal.owner_id, func.sum(Deal.won_amount), func.count(Deal.id))
        .where(Deal.owner_id.in_(ids), Deal.status == DealStatus.WON.value,
               Deal.closed_at >= start, Deal.closed_at < end, Deal.archived_at.is_(None))
        .group_by(Deal.owner_id))}
    team_names = {}
    rows = []
    for manager in managers:
        plan = plans.get(manager.id)
        amount, count = won.get(manager.id, (Decimal(0), 0))
        done = Decimal(count) if plan is not None and plan.kind == "count" else amount
        rows.append({"user_id": manager.id, "name": manager.name, "team_id": manager.team_id,
                     "kind": plan.kind if plan else None,
                     "target": str(plan.target) if plan else None,
                     "won_amount": str(amount.quantize(Decimal("0.01"))), "won_deals": count,
                     "done": str(done), "pct": _pct(done, plan.target) if plan else None})
        team_names[manager.team_id] = manager.team_id

    def total(selected: list[dict[str, Any]]) -> dict[str, Any]:
        out = {}
        for kind in ("amount", "count"):
            mine = [r for r in selected if r["kind"] == kind]
            target = sum((Decimal(r["target"]) for r in mine), Decimal(0))
            done = sum((Decimal(r["done"]) for r in mine), Decimal(0))
            out[kind] = {"target": str(target), "done": str(done), "pct": _pct(done, target)}
        return out

    teams = {tid: total([r for r in rows if r["team_id"] == tid]) for tid in team_names}
    return {"month": month_start(month).isoformat(), "managers": rows,
            "teams": [{"team_id": tid, **value} for tid, value in teams.items()],
            "company": total(rows)}
