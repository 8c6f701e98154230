"""The sales script (KKP) as a form: stages with their phrases, forbidden words.

The head of sales edits a script as fields, never as YAML: each stage has a title,
the phrases (synonyms) any of which counts, how many of them must be said, whether
the stage is required and how soon it must come, and what the manager says in it
(one line a remark: the greeting, the questions, the points of the presentation);
the script has a memo and the answers to objections («Дорого» → what to say). The
form becomes the same YAML text every version is stored as (so results, the CLI and
the YAML import/export read it unchanged); ids are kept from the version edited, new
ones made from the titles.

The form posts its blocks in the order shown, so a stage's fields follow its
``step`` marker and the order of stages is the order of the markers:
``step, step_title, step_required?, step_min, step_within, phrase...`` per stage,
``ban, ban_title, ban_phrase...`` per group of forbidden words, ``obj, obj_title,
obj_phrase..., obj_say`` per objection (``stage`` is taken: it is the pipeline stage a
version is for).
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Any

import yaml

from speech.script import KkpError, Script, parse_script

MAX_STAGES = 40
MAX_PHRASES = 100
MAX_OBJECTIONS = 40

_LATIN = dict(zip(
    "абвгдеёжзийклмнопрстуфхцчшщъыьэюя",
    ["a", "b", "v", "g", "d", "e", "e", "zh", "z", "i", "i", "k", "l", "m", "n", "o", "p",
     "r", "s", "t", "u", "f", "h", "ts", "ch", "sh", "sch", "", "y", "", "e", "yu", "ya"],
    strict=True))


class ScriptFormError(ValueError):
    """What is wrong in the form, as one Russian sentence for the head of sales."""


def slug(title: str) -> str:
    """A readable id from a Russian title: «Выявление потребностей» → vyyavlenie-potrebnostei."""
    latin = "".join(_LATIN.get(ch, ch) for ch in title.lower())
    return re.sub(r"[^a-z0-9]+", "-", latin).strip("-")[:40] or "stage"


def _unique(wanted: str, taken: set[str]) -> str:
    name, n = wanted, 2
    while name in taken:
        name, n = f"{wanted}-{n}", n + 1
    taken.add(name)
    return name


Blocks = tuple[list[dict[str, Any]], list[dict[str, Any]], list[dict[str, Any]]]


def _lines(text: str) -> list[str]:
    """A text area's remarks, one a line, blank lines dropped."""
    return [line.strip() for line in text.splitlines() if line.strip()]


def _blocks(items: Iterable[tuple[str, Any]]) -> Blocks:
    """Stages, forbidden groups and objections as posted, each a dict of its fields, in order."""
    stages: list[dict[str, Any]] = []
    groups: list[dict[str, Any]] = []
    objections: list[dict[str, Any]] = []
    current: dict[str, Any] | None = None
    for key, raw in items:
        if not isinstance(raw, str):
            continue
        value = raw.strip()
        if key == "step":
            current = {"id": value, "phrases": []}
            stages.append(current)
        elif key == "ban":
            current = {"id": value, "phrases": []}
            groups.append(current)
        elif key == "obj":
            current = {"id": value, "phrases": []}
            objections.append(current)
        elif current is None:
            continue
        elif key in ("phrase", "ban_phrase", "obj_phrase"):
            if value:
                current["phrases"].append(value)
        elif key.startswith(("step_", "ban_", "obj_")):
            current[key.split("_", 1)[1]] = value
    return stages, groups, objections


def _whole(raw: str, what: str, low: int, high: int) -> int | None:
    if not raw:
        return None
    if not raw.isdigit() or not low <= int(raw) <= high:
        raise ScriptFormError(f"{what} — целое число от {low} до {high}.")
    return int(raw)


