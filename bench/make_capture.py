"""Build a large, realistic AMI capture out of real recorded calls.

Benchmarks need hundreds of thousands of events, and hand-written events would
measure the wrong thing (they lack the noise, field counts and orderings real
Asterisk sends). So this script cuts REAL captures (recorded from the sandbox
Asterisk, see ``bench/captures/``) into per-call templates and replays them many
times with fresh uniqueids/linkedids/channel sequence numbers/bridge ids and
shifted timestamps, interleaving concurrent calls. Output is deterministic for a
given seed.

    .venv/bin/python bench/make_capture.py --events 120000 --out /tmp/bench.ami
"""

from __future__ import annotations

import argparse
import heapq
import random
import re
import sys
import uuid
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from pbx_bridge.frames import FrameParser  # noqa: E402
from pbx_bridge.tracker import CallTracker  # noqa: E402

DEFAULT_SOURCES = (ROOT / "bench" / "captures", ROOT / "tests" / "captures")
# Events that belong to the AMI session rather than to a call.
_SESSION_EVENTS = frozenset({"FullyBooted", "CoreShowChannel", "CoreShowChannelsComplete",
                             "TestEvent", "Shutdown", "Reload"})
_CHAN_SEQ = re.compile(r"-([0-9a-f]{8})(?:;\d)?$")
_TRACKER_VARS = ("CRM_", "MIXMONITOR")
VARSET_SHARE = 0.70  # share of VarSet events in real AMI traffic (ami-notes.md: 173 of 241)
# Scenario weights of a B2B sales department's day.
MIX = {
    ("inbound", "answered"): 0.30,
    ("outbound", "answered"): 0.25,
    ("outbound", "busy"): 0.08,
    ("outbound", "no_answer"): 0.07,
    ("inbound", "missed"): 0.10,
    ("queue", "answered"): 0.15,
    ("queue", "missed"): 0.05,
}


Headers = list[tuple[str, str]]


@dataclass
class Template:
    """One real call: its events in order, with the ids to rewrite on every copy."""

    kind: tuple[str, str]
    events: list[Headers]
    start: float
    ids: set[str] = field(default_factory=set)  # uniqueids and linkedids
    seqs: set[str] = field(default_factory=set)  # channel sequence numbers (hex)
    bridges: set[str] = field(default_factory=set)
    pattern: re.Pattern[str] | None = None


def read_frames(path: Path) -> list[Headers]:
    """Events of a capture with every header in wire order (repeats kept)."""
    parser = FrameParser()
    out: list[Headers] = []

    def take(frames: Iterable) -> None:
        for frame in frames:
            if not frame.is_event:
                continue
            pairs = list(frame.headers.items())
            for key, values in frame.repeated.items():
                pairs.extend((key, v) for v in values)
            out.append(pairs)

    with path.open("rb") as fh:
        while chunk := fh.read(1 << 16):
            take(parser.feed(chunk))
    take(parser.close())
    return out


def _ts(event: Headers) -> float:
    for key, value in event:
        if key == "Timestamp":
            try:
                return float(value)
            except ValueError:
                return 0.0
    return 0.0


def _classify(events: list[Headers]) -> tuple[str, str] | None:
    tracker = CallTracker()
    ended = None
    queued = any(dict(e).get("Event", "").startswith("QueueCaller") for e in events)
    for event in events:
        for fact in tracker.feed(dict(event)):
            if fact.kind == "call_ended":
                ended = fact.call
    if ended is None:
        return None
    direction = "queue" if queued and ended.direction == "inbound" else ended.direction
    return direction, ended.status


