"""The head of sales' rules: read them (company row, a team's row overriding it) and edit them.

Rules are a frozen ``StatusRules`` value so the status function stays pure and the
tests can build any rule set without a database.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields, replace
from decimal import Decimal, InvalidOperation
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from crm_core.audit import ACTION_UPDATE, write_audit
from crm_core.errors import DomainError, NotAllowedError
from crm_core.people.models import Role, User
from crm_core.sales.models import SalesSettings
from crm_core.timestamps import utcnow

AUDIT_ENTITY = "sales_settings"
MAX_DAYS = 3650


class SalesRuleError(DomainError):
    """Bad rules (``sales.rules.*``)."""


class RulesNotAllowedError(NotAllowedError, SalesRuleError):
    """The acting user may not change these rules (the web answers 403)."""


@dataclass(frozen=True)
class StatusRules:
    """Defaults are the ones a new company starts with (days, money in the ledger currency)."""

    new_period_days: int = 90
    lost_after_days: int = 180
    max_potential_days: int = 90
    max_new_days: int = 180
    abc_a_min: Decimal = Decimal(1_000_000)
    abc_b_min: Decimal = Decimal(300_000)
    contact_days_a: int = 7
    contact_days_b: int = 14
    contact_days_c: int = 30
    contact_days_none: int = 30

    def contact_days(self, group: str | None) -> int:
        """Planned days between contacts for an ABC group (None: not yet qualified)."""
        return {"A": self.contact_days_a, "B": self.contact_days_b,
                "C": self.contact_days_c}.get(group or "", self.contact_days_none)

    def to_dict(self) -> dict[str, Any]:
        return {k: (str(v) if isinstance(v, Decimal) else v) for k, v in asdict(self).items()}


RULE_FIELDS = [f.name for f in fields(StatusRules)]
_MONEY_FIELDS = {"abc_a_min", "abc_b_min"}


def _from_row(row: SalesSettings) -> StatusRules:
    return StatusRules(**{name: getattr(row, name) for name in RULE_FIELDS})


async def _row(session: AsyncSession, team_id: int | None) -> SalesSettings | None:
    where = (SalesSettings.team_id.is_(None) if team_id is None
             else SalesSettings.team_id == team_id)
    return await session.scalar(select(SalesSettings).where(where))


async def rules_for_team(session: AsyncSession, team_id: int | None) -> StatusRules:
    """The team's rules, else the company's, else the defaults."""
    row = await _row(session, team_id) if team_id is not None else None
    row = row or await _row(session, None)
    return _from_row(row) if row is not None else StatusRules()


async def rules_by_team(session: AsyncSession) -> tuple[StatusRules, dict[int, StatusRules]]:
    """(company rules, team id -> rules) in one query, for batch work (nightly, reports)."""
    company = StatusRules()
    teams: dict[int, StatusRules] = {}
    for row in await session.scalars(select(SalesSettings)):
        if row.team_id is None:
            company = _from_row(row)
        else:
            teams[row.team_id] = _from_row(row)
    return company, teams


def _coerce(name: str, value: Any) -> Any:
    if name not in RULE_FIELDS:
        raise SalesRuleError("sales.rules.unknown",
                             f"Unknown setting {name!r}; known: {', '.join(RULE_FIELDS)}.",
                             name=name, known=RULE_FIELDS)
    if name in _MONEY_FIELDS:
        try:
            money = Decimal(str(value).replace(" ", "").replace(",", "."))
        except InvalidOperation:
            raise SalesRuleError("sales.rules.not_money",
                                 f"{name} must be an amount of money, not {value!r}.",
                                 field=name, value=value) from None
        if not money.is_finite() or money < 0 or money >= Decimal(10) ** 14:
            raise SalesRuleError("sales.rules.money_out_of_range",
                                 f"{name} must be a non-negative amount.", field=name)
        return money.quantize(Decimal("0.01"))
    if isinstance(value, bool):
        raise SalesRuleError("sales.rules.not_days", f"{name} must be a whole number of days.",
                             field=name)
    try:
        days = int(str(value).strip())
    except ValueError:
        raise SalesRuleError("sales.rules.not_days",
                             f"{name} must be a whole number of days, not {value!r}.",
                             field=name) from None
    if not 1 <= days <= MAX_DAYS:
        raise SalesRuleError("sales.rules.days_out_of_range",
                             f"{name} must be between 1 and {MAX_DAYS} days.",
                             field=name, max=MAX_DAYS)
    return days


def may_edit_rules(user: User, team_id: int | None) -> bool:
    """Admin: any rules; a supervisor: his own team's only."""
    if user.role == Role.ADMIN:
        return True
    return user.role == Role.SUPERVISOR and team_id is not None and user.team_id == team_id


async def save_rules(session: AsyncSession, team_id: int | None, values: dict[str, Any], *,
                     by: User | None, actor: str = "user") -> StatusRules:
    """Change some rules of the company (``team_id`` None) or of a team; audited.

    ``by`` None is the command line (the operator of the server). A team without its
    own row starts from the company's rules.
    """
    if by is not None and not may_edit_rules(by, team_id):
        raise RulesNotAllowedError(
            "sales.rules.not_allowed",
            "Only an admin, or the supervisor of that team, may change its rules.")
    if not values:
        raise SalesRuleError("sales.rules.nothing", "Give at least one setting to change.")
    changes = {name: _coerce(name, value) for name, value in values.items()}
    row = await _row(session, team_id)
    current = _from_row(row) if row is not None else await rules_for_team(session, None)
    updated = replace(current, **changes)
    if updated.abc_a_min < updated.abc_b_min:
        raise SalesRuleError("sales.rules.abc_order",
                             "The A threshold must not be below the B threshold.")
    if row is None:
        row = SalesSettings(team_id=team_id, **asdict(current))
        session.add(row)
    diff = {}
    for name, value in changes.items():
        old = getattr(current, name)
        if old != value:
            diff[name] = [str(old) if name in _MONEY_FIELDS else old,
                          str(value) if name in _MONEY_FIELDS else value]
        setattr(row, name, value)
    row.updated_at = utcnow()
    row.updated_by_id = by.id if by is not None else None
    await session.flush()
    write_audit(session, actor=actor, user_id=by.id if by is not None else None,
                entity=AUDIT_ENTITY, entity_id=row.id, action=ACTION_UPDATE,
                changes={"team_id": team_id, **diff})
    return updated
