"""``telecrm users add|edit|list`` with a user's devices and mobile numbers."""

from __future__ import annotations

import json
from pathlib import Path

from tests.support.live import telecrm


def listed(db: str) -> dict[str, dict]:
    result = telecrm("users", "list", "--format", "json", "--db", db)
    return {row["username"]: row for row in json.loads(result.stdout)}


def refused(*args: str) -> str:
    """The one Russian sentence of a refusal (exit 2, no traceback)."""
    result = telecrm(*args, check=False)
    assert result.returncode == 2, (result.stdout, result.stderr)
    assert "Traceback" not in result.stderr
    (line,) = result.stderr.strip().splitlines()
    return line


def test_devices_and_mobiles_are_added_edited_and_listed(tmp_path: Path) -> None:
    db = f"sqlite:///{tmp_path / 'crm.db'}"
    telecrm("users", "add", "ivanov", "--name", "Иван Иванов", "--extension", "201",
            "--device", "SIP/150010001", "--device", "pjsip/201-soft",
            "--mobile", "+7 916 000-00-01", "--db", db)
    row = listed(db)["ivanov"]
    assert (row["extension"], row["devices"], row["mobiles"]) == (
        "201", ["SIP/150010001", "PJSIP/201-soft"], ["+79160000001"])
    table = telecrm("users", "list", "--db", db).stdout
    assert "SIP/150010001, PJSIP/201-soft, +7 916 000-00-01" in table

    result = telecrm("users", "edit", "ivanov", "--remove-device", "PJSIP/201-soft",
                     "--device", "PJSIP/ivanov", "--mobile", "8 903 000-00-02",
                     "--remove-mobile", "89160000001", "--db", db)
    assert result.stdout.splitlines() == [
        "ivanov: телефоны: SIP/150010001, PJSIP/201-soft → SIP/150010001, PJSIP/ivanov",
        "ivanov: мобильные: +79160000001 → +79030000002",
    ]
    row = listed(db)["ivanov"]
    assert (row["devices"], row["mobiles"]) == (["SIP/150010001", "PJSIP/ivanov"],
                                                ["+79030000002"])
    assert telecrm("users", "edit", "ivanov", "--device", "sip/150010001",
                   "--db", db).stdout.strip() == "ivanov: ничего не изменилось"


def test_a_phone_of_another_user_is_refused(tmp_path: Path) -> None:
    db = f"sqlite:///{tmp_path / 'crm.db'}"
    telecrm("users", "add", "ivanov", "--name", "Иван Иванов", "--extension", "201",
            "--device", "SIP/150010001", "--mobile", "+7 916 000-00-01", "--db", db)
    assert refused("users", "add", "petrov", "--extension", "202", "--device",
                   "SIP/150010001", "--db", db) == \
        "telecrm: Телефон SIP/150010001 уже закреплён за пользователем Иван Иванов."
    assert "petrov" not in listed(db), "a refused add creates nobody"
    telecrm("users", "add", "petrov", "--extension", "202", "--db", db)
    assert refused("users", "edit", "petrov", "--mobile", "89160000001", "--db", db) == \
        "telecrm: Мобильный номер +7 916 000-00-01 уже закреплён за пользователем Иван Иванов."
    assert refused("users", "edit", "petrov", "--device", "ivanov", "--db", db).startswith(
        "telecrm: Телефон в Asterisk записывается как технология/имя")
    assert refused("users", "edit", "petrov", "--mobile", "+7495xxxxxxx", "--db", db) == \
        "telecrm: «+7495xxxxxxx» — не номер телефона."
    assert refused("users", "add", "sidorov", "--extension", "123456789", "--db", db) == \
        "telecrm: Внутренний номер — от 2 до 8 цифр, а не «123456789»."
    telecrm("users", "add", "sidorov", "--extension", "20104567", "--db", db)
    assert listed(db)["sidorov"]["extension"] == "20104567"
    assert listed(db)["petrov"]["mobiles"] == []
