"""Russian word normalization: lemmas (pymorphy3) and ASR-tolerant token matching.

Fuzzy thresholds were calibrated on typical Vosk slips (``кампания`` for
``компания``, ``предложенье``): rapidfuzz ``ratio`` of one substitution is
(n-1)/n, so a fixed 88 would only forgive slips in words of nine letters or
more. Words of 6–8 letters allow one edit, of 9 and more ratio ≥ 88; shorter
words must match exactly, since one edit there turns them into other words.
"""

from __future__ import annotations

from rapidfuzz import fuzz
from rapidfuzz.distance import Levenshtein

from crm_core.speech.words import analyzer, best_lemma, lemmas, normalize, tokens

__all__ = ["best_lemma", "close", "dictionary_form", "lemmas", "normalize", "token_matches",
           "tokens"]

FUZZY_RATIO = 88.0
FUZZY_MIN_LEN = 6
LONG_TOKEN = 9


def dictionary_form(word: str) -> str:
    """The word itself when it is already a dictionary form, else its best lemma."""
    word = normalize(word)
    return word if any(normalize(p.normal_form) == word for p in analyzer().parse(word)) \
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