def script_from_form(items: Iterable[tuple[str, Any]]) -> tuple[dict[str, Any], str]:
    """The script the form describes, and its YAML text; ``ScriptFormError`` says what is wrong."""
    items = list(items)
    name = next((v.strip() for k, v in items if k == "name" and isinstance(v, str)), "")
    if not name:
        raise ScriptFormError("Укажите название скрипта.")
    stages, groups, objections = _blocks(items)
    stages = [s for s in stages if s.get("title") or s["phrases"]]
    groups = [g for g in groups if g.get("title") or g["phrases"]]
    objections = [o for o in objections if o.get("title") or o.get("say")]
    if not stages:
        raise ScriptFormError("Добавьте хотя бы один этап с фразами.")
    if len(stages) > MAX_STAGES:
        raise ScriptFormError(f"Этапов не больше {MAX_STAGES}.")
    taken: set[str] = set()
    out_stages: list[dict[str, Any]] = []
    for n, stage in enumerate(stages, 1):
        title = stage.get("title") or ""
        label = f"Этап {n}" + (f" «{title}»" if title else "")
        if not title:
            raise ScriptFormError(f"{label}: укажите название.")
        phrases = stage["phrases"]
        if not phrases:
            raise ScriptFormError(f"{label}: добавьте хотя бы одну фразу.")
        if len(phrases) > MAX_PHRASES:
            raise ScriptFormError(f"{label}: фраз не больше {MAX_PHRASES}.")
        need = _whole(stage.get("min", ""), f"{label}: сколько фраз нужно", 1, len(phrases))
        within = _whole(stage.get("within", ""), f"{label}: «в первые секунды»", 1, 3600)
        item: dict[str, Any] = {"id": _unique(stage["id"] or slug(title), taken),
                                "title": title, "required": stage.get("required") == "1",
                                "phrases": phrases}
        if within is not None:
            item["within_seconds"] = within
        if need is not None and need > 1:
            item["min_matches"] = need
        if _lines(stage.get("say", "")):
            item["say"] = _lines(stage["say"])
        out_stages.append(item)
    out_groups: list[dict[str, Any]] = []
    for n, group in enumerate(groups, 1):
        title = group.get("title") or ""
        if not group["phrases"]:
            raise ScriptFormError(f"Запрещённые слова «{title or n}»: добавьте хотя бы одно.")
        item = {"id": _unique(group["id"] or slug(title or "forbidden"), taken),
                "phrases": group["phrases"]}
        if title:
            item["title"] = title
        out_groups.append(item)
    if len(objections) > MAX_OBJECTIONS:
        raise ScriptFormError(f"Возражений не больше {MAX_OBJECTIONS}.")
    out_objections: list[dict[str, Any]] = []
    for n, objection in enumerate(objections, 1):
        title = objection.get("title") or ""
        if not title:
            raise ScriptFormError(f"Возражение {n}: укажите, что говорит клиент.")
        say = _lines(objection.get("say", ""))
        if not say:
            raise ScriptFormError(f"Возражение «{title}»: напишите, что ответить.")
        entry: dict[str, Any] = {"id": _unique(objection["id"] or slug(title), taken),
                                 "title": title, "say": say}
        if objection["phrases"]:
            if len(objection["phrases"]) > MAX_PHRASES:
                raise ScriptFormError(f"Возражение «{title}»: фраз не больше {MAX_PHRASES}.")
            entry["phrases"] = objection["phrases"]
        out_objections.append(entry)
    data: dict[str, Any] = {"name": name}
    description = next((v.strip() for k, v in items
                        if k == "description" and isinstance(v, str)), "")
    if description:
        data["description"] = description
    data["stages"] = out_stages
    if out_groups:
        data["forbidden"] = out_groups
    if out_objections:
        data["objections"] = out_objections
    try:
        parse_script(data)  # the same rules as an uploaded file
    except KkpError as exc:
        raise ScriptFormError(f"Скрипт не сохранён: {exc}.") from None
    return data, yaml.safe_dump(data, allow_unicode=True, sort_keys=False, width=100)


def form_of(script: Script | None) -> dict[str, Any]:
    """What the editor shows for a stored script (an empty stage and group for none)."""
    if script is None:
        return {"name": "", "description": "",
                "stages": [{"id": "", "title": "", "required": True,
                            "min": "", "within": "", "phrases": [""], "say": ""}],
                "forbidden": [{"id": "", "title": "", "phrases": [""]}], "objections": []}
    return {"name": script.name, "description": script.description,
            "stages": [{"id": s.id, "title": s.title, "required": s.required,
                        "min": str(s.min_matches) if s.min_matches > 1 else "",
                        "within": f"{s.within_seconds:g}" if s.within_seconds else "",
                        "phrases": list(s.phrases), "say": "\n".join(s.say)}
                       for s in script.stages],
            "objections": [{"id": o.id, "title": o.title, "say": "\n".join(o.say),
                            "phrases": list(o.phrases) or [""]} for o in script.objections],
            "forbidden": [{"id": f.id, "title": f.title, "phrases": list(f.phrases)}
                          for f in script.forbidden] or [{"id": "", "title": "",
                                                          "phrases": [""]}]}


def form_from_post(items: Iterable[tuple[str, Any]]) -> dict[str, Any]:
    """The editor as the head of sales left it, to show it again with the error."""
    items = list(items)
    stages, groups, objections = _blocks(items)
    name = next((v for k, v in items if k == "name" and isinstance(v, str)), "")
    description = next((v for k, v in items if k == "description" and isinstance(v, str)), "")
    return {"name": name, "description": description,
            "stages": [{"id": s["id"], "title": s.get("title", ""),
                        "required": s.get("required") == "1", "min": s.get("min", ""),
                        "within": s.get("within", ""), "phrases": s["phrases"] or [""],
                        "say": s.get("say", "")}
                       for s in stages] or form_of(None)["stages"],
            "objections": [{"id": o["id"], "title": o.get("title", ""), "say": o.get("say", ""),
                            "phrases": o["phrases"] or [""]} for o in objections],
            "forbidden": [{"id": g["id"], "title": g.get("title", ""),
                           "phrases": g["phrases"] or [""]} for g in groups]
            or form_of(None)["forbidden"]}
