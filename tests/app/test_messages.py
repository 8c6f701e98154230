"""One table of Russian sentences: every code the source raises has its sentence there,
every sentence is raised somewhere, and each sentence's placeholders are given.

The source is read as Python syntax (``ast``), not imported: a code in a branch no
test reaches is checked all the same. It is read when a test first asks, not when the
module is collected: every test process collects every module, and the reading takes a
few seconds of processor.
"""

from __future__ import annotations

import ast
import functools
import string
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import date
from decimal import Decimal
from pathlib import Path

import pytest

from crm_core.errors import ConflictError, DomainError, NotAllowedError, NotFoundError
from telecrm.messages import DONE, FIELDS, HTTP_CODES, MESSAGES, done, plural, russian, sentence

ROOT = Path(__file__).resolve().parents[2]
PACKAGES = ("crm_core", "telecrm", "speech", "recordings", "pbx_bridge")
BASES = {f"crm_core.errors.{name}" for name in
         ("DomainError", "NotAllowedError", "NotFoundError", "ConflictError")}
# Callables that take a code but are not classes of the family: name -> index of the code.
CODE_TAKERS = {"telecrm.web.errors.ApiError": 1, "telecrm.messages.sentence": 0,
               "telecrm.calltracking.public._error": 1, "crm_core.sales.tasks._refuse": 1}


@dataclass
class Module:
    name: str
    path: Path
    tree: ast.Module
    names: dict[str, str] = field(default_factory=dict)  # local name -> qualified name


@functools.cache
def modules() -> list[Module]:
    found = []
    for package in PACKAGES:
        for path in sorted((ROOT / package).rglob("*.py")):
            if "migrations" in path.parts:
                continue
            parts = list(path.relative_to(ROOT).with_suffix("").parts)
            if parts[-1] == "__init__":
                parts.pop()
            found.append(Module(".".join(parts), path, ast.parse(path.read_text("utf-8"))))
    for module in found:
        package = module.name if module.path.name == "__init__.py" else \
            module.name.rpartition(".")[0]
        for node in ast.walk(module.tree):
            if isinstance(node, ast.ClassDef | ast.FunctionDef | ast.AsyncFunctionDef):
                module.names.setdefault(node.name, f"{module.name}.{node.name}")
            elif isinstance(node, ast.ImportFrom):
                base = node.module or ""
                if node.level:  # from .settings import Settings
                    base = ".".join([*package.split(".")[:len(package.split(".")) - node.level
                                                          + 1], *([base] if base else [])])
                for alias in node.names:
                    module.names[alias.asname or alias.name] = f"{base}.{alias.name}"
            elif isinstance(node, ast.Import):
                for alias in node.names:
                    module.names[alias.asname or alias.name.split(".")[0]] = (
                        alias.name if alias.asname else alias.name.split(".")[0])
    return found


def _qualified(module: Module, node: ast.expr) -> str | None:
    """``Name`` or ``alias.Name`` as the qualified name it refers to."""
    if isinstance(node, ast.Name):
        return module.names.get(node.id)
    if isinstance(node, ast.Attribute):
        owner = _qualified(module, node.value)
        return f"{owner}.{node.attr}" if owner else None
    return None


@functools.cache
def family() -> set[str]:
    family = set(BASES)
    grew = True
    while grew:
        grew = False
        for module in modules():
            for node in ast.walk(module.tree):
                if not isinstance(node, ast.ClassDef):
                    continue
                name = f"{module.name}.{node.name}"
                if name not in family and any(_qualified(module, b) in family
                                              for b in node.bases):
                    family.add(name)
                    grew = True
    return family


@dataclass(frozen=True)
class Site:
    """One place that names a code: where, which codes, and the params it passes."""

    where: str
    codes: tuple[str, ...]
    params: frozenset[str] | None  # None: passed on with ** (not checkable here)


def _literal_codes(node: ast.expr) -> tuple[str, ...] | None:
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        return (node.value,)
    if isinstance(node, ast.IfExp):
        body, orelse = _literal_codes(node.body), _literal_codes(node.orelse)
        return body + orelse if body is not None and orelse is not None else None
    return None


