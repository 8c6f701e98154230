"""Call scenarios placed for real on the sandbox Asterisk, and their recorder.

Each scenario is an async function driving the sandbox (the phones instance
over its AMI, and the PBX over the CRM's own AMI session, as the CRM would). The
recorder runs it under the CRM's real :class:`~pbx_bridge.pipeline.Listener`,
whose capture writer keeps the raw AMI bytes the CRM received, and whose
tracker gives the live result. ``tests/calls/test_tracker_scenarios.py`` asserts the
live result, then the same assertions again on a replay of the committed
capture (``tests/captures/<scenario>.ami``).

Regenerate every capture after a dialplan change::

    .venv/bin/python -m tests.support.record_captures            # all scenarios
    .venv/bin/python -m tests.support.record_captures hold       # some of them
"""

from __future__ import annotations

import asyncio
import contextlib
import shutil
import tempfile
import time
from collections.abc import Awaitable, Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from asterisk_conf.phones import Phones
from asterisk_conf.render import PbxConfig
from asterisk_conf.sandbox import Sandbox
from crm_core.calls.snapshot import CallData
from pbx_bridge.ami import AmiSettings
from pbx_bridge.channels import PartyRules
from pbx_bridge.feed import RECONCILE_PREFIX
from pbx_bridge.pipeline import CaptureWriter, Listener
from pbx_bridge.replay import read_events
from pbx_bridge.tracker import CallTracker, Fact, FactKind

CAPTURES = Path(__file__).resolve().parents[1] / "captures"

CLIENT = "79161234567"  # calls in
CLIENT_B = "89031234567"  # called out, as a manager types it
DID_QUEUE = "74951110001"  # -> queue:sales (101, 102)
DID_101 = "74951110002"  # -> 101
SUPERVISOR = "201"

# Shorter ring timeouts than the product's defaults keep missed-call scenarios fast;
# everything else is the shipped configuration.
SCENARIO_CONFIG = dict(ring_timeout=6, queue_member_timeout=5, outbound_timeout=20)
_TARGETS = ("101", "102", "103", "201", CLIENT, CLIENT_B)


def scenario_config() -> PbxConfig:
    """The PbxConfig the captures were recorded with."""
    return PbxConfig(**SCENARIO_CONFIG)  # type: ignore[arg-type]


def party_rules(config: PbxConfig | None = None) -> PartyRules:
    """What the CRM knows from the PBX config: who is a supervisor."""
    config = config or scenario_config()
    return PartyRules(supervisors=frozenset(ext for ext, _ in config.supervisors))


@dataclass
class Run:
    """What a scenario drives, and what it observed live."""

    sandbox: Sandbox
    phones: Phones
    listener: Listener
    notes: dict[str, Any] = field(default_factory=dict)

    @property
    def tracker(self) -> CallTracker:
        return self.listener.tracker

    async def pbx(self, action: dict[str, Any]) -> Any:
        """An AMI action on the PBX through the CRM's own session."""
        response = await self.listener.session.action(action)
        if isinstance(response, list):
            response = response[0]
        if not response.success:
            raise RuntimeError(f"AMI {action['Action']} failed: {response.message}")
        return response

    async def until(self, what: str, predicate: Callable[[], object],
                    timeout: float = 15) -> None:
        """Wait until the live tracker's state satisfies ``predicate``."""
        deadline = time.monotonic() + timeout
        while not predicate():
            if time.monotonic() > deadline:
                raise TimeoutError(f"timed out waiting for {what}")
            await asyncio.sleep(0.05)

    def live(self) -> list[CallData]:
        """Live calls now (the PBX stamps events with this host's clock)."""
        return self.tracker.live_calls(at=time.time())

    def talking(self, extension: str) -> bool:
        """True while ``extension`` talks on a live call (per the tracker)."""
        return any(extension in call.managers and any(
            leg.extension == extension and leg.ended_at is None for leg in call.legs)
            for call in self.live())

    async def until_talking(self, extension: str, timeout: float = 15) -> None:
        await self.until(f"{extension} talking", lambda: self.talking(extension), timeout)

    def channel_of(self, extension: str) -> str:
        """The PBX channel of ``extension``'s newest live leg."""
        for call in reversed(self.live()):
            for leg in reversed(call.legs):
                if leg.extension == extension and leg.ended_at is None:
                    return leg.channel
        raise LookupError(f"{extension} has no live leg")

    def list_channels(self) -> None:
        """Ask for CoreShowChannels as the listener does after a reconnect.

        Asterisk stamps no Timestamp on a listing, so a global Setvar goes first:
        its VarSet event (stamped) sets the tracker's clock to the listing's time.
        """
        self.notes["listings"] = self.notes.get("listings", 0) + 1
        self.listener.session.send_untracked({
            "Action": "Setvar", "Variable": "TELECRM_LISTING",
            "Value": str(self.notes["listings"]), "ActionID": "scenario-listing-time"})
        self.listener.session.send_untracked({
            "Action": "CoreShowChannels",
            "ActionID": f"{RECONCILE_PREFIX}scenario-{self.notes['listings']}",
        })


