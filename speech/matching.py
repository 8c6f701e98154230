"""Find script phrases in a leg's words, tolerant of inserted words and ASR slips."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from speech.lemmas import best_lemma, dictionary_form, lemmas, normalize, token_matches, tokens

MAX_INSERTED = 3  # extra words inside a phrase in all: "какие у вас основные задачи"


@dataclass(frozen=True)
class Hit:
    """One occurrence: the heard words from the first to the last matched one."""

    first: int
    last: int
    words: Sequence[dict[str, Any]]

    @property
    def start(self) -> float:
        return float(self.words[self.first]["start"])

    def evidence(self) -> dict[str, Any]:
        span = self.words[self.first:self.last + 1]
        return {"text": " ".join(w["word"] for w in span), "start": self.start,
                "end": float(span[-1]["end"]),
                "conf": round(min(float(w.get("conf", 1.0)) for w in span), 3)}


def find_phrase(words: Sequence[dict[str, Any]], phrase: str,
                max_inserted: int = MAX_INSERTED) -> list[Hit]:
    """Non-overlapping occurrences, each allowing ``max_inserted`` extra words in all."""
    wanted = tokens(phrase)
    if not wanted:
        return []
    heard = [normalize(w["word"]) for w in words]
    hits: list[Hit] = []
    i = 0
    while i < len(heard):
        end = _match_from(heard, i, wanted, max_inserted)
        if end is None:
            i += 1
            continue
        hits.append(Hit(i, end, words))
        i = end + 1
    return hits


def _match_from(heard: list[str], i: int, wanted: list[str], budget: int) -> int | None:
    if not token_matches(heard[i], wanted[0]):
        return None
    pos = i
    for word in wanted[1:]:
        for skip in range(budget + 1):
            j = pos + 1 + skip
            if j < len(heard) and token_matches(heard[j], word):
                budget -= skip
                pos = j
                break
        else:
            return None
    return pos


@dataclass(frozen=True)
class ForbiddenHit:
    hit: Hit
    ambiguous: bool  # the heard form more probably means another word ("типа" = of a type)


def find_forbidden(words: Sequence[dict[str, Any]], phrase: str) -> list[ForbiddenHit]:
    """Exact-lemma, consecutive occurrences: a fine must never rest on a fuzzy guess.

    A lone word is taken as written when it is a dictionary form ("типа" the
    particle, not "тип"); inside a longer phrase the context fixes the meaning,
    so its most probable lemma is used.
    """
    words_of = tokens(phrase)
    targets = [dictionary_form(t) for t in words_of] if len(words_of) == 1 \
        else [best_lemma(t) for t in words_of]
    if not targets:
        return []
    heard = [normalize(w["word"]) for w in words]
    found = []
    for i in range(len(heard) - len(targets) + 1):
        window = heard[i:i + len(targets)]
        if all(t in lemmas(h) for h, t in zip(window, targets, strict=True)):
            ambiguous = any(best_lemma(h) != t
                            for h, t in zip(window, targets, strict=True))
            found.append(ForbiddenHit(Hit(i, i + len(targets) - 1, words), ambiguous))
    return found
