"""Live prompts: streaming recognition of one side of a call, and the script's progress.

:class:`SideRecognizer` wraps one Vosk ``KaldiRecognizer`` (over the process's one
``Model``) fed with telephone audio as it arrives: 8 kHz 16-bit PCM is resampled to the
model's rate (stateful across chunks), and after every chunk it gives the words so far,
final ones with times and the partial hypothesis after them. It is blocking and not
thread-safe: one side is fed by one task at a time, in a worker thread.

:class:`LiveScript` is pure: given the words of both sides so far it says which stages are
done (the manager's side, matched as the after-call check matches them, see
:mod:`speech.matching`; a done stage stays done), which required stage comes next, and
which objection the client raised last (its title heard on the client's side). Only the
newest ``WINDOW_WORDS`` words are matched again on each update, so the cost per chunk
does not grow with the call.
"""

from __future__ import annotations

import audioop  # noqa: RUF100 -- deprecated in 3.13; recordings/audio.py uses it as well
import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from speech.matching import find_phrase
from speech.model import LoadedModel
from speech.script import Script

TELEPHONE_RATE = 8000
WINDOW_WORDS = 60  # matched again on each update (a phrase plus inserted words fits)
TRANSCRIPT_LINES = 12  # lines of the running transcript a board shows
# Silence is not fed to the recognizer (most of a side's time is listening, and Vosk costs
# as much on silence as on speech): a chunk quieter than this RMS (about -50 dBFS) is
# skipped unless an utterance is in progress or speech stopped less than HANGOVER ago (so
# that Vosk still hears the pause that ends an utterance).
SILENCE_RMS = 100
HANGOVER_SECONDS = 0.8
# Vosk ends an utterance by its own rules, which wait up to 2 s of silence when its
# hypothesis is unsure; the final words (often the ones that complete a stage) come only
# then. The recognizer is told the utterance ended after this much quiet instead: a pause
# inside a sentence is shorter, and a phrase split at a long one still matches, since
# stages are matched on the words, not on utterances. The price: each utterance starts
# the recognizer's speaker adaptation afresh, a little less accurate than one long
# stream; live prompts are hints, and the check that counts reads the whole recording.
ENDPOINT_SECONDS = 0.4
FRAME_BYTES = 320  # 20 ms at 8 kHz, 16-bit: the step of the quiet measure
STEP_SECONDS = 0.1  # the most audio fed to the recognizer between two looks at the pause


def trailing_quiet(pcm: bytes, rate: int = TELEPHONE_RATE) -> tuple[float, bool]:
    """Seconds of quiet at the end of ``pcm`` (in 20 ms frames), and whether any frame
    was loud."""
    frame = FRAME_BYTES * rate // TELEPHONE_RATE
    end = len(pcm)
    quiet = 0
    while end > 0:
        start = max(0, end - frame)
        if audioop.rms(pcm[start:end], 2) >= SILENCE_RMS:
            return quiet / 2 / rate, True
        quiet += end - start
        end = start
    return quiet / 2 / rate, False


def _words(result: dict[str, Any], offset: float) -> list[dict[str, Any]]:
    return [{"word": w["word"], "start": round(float(w["start"]) + offset, 3),
             "end": round(float(w["end"]) + offset, 3),
             "conf": round(float(w.get("conf", 1.0)), 3)}
            for w in result.get("result", [])]


class SideRecognizer:
    """One side of one live call, recognised as its audio arrives."""

    def __init__(self, model: LoadedModel, in_rate: int = TELEPHONE_RATE) -> None:
        from vosk import KaldiRecognizer

        self.model_rate = model.sample_rate
        self.in_rate = in_rate
        self._recognizer = KaldiRecognizer(model.vosk, model.sample_rate)
        self._recognizer.SetWords(True)
        # No times on partial words: Vosk then reads them off its incrementally determinized
        # lattice, which trails the audio by ~2 s; the best path it reads otherwise trails
        # by ~0.5 s. A partial word is timed at the audio's end (an upper bound), and
        # LiveScript takes the exact time from the final words when they come.
        self._recognizer.SetPartialWords(False)
        self._state: Any = None
        self.final: list[dict[str, Any]] = []
        self.lines: list[str] = []  # final utterances, newest last
        self.partial: list[str] = []
        self.seconds = 0.0  # audio accepted so far
        self.skipped = 0.0  # of which silence never fed to the recognizer
        self._hangover = 0.0
        self._quiet = 0.0  # seconds of quiet since the last loud frame
        self.endpoints = 0  # utterances ended by ENDPOINT_SECONDS of quiet (not by Vosk)

    def accept(self, pcm: bytes) -> bool:
        """Feed audio; True when the words (final or partial) changed.

        A long chunk (a backlog a loaded machine hands over at once) is fed in STEP_SECONDS
        pieces, so that a pause ends the utterance at the same point of the audio however
        it arrived; fed whole, Vosk would end it by its own rules, later, or run on."""
        step = int(STEP_SECONDS * self.in_rate) * 2
        changed = False
        for start in range(0, len(pcm), step):
            changed = self._accept_piece(pcm[start:start + step]) or changed
        return changed

    def _accept_piece(self, pcm: bytes) -> bool:
        if not pcm:
            return False
        duration = len(pcm) / 2 / self.in_rate
        self.seconds += duration
        quiet, loud = trailing_quiet(pcm, self.in_rate)
        if loud:
            self._quiet = quiet
            self._hangover = HANGOVER_SECONDS - quiet
        else:
            self._quiet += duration
            if self._hangover > 0:
                self._hangover -= duration
            elif not self.partial:
                self.skipped += duration  # the recognizer's clock stops: word times shift
                return False
        if self.in_rate != self.model_rate:
            pcm, self._state = audioop.ratecv(pcm, 2, 1, self.in_rate, self.model_rate,
                                              self._state)
        if self._recognizer.AcceptWaveform(pcm):
            words = _words(json.loads(self._recognizer.Result()), self.skipped)
            self.final.extend(words)
            if words:
                self.lines.append(" ".join(w["word"] for w in words))
                del self.lines[:-TRANSCRIPT_LINES]
            changed = bool(words) or bool(self.partial)
            self.partial = []
            return changed
        if self.partial and self._quiet >= ENDPOINT_SECONDS:
            self.endpoints += 1
            self.finish()
            return True
        result = json.loads(self._recognizer.PartialResult())
        partial = str(result.get("partial", "")).split()
        if partial == self.partial:
            return False
        self.partial = partial
        return True

    def finish(self) -> None:
        """The utterance in progress becomes final (the stream ended, or a pause did)."""
        words = _words(json.loads(self._recognizer.FinalResult()), self.skipped)
        self.final.extend(words)
        if words:
            self.lines.append(" ".join(w["word"] for w in words))
            del self.lines[:-TRANSCRIPT_LINES]
        self.partial = []

    def words(self) -> list[dict[str, Any]]:
        """Final words with times, then the partial hypothesis timed at the audio's end
        (marked ``partial``)."""
        at = round(self.seconds, 3)
        return self.final + [{"word": w, "start": at, "end": at, "conf": 1.0, "partial": True}
                             for w in self.partial]

    def text(self) -> str:
        """The utterance in progress (the partial hypothesis)."""
        return " ".join(self.partial)


