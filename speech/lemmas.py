"""Russian word normalization: lemmas (pymorphy3) and ASR-tolerant token matching.

Fuzzy thresholds were calibrated on typical Vosk slips (``кампания`` for
``компания``, ``предложенье``): rapidfuzz ``ratio`` of one substitution is
(n-1)/n, so a fixed 88 would only forgive slips in words of nine letters or
more. Words of 6–8 letters allow one edit, of 9 and more ratio ≥ 88; shorter
words must match exactly, since one edit there turns them into other words.
"""

from __future__ import annotations

import re
from functools import lru_cache

from rapidfuzz import fuzz
from rapidfuzz.distance import Levenshtein

FUZZY_RATIO = 88.0
FUZZY_MIN_LEN = 6
LONG_TOKEN = 9

_WORD = re.compile(r"[a-zа-я0-9]+(?:-[a-zа-я0-9]+)*")


def tokens(text: str) -> list[str]:
    """Lower-case words with ``ё`` folded to ``е``, as Vosk's Russian models spell them."""
    return _WORD.findall(text.lower().replace("ё", "е"))


def normalize(word: str) -> str:
    return word.lower().replace("ё", "е")


@lru_cache(maxsize=1)
def _analyzer():  # type: ignore[no-untyped-def]
    import pymorphy3

    return pymorphy3.MorphAnalyzer(lang="ru")


@lru_cache(maxsize=100_000)
def lemmas(word: str) -> frozenset[str]:
    """Every dictionary form the word may have (``стали`` → сталь, стать)."""
    word = normalize(word)
    return frozenset({word} | {normalize(p.normal_form) for p in _analyzer().parse(word)})


@lru_cache(maxsize=100_000)
def best_lemma(word: str) -> str:
    """The most probable dictionary form."""
    word = normalize(word)
    return normalize(_analyzer().parse(word)[0].normal_form)


def dictionary_form(word: str) -> str:
    """The word itself when it is already a dictionary form, else its best lemma."""
    word = normalize(word)
    return word if any(normalize(p.normal_form) == word for p in _analyzer().parse(word)) \
        else best_lemma(word)


def close(a: str, b: str) -> bool:
    """Whether two spellings differ by no more than an ASR slip."""
    if a == b:
        return True
    shorter = min(len(a), len(b))
    if shorter < FUZZY_MIN_LEN:
        return False
    if shorter < LONG_TOKEN:
        return Levenshtein.distance(a, b) <= 1
    return fuzz.ratio(a, b) >= FUZZY_RATIO


def token_matches(heard: str, wanted: str) -> bool:
    """A phrase word matches a heard word by lemma, or fuzzily by spelling or lemma."""
    heard, wanted = normalize(heard), normalize(wanted)
    if lemmas(heard) & lemmas(wanted):
        return True
    return close(heard, wanted) or close(best_lemma(heard), best_lemma(wanted))
