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


@dataclass(frozen=True)
class Script:
    name: str
    stages: tuple[Stage, ...]
    forbidden: tuple[Forbidden, ...] = field(default=())


def _phrases(item: dict[str, Any], where: str) -> tuple[str, ...]:
    phrases = item.get("phrases")
    if not isinstance(phrases, list) or not phrases or not all(
            isinstance(p, str) and p.strip() for p in phrases):
        raise KkpError(f"{where}: 'phrases' must be a non-empty list of strings")
    return tuple(phrases)


def parse_script(data: Any) -> Script:
    """Validate a parsed YAML document into a :class:`Script`."""
    if not isinstance(data, dict) or not isinstance(data.get("stages"), list):
        raise KkpError("the script must be a mapping with a 'stages' list")
    stages = []
    for n, item in enumerate(data["stages"], 1):
        if not isinstance(item, dict) or not item.get("id"):
            raise KkpError(f"stage {n} has no 'id'")
        where = f"stage {item['id']}"
        within = item.get("within_seconds")
        try:
            stages.append(Stage(
                id=str(item["id"]), title=str(item.get("title", item["id"])),
                phrases=_phrases(item, where), required=bool(item.get("required", True)),
                within_seconds=float(within) if within is not None else None,
                min_matches=int(item.get("min_matches", 1))))
        except (TypeError, ValueError) as exc:
            raise KkpError(f"{where}: within_seconds and min_matches must be numbers") from exc
    forbidden = []
    for n, item in enumerate(data.get("forbidden") or [], 1):
        if not isinstance(item, dict) or not item.get("id"):
            raise KkpError(f"forbidden item {n} has no 'id'")
        forbidden.append(Forbidden(str(item["id"]), _phrases(item, f"forbidden {item['id']}")))
    return Script(str(data.get("name", "")), tuple(stages), tuple(forbidden))


def load_script(path: Path) -> Script:
    try:
        return parse_script(yaml.safe_load(path.read_text("utf-8")))
    except OSError as exc:
        raise KkpError(f"cannot read the script {path}: {exc.strerror}") from exc
    except yaml.YAMLError as exc:
        raise KkpError(f"the script {path} is not valid YAML") from exc


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
