"""Score a call transcript against a KKP script without fining innocent people.

Every finding is one of: found, a violation, or a violation that needs a
person's review (low ASR confidence, a very short call, phrases the model
cannot recognize at all, a word that more probably means something else).
Only violations without ``needs_review`` should ever feed a fine, and even those
are meant to be confirmed by a supervisor.
"""

from __future__ import annotations

from collections.abc import Container, Sequence
from typing import Any

from speech.lemmas import lemmas, tokens
from speech.matching import Hit, find_forbidden, find_phrase
from speech.script import (
    Forbidden,
    KkpError,
    Script,
    Stage,
    load_script,
    load_transcript,
    load_vocabulary,
)

__all__ = ["KkpError", "check", "load_script", "load_transcript", "load_vocabulary"]

FORBIDDEN_MIN_CONF = 0.9  # every word of a forbidden phrase (Vosk's confidence is rough)
LEG_MIN_MEAN_CONF = 0.6   # below this the manager's leg is too garbled to call a stage missing
SHORT_CALL_SECONDS = 20.0
SHORT_CALL_WORDS = 15
NEGATIONS = frozenset({"не", "ни", "нельзя", "нет"})
QUOTING = frozenset({"слово", "словечко", "говорить", "сказать", "называть", "называемый",
                     "выражение", "произносить"})
CUE_WINDOW = 2   # words before a forbidden phrase looked at for negation or quoting


def manager_words(transcript: dict[str, Any]) -> tuple[list[dict[str, Any]], bool]:
    """The manager's words, and whether they really are his (not a mono mix)."""
    speakers = transcript.get("speakers") or {}
    if speakers.get("manager") is not None:
        return sorted(speakers["manager"], key=lambda w: w["start"]), True
    return sorted(speakers.get("mixed") or [], key=lambda w: w["start"]), False


def check(script: Script, transcript: dict[str, Any],
          vocabulary: Container[str] | None = None) -> dict[str, Any]:
    """The compliance result in the fixed shape (see /work/shared/architecture.md)."""
    words, own_leg = manager_words(transcript)
    duration = float(transcript.get("duration") or (words[-1]["end"] if words else 0.0))
    doubtful_leg = _doubtful(words, duration)

    hits = {stage.id: _stage_hits(stage, words) for stage in script.stages}
    found = {stage.id: _is_found(stage, hits[stage.id]) for stage in script.stages}
    chosen, out_of_order = _order(script.stages, hits, found)

    stages_out, violations = [], []
    for stage in script.stages:
        stage_hits = sorted((h for hs in hits[stage.id] for h in hs), key=lambda h: h.start)
        stages_out.append({"id": stage.id, "found": found[stage.id],
                           "evidence": [h.evidence() for h in stage_hits]})
        if not found[stage.id]:
            if stage.required:
                review = doubtful_leg or _unknown_words(stage, vocabulary) or not own_leg
                violations.append(_violation("missing_stage", stage.id, [], review))
            continue
        hit = chosen.get(stage.id) or stage_hits[0]
        if stage.id in out_of_order:
            violations.append(_violation("order", stage.id, [hit.evidence()], doubtful_leg))
        elif stage.within_seconds is not None and hit.start > stage.within_seconds:
            violations.append(_violation("late", stage.id, [hit.evidence()], False))

    for item in script.forbidden:
        violations.extend(_forbidden(item, words, own_leg))
    return {"score": _score(script, found, violations), "stages": stages_out,
            "violations": violations}


def _violation(kind: str, id_: str, evidence: list[dict[str, Any]],
               needs_review: bool) -> dict[str, Any]:
    return {"kind": kind, "id": id_, "evidence": evidence, "needs_review": bool(needs_review)}


def _doubtful(words: Sequence[dict[str, Any]], duration: float) -> bool:
    """Too little or too garbled speech to say that something was not said."""
    if duration < SHORT_CALL_SECONDS or len(words) < SHORT_CALL_WORDS:
        return True
    mean = sum(float(w.get("conf", 1.0)) for w in words) / len(words)
    return mean < LEG_MIN_MEAN_CONF