Scenario = Callable[[Run], Awaitable[None]]
SCENARIOS: dict[str, Scenario] = {}


def scenario(fn: Scenario) -> Scenario:
    SCENARIOS[fn.__name__] = fn
    return fn


# ---------------------------------------------------------------- inbound


@scenario
async def inbound_answered(run: Run) -> None:
    await run.phones.set_behaviour("101", answer_after=1)
    await run.phones.client_calls(CLIENT, DID_101, talk=4)


@scenario
async def inbound_missed_timeout(run: Run) -> None:
    """Nobody answers: the PBX gives up after ring_timeout (6 s)."""
    await run.phones.set_behaviour("101", mode="ring")
    await run.phones.client_calls(CLIENT, DID_101, talk=5, ring_timeout=30)


@scenario
async def inbound_missed_abandoned(run: Run) -> None:
    """The caller hangs up after 3 s of ringing."""
    await run.phones.set_behaviour("101", mode="ring")
    await run.phones.client_calls(CLIENT, DID_101, talk=5, ring_timeout=3)


@scenario
async def inbound_queue(run: Run) -> None:
    """Queue sales rings 101 and 102 at once; 102 answers after 1 s."""
    await run.phones.set_behaviour("101", mode="ring")
    await run.phones.set_behaviour("102", answer_after=1)
    await run.phones.client_calls(CLIENT, DID_QUEUE, talk=3)


# ---------------------------------------------------------------- outbound


@scenario
async def outbound_answered(run: Run) -> None:
    await run.phones.set_behaviour(CLIENT_B, answer_after=1, talk=3)
    await run.phones.manager_calls("102", CLIENT_B, talk=60)


@scenario
async def outbound_busy(run: Run) -> None:
    await run.phones.set_behaviour(CLIENT_B, mode="busy")
    await run.phones.manager_calls("103", CLIENT_B, talk=60)


@scenario
async def outbound_no_answer(run: Run) -> None:
    """The client never answers; the manager gives up after 4 s."""
    await run.phones.set_behaviour(CLIENT_B, mode="ring")
    await run.phones.manager_calls("101", CLIENT_B, talk=60, ring_timeout=4)


@scenario
async def outbound_failed(run: Run) -> None:
    await run.phones.set_behaviour(CLIENT_B, mode="congestion")
    await run.phones.manager_calls("101", CLIENT_B, talk=60)


@scenario
async def internal(run: Run) -> None:
    await run.phones.set_behaviour("102", answer_after=1, talk=3)
    await run.phones.manager_calls("101", "102", talk=60)


# ---------------------------------------------------------------- transfers


@scenario
async def blind_transfer(run: Run) -> None:
    """101 talks 2 s, then the CRM blind-transfers the client to 102 (AMI BlindTransfer)."""
    await run.phones.set_behaviour("101", answer_after=1)
    await run.phones.set_behaviour("102", answer_after=1)
    await run.phones.client_calls(CLIENT, DID_101, talk=8)
    await run.until_talking("101")
    await asyncio.sleep(2)
    await run.pbx({"Action": "BlindTransfer", "Channel": run.channel_of("101"),
                   "Exten": "102", "Context": "crm-transfer"})