def _params(call: ast.Call, index: int, callee: str) -> frozenset[str] | None:
    if callee == "telecrm.messages.done":
        if any(k.arg is None for k in call.keywords):
            return None
        return frozenset(k.arg for k in call.keywords if k.arg is not None)
    if callee == "telecrm.messages.sentence":
        if len(call.args) < 2:
            return frozenset()
        given = call.args[1]
        if isinstance(given, ast.Dict) and all(isinstance(k, ast.Constant) for k in given.keys):
            return frozenset(str(k.value) for k in given.keys)  # type: ignore[union-attr]
        return None
    if any(k.arg is None for k in call.keywords):
        return None
    return frozenset(k.arg for k in call.keywords if k.arg is not None) - {"headers", "extra"}


def _sites(takers: dict[str, int] | None = None) -> Iterator[Site | str]:
    """Every site naming a code; a str for a site whose code is not a literal.

    ``takers`` (callee -> index of the code) replaces the error family and CODE_TAKERS:
    the sentences of :data:`DONE` are named through ``done`` alone."""
    for module in modules():
        for node in ast.walk(module.tree):
            if not isinstance(node, ast.Call):
                continue
            callee = _qualified(module, node.func)
            if takers is not None:
                if callee not in takers:
                    continue
                index = takers[callee]
            elif callee in family():
                index = 0
            elif callee in CODE_TAKERS:
                index = CODE_TAKERS[callee]
            else:
                continue
            where = f"{module.path.relative_to(ROOT)}:{node.lineno}"
            given = node.args[index] if len(node.args) > index else None
            if isinstance(given, ast.Name) or (isinstance(given, ast.Attribute)
                                               and given.attr == "code"):
                continue  # passes on a code named elsewhere (``exc.code``, ``code``)
            codes = _literal_codes(given) if given is not None else None
            if codes is None:
                yield where
                continue
            yield Site(where, codes, _params(node, index, callee))


@functools.cache
def sites() -> list[Site | str]:
    return list(_sites())


@functools.cache
def done_sites() -> list[Site | str]:
    return list(_sites({"telecrm.messages.done": 0}))


def _placeholders(template: str) -> set[str]:
    return {name for _, name, _, _ in string.Formatter().parse(template) if name}


def test_the_scan_finds_the_family_and_its_raise_sites() -> None:
    """The test itself can fail: it sees the feature classes and hundreds of codes."""
    for name in ("crm_core.sales.deals.DealNotAllowedError", "crm_core.talktime.rules."
                 "SettingsError", "telecrm.cli_support.UsageError", "speech.script.KkpError",
                 "crm_core.calltracking.services.CallTrackingError"):
        assert name in family(), name
    assert "recordings.audio.AudioError" not in family()  # a namesake outside the family
    codes = {code for site in sites() if isinstance(site, Site) for code in site.codes}
    assert len(codes) > 300 and "talktime.past_rules" in codes


def test_every_code_is_a_literal() -> None:
    """A code built at run time could miss the table unnoticed."""
    assert [site for site in sites() if isinstance(site, str)] == []


def test_every_code_raised_has_its_sentence() -> None:
    missing = sorted({f"{code} ({site.where})" for site in sites() if isinstance(site, Site)
                      for code in site.codes if code not in MESSAGES})
    assert missing == []


def test_every_sentence_is_raised_somewhere() -> None:
    used = {code for site in sites() if isinstance(site, Site) for code in site.codes}
    used |= set(HTTP_CODES.values())
    assert sorted(set(MESSAGES) - used) == []


def test_every_placeholder_is_given_where_the_code_is_raised() -> None:
    lacking = []
    for site in sites():
        if not isinstance(site, Site) or site.params is None:
            continue
        for code in site.codes:
            missing = _placeholders(MESSAGES.get(code, "")) - site.params
            if missing:
                lacking.append(f"{code} at {site.where}: {sorted(missing)}")
    assert lacking == []


def test_sentences_are_russian_sentences() -> None:
    for code, template in MESSAGES.items():
        assert code == code.lower() and "." in code, code
        assert any("а" <= c <= "я" for c in template.lower()) or "{error" in template, \
            (code, template)  # Russian, or a place and a nested sentence
        text = sentence(code, {name: 2 for name in _placeholders(template)})
        assert text[-1] in ".?»)" or template.endswith("}"), (code, text)


