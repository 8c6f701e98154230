"""The KKP (sales script) YAML: stages in the expected order and forbidden phrases."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml


class KkpError(ValueError):
    """A script, transcript or vocabulary file that cannot be used."""


@dataclass(frozen=True)
class Stage:
    id: str
    title: str
    phrases: tuple[str, ...]
    required: bool = True
    within_seconds: float | None = None
    min_matches: int = 1


@dataclass(frozen=True)
class Forbidden:
    id: str
    phrases: tuple[str, ...]
    title: str = ""  # what the QC page calls the group ("Слова-паразиты"); the id otherwise


@dataclass(frozen=True)
class Script:
    name: str
    stages: tuple[Stage, ...]
    forbidden: tuple[Forbidden, ...] = field(default=())


_TOP_KEYS = frozenset({"name", "stages", "forbidden", "description"})
_STAGE_KEYS = frozenset({"id", "title", "required", "within_seconds", "phrases", "min_matches"})
_FORBIDDEN_KEYS = frozenset({"id", "title", "phrases"})


class _Lines(dict[str, Any]):
    """A YAML mapping that remembers the line of itself and of each key (1-based)."""

    line: int = 0
    key_lines: dict[str, int]


class _LineLoader(yaml.SafeLoader):
    """A safe loader whose mappings carry line numbers, so errors can point at the line."""

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> _Lines:
        mapping = _Lines(super().construct_mapping(node, deep=True))
        mapping.line = node.start_mark.line + 1
        mapping.key_lines = {str(k.value): k.start_mark.line + 1 for k, _v in node.value}
        return mapping


_LineLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG,
                            _LineLoader.construct_mapping)


def _at(item: Any, key: str | None = None) -> str:
    """"line N: " for a parsed mapping (or one of its keys), "" for plain data."""
    if not isinstance(item, _Lines):
        return ""
    line = item.key_lines.get(key, item.line) if key else item.line
    return f"line {line}: "


def _check_keys(item: dict[str, Any], allowed: frozenset[str], where: str) -> None:
    for key in item:
        if str(key) not in allowed:
            raise KkpError(f"{_at(item, str(key))}unknown key {key!r} in {where} "
                           f"(allowed: {', '.join(sorted(allowed))})")


def _phrases(item: dict[str, Any], where: str) -> tuple[str, ...]:
    phrases = item.get("phrases")
    if not isinstance(phrases, list) or not phrases or not all(
            isinstance(p, str) and p.strip() for p in phrases):
        raise KkpError(f"{_at(item, 'phrases')}{where}: 'phrases' must be a non-empty list "
                       "of strings")
    return tuple(phrases)


def _number(item: dict[str, Any], key: str, where: str, kind: type) -> Any:
    value = item.get(key)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float) or value < 0:
        raise KkpError(f"{_at(item, key)}{where}: {key} must be a non-negative number")
    return kind(value)


def parse_script(data: Any) -> Script:
    """Validate a parsed YAML document into a :class:`Script` (errors name the line)."""
    if not isinstance(data, dict) or not isinstance(data.get("stages"), list):
        raise KkpError("the script must be a mapping with a 'stages' list")
    _check_keys(data, _TOP_KEYS, "the script")
    stages: list[Stage] = []
    seen: set[str] = set()
    for n, item in enumerate(data["stages"], 1):
        if not isinstance(item, dict) or not item.get("id"):
            raise KkpError(f"{_at(item)}stage {n} has no 'id'")
        where = f"stage {item['id']}"
        _check_keys(item, _STAGE_KEYS, where)
        if str(item["id"]) in seen:
            raise KkpError(f"{_at(item, 'id')}stage id {item['id']!r} is used twice")
        seen.add(str(item["id"]))
        required = item.get("required", True)
        if not isinstance(required, bool):
            raise KkpError(f"{_at(item, 'required')}{where}: required must be true or false")
        stages.append(Stage(
            id=str(item["id"]), title=str(item.get("title", item["id"])),
            phrases=_phrases(item, where), required=required,
            within_seconds=_number(item, "within_seconds", where, float),
            min_matches=_number(item, "min_matches", where, int) or 1))
    if not stages:
        raise KkpError(f"{_at(data, 'stages')}the script has no stages")
    forbidden = []
    raw_forbidden = data.get("forbidden") or []
    if not isinstance(raw_forbidden, list):
        raise KkpError(f"{_at(data, 'forbidden')}'forbidden' must be a list")
    for n, item in enumerate(raw_forbidden, 1):
        if not isinstance(item, dict) or not item.get("id"):
            raise KkpError(f"{_at(item)}forbidden item {n} has no 'id'")
        _check_keys(item, _FORBIDDEN_KEYS, f"forbidden {item['id']}")
        forbidden.append(Forbidden(str(item["id"]), _phrases(item, f"forbidden {item['id']}"),
                                   title=str(item.get("title") or "")))
    return Script(str(data.get("name", "")), tuple(stages), tuple(forbidden))


def parse_script_text(text: str) -> Script:
    """Parse and validate a script's YAML text; ``KkpError`` names the line at fault."""
    try:
        data = yaml.load(text, Loader=_LineLoader)  # a SafeLoader subclass
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark
        where = f"line {mark.line + 1}: " if mark is not None else ""
        raise KkpError(f"{where}not valid YAML ({exc.problem})") from exc
    except yaml.YAMLError as exc:
        raise KkpError("not valid YAML") from exc
    return parse_script(data)


def load_script(path: Path) -> Script:
    try:
        text = path.read_text("utf-8")
    except OSError as exc:
        raise KkpError(f"cannot read the script {path}: {exc.strerror}") from exc
    except UnicodeDecodeError as exc:
        raise KkpError(f"the script {path} is not UTF-8 text") from exc
    try:
        return parse_script_text(text)
    except KkpError as exc:
        raise KkpError(f"{path}: {exc}") from exc


def load_transcript(path: Path) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text("utf-8"))
    except OSError as exc:
        raise KkpError(f"cannot read the transcript {path}: {exc.strerror}") from exc
    except ValueError as exc:
        raise KkpError(f"the transcript {path} is not JSON") from exc
    if not isinstance(data, dict) or not isinstance(data.get("speakers"), dict):
        raise KkpError(f"the transcript {path} has no 'speakers'")
    return data


def load_vocabulary(path: Path) -> frozenset[str]:
    """Words the model knows, one per line (Kaldi ``words.txt`` lines also work)."""
    try:
        lines = path.read_text("utf-8").splitlines()
    except OSError as exc:
        raise KkpError(f"cannot read the vocabulary {path}: {exc.strerror}") from exc
    return frozenset(line.split()[0].lower().replace("ё", "е") for line in lines if line.strip())