def split_calls(events: list[Headers]) -> list[Template]:
    """Group a capture's events by linkedid; id-less noise goes to the latest call."""
    by_linkedid: dict[str, list[Headers]] = {}
    bridge_owner: dict[str, str] = {}
    uid_owner: dict[str, str] = {}
    last: str | None = None
    for event in events:
        h = dict(event)
        name = h.get("Event", "")
        if name in _SESSION_EVENTS:
            continue
        linkedid = h.get("Linkedid") or uid_owner.get(h.get("Uniqueid", ""))
        if linkedid is None and h.get("BridgeUniqueid"):
            linkedid = bridge_owner.get(h["BridgeUniqueid"])
        linkedid = linkedid or last
        if linkedid is None:
            continue
        if h.get("Uniqueid"):
            uid_owner.setdefault(h["Uniqueid"], linkedid)
        if h.get("BridgeUniqueid"):
            bridge_owner.setdefault(h["BridgeUniqueid"], linkedid)
        by_linkedid.setdefault(linkedid, []).append(event)
        last = linkedid
    templates = []
    for evs in by_linkedid.values():
        kind = _classify(evs)
        if kind is None:
            continue
        t = Template(kind=kind, events=evs, start=_ts(evs[0]))
        for event in evs:
            for key, value in event:
                if key.endswith(("Uniqueid", "Linkedid")) and "Bridge" not in key and value:
                    t.ids.add(value)
                elif "BridgeUniqueid" in key and value:
                    t.bridges.add(value)
                if key.endswith("Channel") and (m := _CHAN_SEQ.search(value)):
                    t.seqs.add(m.group(1))
        tokens = [re.escape(b) for b in t.bridges]
        tokens += [rf"(?<![\d.]){re.escape(i)}(?!\d)" for i in sorted(t.ids, key=len, reverse=True)]
        tokens += [rf"(?<=-){s}(?![0-9a-f])" for s in t.seqs]
        t.pattern = re.compile("|".join(tokens)) if tokens else None
        _pad_varsets(t)
        templates.append(t)
    return templates


def _pad_varsets(t: Template) -> None:
    """Add copies of the call's own noise VarSets until they are ~70% of its events."""
    varsets = [e for e in t.events if dict(e).get("Event") == "VarSet"]
    noise = [e for e in varsets if not dict(e).get("Variable", "").lstrip("_").startswith(
        _TRACKER_VARS)]
    others = len(t.events) - len(varsets)
    want = int(others * VARSET_SHARE / (1 - VARSET_SHARE)) - len(varsets)
    if want <= 0 or not noise:
        return
    rng = random.Random(len(t.events))
    for _ in range(want):
        # Right after a random event of the call, with that event's timestamp.
        at = rng.randrange(len(t.events))
        ts = _ts(t.events[at])
        copy = [(k, f"{ts:.6f}" if k == "Timestamp" else v) for k, v in rng.choice(noise)]
        t.events.insert(at + 1, copy)


class Instancer:
    """Stamps out copies of templates with fresh ids."""

    def __init__(self, rng: random.Random) -> None:
        self.rng = rng
        self.seq = 0x100
        self.uid_counter = 0

    def instance(self, t: Template, start: float) -> list[tuple[float, int, bytes]]:
        shift = start - t.start
        epoch = int(start)
        mapping: dict[str, str] = {}
        for old in sorted(t.ids, key=lambda i: float(i) if _is_float(i) else 0.0):
            self.uid_counter += 1
            mapping[old] = f"{epoch}.{self.uid_counter}"
        for old in sorted(t.seqs):
            self.seq += 1
            mapping[old] = f"{self.seq & 0xFFFFFFFF:08x}"
        for old in sorted(t.bridges):
            mapping[old] = str(uuid.UUID(int=self.rng.getrandbits(128), version=4))
        out = []
        for order, event in enumerate(t.events):
            ts = _ts(event) + shift
            lines = []
            for key, value in event:
                if key == "Timestamp":
                    value = f"{ts:.6f}"
                elif t.pattern is not None:
                    value = t.pattern.sub(lambda m: mapping.get(m.group(0), m.group(0)), value)
                lines.append(f"{key}: {value}\r\n")
            lines.append("\r\n")
            out.append((ts, order, "".join(lines).encode("utf-8")))
        return out


