"""The words a client is found by, and the words a search asks for (no database here).

A client is indexed under every word of his name and of his contact persons' names
(case-folded, «ё» read as «е»), his INN, his e-mail addresses (whole, and their
words) and each phone number twice: E.164 digits (``79265550099``) and the national
number (``9265550099``). A search matches each word of the query as a *prefix* of
an indexed word, which an ordinary B-tree index answers with a range scan on SQLite
and PostgreSQL alike: ``term >= 'ром' AND term < 'рон'``. A query that looks like a
phone number is read the way :mod:`crm_core.clients.phones` reads numbers, so
``8 926 555-00-99``, ``+7(926)5550099`` and ``9265550099`` all find +79265550099.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

import phonenumbers

from crm_core.clients.phones import DEFAULT_REGION, normalize_phone

MAX_TERM = 320  # the longest e-mail address; longer words are cut
MIN_WORD = 2  # one letter would match most of the base: such words are not searched
MIN_DIGITS = 3
MAX_QUERY_WORDS = 6
# Legal forms start a good part of all names: beside another word they only narrow the
# clients that word found (crm_core.clients.search), never drive the search themselves.
LEGAL_FORMS = frozenset({"ооо", "оао", "зао", "пао", "ао", "ип", "нко", "ано", "гуп", "муп",
                         "фгуп", "тоо", "чп"})
_WORD = re.compile(r"\w+")
_PHONE_LIKE = re.compile(r"[\d\s()+\-.]+")


def fold(text: str) -> str:
    """Lower case for search and sorting: case-folded, «ё» as «е», spaces collapsed."""
    return " ".join(text.casefold().replace("ё", "е").split())


def words(text: str | None) -> set[str]:
    """The words of a name: ``ООО «Ромашка-Плюс»`` gives ооо, ромашка, плюс."""
    return {w[:MAX_TERM] for w in _WORD.findall(fold(text or ""))}


def email_terms(address: str) -> set[str]:
    """The whole address (for a query with ``@``) and its words (``romashka.ru``, ``info``)."""
    folded = fold(address)[:MAX_TERM]
    return {folded, *words(folded)} if folded else set()


def phone_terms(e164: str) -> set[str]:
    """E.164 digits and the national number, so a number is found with or without +7/8."""
    digits = e164.lstrip("+")
    terms = {digits}
    try:
        national = str(phonenumbers.parse(e164, None).national_number)
    except phonenumbers.NumberParseException:
        return terms
    terms.add(national)
    return terms


def client_terms(*, name: str, inn: str | None, contact_names: Iterable[str],
                 emails: Iterable[str], phones: Iterable[str]) -> set[str]:
    """Every word one client is found by."""
    terms = words(name)
    if inn:
        terms.add(inn)
    for contact in contact_names:
        terms |= words(contact)
    for address in emails:
        terms |= email_terms(address)
    for e164 in phones:
        terms |= phone_terms(e164)
    return {t for t in terms if t}


def query_terms(query: str, region: str = DEFAULT_REGION) -> list[tuple[str, ...]]:
    """What to look for: per word of the query, the prefixes that may match it (any of them).

    Every word must match (AND); within a word, any alternative (OR). A query that is a
    phone number in any written form is one word with the number's E.164 digits, the
    digits as typed (an INN or a part of a number) and the 8→7 reading of a Russian habit.
    """
    text = query.strip()[:200]
    if not text:
        return []
    if "@" in text:
        return [(fold(text)[:MAX_TERM],)]
    if _PHONE_LIKE.fullmatch(text):
        digits = re.sub(r"\D", "", text)
        if len(digits) < MIN_DIGITS:
            return []
        alternatives = [digits]
        e164 = normalize_phone(text, region)
        if e164 is not None:
            alternatives.append(e164.lstrip("+"))
        if digits.startswith("8") and len(digits) > 1:
            alternatives.append("7" + digits[1:])
        return [tuple(dict.fromkeys(alternatives))]
    found = [w[:MAX_TERM] for w in _WORD.findall(fold(text)) if len(w) >= MIN_WORD]
    single: list[tuple[str, ...]] = [(w,) for w in dict.fromkeys(found)]
    return single[:MAX_QUERY_WORDS]


def prefix_end(prefix: str) -> str:
    """The smallest string above every string starting with ``prefix`` (binary order)."""
    return prefix[:-1] + chr(ord(prefix[-1]) + 1)