@scenario
async def attended_transfer(run: Run) -> None:
    """101 talks 2 s, consults 102 (AMI Atxfer) for 2 s, then hangs up: 102 has the client."""
    await run.phones.set_behaviour("101", answer_after=1)
    await run.phones.set_behaviour("102", answer_after=1)
    await run.phones.client_calls(CLIENT, DID_101, talk=11)
    await run.until_talking("101")
    await asyncio.sleep(2)
    # "#" ends the number: without it Asterisk waits transferdigittimeout for a
    # 4th digit (crm-transfer also has 4-digit extensions). Sent without waiting
    # for the answer: panoramisk 1.4 cannot parse "Atxfer successfully queued".
    run.listener.session.send_untracked({
        "Action": "Atxfer", "Channel": run.channel_of("101"), "Exten": "102#",
        "Context": "crm-transfer", "ActionID": "scenario-atxfer"})
    await asyncio.sleep(3)  # 1 s ringing, 2 s of consultation
    await run.phones.hang_up("101")


# ---------------------------------------------------------------- pickup, hold, concurrency


@scenario
async def pickup(run: Run) -> None:
    """The client's call rings on 101; after 2 s 103 dials *8 and takes it."""
    await run.phones.set_behaviour("101", mode="ring")
    await run.phones.client_calls(CLIENT, DID_101, talk=4)
    await run.until("101 ringing", lambda: any("101" in c.rang for c in run.live()))
    await asyncio.sleep(2)
    await run.phones.manager_calls("103", "*8", talk=60)


@scenario
async def hold(run: Run) -> None:
    """101 talks 2 s, holds the client (*0) for 3 s, resumes (any key), talks on."""
    await run.phones.set_behaviour("101", answer_after=1)
    await run.phones.client_calls(CLIENT, DID_101, talk=9)
    await run.until_talking("101")
    await asyncio.sleep(2)
    await run.phones.press("101", "*0", gap=0.1)
    await asyncio.sleep(3)
    await run.phones.press("101", "1")


@scenario
async def concurrent_calls(run: Run) -> None:
    """101 talks with a client and, meanwhile, calls a second client from another line."""
    await run.phones.set_behaviour("101", answer_after=1)
    await run.phones.set_behaviour(CLIENT_B, answer_after=1, talk=3)
    await run.phones.client_calls(CLIENT, DID_101, talk=7)
    await run.until_talking("101")
    await asyncio.sleep(1)
    await run.phones.manager_calls("101", CLIENT_B, talk=60)


@scenario
async def client_on_another_call(run: Run) -> None:
    """The client talks with 101; 102 calls the same client, who takes the second call."""
    await run.phones.set_behaviour("101", answer_after=1)
    await run.phones.set_behaviour(CLIENT, answer_after=1, talk=3)
    await run.phones.client_calls(CLIENT, DID_101, talk=7)
    await run.until_talking("101")
    await asyncio.sleep(1)
    await run.phones.manager_calls("102", CLIENT, talk=60)


# ---------------------------------------------------------------- live state, supervisors


@scenario
async def in_progress(run: Run) -> None:
    """A call watched while it lasts; the CRM lists channels mid-call (reconciliation)."""
    await run.phones.set_behaviour("101", answer_after=1)
    await run.phones.client_calls(CLIENT, DID_101, talk=6)
    await run.until_talking("101")
    samples = []
    for _ in range(2):
        await asyncio.sleep(1.5)
        run.list_channels()
        (call,) = run.live()
        samples.append((call.status, call.answered_at is not None, call.talk_seconds,
                        run.tracker.live_calls(at=time.time())[0].talk_seconds))
    run.notes["samples"] = samples


@scenario
async def spy(run: Run) -> None:
    """Supervisor 201 listens in on 101's call with a client (ChanSpy via AMI Originate)."""
    await run.phones.set_behaviour("101", answer_after=1)
    await run.phones.set_behaviour(SUPERVISOR, answer_after=0.5)
    await run.phones.client_calls(CLIENT, DID_101, talk=7)
    await run.until_talking("101")
    await asyncio.sleep(1)
    await run.pbx({"Action": "Originate", "Channel": f"PJSIP/{SUPERVISOR}",
                   "Context": "crm-listen", "Exten": "101", "Priority": "1",
                   "CallerID": '"Listen" <101>', "Async": "true", "Timeout": "10000"})


# ---------------------------------------------------------------- recorder


@dataclass
class Recorded:
    name: str
    facts: list[Fact]
    notes: dict[str, Any]
    capture: Path
    tracker: CallTracker


def ended_calls(facts: Iterable[Fact]) -> list[CallData]:
    """The final snapshot of every call that ended, in order of ending."""
    return [fact.call for fact in facts if fact.kind is FactKind.ENDED]