def _is_float(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def load_templates(sources: Iterable[Path]) -> list[Template]:
    templates: list[Template] = []
    for source in sources:
        files = sorted(source.glob("*.ami")) if source.is_dir() else [source]
        for path in files:
            templates.extend(split_calls(read_frames(path)))
    return templates


def build(templates: list[Template], events: int, seed: int, calls_per_second: float,
          start: float = 1795406400.0) -> tuple[bytes, Mapping[str, int]]:
    """The capture bytes and how many calls of each kind it holds."""
    rng = random.Random(seed)
    by_kind: dict[tuple[str, str], list[Template]] = {}
    for t in templates:
        by_kind.setdefault(t.kind, []).append(t)
    kinds = [k for k in MIX if k in by_kind] or list(by_kind)
    weights = [MIX.get(k, 1.0) for k in kinds]
    inst = Instancer(rng)
    calls: list[list[tuple[float, int, bytes]]] = []
    counts: dict[str, int] = {}
    now, n_events = start, 0
    while n_events < events:
        kind = rng.choices(kinds, weights)[0]
        template = rng.choice(by_kind[kind])
        now += rng.expovariate(calls_per_second)
        calls.append(inst.instance(template, now))
        n_events += len(template.events)
        counts["/".join(kind)] = counts.get("/".join(kind), 0) + 1
    # Merge by time; each call keeps its own wire order even where its timestamps tie.
    merged = heapq.merge(*calls, key=lambda item: item[0])
    banner = b"Asterisk Call Manager/11.0.0\r\n"
    return banner + b"".join(item[2] for item in merged), counts


def stream(templates: list[Template], events: int, seed: int, calls_per_second: float,
           window: int = 200, start: float = 1795406400.0) -> Iterator[bytes]:
    """Like :func:`build` but in windows of ``window`` calls, for captures too big for RAM."""
    rng = random.Random(seed)
    by_kind: dict[tuple[str, str], list[Template]] = {}
    for t in templates:
        by_kind.setdefault(t.kind, []).append(t)
    kinds = [k for k in MIX if k in by_kind] or list(by_kind)
    weights = [MIX.get(k, 1.0) for k in kinds]
    inst = Instancer(rng)
    now, n_events = start, 0
    yield b"Asterisk Call Manager/11.0.0\r\n"
    while n_events < events:
        calls = []
        for _ in range(window):
            template = rng.choice(by_kind[rng.choices(kinds, weights)[0]])
            now += rng.expovariate(calls_per_second)
            calls.append(inst.instance(template, now))
            n_events += len(template.events)
        yield b"".join(item[2] for item in heapq.merge(*calls, key=lambda item: item[0]))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=120_000)
    parser.add_argument("--seed", type=int, default=20261123)
    parser.add_argument("--calls-per-second", type=float, default=8.0,
                        help="arrival rate; with ~5 s calls this keeps ~40 calls concurrent")
    parser.add_argument("--source", type=Path, action="append",
                        help="capture file or directory (default: bench/captures, tests/captures)")
    parser.add_argument("--out", type=Path, default=Path("/tmp/telecrm-bench.ami"))
    args = parser.parse_args(argv)
    sources = args.source or [p for p in DEFAULT_SOURCES if p.exists()]
    templates = load_templates(sources)
    if not templates:
        print("no complete calls found in the source captures", file=sys.stderr)
        return 1
    data, counts = build(templates, args.events, args.seed, args.calls_per_second)
    args.out.write_bytes(data)
    n = data.count(b"\r\nEvent: ") + data.startswith(b"Event: ")
    varsets = data.count(b"Event: VarSet\r\n")
    print(f"templates: {len(templates)} real calls "
          f"({', '.join(sorted({'/'.join(t.kind) for t in templates}))})")
    print(f"wrote {args.out}: {n} events, {len(data) / 1e6:.1f} MB, "
          f"{varsets / n:.0%} VarSet, calls: {sum(counts.values())} {dict(sorted(counts.items()))}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
