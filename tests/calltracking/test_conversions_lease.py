"""Conversions claimed by a round that died: due again after the claim's lease, sent once.

A round claims every due conversion (``sending``, committed) and its process dies before
the answer is written down: nothing marks them. Before the lease (30 minutes) is over no
round touches them (the dead round might still be alive and uploading); after it they
are claimed again and delivered, once. Google Ads had already received the dead round's
upload and answers ``CLICK_CONVERSION_ALREADY_EXISTS``: that conversion counts as sent,
not refused. Storage on SQLite and PostgreSQL.
"""

from __future__ import annotations

from datetime import datetime, timedelta

import pytest
from sqlalchemy import select

from crm_core.calltracking.ad_models import AdConversion, ConversionGoal, ConversionSystem
from crm_core.calltracking.conversions import CLAIM_LEASE, claim, due
from crm_core.clock import utcnow
from telecrm.calltracking.conversion_upload import send_all
from tests.calltracking.test_conversions import _settings, ready_world
from tests.support.ad_systems_standin import ad_systems_standin
from tests.support.clock import pinned_clock
from tests.support.db_fixtures import db_url_fixture  # noqa: F401

NOON = "2026-11-20T15:00:00+03:00"
pytestmark = pytest.mark.clock(NOON)
NOTHING = {"sent": 0, "failed": 0, "rejected": 0}


async def test_a_dead_rounds_claims_are_due_again_after_the_lease(db_url: str) -> None:
    async with ready_world(db_url) as (sessions, ids):
        # the round that dies: it claims everything, then its process is gone
        claimed_at = utcnow()
        async with sessions() as session, session.begin():
            for system, goal in ((ConversionSystem.METRICA, ConversionGoal.CALL),
                                 (ConversionSystem.METRICA, ConversionGoal.DEAL),
                                 (ConversionSystem.GOOGLE_ADS, ConversionGoal.CALL)):
                assert await claim(session, await due(session, system, goal, claimed_at),
                                   claimed_at)
        async with ad_systems_standin() as standin:
            # its Google upload had reached Google before it died
            standin.google_held.add(("EAIaIQgclid-1", "customers/1234567890/conversionActions/111",
                                     "2026-11-20 12:02:00+03:00"))
            result = await send_all(sessions, _settings(standin.base))
            assert result == {"metrica": NOTHING, "google_ads": NOTHING}
            with pinned_clock(claimed_at + CLAIM_LEASE - timedelta(minutes=1)):
                result = await send_all(sessions, _settings(standin.base))
            assert result == {"metrica": NOTHING, "google_ads": NOTHING}
            assert standin.requests == 0, "a live claim is never taken over"

            later = claimed_at + CLAIM_LEASE + timedelta(minutes=1)
            with pinned_clock(later):
                result = await send_all(sessions, _settings(standin.base))
                assert result == {"metrica": {"sent": 2, "failed": 0, "rejected": 0},
                                  "google_ads": {"sent": 1, "failed": 0, "rejected": 0}}
                again = await send_all(sessions, _settings(standin.base))
            assert again == {"metrica": NOTHING, "google_ads": NOTHING}
            calls = [r for r in standin.received if r.path.endswith("upload_calls")]
            assert [row["Yclid"] for r in calls for row in r.rows] == ["7775551234"]
            assert [row["Target"] for row in standin.rows("metrica")[1:]] == ["deal_won"]
            assert standin.requests == 3  # metrica calls, metrica deals, google: once each
        async with sessions() as session:
            rows = {(r.system, r.goal, r.object_id): r
                    for r in await session.scalars(select(AdConversion))}
        assert {key: (r.status, r.attempts) for key, r in rows.items()} == {
            ("metrica", "call", ids["direct"]): ("sent", 2),
            ("metrica", "deal", ids["deal"]): ("sent", 2),
            ("google_ads", "call", ids["google"]): ("sent", 2)}
        assert all(r.next_attempt_at is None and _at(r.sent_at) >= later
                   for r in rows.values())


def _at(moment: datetime | None) -> datetime:
    assert moment is not None
    return moment if moment.tzinfo else moment.replace(tzinfo=utcnow().tzinfo)