def replay_capture(path: Path, rules: PartyRules | None = None,
                   until: Callable[[dict[str, str]], bool] | None = None,
                   ) -> tuple[CallTracker, list[Fact]]:
    """Feed a capture through the tracker as ``telecrm ami-replay`` does (no I/O but the file)."""
    from pbx_bridge.feed import TrackerFeed

    tracker = CallTracker(rules or party_rules())
    feed = TrackerFeed(tracker)
    facts: list[Fact] = []
    for event in read_events(path):
        facts.extend(feed.feed(event))
        if until is not None and until(dict(event)):
            break
    return tracker, facts


async def _reset(phones: Phones, targets: Sequence[str] = _TARGETS) -> None:
    for target in targets:
        await phones.set_behaviour(target)
    await phones.reset_behaviours()


async def _idle(sandbox: Sandbox) -> None:
    """Hang up whatever a failed scenario left, so the next one starts clean."""
    for instance in (sandbox.phones_instance, sandbox.pbx):
        if instance is not None and await asyncio.to_thread(instance.active_channels):
            await asyncio.to_thread(instance.rx, "channel request hangup all")
            await asyncio.sleep(0.5)


async def record(sandbox: Sandbox, name: str, capture: Path, *,
                 idle_timeout: float = 40, scenarios: dict[str, Scenario] | None = None,
                 rules: PartyRules | None = None, targets: Sequence[str] = _TARGETS,
                 ) -> Recorded:
    """Run one scenario under the CRM's listener; write its raw AMI capture to ``capture``.

    ``scenarios``, ``rules`` and ``targets`` default to our own profile's; the foreign
    profile (tests/support/foreign.py) passes its own.
    """
    table = SCENARIOS if scenarios is None else scenarios
    pbx = sandbox.pbx
    assert pbx is not None and sandbox.config is not None
    facts: list[Fact] = []

    async def sink(batch: list[Fact]) -> None:
        facts.extend(batch)

    with tempfile.TemporaryDirectory(prefix=f"capture-{name}-") as tmp:
        tracker = CallTracker(rules or party_rules(sandbox.config))
        listener = Listener(
            AmiSettings(host=pbx.ami_host, port=pbx.ami_port, username=pbx.ami_user,
                        secret=pbx.ami_secret),
            sink, tracker=tracker, capture=CaptureWriter(Path(tmp)))
        task = asyncio.create_task(listener.run())
        try:
            async with sandbox.phones() as phones:
                await _idle(sandbox)
                await _reset(phones, targets)
                await asyncio.wait_for(listener.session.connected.wait(), 30)
                await asyncio.sleep(0.3)  # the connect-time listing comes first
                run = Run(sandbox, phones, listener)
                await table[name](run)
                await phones.wait_idle(timeout=idle_timeout)
                await run.until("the tracker to see every call end",
                                lambda: not tracker.live_calls(), timeout=10)
                await asyncio.sleep(0.2)
                await _reset(phones, targets)
        finally:
            await _idle(sandbox)
            await listener.stop()
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
            # Kept even when the scenario failed: the capture is how to see why.
            capture.parent.mkdir(parents=True, exist_ok=True)
            with capture.open("wb") as out:
                for part in sorted(Path(tmp).glob("*.ami")):  # one per UTC day
                    with part.open("rb") as src:
                        shutil.copyfileobj(src, out)
    return Recorded(name, facts, run.notes, capture, tracker)


async def record_many(sandboxes: Sequence[Sandbox], names: Sequence[str],
                      directory: Path, **options: Any) -> dict[str, Recorded | BaseException]:
    """Run scenarios on several sandboxes at once (one scenario per sandbox at a time).

    Each sandbox is a PBX of its own, so a capture holds exactly one scenario.
    """
    queue: asyncio.Queue[str] = asyncio.Queue()
    for name in names:
        queue.put_nowait(name)
    results: dict[str, Recorded | BaseException] = {}

    async def worker(box: Sandbox) -> None:
        while not queue.empty():
            name = queue.get_nowait()
            try:
                results[name] = await record(box, name, directory / f"{name}.ami", **options)
            except Exception as exc:  # one failed scenario must not stop the others
                results[name] = exc

    await asyncio.gather(*(worker(box) for box in sandboxes))
    return results