@pytest.mark.parametrize(("n", "word"), [(1, "день"), (3, "дня"), (5, "дней"), (11, "дней"),
                                         (21, "день"), (112, "дней"), (104, "дня")])
def test_plural_forms(n: int, word: str) -> None:
    assert plural(n, "день|дня|дней") == word


def test_params_read_as_a_russian_user_reads_them() -> None:
    nested = DomainError("sales.amount_not_positive", "amount must be greater than zero",
                         field="amount")
    assert russian(DomainError("sales.import.line", "line 3: ...", line=3, error=nested)) == \
        "Строка 3: сумма: нужна сумма больше нуля."
    assert russian(DomainError("talktime.past_rules", today=date(2026, 12, 1))) == \
        "Правила за прошедшие дни не меняются: выберите дату не раньше 01.12.2026."
    assert russian(NotAllowedError("request.too_long", name="reason", max=21)) == \
        "Поле reason слишком длинное: не больше 21 символа."
    assert russian(NotAllowedError("request.period_too_long", days=400)) == \
        "За один раз можно запросить не больше 400 дней."
    assert russian(DomainError("talktime.clock_invalid", field="day_end")) == \
        "Конец рабочего дня: время укажите как ЧЧ:ММ, например 09:00."
    assert russian(DomainError("sales.rules.money_out_of_range", field="abc_a_min",
                               value=Decimal("1250000.5"))).startswith("Порог группы A:")
    assert "day_end" not in FIELDS.values()


def test_an_unknown_code_is_the_generic_sentence_of_its_kind() -> None:
    assert russian(NotFoundError("no.such.code")) == "Не найдено."
    assert russian(ConflictError("no.such.code")) == \
        "Изменение противоречит уже сохранённым данным."


# -- what commands print when they have done their work (DONE, through ``done``) -----------


def test_the_scan_finds_what_the_commands_print() -> None:
    codes = {code for site in done_sites() if isinstance(site, Site) for code in site.codes}
    assert {"clients.imported", "payments.imported", "ct.attributed"} <= codes
    assert [site for site in done_sites() if isinstance(site, str)] == []


def test_every_printed_code_has_its_sentence_and_every_sentence_is_printed() -> None:
    used = {code for site in done_sites() if isinstance(site, Site) for code in site.codes}
    assert sorted(used - set(DONE)) == []
    assert sorted(set(DONE) - used) == []


def test_every_placeholder_of_a_printed_sentence_is_given() -> None:
    lacking = []
    for site in done_sites():
        if not isinstance(site, Site) or site.params is None:
            continue
        for code in site.codes:
            missing = _placeholders(DONE.get(code, "")) - site.params
            extra = site.params - _placeholders(DONE.get(code, ""))
            if missing or extra:
                lacking.append(f"{code} at {site.where}: {sorted(missing)} {sorted(extra)}")
    assert lacking == []


def test_printed_sentences_are_russian() -> None:
    for code, template in DONE.items():
        assert code == code.lower() and "." in code, code
        assert any("а" <= c <= "я" for c in template.lower()), (code, template)
        assert not any("a" <= c <= "z" for c in "".join(
            literal for literal, *_ in string.Formatter().parse(template)).replace(
            "ABC", "").replace("AMI", "").replace("Asterisk", "").lower()), (code, template)


def test_printed_sentences_read_as_a_russian_user_reads_them() -> None:
    assert done("clients.imported", imported=1, updated=0) == \
        "Импортирован 1 клиент, обновлено 0 клиентов."
    assert done("clients.imported", imported=3, updated=22) == \
        "Импортировано 3 клиента, обновлено 22 клиента."
    assert done("payments.imported", booked=2, total=Decimal("45000.50"), skipped=1) == \
        "Проведены 2 платежа на 45\u00a0000,50\u00a0₽; уже были проведены раньше: 1."
    assert done("talktime.day_closed", day=date(2026, 11, 23), count=5) == \
        "23.11.2026: 5 новых нарушений нормы разговоров."
    assert done("ct.pool_added", host="example.ru", numbers=1021) == \
        "Сайт example.ru: в пуле 1\u00a0021 номер."
