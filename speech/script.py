"""The KKP (sales script) YAML: stages in the expected order and forbidden phrases.

Besides what the check matches (``phrases``), a script carries what the manager reads
(the «Сценарий» panel): ``say`` lines per stage (the greeting, the questions, the
points of the presentation) and ``objections`` with what to answer. The check
ignores both.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from crm_core.errors import DomainError


class KkpError(DomainError):
    """A script, transcript or vocabulary file that cannot be used (``speech.script.*``);
    a fault at a known line of the YAML is ``speech.script.at_line`` around it."""


@dataclass(frozen=True)
class Stage:
    id: str
    title: str
    phrases: tuple[str, ...]
    required: bool = True
    within_seconds: float | None = None
    min_matches: int = 1
    say: tuple[str, ...] = ()  # what the manager says in this stage, line by line


@dataclass(frozen=True)
class Objection:
    """A client's objection («Дорого») and what the manager answers to it."""

    id: str
    title: str
    say: tuple[str, ...]
    # what the client says that raises it («дороговато», «нет бюджета»), beside the title
    phrases: tuple[str, ...] = ()

    def heard_as(self) -> tuple[str, ...]:
        """The phrases that, on the client's side, mean this objection was raised."""
        return (self.title, *self.phrases)


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
    objections: tuple[Objection, ...] = field(default=())
    description: str = ""


_TOP_KEYS = frozenset({"name", "stages", "forbidden", "description", "objections"})
_STAGE_KEYS = frozenset({"id", "title", "required", "within_seconds", "phrases", "min_matches",
                         "say"})
_FORBIDDEN_KEYS = frozenset({"id", "title", "phrases"})
_OBJECTION_KEYS = frozenset({"id", "title", "say", "phrases"})


class _Lines(dict[str, Any]):
    """A YAML mapping that remembers the line of itself and of each key (1-based)."""

    line: int = 0
    key_lines: dict[str, int]


#: Bounds on a script's YAML: scripts are uploaded by users, so parsing must stay small
#: in size and in work whatever they send (a script of 50 stages is a few kilobytes).
MAX_SCRIPT_CHARS = 200_000
MAX_SCRIPT_NODES = 20_000


class _LineLoader(yaml.SafeLoader):
    """A safe loader whose mappings carry line numbers, so errors can point at the line.

    It refuses aliases (``*name``): a script has no use for them, and nested aliases
    expand exponentially (the "billion laughs" bomb) while the loader runs. It also caps
    the number of nodes, so the work is bounded by the document's size."""

    _nodes = 0

    def compose_node(self, parent: Any, index: Any) -> Any:
        if self.check_event(yaml.AliasEvent):
            event = self.peek_event()
            raise KkpError("speech.script.at_line",
                           f"line {event.start_mark.line + 1}: aliases are not allowed",
                           line=event.start_mark.line + 1,
                           error=KkpError("speech.script.alias", "aliases are not allowed"))
        self._nodes += 1
        if self._nodes > MAX_SCRIPT_NODES:
            raise KkpError("speech.script.too_big", "the script has too many elements",
                           max=MAX_SCRIPT_NODES)
        return super().compose_node(parent, index)

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> _Lines:
        mapping = _Lines(super().construct_mapping(node, deep=True))
        mapping.line = node.start_mark.line + 1
        mapping.key_lines = {str(k.value): k.start_mark.line + 1 for k, _v in node.value}
        return mapping


_LineLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG,
                            _LineLoader.construct_mapping)


def _at(item: Any, error: KkpError, key: str | None = None) -> KkpError:
    """``error`` with the line of a parsed mapping (or of one of its keys) put before it."""
    if not isinstance(item, _Lines):
        return error
    line = item.key_lines.get(key, item.line) if key else item.line
    return KkpError("speech.script.at_line", f"line {line}: {error}", line=line, error=error)


def _check_keys(item: dict[str, Any], allowed: frozenset[str], where: str) -> None:
    for key in item:
        if str(key) not in allowed:
            raise _at(item, KkpError(
                "speech.script.unknown_key",
                f"unknown key {key!r} in {where} (allowed: {', '.join(sorted(allowed))})",
                key=str(key), allowed=sorted(allowed)), str(key))


def _phrases(item: dict[str, Any], where: str) -> tuple[str, ...]:
    phrases = item.get("phrases")
    if not isinstance(phrases, list) or not phrases or not all(
            isinstance(p, str) and p.strip() for p in phrases):
        raise _at(item, KkpError("speech.script.phrases_invalid",
                                 f"{where}: 'phrases' must be a non-empty list of strings"),
                  "phrases")
    return tuple(phrases)


def _say(item: dict[str, Any], where: str) -> tuple[str, ...]:
    """Optional ``say`` lines: one string or a list of strings, blank ones dropped."""
    say = item.get("say")
    if say is None:
        return ()
    if isinstance(say, str):
        say = [say]
    if not isinstance(say, list) or not all(isinstance(line, str) for line in say):
        raise _at(item, KkpError("speech.script.say_invalid",
                                 f"{where}: 'say' must be a list of strings"), "say")
    return tuple(line.strip() for line in say if line.strip())


def _number(item: dict[str, Any], key: str, where: str, kind: type) -> Any:
    value = item.get(key)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float) or value < 0:
        raise _at(item, KkpError("speech.script.not_number",
                                 f"{where}: {key} must be a non-negative number", key=key), key)
    return kind(value)


