"""The command line as a user meets it: clear one-line errors, never a traceback."""

from pathlib import Path

import pytest

from tests.support.live import exported_calls, telecrm


@pytest.fixture
def db(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'crm.db'}"


def test_help_lists_every_setting() -> None:
    out = telecrm("--help").stdout
    for name in ("TELECRM_DATABASE_URL", "TELECRM_AMI_HOST", "TELECRM_TIMEZONE",
                 "TELECRM_REDIS_URL", "TELECRM_DATA_DIR"):
        assert name in out


def test_import_reports_broken_rows_by_line_and_imports_the_rest(db: str, tmp_path: Path) -> None:
    telecrm("users", "add", "petrov", "--extension", "101", "--db", db)
    csv = tmp_path / "clients.csv"
    csv.write_text(
        "name,phones,manager\n"
        "ООО Ромашка,8 (916) 123-45-67,101\n"
        ",+7 903 123 45 67,101\n"            # line 3: no name
        "АО Вектор,not a phone,101\n"        # line 4: no valid phone
        "ИП Сидоров,+7 926 555 00 11,999\n"  # line 5: unknown manager
        "ООО Север,79857770011,101\n", encoding="utf-8")
    result = telecrm("clients", "import", str(csv), "--db", db, check=False)
    assert result.returncode == 1
    assert result.stdout == "Импортировано 2 клиента, обновлено 0 клиентов.\n"
    errors = [line for line in result.stderr.splitlines() if line.startswith("Строка ")]
    assert errors == ["Строка 3: не указано название клиента.",
                      "Строка 4: «not a phone» — не телефонный номер.",
                      "Строка 5: нет активного пользователя с внутренним номером 999."]
    assert result.stderr.splitlines()[-1] == "Не импортированы 3 строки."
    assert "Traceback" not in result.stderr
    # Importing the same file again creates no duplicates.
    again = telecrm("clients", "import", str(csv), "--db", db, check=False)
    assert again.stdout == "Импортировано 0 клиентов, обновлено 0 клиентов.\n"


@pytest.mark.parametrize("args, message", [
    (["clients", "import", "/nonexistent.csv"], "Файла /nonexistent.csv нет."),
    (["calls", "export", "--since", "yesterday"], "«yesterday» — не дата"),
    (["ami-replay", "/nonexistent.ami"], "Файла /nonexistent.ami нет."),
    (["users", "add", "x", "--extension", "12a"], "Внутренний номер — от 2 до 8 цифр"),
])
def test_bad_input_is_one_clear_sentence(db: str, args: list[str], message: str) -> None:
    result = telecrm(*args, "--db", db, check=False)
    assert result.returncode != 0
    assert result.stderr.startswith("telecrm: ") and message in result.stderr
    assert "Traceback" not in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1


def test_unreachable_database_is_one_clear_sentence() -> None:
    result = telecrm("calls", "export", "--db", "postgresql://u:p@127.0.0.1:1/db", check=False)
    assert result.returncode != 0
    assert "Traceback" not in result.stderr
    assert result.stderr.startswith("telecrm: Базой данных postgresql://u:***@127.0.0.1:1/db "
                                    "нельзя пользоваться")


def test_replay_of_a_garbage_file_logs_nothing_and_changes_nothing(db: str, tmp_path: Path) -> None:
    junk = tmp_path / "junk.ami"
    junk.write_bytes(b"\x00\xff garbage\r\n\r\nEvent: Hangup\r\n\r\nEvent\r\n" * 100)
    result = telecrm("ami-replay", str(junk), "--db", db)
    assert result.stdout == ("Воспроизведено 100 событий AMI: завершено 0 звонков, "
                             "не завершено к концу записи — 0.\n")
    assert exported_calls(db) == []
