"""KKP script compliance on Russian transcripts: the hand-made cases and the CLI."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from bench.kkp_accuracy import CASES, evaluate
from speech.kkp import check, load_script
from speech.lemmas import token_matches
from tests.support.live import telecrm

SCRIPT = CASES / "script.yaml"


def case(name: str) -> dict:
    (path,) = CASES.glob(f"[0-9][0-9]-{name}.json")
    return json.loads(path.read_text("utf-8"))


def test_no_false_violation_and_every_seeded_one_found() -> None:
    result = evaluate()
    assert result["cases"] >= 30
    assert result["false_on_compliant"] == 0, result["mismatches"]
    assert result["recall"] >= 0.9 and result["precision"] == 1.0, result["mismatches"]
    assert result["review_found"] == result["review_expected"], result["mismatches"]


@pytest.mark.parametrize(("heard", "wanted", "same"), [
    ("кампания", "компания", True),       # ASR slip, 8 letters, one edit
    ("предложенье", "предложение", True),
    ("зовут", "звать", True),             # lemma
    ("компании", "компания", True),
    ("день", "дель", False),              # short words must match exactly
    ("сотрудников", "сотрудник", True),
    ("встречу", "встряску", False),
])
def test_token_tolerance(heard: str, wanted: str, same: bool) -> None:
    assert token_matches(heard, wanted) is same


def test_evidence_has_quote_and_times() -> None:
    result = check(load_script(SCRIPT), case("compliant-plain")["transcript"])
    greeting = result["stages"][0]
    assert greeting["found"] and result["score"] == 100
    first = greeting["evidence"][0]
    assert first["text"] == "добрый день" and first["start"] == 1.0 and first["end"] > 1.0


def test_unknown_vocabulary_means_review_not_missing() -> None:
    transcript = case("missing-greeting")["transcript"]
    vocabulary = {"добрый", "день", "меня", "зовут"}  # "компания" unknown to the model
    result = check(load_script(SCRIPT), transcript, vocabulary=vocabulary)
    (missing,) = [v for v in result["violations"] if v["kind"] == "missing_stage"]
    assert missing["needs_review"] is True


def test_mixed_recording_never_confirms_a_forbidden_word() -> None:
    transcript = case("forbidden-blin")["transcript"]
    transcript["speakers"] = {"mixed": transcript["speakers"]["manager"]}
    result = check(load_script(SCRIPT), transcript)
    assert [v["needs_review"] for v in result["violations"]] == [True]


def test_cli_check(tmp_path: Path) -> None:
    path = tmp_path / "t.json"
    path.write_text(json.dumps(case("order-swapped")["transcript"], ensure_ascii=False), "utf-8")
    out = json.loads(telecrm("kkp", "check", "--script", str(SCRIPT), "--transcript", str(path),
                             "--format", "json").stdout)
    assert [(v["kind"], v["id"]) for v in out["violations"]] == [("order", "presentation")]
    assert set(out) >= {"score", "stages", "violations"}
    bad = telecrm("kkp", "check", "--script", str(path), "--transcript", str(path), check=False)
    assert bad.returncode == 2 and "Traceback" not in bad.stderr and bad.stderr.count("\n") == 1
