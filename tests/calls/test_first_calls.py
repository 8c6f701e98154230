"""End to end: real SIP calls through the sandbox Asterisk land in the call log.

The phones and the carrier are a second Asterisk speaking real SIP to the PBX,
which runs the product's own configuration. The CRM listens on AMI exactly as
``telecrm serve`` does; the call log is read back with ``telecrm calls export``.
"""

from pathlib import Path

import pytest

from tests.support.live import exported_calls, live_listener, telecrm, wait_for_ended_calls

pytestmark = pytest.mark.asterisk

CLIENTS = """name,phones,manager
ООО Ромашка,8 (916) 123-45-67,101
ИП Сидоров,+7 903 123 45 67,102
АО Вектор,8-926-555-00-11,103
"""

MANAGERS = (("101", "Иван Петров"), ("102", "Ольга Смирнова"), ("103", "Алексей Кузнецов"))
TALK_A, TALK_B = 4.0, 3.0


def by_number(calls: list[dict]) -> dict[str, list[dict]]:
    out: dict[str, list[dict]] = {}
    for call in calls:
        out.setdefault(call["client_number"], []).append(call)
    return out


async def test_real_calls_are_logged_against_the_right_clients(
        sandbox, tmp_path: Path, pg_url: str) -> None:
    db = f"sqlite:///{tmp_path / 'crm.db'}"
    (tmp_path / "clients.csv").write_text(CLIENTS, encoding="utf-8")
    for url in (db, pg_url):
        for ext, name in MANAGERS:
            telecrm("users", "add", f"m{ext}", "--name", name, "--extension", ext, "--db", url)
        telecrm("clients", "import", str(tmp_path / "clients.csv"), "--db", url)
    capture = tmp_path / "ami"

    async with live_listener(sandbox, db, capture), sandbox.phones() as phones:
        # A: a client calls the DID routed to 101 directly; hangs up after TALK_A s of talk.
        await phones.set_behaviour("101", mode="answer", answer_after=1)
        await phones.client_calls("79161234567", "74951110002", talk=TALK_A)
        # B: 102 calls a client (dialled as 8...), who answers and hangs up after TALK_B s.
        await phones.set_behaviour("89031234567", mode="answer", answer_after=1, talk=TALK_B)
        await phones.manager_calls("102", "89031234567", talk=60)
        # C: 103 calls a client whose line is busy.
        await phones.set_behaviour("89265550011", mode="busy")
        await phones.manager_calls("103", "89265550011", talk=60)
        await phones.wait_idle(timeout=30)
        # D: an unknown number calls the sales queue; nobody answers, it gives up after 4 s.
        await phones.set_behaviour("101", mode="ring")
        await phones.set_behaviour("102", mode="ring")
        await phones.client_calls("79990001122", "74951110001", talk=5, ring_timeout=4)
        await phones.wait_idle(timeout=30)
        # E: the same number calls again, written in another format; 102 answers in the queue.
        await phones.set_behaviour("101", mode="ring")
        await phones.set_behaviour("102", mode="answer", answer_after=1)
        await phones.client_calls("89990001122", "74951110001", talk=2)
        await phones.wait_idle(timeout=30)
        await phones.reset_behaviours()
        calls = await wait_for_ended_calls(db, 5)

    assert len(calls) == 5, calls
    calls = exported_calls(db)
    assert len(calls) == 5
    numbers = by_number(calls)

    (a,) = numbers["+79161234567"]
    assert (a["direction"], a["status"], a["client_name"]) == ("inbound", "answered", "ООО Ромашка")
    assert a["did"] == "+74951110002"
    assert a["managers"] == ["101"]
    assert a["talk_seconds"] == pytest.approx(TALK_A, abs=1.0)
    assert a["ring_seconds"] == pytest.approx(1.0, abs=1.0)

    (b,) = numbers["+79031234567"]
    assert (b["direction"], b["status"], b["client_name"]) == ("outbound", "answered", "ИП Сидоров")
    assert b["managers"] == ["102"]
    assert b["talk_seconds"] == pytest.approx(TALK_B, abs=1.0)

    (c,) = numbers["+79265550011"]
    assert (c["direction"], c["status"], c["client_name"]) == ("outbound", "busy", "АО Вектор")
    assert c["talk_seconds"] == 0 and c["managers"] == []

    d, e = sorted(numbers["+79990001122"], key=lambda call: call["started_at"])
    assert (d["direction"], d["status"], d["talk_seconds"]) == ("inbound", "missed", 0)
    assert d["did"] == "+74951110001"
    assert d["client_id"] is not None, "an unknown number becomes a lead"
    assert e["client_id"] == d["client_id"], "the same number in another format: the same lead"
    assert (e["status"], e["managers"]) == ("answered", ["102"])

    # Answered calls carry their recordings, and the files are really there.
    monitor = sandbox.monitor_dir
    for call in (a, b, e):
        assert call["recordings"], call
        for path in call["recordings"]:
            assert (monitor / path).stat().st_size > 1000, path
    assert c["recordings"] == [] and d["recordings"] == []

    # The raw capture replays into PostgreSQL (same users and clients) as the very same
    # call log, and replaying it twice changes nothing.
    for _ in range(2):
        telecrm("ami-replay", *map(str, sorted(capture.glob("*.ami"))), "--db", pg_url)
    replayed = exported_calls(pg_url)
    assert [strip_ids(x) for x in replayed] == [strip_ids(x) for x in calls]


def strip_ids(call: dict) -> dict:
    return {k: v for k, v in call.items() if k not in ("id", "client_id")}
