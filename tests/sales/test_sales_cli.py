"""The sales commands as an operator meets them: payments import, recompute, owners, rules."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.support.live import telecrm

# Dates below are in November 2026: the tests run on a Friday of that month.
pytestmark = pytest.mark.clock("2026-11-20T12:00:00+03:00")


@pytest.fixture
def db(tmp_path: Path) -> str:
    url = f"sqlite:///{tmp_path / 'crm.db'}"
    telecrm("users", "add", "ivan", "--extension", "101", "--team", "Продажи", "--db", url)
    telecrm("users", "add", "olga", "--extension", "102", "--team", "Продажи", "--db", url)
    clients = tmp_path / "clients.csv"
    clients.write_text("name,phones,manager\nООО Ромашка,+79161234567,101\n", encoding="utf-8")
    telecrm("clients", "import", str(clients), "--db", url)
    return url


def test_broken_payments_csv_is_one_sentence_and_books_nothing(db: str, tmp_path: Path) -> None:
    telecrm("invoices", "add", "--client", "1", "--number", "S-1", "--amount", "1000",
            "--date", "2026-11-01", "--db", db)
    bad = tmp_path / "bad.csv"
    bad.write_text("date,client,amount,invoice\n2026-11-02,1,400,S-1\n2026-11-03,1,x,\n",
                   encoding="utf-8")
    result = telecrm("payments", "import", str(bad), "--db", db, check=False)
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert result.stderr.strip() == "telecrm: Строка 3: сумма: «x» — не число."
    history = json.loads(telecrm("clients", "history", "1", "--db", db).stdout)
    assert history["status"] == []  # nothing booked, so nothing changed

    good = tmp_path / "good.csv"
    good.write_text("date,client,amount,invoice\n2026-11-02,ООО Ромашка,400,S-1\n",
                    encoding="utf-8")
    out = telecrm("payments", "import", str(good), "--db", db).stdout
    assert out == "Проведён 1 платёж на 400\u00a0₽; уже были проведены раньше: 0.\n"
    history = json.loads(telecrm("clients", "history", "1", "--db", db).stdout)
    assert [(h["from"], h["to"]) for h in history["status"]] == [("potential", "new")]
    # 2026-11-02 + 90 days = 2027-01-31: regular from then on; 180 days = 2027-05-01: lost
    out = telecrm("clients", "recompute", "--date", "2027-01-30", "--db", db).stdout
    assert out.startswith("Пересчитан 1 клиент: сменилось 0 статусов, ")
    out = telecrm("clients", "recompute", "--date", "2027-01-31", "--db", db).stdout
    assert out.startswith("Пересчитан 1 клиент: сменился 1 статус, ")
    telecrm("clients", "recompute", "--date", "2027-05-01", "--db", db)
    history = json.loads(telecrm("clients", "history", "1", "--db", db).stdout)
    assert [h["to"] for h in history["status"]] == ["new", "regular", "lost"]


def test_rules_potential_and_owner_from_the_command_line(db: str) -> None:
    rules = json.loads(telecrm("sales", "settings", "abc_a_min=2000000", "--team", "Продажи",
                               "--db", db).stdout)
    assert rules["abc_a_min"] == "2000000.00" and rules["new_period_days"] == 90
    out = telecrm("clients", "potential", "1", "1500000", "--db", db).stdout
    assert out.startswith("Клиент №1: годовой потенциал 1\u00a0500\u00a0000\u00a0₽, группа B, ")
    out = telecrm("clients", "reassign", "1", "--to", "102", "--reason", "отпуск",
                  "--db", db).stdout
    assert out == "Передан 1 клиент.\n"
    owner = json.loads(telecrm("clients", "history", "1", "--db", db).stdout)["owner"]
    assert owner[0]["reason"] == "отпуск"
    for args, message in [
        (["sales", "settings", "colour=red"], "Неизвестное правило «colour»"),
        (["sales", "settings", "--team", "Нет"], "Отдела «Нет» нет."),
        (["clients", "reassign", "1", "--to", "999"], "Пользователя «999» нет"),
        (["clients", "potential", "1", "-5"], "Годовой потенциал: нужна сумма больше нуля."),
        (["payments", "import", "/nonexistent.csv"], "Файла /nonexistent.csv нет."),
    ]:
        result = telecrm(*args, "--db", db, check=False)
        assert result.returncode == 2, args
        assert message in result.stderr and len(result.stderr.strip().splitlines()) == 1


def test_sales_reports_by_name_from_the_command_line(db: str, tmp_path: Path) -> None:
    payments = tmp_path / "p.csv"
    payments.write_text("date,client,amount\n2026-11-02,1,400\n2026-10-02,1,100\n",
                        encoding="utf-8")
    telecrm("payments", "import", str(payments), "--db", db)
    out = telecrm("report", "summary", "--from", "2026-11-01", "--to", "2026-11-30",
                  "--format", "csv", "--db", db).stdout.splitlines()
    assert out[0].startswith("status,clients,clients_prev,clients_trend,potential")
    # the funnel is what the CRM knew: the client came in (and became new) today, so the
    # October column has neither him nor his October payment
    assert "new,1,0,up,0.00,0.00,same,400.00,0.00,up" in out
    assert "potential,0,0,same,0.00,0.00,same,0.00,0.00,same" in out
    body = json.loads(telecrm("report", "contact-frequency", "--from", "2026-11-01", "--to",
                              "2026-11-30", "--format", "json", "--db", db).stdout)
    assert [r["extension"] for r in body["rows"]] == ["101", "102"]
    assert body["rows"][0]["payments"] == "400.00" and body["totals"]["clients"] == 1
    result = telecrm("report", "sumary", "--db", db, check=False)
    assert result.returncode == 2 and (
        "Отчёта «sumary» нет; есть: activity, calltracking, contact-frequency" in result.stderr)
