"""What the script checks add to the call log: "has a script violation" as a filter.

A violation counts until a supervisor dismisses it: a check result's violations
(a JSON array) outnumber its dismissed reviews. The JSON array's length is read by
each backend's own function (SQLite ``json_array_length``, PostgreSQL ``jsonb``).
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import ColumnElement, Integer, exists, func, not_, select
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.sql.functions import FunctionElement

from crm_core.calls.models import Call
from crm_core.speech.models import KkpResult, KkpReview
from crm_core.speech.review import DISMISSED


class ViolationCount(FunctionElement[int]):
    """How many violations a ``kkp_results.result`` JSON lists (0 when none or not a list)."""

    type = Integer()
    inherit_cache = True
    name = "violation_count"


@compiles(ViolationCount)
def _sqlite(element: ViolationCount, compiler: Any, **kw: Any) -> str:
    value = compiler.process(element.clauses, **kw)
    return f"coalesce(json_array_length({value}, '$.violations'), 0)"


@compiles(ViolationCount, "postgresql")
def _postgresql(element: ViolationCount, compiler: Any, **kw: Any) -> str:
    value = compiler.process(element.clauses, **kw)
    return (f"(CASE WHEN jsonb_typeof(({value}) -> 'violations') = 'array' "
            f"THEN jsonb_array_length(({value}) -> 'violations') ELSE 0 END)")


def has_violation(wanted: bool = True) -> ColumnElement[bool]:
    """Calls with a script violation no supervisor dismissed (``wanted=False``: the others)."""
    dismissed = (select(func.count(KkpReview.id))
                 .where(KkpReview.result_id == KkpResult.id, KkpReview.decision == DISMISSED)
                 .scalar_subquery())
    found = exists().where(KkpResult.call_id == Call.id,
                           ViolationCount(KkpResult.result) > dismissed)
    return found if wanted else not_(found)