@dataclass
class LiveScript:
    """Which stages of ``script`` are done so far, the next one, and the last objection."""

    script: Script
    # stage id -> second of the manager's stream at which its phrase ended
    done: dict[str, float] = field(default_factory=dict)
    # stages matched on a partial hypothesis: their second is when it was heard, until
    # the final words give the phrase's own end
    rough: set[str] = field(default_factory=set)
    objection: str | None = None  # id of the objection the client raised last
    _objections_seen: set[tuple[str, float]] = field(default_factory=set)

    def update(self, manager: Sequence[dict[str, Any]], client: Sequence[dict[str, Any]]) -> bool:
        """Match the newest words of both sides; True when the view changed."""
        changed = False
        recent = list(manager[-WINDOW_WORDS:])
        final = [w for w in recent if not w.get("partial")]
        for stage in self.script.stages:
            if stage.id in self.done:
                if stage.id in self.rough and self._refine(stage, final):
                    changed = True
                continue
            found = [hits for phrase in stage.phrases if (hits := find_phrase(recent, phrase))]
            if len(found) >= max(1, stage.min_matches):
                first = min((h[0] for h in found), key=lambda h: h.start)
                self.done[stage.id] = float(first.words[first.last]["end"])
                if any(w.get("partial") for w in first.words[first.first:first.last + 1]):
                    self.rough.add(stage.id)
                    self._refine(stage, final)
                changed = True
        heard = list(client[-WINDOW_WORDS:])
        for objection in self.script.objections:
            hits = [hit for phrase in objection.heard_as() for hit in find_phrase(heard, phrase)]
            for hit in hits:
                key = (objection.id, hit.start)
                if key not in self._objections_seen:
                    self._objections_seen.add(key)
                    if self.objection != objection.id:
                        self.objection = objection.id
                        changed = True
        return changed

    def _refine(self, stage: Any, final: Sequence[dict[str, Any]]) -> bool:
        """The exact end of a roughly timed stage's phrase, once it is in the final words
        (the first time it was said, by the time it was heard); True when found."""
        heard = self.done[stage.id]
        ends = [float(hit.words[hit.last]["end"]) for phrase in stage.phrases
                for hit in find_phrase(final, phrase)]
        ends = [end for end in ends if end <= heard + 0.05]
        if not ends:
            return False
        self.done[stage.id] = min(ends)
        self.rough.discard(stage.id)
        return True

    def next_stage(self) -> Any:
        for stage in self.script.stages:
            if stage.id not in self.done and stage.required:
                return stage
        return next((s for s in self.script.stages if s.id not in self.done), None)

    def view(self) -> dict[str, Any]:
        """JSON-safe: the stages with done flags, the next stage's prompt, the objection's."""
        nxt = self.next_stage()
        objection = next((o for o in self.script.objections if o.id == self.objection), None)
        return {
            "script": self.script.name,
            "stages": [{"id": s.id, "title": s.title or s.id, "required": s.required,
                        "done": s.id in self.done, "said_second": self.done.get(s.id)}
                       for s in self.script.stages],
            "next": None if nxt is None else {
                "id": nxt.id, "title": nxt.title or nxt.id,
                "say": list(nxt.say) or [f"«{p}»" for p in nxt.phrases[:2]]},
            "objection": None if objection is None else {
                "id": objection.id, "title": objection.title, "say": list(objection.say)},
        }
