"""Build the KKP test transcripts: Russian calls with seeded script violations.

Run ``python tests/kkp_cases/make_cases.py`` after editing CASES; each case is
written as ``NN-name.json`` holding the transcript and the expected violations
(``kind``, ``id`` and ``needs_review``). Words get 0.35 s each; a word written as
``слово@0.4`` gets confidence 0.4 (ASR doubt), others 0.95.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

HERE = Path(__file__).parent
WORD_SECONDS = 0.35

GREET = "добрый день меня зовут ольга компания вектор"
NEEDS = "скажите какие у вас сейчас задачи по связи и что для вас важно"
PRES = "мы предлагаем облачную телефонию наше решение подключается за день"
CLOSE = "давайте договоримся так я отправлю на почту предложение и мы созвонимся в четверг"
CLIENT = "да слушаю ну у нас офис двадцать человек интересно присылайте"


def ok(g: str = GREET, n: str = NEEDS, p: str = PRES, c: str = CLOSE) -> list[tuple[float, str]]:
    return [(1.0, g), (12.0, n), (35.0, p), (55.0, c)]


# name -> (manager lines, client lines, expected violations, duration)
CASES: dict[str, tuple[list[tuple[float, str]], list[tuple[float, str]], list[dict], float]] = {
    "compliant-plain": (ok(), [(6.0, CLIENT)], [], 75.0),
    "compliant-word-forms": (ok(g="доброго дня меня зовут ольга я из компании вектор",
                                n="расскажите о ваших задачах что для вас сейчас важно",
                                p="мы вам предлагаем наше решение для отдела продаж",
                                c="давайте тогда договоримся созвонимся завтра"),
                             [(6.0, CLIENT)], [], 75.0),
    "compliant-inserted-words": (ok(g="добрый вам день меня кстати зовут ольга компания вектор",
                                    n="какие у вас основные задачи сейчас",
                                    p="мы как раз предлагаем решение", c="давайте мы с вами "
                                    "договоримся и созвонимся"), [(6.0, CLIENT)], [], 75.0),
    "compliant-asr-slips": (ok(g="добрый день меня зовут ольга кампания вектор",
                               p="мы предлагаем коммерческое предложенье",
                               c="давайте договоримься созвонимся"),
                            [(6.0, CLIENT)], [], 75.0),
    "compliant-asr-slips-2": (ok(n="сколько сотрудникоф у вас и какие задачи",
                                 p="наше решениe простое мы предлагаем тариф"),
                              [(6.0, CLIENT)], [], 75.0),
    "compliant-client-slang": (ok(), [(6.0, "короче блин да типа двадцать человек")], [], 75.0),
    "negated-and-plain-slang": (ok(c="давайте договоримся без всяких короче созвонимся "
                                     "я не блин какой то"), [(6.0, CLIENT)],
                                [{"kind": "forbidden", "id": "slang", "needs_review": False}],
                                75.0),
    "compliant-quoted-slang": (ok(n="вы сказали типа склад какие задачи у склада"),
                               [(6.0, CLIENT)], [], 75.0),
    "compliant-type-noun": (ok(n="какого типа у вас задачи и сколько сотрудников"),
                            [(6.0, CLIENT)],
                            [{"kind": "forbidden", "id": "slang", "needs_review": True}], 75.0),
    "compliant-short-adjective": (ok(p="мы предлагаем короткий договор наше решение"),
                                  [(6.0, CLIENT)], [], 75.0),
    "compliant-repeated-company": (ok(p="мы предлагаем компания вектор наше решение"),
                                   [(6.0, CLIENT)], [], 75.0),
    "compliant-yo": (ok(c="давайте договоримся ещё созвонимся"), [(6.0, CLIENT)], [], 75.0),
    "compliant-low-conf-slang": (ok(c="давайте договоримся блин@0.5 созвонимся"),
                                 [(6.0, CLIENT)],
                                 [{"kind": "forbidden", "id": "slang", "needs_review": True}],
                                 75.0),
    "compliant-meeting": (ok(c="назначим встречу на вторник"), [(6.0, CLIENT)], [], 75.0),
    "missing-greeting": ([(1.0, "алло это вектор"), (12.0, NEEDS), (35.0, PRES), (55.0, CLOSE)],
                         [(6.0, CLIENT)],
                         [{"kind": "missing_stage", "id": "greeting", "needs_review": False}],
                         75.0),
    "missing-needs": ([(1.0, GREET), (35.0, PRES), (55.0, CLOSE)], [(6.0, CLIENT)],
                      [{"kind": "missing_stage", "id": "needs", "needs_review": False}], 75.0),
    "missing-presentation": ([(1.0, GREET), (12.0, NEEDS), (55.0, CLOSE)], [(6.0, CLIENT)],
                             [{"kind": "missing_stage", "id": "presentation",
                               "needs_review": False}], 75.0),
    "missing-closing": ([(1.0, GREET), (12.0, NEEDS), (35.0, PRES), (55.0, "всего доброго")],
                        [(6.0, CLIENT)],
                        [{"kind": "missing_stage", "id": "closing", "needs_review": False}], 75.0),
    "missing-two": ([(1.0, GREET), (12.0, NEEDS), (30.0, "ну ладно до свидания")],
                    [(6.0, CLIENT)],
                    [{"kind": "missing_stage", "id": "presentation", "needs_review": False},
                     {"kind": "missing_stage", "id": "closing", "needs_review": False}], 75.0),
    "order-swapped": ([(1.0, GREET), (12.0, PRES), (35.0, NEEDS), (55.0, CLOSE)],
                      [(6.0, CLIENT)],
                      [{"kind": "order", "id": "presentation", "needs_review": False}], 75.0),
    "order-closing-first": ([(1.0, GREET), (8.0, "давайте договоримся"), (12.0, NEEDS),
                             (35.0, PRES), (55.0, "всего доброго")], [(6.0, CLIENT)],
                            [{"kind": "order", "id": "closing", "needs_review": False}], 75.0),
    "late-greeting": ([(1.0, "алло алло"), (40.0, GREET), (50.0, NEEDS), (60.0, PRES),
                       (70.0, CLOSE)], [(6.0, CLIENT)],
                      [{"kind": "late", "id": "greeting", "needs_review": False}], 95.0),
    "forbidden-korochE": (ok(n="короче какие у вас задачи и что для вас важно"), [(6.0, CLIENT)],
                          [{"kind": "forbidden", "id": "slang", "needs_review": False}], 75.0),
    "forbidden-blin": (ok(p="блин мы предлагаем наше решение"), [(6.0, CLIENT)],
                       [{"kind": "forbidden", "id": "slang", "needs_review": False}], 75.0),
    "forbidden-kak-by": (ok(p="мы как бы предлагаем наше решение"), [(6.0, CLIENT)],
                         [{"kind": "forbidden", "id": "slang", "needs_review": False}], 75.0),
    "forbidden-rude": (ok(n="это не ваше дело какие у вас задачи"), [(6.0, CLIENT)],
                       [{"kind": "forbidden", "id": "rude", "needs_review": False}], 75.0),
    "forbidden-rude-2": (ok(p="вы не понимаете мы предлагаем наше решение"), [(6.0, CLIENT)],
                         [{"kind": "forbidden", "id": "rude", "needs_review": False}], 75.0),
    "forbidden-twice": (ok(n="короче какие задачи", c="блин давайте договоримся"),
                        [(6.0, CLIENT)],
                        [{"kind": "forbidden", "id": "slang", "needs_review": False},
                         {"kind": "forbidden", "id": "slang", "needs_review": False}], 75.0),
    "forbidden-and-missing": ([(1.0, GREET), (12.0, "короче " + NEEDS), (35.0, PRES)],
                              [(6.0, CLIENT)],
                              [{"kind": "forbidden", "id": "slang", "needs_review": False},
                               {"kind": "missing_stage", "id": "closing",
                                "needs_review": False}], 75.0),
    "short-call": ([(1.0, "добрый день алло")], [(2.0, "не интересно")],
                   [{"kind": "missing_stage", "id": s, "needs_review": True}
                    for s in ("greeting", "needs", "presentation", "closing")], 6.0),
    "garbled-leg": ([(1.0, "до@0.3 бы@0.3 день@0.4 зову@0.3 та@0.3 ком@0.3 и@0.3 вот@0.3 "
                           "так@0.3 мы@0.4 ре@0.3 ше@0.3 ние@0.3 сто@0.3 ит@0.3 дешево@0.4 "
                           "созвонимся@0.5")], [(6.0, CLIENT)],
                    [{"kind": "missing_stage", "id": s, "needs_review": True}
                     for s in ("greeting", "needs", "presentation")], 75.0),
    "missing-needs-asr-slips": ([(1.0, "добрый день меня зовут ольга кампания вектор"),
                                 (35.0, "мы предлагаем коммерческое предложенье"),
                                 (55.0, CLOSE)], [(6.0, CLIENT)],
                                [{"kind": "missing_stage", "id": "needs", "needs_review": False}],
                                75.0),
}


def words(lines: list[tuple[float, str]]) -> list[dict[str, Any]]:
    out = []
    for start, text in lines:
        t = start
        for token in text.split():
            word, _, conf = token.partition("@")
            out.append({"word": word, "start": round(t, 2), "end": round(t + 0.3, 2),
                        "conf": float(conf) if conf else 0.95})
            t += WORD_SECONDS
    return out


def main() -> None:
    for old in HERE.glob("[0-9][0-9]-*.json"):
        old.unlink()
    for n, (name, (manager, client, expected, duration)) in enumerate(CASES.items(), 1):
        transcript = {"duration": duration, "model": "synthetic",
                      "speakers": {"manager": words(manager), "client": words(client)}}
        (HERE / f"{n:02d}-{name.lower()}.json").write_text(
            json.dumps({"transcript": transcript, "expected": expected}, ensure_ascii=False,
                       indent=1) + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
