"""``telecrm pbx add|edit|list|disable|enable``: the PBXs of a company with branches."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.support.live import telecrm

SECRET = "s3cr3t-Do-Not-Show"


def listed(db: str) -> dict[str, dict]:
    result = telecrm("pbx", "list", "--format", "json", "--db", db)
    assert SECRET not in result.stdout and SECRET not in result.stderr
    return {row["name"]: row for row in json.loads(result.stdout)["pbxes"]}


def refused(*args: str) -> str:
    """The one Russian sentence of a refusal (exit 2, no traceback)."""
    result = telecrm(*args, check=False)
    assert result.returncode == 2, (result.stdout, result.stderr)
    assert "Traceback" not in result.stderr and SECRET not in result.stderr
    (line,) = result.stderr.strip().splitlines()
    return line


def test_pbxes_are_added_edited_switched_off_and_listed_without_their_secret(
        tmp_path: Path) -> None:
    db = f"sqlite:///{tmp_path / 'crm.db'}"
    before = listed(db)
    assert list(before) == ["main"], "without rows, the TELECRM_AMI_* PBX is listed as main"
    assert before["main"]["from_settings"] is True

    added = telecrm("pbx", "add", "spb", "--host", "10.0.2.15", "--port", "5039", "--user",
                    "crm", "--secret", SECRET, "--recordings-source", "/mnt/spb/monitor",
                    "--db", db)
    assert SECRET not in added.stdout
    assert "АТС «spb» добавлена" in added.stdout
    row = listed(db)["spb"]
    assert row == {"name": "spb", "host": "10.0.2.15", "port": 5039, "user": "crm",
                   "recordings_source": "/mnt/spb/monitor", "enabled": True}
    assert "secret" not in row

    telecrm("pbx", "edit", "spb", "--host", "10.0.2.16", "--secret", "another", "--db", db)
    assert listed(db)["spb"]["host"] == "10.0.2.16"
    telecrm("pbx", "disable", "spb", "--db", db)
    assert listed(db)["spb"]["enabled"] is False
    table = telecrm("pbx", "list", "--db", db).stdout
    assert "spb" in table and "отключена" in table and SECRET not in table
    telecrm("pbx", "enable", "spb", "--db", db)
    assert listed(db)["spb"]["enabled"] is True


@pytest.mark.parametrize(("args", "sentence"), [
    (("pbx", "add", "Санкт-Петербург", "--host", "h", "--user", "u", "--secret", SECRET),
     "telecrm: Название АТС — до 40 строчных латинских букв, цифр, «-» или «_», начиная с "
     "буквы или цифры (например, spb)."),
    (("pbx", "add", "spb", "--host", "h", "--port", "пять", "--user", "u", "--secret", SECRET),
     "telecrm: Порт AMI — число от 1 до 65535 (обычно 5038)."),
    (("pbx", "add", "spb", "--host", "h", "--port", "70000", "--user", "u", "--secret", SECRET),
     "telecrm: Порт AMI — число от 1 до 65535 (обычно 5038)."),
    (("pbx", "edit", "kazan", "--host", "h"),
     "telecrm: АТС «kazan» нет; список — telecrm pbx list."),
])
def test_bad_input_is_one_russian_sentence(tmp_path: Path, args: tuple[str, ...],
                                           sentence: str) -> None:
    db = f"sqlite:///{tmp_path / 'crm.db'}"
    assert refused(*args, "--db", db) == sentence
    assert list(listed(db)) == ["main"], "a refused command adds nothing"


def test_a_name_in_use_is_refused(tmp_path: Path) -> None:
    db = f"sqlite:///{tmp_path / 'crm.db'}"
    telecrm("pbx", "add", "spb", "--host", "h", "--user", "u", "--secret", SECRET, "--db", db)
    assert refused("pbx", "add", "spb", "--host", "other", "--user", "u", "--secret", "x",
                   "--db", db) == \
        "telecrm: АТС «spb» уже есть; измените её командой telecrm pbx edit."
    assert listed(db)["spb"]["host"] == "h"
