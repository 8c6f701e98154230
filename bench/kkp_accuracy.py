"""Precision and recall of KKP violations on the hand-made cases in tests/kkp_cases.

A predicted violation is matched to an expected one by (kind, id). The numbers
that matter for fairness: confirmed violations (``needs_review: false``) on
compliant calls must be zero; seeded violations must be found (≥ 90 %).

    .venv/bin/python -m bench.kkp_accuracy
"""

from __future__ import annotations

import json
import time
from collections import Counter
from pathlib import Path
from typing import Any

from speech.kkp import check, load_script

CASES = Path(__file__).resolve().parent.parent / "tests" / "kkp_cases"


def _keys(violations: list[dict[str, Any]], *, review: bool | None = None) -> Counter:
    return Counter((v["kind"], v["id"]) for v in violations
                   if review is None or bool(v["needs_review"]) == review)


def evaluate(cases: Path = CASES) -> dict[str, Any]:
    """Counts over all cases (confirmed = predicted without needs_review)."""
    script = load_script(cases / "script.yaml")
    tp = fp = fn = review_ok = review_expected = false_on_compliant = 0
    mismatches = []
    files = sorted(cases.glob("[0-9][0-9]-*.json"))
    started = time.perf_counter()
    for path in files:
        case = json.loads(path.read_text("utf-8"))
        got = check(script, case["transcript"])["violations"]
        expected = case["expected"]
        want_confirmed = _keys(expected, review=False)
        got_confirmed = _keys(got, review=False)
        hit = sum((want_confirmed & got_confirmed).values())
        tp += hit
        fp += sum(got_confirmed.values()) - hit
        fn += sum(want_confirmed.values()) - sum((want_confirmed & _keys(got)).values())
        want_review = _keys(expected, review=True)
        review_expected += sum(want_review.values())
        review_ok += sum((want_review & _keys(got, review=True)).values())
        if not want_confirmed:
            false_on_compliant += sum(got_confirmed.values())
        if _keys(got, review=False) != want_confirmed or _keys(got, review=True) != want_review:
            mismatches.append((path.name, [(v["kind"], v["id"], v["needs_review"]) for v in got]))
    seconds = time.perf_counter() - started
    return {"cases": len(files), "tp": tp, "fp": fp, "fn": fn,
            "precision": tp / (tp + fp) if tp + fp else 1.0,
            "recall": tp / (tp + fn) if tp + fn else 1.0,
            "review_expected": review_expected, "review_found": review_ok,
            "false_on_compliant": false_on_compliant, "mismatches": mismatches,
            "ms_per_case": 1000 * seconds / max(1, len(files))}


def main() -> None:
    r = evaluate()
    print(f"cases: {r['cases']}  confirmed violations: tp={r['tp']} fp={r['fp']} fn={r['fn']}")
    print(f"precision {r['precision']:.1%}  recall {r['recall']:.1%}  "
          f"confirmed violations on calls without seeded ones: {r['false_on_compliant']}")
    print(f"needs-review items expected {r['review_expected']}, flagged {r['review_found']}")
    print(f"{r['ms_per_case']:.1f} ms per case (warm lemma cache after the first)")
    for name, got in r["mismatches"]:
        print(f"  mismatch {name}: {got}")


if __name__ == "__main__":
    main()
