"""The script editor's form becomes the YAML every version is stored as, and back.

What the head of sales types (titles, phrases, "how many phrases", "within seconds",
forbidden words) must check calls exactly as the same script uploaded as a file does.
"""

from __future__ import annotations

import pytest

from speech.script import parse_script_text
from telecrm.speech.script_form import ScriptFormError, form_of, script_from_form, slug

STAGE_OPEN = [("step", "greeting"), ("step_title", "Приветствие"), ("step_required", "1"),
              ("step_min", ""), ("step_within", "30"), ("phrase", "добрый день"),
              ("phrase", " меня зовут "), ("phrase", "")]


def test_the_form_in_the_order_shown_is_the_script() -> None:
    items = [("name", "Холодный звонок"), ("team", "Отдел продаж"), ("stage", "kvalifikatsiya"),
             *STAGE_OPEN,
             ("step", ""), ("step_title", "Выявление потребностей"), ("step_min", "2"),
             ("step_within", ""), ("phrase", "какие задачи"), ("phrase", "что важно"),
             ("step", ""), ("step_title", ""), ("step_min", ""), ("step_within", ""),
             ("phrase", ""),  # an empty stage left in the form is not a stage
             ("ban", ""), ("ban_title", "Слова-паразиты"), ("ban_phrase", "короче"),
             ("ban_phrase", "типа")]
    data, text = script_from_form(items)
    script = parse_script_text(text)
    assert script.name == "Холодный звонок"
    assert [(s.id, s.title, s.required, s.within_seconds, s.min_matches, s.phrases)
            for s in script.stages] == [
        ("greeting", "Приветствие", True, 30.0, 1, ("добрый день", "меня зовут")),
        ("vyyavlenie-potrebnostei", "Выявление потребностей", False, None, 2,
         ("какие задачи", "что важно"))]
    assert [(f.id, f.title, f.phrases) for f in script.forbidden] == [
        ("slova-parazity", "Слова-паразиты", ("короче", "типа"))]
    # and the editor shows the stored script as it was typed
    shown = form_of(script)
    assert shown["stages"][1] == {"id": "vyyavlenie-potrebnostei",
                                  "title": "Выявление потребностей", "required": False,
                                  "min": "2", "within": "", "phrases": ["какие задачи",
                                                                        "что важно"],
                                  "say": ""}
    assert data["stages"][0]["id"] == "greeting"  # ids of an edited version are kept


def test_what_the_manager_says_and_objections_go_through_the_form() -> None:
    """Remarks per stage, the memo and the answers to objections are stored and shown
    back as typed; the check of calls is the same with or without them."""
    items = [("name", "Холодный звонок"), ("description", "Цель — встреча."),
             *STAGE_OPEN, ("step_say", "Добрый день! Меня зовут Иван.\n\n  Удобно говорить?  "),
             ("obj", ""), ("obj_title", "Дорого"), ("obj_phrase", "дороговато"),
             ("obj_phrase", " "), ("obj_phrase", "нет бюджета"),
             ("obj_say", "Давайте посчитаем, сколько стоит потерянный звонок.\nЧто сравниваете?"),
             ("obj", ""), ("obj_title", ""), ("obj_say", "")]  # an empty block is not one
    _, text = script_from_form(items)
    script = parse_script_text(text)
    assert script.description == "Цель — встреча."
    assert script.stages[0].say == ("Добрый день! Меня зовут Иван.", "Удобно говорить?")
    assert [(o.id, o.title, o.say, o.phrases) for o in script.objections] == [
        ("dorogo", "Дорого", ("Давайте посчитаем, сколько стоит потерянный звонок.",
                              "Что сравниваете?"), ("дороговато", "нет бюджета"))]
    shown = form_of(script)
    assert shown["description"] == "Цель — встреча."
    assert shown["stages"][0]["say"] == "Добрый день! Меня зовут Иван.\nУдобно говорить?"
    assert shown["objections"] == [{"id": "dorogo", "title": "Дорого", "say":
                                    "Давайте посчитаем, сколько стоит потерянный звонок.\n"
                                    "Что сравниваете?", "phrases": ["дороговато", "нет бюджета"]}]
    with pytest.raises(ScriptFormError, match=r"Возражение «Дорого»: напишите, что ответить\."):
        script_from_form([*items[:-9], ("obj", ""), ("obj_title", "Дорого"), ("obj_say", " ")])


@pytest.mark.parametrize("items, message", [
    ([("name", "")], "Укажите название скрипта."),
    ([("name", "С")], "Добавьте хотя бы один этап с фразами."),
    ([("name", "С"), ("step", ""), ("step_title", "Приветствие"), ("phrase", "")],
     "Этап 1 «Приветствие»: добавьте хотя бы одну фразу."),
    ([("name", "С"), ("step", ""), ("step_title", ""), ("phrase", "алло")],
     "Этап 1: укажите название."),
    ([("name", "С"), ("step", ""), ("step_title", "П"), ("step_min", "3"), ("phrase", "а")],
     "Этап 1 «П»: сколько фраз нужно — целое число от 1 до 1."),
    ([("name", "С"), ("step", ""), ("step_title", "П"), ("step_within", "полминуты"),
      ("phrase", "а")], "Этап 1 «П»: «в первые секунды» — целое число от 1 до 3600."),
    ([("name", "С"), ("step", ""), ("step_title", "П"), ("phrase", "а"), ("ban", ""),
      ("ban_title", "Мат"), ("ban_phrase", "")],
     "Запрещённые слова «Мат»: добавьте хотя бы одно."),
])
def test_what_is_missing_is_said_in_russian(items: list[tuple[str, str]], message: str) -> None:
    with pytest.raises(ScriptFormError) as refused:
        script_from_form(items)
    assert str(refused.value) == message


def test_two_stages_of_one_title_get_two_ids() -> None:
    items = [("name", "С"), ("step", ""), ("step_title", "Вопрос"), ("phrase", "а"),
             ("step", ""), ("step_title", "Вопрос"), ("phrase", "б")]
    data, _ = script_from_form(items)
    assert [s["id"] for s in data["stages"]] == ["vopros", "vopros-2"]
    assert slug("Ёлка и щука!") == "elka-i-schuka"
