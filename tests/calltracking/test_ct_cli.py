"""The call-tracking command line: numbers, sites, costs, the report, and bad input."""

from __future__ import annotations

import json
from pathlib import Path

from tests.support.live import telecrm


def test_numbers_sites_costs_and_report(tmp_path: Path) -> None:
    db = f"sqlite:///{tmp_path / 'crm.db'}"
    added = telecrm("ct", "static", "add", "--did", "8 (495) 111-00-05", "--channel", "Радио",
                    "--campaign", "Весна", "--cost-per-month", "30000", "--db", db).stdout
    assert added == "Статический номер +7 495 111-00-05 отслеживает канал «Радио».\n"
    static = json.loads(telecrm("ct", "static", "list", "--db", db).stdout)
    assert static == [{"did": "+74951110005", "channel": "Радио", "source": None,
                       "medium": None, "campaign": "Весна", "cost_per_month": 30000.0}]
    pooled = telecrm("ct", "pool", "add", "--site", "Shop.Example", "+7 495 111-00-11",
                     "84951110012", "--db", db).stdout
    assert pooled == "Сайт shop.example: в пуле 2 номера.\n"
    telecrm("ct", "sites", "add", "shop.example", "--default-number", "+7 495 111-00-01",
            "--hold", "120", "--reuse-live-leases", "on", "--db", db)
    (site,) = json.loads(telecrm("ct", "pool", "list", "--db", db).stdout)
    assert site["host"] == "shop.example" and site["numbers"] == ["+74951110011",
                                                                   "+74951110012"]
    assert (site["hold_seconds"], site["reuse_live_leases"]) == (120, True)

    # a number is tracked once; garbage is one sentence, never a traceback
    for args, message in [
        (("ct", "static", "add", "--did", "+74951110011", "--channel", "X"),
         "+74951110011 уже отслеживается как номер пула."),
        (("ct", "pool", "add", "--site", "shop.example", "+74951110005"),
         "+74951110005 уже отслеживается как статический номер."),
        (("ct", "pool", "add", "--site", "bad host!", "+74951110099"),
         "«bad host!» — не имя сайта"),
        (("ct", "static", "add", "--did", "12", "--channel", "X"),
         "Номер DID «12» — не телефонный номер."),
        (("ct", "sites", "add", "shop.example", "--hold", "5"),
         "Время удержания номера: от 30 до 86400 с."),
        (("report", "nosuch"), "Отчёта «nosuch» нет"),
    ]:
        result = telecrm(*args, "--db", db, check=False)
        assert result.returncode == 2 and message in result.stderr, result.stderr
        assert "Traceback" not in result.stderr

    costs = tmp_path / "costs.csv"
    costs.write_text("month,channel,amount\n2026-11,Радио,12000\n2026-11,Яндекс,abc\n",
                     encoding="utf-8")
    result = telecrm("ct", "costs", "import", str(costs), "--db", db, check=False)
    assert result.returncode == 2 and f"telecrm: {costs}, строка 3: сумма: «abc» — не число." in (
        result.stderr)
    report = json.loads(telecrm("report", "calltracking", "--from", "2026-11-01",
                                "--to", "2026-11-30", "--db", db).stdout)
    assert {r["key"]: r["cost"] for r in report["rows"]} == {"Радио": 30000.0}  # nothing half-in
    costs.write_text("month,channel,amount\n2026-11,Радио,\"12 000,50\"\n2026-11,Яндекс,9000\n",
                     encoding="utf-8")
    imported = telecrm("ct", "costs", "import", str(costs), "--db", db).stdout
    assert imported == "Загружены 2 месячных расхода.\n"
    report = json.loads(telecrm("report", "calltracking", "--from", "2026-11-01",
                                "--to", "2026-11-30", "--db", db).stdout)
    assert {r["key"]: r["cost"] for r in report["rows"]} == {"Радио": 42000.5, "Яндекс": 9000.0}
    assert report["pool_health"][0]["size"] == 2
    csv_out = telecrm("report", "calltracking", "--from", "2026-11-01", "--to", "2026-11-30",
                      "--format", "csv", "--db", db).stdout
    assert csv_out.splitlines()[0].startswith("key,visits,calls,unique_callers")
    assert csv_out.splitlines()[-1].startswith("Итого,")


def test_costs_entered_corrected_and_numbers_archived(tmp_path: Path) -> None:
    db = f"sqlite:///{tmp_path / 'crm.db'}"
    telecrm("ct", "static", "add", "--did", "+74951110005", "--channel", "Радио", "--db", db)
    telecrm("ct", "costs", "set", "2026-11", "Директ", "40000", "--db", db)
    fixed = json.loads(telecrm("ct", "costs", "set", "2026-11-15", "Директ", "41 500,5",
                               "--db", db).stdout)
    assert fixed == {"month": "2026-11", "channel": "Директ", "amount": 41500.5}
    assert json.loads(telecrm("ct", "costs", "list", "--db", db).stdout) == [fixed]
    result = telecrm("ct", "costs", "set", "2026-11", "Директ", "-1", "--db", db, check=False)
    assert result.returncode == 2 and "Сумма: «-1» — нужна неотрицательная сумма." in (
        result.stderr)
    assert telecrm("ct", "archive", "8 495 111 00 05", "--db", db).stdout == (
        "Статический номер больше не отслеживается; его история сохранена.\n")
    assert json.loads(telecrm("ct", "static", "list", "--db", db).stdout) == []
    result = telecrm("ct", "archive", "+74951110005", "--db", db, check=False)
    assert result.returncode == 2 and "+74951110005 не отслеживается." in result.stderr
    assert "Traceback" not in result.stderr