def _unknown_words(stage: Stage, vocabulary: Container[str] | None) -> bool:
    """A phrase with a word the model cannot output (a company name) can't be checked."""
    if vocabulary is None:
        return False
    return any(t not in vocabulary for p in stage.phrases for t in tokens(p))


def _stage_hits(stage: Stage, words: Sequence[dict[str, Any]]) -> list[list[Hit]]:
    return [find_phrase(words, phrase) for phrase in stage.phrases]


def _is_found(stage: Stage, per_phrase: list[list[Hit]]) -> bool:
    return sum(1 for hs in per_phrase if hs) >= max(1, stage.min_matches)


def _order(stages: Sequence[Stage], hits: dict[str, list[list[Hit]]],
           found: dict[str, bool]) -> tuple[dict[str, Hit], set[str]]:
    """The longest chain of found stages in script order (one occurrence each).

    Stages outside it are out of order. Ties keep the earlier-listed stages, so
    a swapped pair flags the stage that came too early.
    """
    candidates = [(s.id, sorted((h for hs in hits[s.id] for h in hs), key=lambda h: h.start))
                  for s in stages if found[s.id]]
    nodes: list[tuple[int, Hit]] = [(i, h) for i, (_, hs) in enumerate(candidates) for h in hs]
    chains: list[tuple[tuple[int, ...], list[Hit]]] = []
    for i, hit in nodes:
        chain: tuple[tuple[int, ...], list[Hit]] = ((i,), [hit])
        for (j, prev), (idx, path) in zip(nodes, chains, strict=False):
            if j < i and prev.start <= hit.start and _better((*idx, i), chain[0]):
                chain = ((*idx, i), [*path, hit])
        chains.append(chain)
    kept_idx: tuple[int, ...] = ()
    kept_hits: list[Hit] = []
    for idx, path in chains:
        if _better(idx, kept_idx):
            kept_idx, kept_hits = idx, path
    chosen = {candidates[i][0]: h for i, h in zip(kept_idx, kept_hits, strict=True)}
    out = {sid for i, (sid, _) in enumerate(candidates) if i not in kept_idx}
    return chosen, out


def _better(a: tuple[int, ...], b: tuple[int, ...]) -> bool:
    return (len(a), tuple(-x for x in a)) > (len(b), tuple(-x for x in b))


def _forbidden(item: Forbidden, words: Sequence[dict[str, Any]],
               own_leg: bool) -> list[dict[str, Any]]:
    out = []
    for phrase in item.phrases:
        for found in find_forbidden(words, phrase):
            before = _cue_lemmas(words, found.hit.first)
            if before & NEGATIONS or before & QUOTING:
                continue
            low = any(float(w.get("conf", 1.0)) < FORBIDDEN_MIN_CONF
                      for w in words[found.hit.first:found.hit.last + 1])
            review = low or found.ambiguous or not own_leg
            out.append(_violation("forbidden", item.id, [found.hit.evidence()], review))
    return out


def _cue_lemmas(words: Sequence[dict[str, Any]], first: int) -> set[str]:
    cues: set[str] = set()
    for w in words[max(0, first - CUE_WINDOW):first]:
        cues |= lemmas(w["word"])
    return cues


def _score(script: Script, found: dict[str, bool], violations: list[dict[str, Any]]) -> int:
    """Share of required stages done right, minus 10 points per confirmed forbidden phrase."""
    required = [s.id for s in script.stages if s.required] or [s.id for s in script.stages]
    if not required:
        return 100
    flawed = {v["id"] for v in violations if v["kind"] in ("order", "late")}
    points = sum(0.0 if not found[s] else 0.5 if s in flawed else 1.0 for s in required)
    fines = sum(1 for v in violations if v["kind"] == "forbidden" and not v["needs_review"])
    return max(0, round(100 * points / len(required)) - 10 * fines)