def parse_script(data: Any) -> Script:
    """Validate a parsed YAML document into a :class:`Script` (errors name the line)."""
    if not isinstance(data, dict) or not isinstance(data.get("stages"), list):
        raise KkpError("speech.script.not_mapping",
                       "the script must be a mapping with a 'stages' list")
    _check_keys(data, _TOP_KEYS, "the script")
    stages: list[Stage] = []
    seen: set[str] = set()
    for n, item in enumerate(data["stages"], 1):
        if not isinstance(item, dict) or not item.get("id"):
            raise _at(item, KkpError("speech.script.stage_no_id", f"stage {n} has no 'id'", n=n))
        where = f"stage {item['id']}"
        _check_keys(item, _STAGE_KEYS, where)
        if str(item["id"]) in seen:
            raise _at(item, KkpError("speech.script.stage_twice",
                                     f"stage id {item['id']!r} is used twice",
                                     id=str(item["id"])), "id")
        seen.add(str(item["id"]))
        required = item.get("required", True)
        if not isinstance(required, bool):
            raise _at(item, KkpError("speech.script.required_bool",
                                     f"{where}: required must be true or false"), "required")
        stages.append(Stage(
            id=str(item["id"]), title=str(item.get("title", item["id"])),
            phrases=_phrases(item, where), required=required,
            within_seconds=_number(item, "within_seconds", where, float),
            min_matches=_number(item, "min_matches", where, int) or 1,
            say=_say(item, where)))
    if not stages:
        raise _at(data, KkpError("speech.script.no_stages", "the script has no stages"),
                  "stages")
    forbidden = []
    raw_forbidden = data.get("forbidden") or []
    if not isinstance(raw_forbidden, list):
        raise _at(data, KkpError("speech.script.forbidden_not_list",
                                 "'forbidden' must be a list"), "forbidden")
    for n, item in enumerate(raw_forbidden, 1):
        if not isinstance(item, dict) or not item.get("id"):
            raise _at(item, KkpError("speech.script.forbidden_no_id",
                                     f"forbidden item {n} has no 'id'", n=n))
        _check_keys(item, _FORBIDDEN_KEYS, f"forbidden {item['id']}")
        forbidden.append(Forbidden(str(item["id"]), _phrases(item, f"forbidden {item['id']}"),
                                   title=str(item.get("title") or "")))
    objections = []
    raw_objections = data.get("objections") or []
    if not isinstance(raw_objections, list):
        raise _at(data, KkpError("speech.script.objections_not_list",
                                 "'objections' must be a list"), "objections")
    for n, item in enumerate(raw_objections, 1):
        if not isinstance(item, dict) or not item.get("title"):
            raise _at(item, KkpError("speech.script.objection_no_title",
                                     f"objection {n} has no 'title'", n=n))
        where = f"objection {item['title']}"
        _check_keys(item, _OBJECTION_KEYS, where)
        phrases = _phrases(item, where) if item.get("phrases") is not None else ()
        objections.append(Objection(str(item.get("id") or n), str(item["title"]),
                                    _say(item, where), phrases))
    description = data.get("description")
    return Script(str(data.get("name", "")), tuple(stages), tuple(forbidden), tuple(objections),
                  description.strip() if isinstance(description, str) else "")


def parse_script_text(text: str) -> Script:
    """Parse and validate a script's YAML text; ``KkpError`` names the line at fault.

    Bounded in size and work (no aliases, a node cap), so it is safe on untrusted text;
    web handlers still call it through ``asyncio.to_thread`` to keep the loop free."""
    if len(text) > MAX_SCRIPT_CHARS:
        raise KkpError("speech.script.too_long", "the script is too long",
                       max=MAX_SCRIPT_CHARS)
    try:
        data = yaml.load(text, Loader=_LineLoader)  # a SafeLoader subclass
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark
        error = KkpError("speech.script.bad_yaml", f"not valid YAML ({exc.problem})",
                         problem=exc.problem)
        if mark is None:
            raise error from exc
        raise KkpError("speech.script.at_line", f"line {mark.line + 1}: {error}",
                       line=mark.line + 1, error=error) from exc
    except yaml.YAMLError as exc:
        raise KkpError("speech.script.not_yaml", "not valid YAML") from exc
    return parse_script(data)


def load_script(path: Path) -> Script:
    try:
        text = path.read_text("utf-8")
    except OSError as exc:
        raise KkpError("speech.script.unreadable", f"cannot read the script {path}: {exc.strerror}",
                       path=str(path), reason=exc.strerror) from exc
    except UnicodeDecodeError as exc:
        raise KkpError("speech.script.not_utf8", f"the script {path} is not UTF-8 text",
                       path=str(path)) from exc
    try:
        return parse_script_text(text)
    except KkpError as exc:
        raise KkpError("speech.script.in_file", f"{path}: {exc}", path=str(path),
                       error=exc) from exc


def load_transcript(path: Path) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text("utf-8"))
    except OSError as exc:
        raise KkpError("speech.transcript.unreadable",
                       f"cannot read the transcript {path}: {exc.strerror}",
                       path=str(path), reason=exc.strerror) from exc
    except ValueError as exc:
        raise KkpError("speech.transcript.not_json", f"the transcript {path} is not JSON",
                       path=str(path)) from exc
    if not isinstance(data, dict) or not isinstance(data.get("speakers"), dict):
        raise KkpError("speech.transcript.no_speakers", f"the transcript {path} has no 'speakers'",
                       path=str(path))
    return data


def load_vocabulary(path: Path) -> frozenset[str]:
    """Words the model knows, one per line (Kaldi ``words.txt`` lines also work)."""
    try:
        lines = path.read_text("utf-8").splitlines()
    except OSError as exc:
        raise KkpError("speech.vocabulary.unreadable",
                       f"cannot read the vocabulary {path}: {exc.strerror}",
                       path=str(path), reason=exc.strerror) from exc
    return frozenset(line.split()[0].lower().replace("ё", "е") for line in lines if line.strip())
