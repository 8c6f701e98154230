"""Domain error codes to Russian sentences and HTTP statuses: the one table.

Every :class:`~crm_core.errors.DomainError` raised anywhere (and every coded
:class:`~telecrm.web.errors.ApiError`) has its code here; the web layer (JSON and
pages) and the command line print :func:`russian` of it, so a user reads the same
sentence wherever he meets the refusal. ``tests/app/test_messages.py`` checks that
each code raised in the source has its sentence and that no sentence is left over.

Placeholders are filled from the error's params: a date reads ``31.12.2026``, an
amount ``1 250 000,50``, a nested error its own sentence, a ``field`` its Russian
name from :data:`FIELDS`, and ``{n:файл|файла|файлов}`` puts the Russian plural
after the number.
"""

from __future__ import annotations

import logging
import string
from collections.abc import Mapping
from datetime import date, datetime
from decimal import Decimal
from typing import Any

from crm_core.errors import DomainError, Kind

log = logging.getLogger(__name__)

STATUS: dict[Kind, int] = {"invalid": 400, "forbidden": 403, "not_found": 404,
                           "conflict": 409}

GENERIC: dict[Kind, str] = {
    "invalid": "Неверные данные.",
    "forbidden": "Недостаточно прав.",
    "not_found": "Не найдено.",
    "conflict": "Изменение противоречит уже сохранённым данным.",
}

# HTTP statuses without a more precise code (aiohttp's own 404/405/413, a 500).
HTTP_CODES: dict[int, str] = {
    400: "http.bad_request", 401: "http.unauthorized", 403: "http.forbidden",
    404: "http.not_found", 405: "http.method_not_allowed", 413: "http.too_large",
    415: "http.unsupported_type", 429: "http.too_many", 500: "http.internal",
    502: "http.bad_gateway", 503: "http.unavailable",
}

# code -> sentence, by feature; ``{name}`` is filled from the error's params.
MESSAGES: dict[str, str] = {
    # -- HTTP statuses without a code of their own (telecrm.web.errors) -------------------
    "http.bad_request": "Неверный запрос.",
    "http.unauthorized": "Войдите в систему.",
    "http.forbidden": "Недостаточно прав.",
    "http.not_found": "Такой страницы нет или она вам недоступна.",
    "http.method_not_allowed": "Метод не поддерживается.",
    "http.too_large": "Слишком большой запрос.",
    "http.too_slow": "Запрос передавался слишком долго.",
    "http.unsupported_type": "Неподдерживаемый тип данных запроса.",
    "http.too_many": "Слишком много попыток. Подождите и попробуйте снова.",
    "http.internal": "Внутренняя ошибка. Мы уже записали её в журнал.",
    "http.bad_gateway": "Внешняя система ответила ошибкой.",
    "http.unavailable": "Сервис временно недоступен. Попробуйте позже.",

    # -- what a request sends (telecrm.web.params, the handlers); {name}: the API's field --
    "request.not_found": "Такой записи нет или она вам недоступна.",
    "request.not_integer": "Поле {name} должно быть целым числом.",
    "request.out_of_bounds": "Поле {name} должно быть от {low} до {high}.",
    "request.not_a_date": "Поле {name} должно быть датой в формате ГГГГ-ММ-ДД.",
    "request.not_a_moment": "Поле {name} должно быть датой (ГГГГ-ММ-ДД) или временем ISO 8601.",
    "request.date_out_of_range": "Поле {name}: такой даты не может быть.",
    "request.range_reversed": "Начало периода ({first}) не может быть позже конца ({last}).",
    "request.period_too_long": "За один раз можно запросить не больше {days:дня|дней|дней}.",
    "request.json_expected": "Отправьте тело запроса в JSON (Content-Type: application/json).",
    "request.bad_json": "Тело запроса — не JSON.",
    "request.not_object": "Тело запроса должно быть объектом JSON.",
    "request.string_required": "Заполните поле {name} (непустая строка).",
    "request.too_long": "Поле {name} слишком длинное: не больше {max:символа|символов|символов}.",
    "request.malformed_form": "Форма отправлена с ошибкой. Обновите страницу и попробуйте снова.",
    "request.csrf": "Форма устарела или в запросе нет метки CSRF (заголовок {header}). "
                    "Обновите страницу и попробуйте снова.",
    "request.not_positive": "Поле {name} должно быть целым положительным числом.",
    "request.not_string": "Поле {name} должно быть строкой.",
    "request.not_boolean": "Поле {name} — true или false.",
    "request.boolean_required": "Укажите поле {name}: true или false.",
    "request.moment_required": "Укажите поле {name}: дату (ГГГГ-ММ-ДД) или время ISO 8601.",
    "request.id_list": "Поле {name} должно быть списком номеров.",
    "request.number_too_big": "В запросе слишком большое число: такого номера или суммы "
    "не бывает.",
    "request.unknown_field": "Неизвестное поле {name}.",
    "request.format_invalid": "Формат: {formats}.",
    "request.next_task_object": "Поле next — объект {{kind, due_at}}.",
    "request.field_required": "Заполните поле {name}.",
    "request.text_too_long": "Поле {name}: текст не длиннее {max:символа|символов|символов}.",
    "request.not_url": "Поле {name} должно быть адресом http(s).",
    "request.phone_list": "Поле {name} должно быть списком телефонных номеров.",
    "request.string_list": "Поле {name} должно быть списком строк.",
    "request.list_too_long": "Поле {name}: не больше {max} за раз.",
    "request.control_characters": "Поле {name} содержит управляющие символы: уберите их.",
    "request.not_extension": "Поле {name} — внутренний номер (цифры).",

    # -- sign-in (telecrm.web.auth, telecrm.web.api) ---------------------------------------
    "auth.sign_in_first": "Войдите в систему.",
    "auth.too_many_attempts": "Слишком много неудачных попыток входа. Попробуйте позже.",
    "auth.wrong_password": "Неверный логин или пароль.",
    "auth.form_expired": "Форма устарела. Попробуйте ещё раз.",
    "auth.credentials_missing": "Введите логин и пароль.",
    "auth.wait_minutes": "Слишком много неудачных попыток. Попробуйте через {minutes} мин.",

    # -- pages of the web app (telecrm.web.pages, the feature pages) -----------------------
    "pages.bad_date": "Дата должна быть в формате ГГГГ-ММ-ДД.",
    "pages.team_for_supervisors": "Страница команды — для руководителей.",
    "pages.form_not_found": "Такой формы нет.",
    "reports.unknown": "Отчёта «{name}» нет; есть: {known}.",

    # -- calls, click-to-call, live events, who sees what (telecrm.web.api, sse) -------------
    "ami.replay_no_time": "В записи AMI у событий нет времени (Timestamp): укажите --start — "
                          "время первого события.",
    "calls.not_found": "Такого звонка нет или он вам недоступен.",
    "calls.no_extension": "У вас нет внутреннего номера, с которого можно позвонить.",
    "calls.number_invalid": "«{number}» — не телефонный номер.",
    "calls.phone_busy": "Ваш телефон уже набирает другой номер.",
    "calls.originate_failed": "Звонок не состоялся: {reason}.",
    "telephony.unavailable": "Телефония недоступна: нет связи с АТС. Попробуйте через минуту.",
    "live.unavailable": "События в реальном времени сейчас недоступны.",
    "clients.role_no_cards": "Карточки клиентов недоступны для вашей роли.",
    "clients.not_found": "Такого клиента нет или он вам недоступен.",
    "tasks.role_no_tasks": "Задачи недоступны для вашей роли.",
    "talktime.role_no_access": "Норма разговоров недоступна для вашей роли.",
    "tasks.not_found": "Такой задачи нет или она вам недоступна.",

    # -- people and clients, the core (crm_core.people, crm_core.clients, crm_core.tasks) ----
    "people.queue_invalid": "Название очереди — от 1 до 80 латинских букв, цифр, «.», «_» или "
                            "«-», а не «{queue}».",
    "people.queue_taken": "Очередь «{queue}» уже закреплена за отделом «{team}».",
    "clients.phone_invalid": "«{phone}» — не телефонный номер.",
    "clients.phone_extension": "«{phone}» — внутренний номер, а не телефон клиента.",
    "clients.name_empty": "Укажите название клиента.",
    "clients.import.header_repeats": "В заголовке повторяется столбец: «{header}».",
    "clients.import.no_header": "Первая строка — заголовок со столбцами name, phones, manager; "
                                "а в файле «{found}».",
    "clients.import.columns": "В строке {found:столбец|столбца|столбцов}, а в заголовке "
                              "{expected}.",
    "clients.import.no_name": "Не указано название клиента.",
    "clients.import.no_phone": "В строке нет телефона.",
    "clients.import.manager_not_extension": "Менеджер «{manager}» — не внутренний номер (от 2 "
                                            "до 8 цифр).",
    "clients.import.empty": "Файл пуст.",
    "clients.import.not_csv": "Дальше файл — не CSV: {reason}.",
    "clients.import.phones_of_several": "Телефоны строки принадлежат разным клиентам: {clients}.",
    "clients.import.name_ambiguous": "Клиентов с названием «{name}» несколько ({count}): добавьте "
                                     "телефон, по которому найдётся один.",
    "clients.import.no_manager": "Нет активного пользователя с внутренним номером {extension}.",
    "clients.import.not_saved": "Строку не удалось сохранить: {reason}",
    "clients.import.unreadable": "Не удаётся прочитать {path}: {reason}.",
    "clients.import.row": "Строка {line}: {error:low}",
    "tasks.kind_unknown": "Неизвестный вид задачи «{kind}».",
    "tasks.no_title": "У задачи должно быть название.",
    "tasks.closed": "Задача №{task} уже закрыта.",

    # -- talk time: the 150-minute rule, its settings, violations (crm_core.talktime) --------
    "talktime.settings_for_bosses": "Настройки нормы меняет руководитель отдела или "
                                    "администратор.",
    "talktime.settings_page_for_bosses": "Настройки нормы доступны руководителю отдела и "
                                         "администратору.",
    "talktime.own_team_only": "Руководитель меняет настройки только своего отдела.",
    "talktime.own_team_holidays": "Руководитель удаляет только праздники своего отдела.",
    "talktime.own_team_absences": "Руководитель отмечает отсутствие только менеджеров своего "
                                  "отдела.",
    "talktime.team_not_found": "Отдела «{team}» нет.",
    "talktime.team_missing": "Такого отдела нет.",
    "talktime.weekdays_invalid": "Рабочие дни: цифры от 1 (понедельник) до 7 (воскресенье), "
                                 "каждая один раз, например 12345.",
    "talktime.clock_invalid": "{field:cap}: время укажите как ЧЧ:ММ, например 09:00.",
    "talktime.fine_not_number": "Штраф укажите числом, например 500 или 500,50.",
    "talktime.fine_out_of_range": "Штраф: от 0 до 99 999 999,99, не больше двух знаков после "
                                  "запятой.",
    "talktime.target_out_of_range": "Норма: от 1 до {max} минут.",
    "talktime.min_call_out_of_range": "Минимальная длина звонка: от 0 до {max} с.",
    "talktime.past_rules": "Правила за прошедшие дни не меняются: выберите дату не раньше "
                           "{today}.",
    "talktime.day_reversed": "Рабочий день должен начинаться раньше, чем заканчивается.",
    "talktime.not_whole": "{field:cap}: укажите целое число.",
    "talktime.bad_value": "{field:cap}: неверное значение.",
    "talktime.day_required": "{field:cap}: укажите дату.",
    "talktime.day_invalid": "{field:cap}: неверная дата.",
    "talktime.holiday_exists": "{day} уже в календаре праздников.",
    "talktime.holiday_not_found": "Такого праздника нет.",
    "talktime.not_a_holiday": "{day} — не праздник.",
    "talktime.not_a_team_holiday": "{day} — не праздник отдела «{team}».",
    "talktime.import_csv_required": "Передайте в поле csv текст файла: по строке "
                                    "«дата[,название]».",
    "talktime.import_no_file": "Выберите файл CSV.",
    "talktime.import_too_large": "Файл слишком большой.",
    "talktime.import_not_utf8": "Файл должен быть в UTF-8.",
    "talktime.import_too_long": "Не больше {max} строк в файле.",
    "talktime.import_bad_date": "Строка {line}: «{value}» — не дата (ГГГГ-ММ-ДД).",
    "talktime.import_no_dates": "В файле нет дат.",
    "talktime.manager_required": "Выберите менеджера.",
    "talktime.manager_not_found": "Такого менеджера нет.",
    "talktime.manager_key_not_found": "Менеджера «{key}» нет (укажите внутренний номер или логин).",
    "talktime.absence_kind_invalid": "Укажите вид: отгул, больничный или отпуск.",
    "talktime.absence_reversed": "Отсутствие заканчивается раньше, чем начинается.",
    "talktime.absence_too_long": "Отсутствие — не больше {max} дней.",
    "talktime.absence_not_found": "Такой записи об отсутствии нет.",
    "talktime.period_reversed": "Период заканчивается раньше, чем начинается.",
    "talktime.period_too_long": "Период — не больше года.",
    "talktime.decide_for_bosses": "Решение по нарушению принимает руководитель.",
    "talktime.violation_not_found": "Такого нарушения нет или оно вам недоступно.",
    "talktime.decision_invalid": "Выберите: подтвердить или простить.",
    "talktime.violation_decided": "По этому нарушению уже принято решение.",
    "talktime.excuse_needs_reason": "Укажите причину, чтобы простить.",
    "talktime.day_not_over": "{day} ещё не закончился: закрыть можно только прошедший день.",

    # -- recordings: the player, downloads, live listening, retention (telecrm.recordings) ---
    "recordings.role_may_not_listen": "Ваша роль не позволяет слушать записи звонков.",
    "recordings.call_has_none": "У этого звонка нет записи.",
    "recordings.not_found": "Такой записи нет.",
    "recordings.file_missing": "Файл записи не найден.",
    "recordings.range_outside": "В записи {size:байт|байта|байт}; запрошенный диапазон за её "
                                "пределами.",
    "recordings.store_unavailable": "Хранилище записей недоступно: {reason}",
    "recordings.other_store": "Запись лежит в хранилище «{backend}», а этот сервер работает с "
                              "хранилищем «{store}».",
    "recordings.download_for_supervisors": "Скачивать записи могут только руководители.",
    "recordings.problems_for_supervisors": "Сбои записей видят только руководители.",
    "recordings.live_for_supervisors": "Прослушка — для руководителей.",
    "wallboard.for_supervisors": "Табло — для руководителей и администраторов.",
    "recordings.spy_mode_invalid": "Режим прослушки: {modes}.",
    "recordings.spy_needs_phone": "Слушать звонки может руководитель с внутренним номером.",
    "recordings.live_call_not_found": "Такого идущего звонка вашего отдела нет.",
    "recordings.live_call_not_yours": "По этому звонку говорит менеджер не вашего отдела: "
    "слушать его нельзя.",
    "recordings.spy_failed": "Не удалось подключить вас к разговору: {reason}.",
    "recordings.retention_too_short": "Срок хранения записей — не меньше одного дня.",

    # -- sales: money and its CSV import (crm_core.sales.payments) ---------------------------
    "sales.amount_missing": "{field:cap}: укажите сумму.",
    "sales.amount_invalid": "{field:cap}: «{value}» — не число.",
    "sales.amount_not_positive": "{field:cap}: нужна сумма больше нуля.",
    "sales.amount_too_large": "{field:cap}: слишком большая сумма.",
    "sales.date_invalid": "{field:cap}: «{value}» — не дата (ГГГГ-ММ-ДД или ДД.ММ.ГГГГ).",
    "sales.payment.client_missing": "Не указан клиент.",
    "sales.payment.client_name_unknown": "Клиента с названием «{name}» нет.",
    "sales.payment.client_name_ambiguous": "Клиентов с названием «{name}» несколько: укажите "
                                           "номер клиента.",
    "sales.payment.ref_too_long": "Номер платежа длиннее 100 символов.",
    "sales.payment.booked": "Платёж {ref} уже проведён.",
    "sales.invoice.number_invalid": "Укажите номер счёта, не длиннее 60 символов.",
    "sales.invoice.exists": "Счёт {number} уже есть.",
    "sales.invoice.not_found": "Счёта {number} нет.",
    "sales.invoice.other_client": "Счёт {number} выставлен другому клиенту.",
    "sales.import.unreadable": "Не удаётся прочитать {path}: {reason}.",
    "sales.import.empty": "Файл {file} пуст: первой строкой нужен заголовок {header}.",
    "sales.import.not_csv": "Строка {line}: это не CSV ({reason}).",
    "sales.import.header_lacks": "Строка 1: в заголовке нет столбцов {missing}; нужен "
                                 "заголовок {header}.",
    "sales.import.unknown_column": "Строка 1: неизвестный столбец «{column}».",
    "sales.import.field_count": "Строка {line}: нужно {expected:поле|поля|полей}, а в ней "
                                "{found}.",
    "sales.import.line": "Строка {line}: {error:low}",
    "sales.import.ref_twice": "Строка {line}: платёж {ref} встречается в файле дважды.",

    # -- sales: who may change a client, potential, owner, archive (crm_core.sales.clients) ---
    "sales.bosses_only": "Это меняет руководитель отдела или администратор.",
    "sales.user_not_found": "Нет активного пользователя №{user}.",
    "sales.user_not_in_team": "{name} не из вашего отдела.",
    "sales.client.not_found": "Клиента №{client} нет.",
    "sales.client.not_in_team": "Клиент №{client} не из вашего отдела.",
    "sales.client.items_invalid": "Потенциал в штуках — целое неотрицательное число.",
    "sales.client.contact_days_invalid": "Частота контактов — от 1 до 3650 дней.",
    "sales.client.reassign_none": "Выберите хотя бы одного клиента.",
    "sales.client.reassign_too_many": "За один раз можно передать не больше {max} клиентов.",
    "sales.client.owner_not_manager": "{name} — не менеджер.",
    "sales.client.archived": "Клиент №{client} в архиве: сначала восстановите его.",
    "sales.client.not_archived": "Клиент №{client} не в архиве.",
    "sales.client.archived_already": "Клиент №{client} уже в архиве.",
    "sales.contact.not_found": "Контакта №{contact} нет.",
    "sales.contact.not_archived": "Контакт №{id} не в архиве.",
    "sales.contact.archived_already": "Контакт №{id} уже в архиве.",

    # -- sales: the rules of statuses, ABC and contact frequency (crm_core.sales.settings) ---
    "sales.rules.unknown": "Неизвестное правило «{name}»; есть: {known}.",
    "sales.rules.not_money": "{field:cap}: неверное значение — «{value}» не число.",
    "sales.rules.money_out_of_range": "{field:cap}: неверное значение — нужна сумма от нуля.",
    "sales.rules.not_days": "{field:cap}: неверное значение — укажите целое число дней.",
    "sales.rules.days_out_of_range": "{field:cap}: неверное значение — от 1 до {max} дней.",
    "sales.rules.not_allowed": "Правила отдела меняет администратор или руководитель этого "
                               "отдела.",
    "sales.rules.nothing": "Укажите хотя бы одно правило.",
    "sales.rules.abc_order": "Порог группы A не может быть ниже порога группы B.",

    # -- sales: tasks that never end (crm_core.sales.tasks, telecrm.sales.pages) --------------
    "sales.task.kind_invalid": "Выберите вид задачи: звонок, письмо, встреча или другое.",
    "sales.task.due_needs_zone": "У срока задачи должен быть часовой пояс.",
    "sales.task.manager_own_only": "Менеджер планирует задачи только себе.",
    "sales.task.next_needed": "Запланируйте следующий контакт с клиентом или попросите "
                              "руководителя согласовать прекращение работы.",
    "sales.task.reschedule_needs_reason": "Для переноса срока укажите причину.",
    "sales.task.stop_needs_reason": "Укажите, почему работу с клиентом нужно прекратить.",
    "sales.task.approve_bosses_only": "Прекращение работы с клиентом согласует руководитель или "
                                      "администратор.",
    "sales.task.refuse_bosses_only": "Отказать в прекращении работы может руководитель или "
                                     "администратор.",
    "sales.task.refuse_needs_reason": "Укажите причину отказа.",
    "sales.task.no_pending_stop": "Этот запрос уже рассмотрен.",

    # -- sales: deals, pipelines, stages, lose reasons, the plan (crm_core.sales.deals, ...) --
    "sales.stage.spec_no_name": "У этапа «{text}» нет названия.",
    "sales.stage.spec_kind_invalid": "Этап «{stage}»: вид задачи — call (звонок), email "
                                     "(письмо), meeting (встреча) или other (другое).",
    "sales.stage.spec_days_invalid": "Этап «{stage}»: срок задачи — целое число дней от 0 до 365.",
    "sales.stage.spec_assignee_invalid": "Этап «{stage}»: задача ставится владельцу сделки "
                                         "(owner) или руководителю (supervisor).",
    "sales.stage.not_found": "Этапа №{stage} нет.",
    "sales.stage.no_name": "Укажите название этапа.",
    "sales.stage.kind_invalid": "Вид задачи этапа — звонок, письмо, встреча или другое.",
    "sales.stage.closing_no_task": "У этапов «выиграна» и «проиграна» нет своей задачи.",
    "sales.stage.days_invalid": "Срок задачи — целое число дней от 0 до 365.",
    "sales.stage.assignee_invalid": "Задача этапа ставится владельцу сделки или руководителю.",
    "sales.stage.position_invalid": "Позиция — номер этапа в воронке, от 1 до {max}.",
    "sales.stage.closing_not_archivable": "Этапы «выиграна» и «проиграна» не архивируются.",
    "sales.stage.open_deals": "На этапе «{name}» остаются открытые сделки ({count}): сначала "
                              "перенесите их на другой этап.",
    "sales.pipeline.no_name": "Укажите название воронки.",
    "sales.pipeline.exists": "Воронка «{name}» уже есть.",
    "sales.pipeline.stages_needed": "В воронке нужны рабочие этапы, один этап «выиграна» и один "
                                    "«проиграна».",
    "sales.pipeline.first_stage_working": "Первым должен быть рабочий этап.",
    "sales.pipeline.not_found": "Воронки №{pipeline} нет.",
    "sales.pipeline.no_stages": "В воронке №{pipeline} нет этапов.",
    "sales.pipeline.open_deals": "В воронке «{name}» остаются открытые сделки ({count}): "
                                 "сначала закройте или перенесите их.",
    "sales.pipeline.needs_working_stage": "В воронке должен остаться хотя бы один рабочий этап.",
    "sales.reason.no_name": "Укажите причину проигрыша.",
    "sales.reason.not_found": "Причины проигрыша №{reason} нет.",
    "sales.deal.not_found": "Сделки №{deal} нет.",
    "sales.deal.client_not_found": "Клиента №{client} нет или он в архиве.",
    "sales.deal.no_title": "Укажите название сделки.",
    "sales.deal.manager_own_only": "Менеджер открывает сделки только на себя.",
    "sales.deal.others": "Это сделка другого менеджера.",
    "sales.deal.archived": "Сделка №{deal} в архиве.",
    "sales.deal.not_archived": "Сделка №{id} не в архиве.",
    "sales.deal.archived_already": "Сделка №{id} уже в архиве.",
    "sales.deal.closed": "Сделка №{deal} уже закрыта.",
    "sales.deal.amount_final": "Сделка №{deal} уже закрыта: её сумма окончательная.",
    "sales.deal.stage_foreign": "Этап №{stage} не из воронки этой сделки.",
    "sales.deal.stage_same": "Сделка уже на этом этапе.",
    "sales.deal.stage_archived": "Этап «{stage}» в архиве.",
    "sales.deal.won_needs_amount": "Для выигранной сделки укажите сумму больше нуля.",
    "sales.deal.lost_needs_reason": "Для проигранной сделки выберите причину из списка: {reasons}.",
    "sales.deal.no_lose_reasons": "Для проигранной сделки нужна причина, а список причин пуст: "
                                  "его пополняют в правилах продаж.",
    "sales.plan.kind_invalid": "План — сумма или количество сделок.",
    "sales.plan.count_not_whole": "План в сделках — целое число.",

    # -- sales: reports (crm_core.sales.reports) ----------------------------------------------
    "sales.reports.not_for_marketers": "Отчёты продаж недоступны маркетологам.",

    # -- sales: the API and pages (telecrm.sales) ---------------------------------------------
    "sales.role_no_clients": "Клиенты недоступны для вашей роли.",
    "sales.role_no_work": "Работа с клиентами недоступна для вашей роли.",
    "sales.payment.bosses_only": "Платежи вносит руководитель или администратор.",
    "sales.client.potential_nothing": "Укажите amount и/или contact_every_days.",
    "sales.deal.not_visible": "Такой сделки нет или она вам недоступна.",
    "sales.contact.not_visible": "Такого контакта нет или он вам недоступен.",
    "sales.pipeline.bosses_only": "Воронки меняет руководитель или администратор.",
    "sales.pipeline.nothing": "Нечего менять: укажите название или архив.",
    "sales.stage.nothing": "Нечего менять.",
    "sales.task.due_required": "Укажите {field}.",
    "sales.task.due_invalid": "Неверная дата: {field}.",
    "sales.task.no_client": "Эта задача не связана с клиентом.",
    "sales.task.stop_pending": "Запрос на прекращение работы с этим клиентом уже ждёт решения "
                               "руководителя.",
    "sales.task.stop_not_found": "Такого запроса нет.",

    # -- call tracking: numbers, sites, costs, the snippet (crm_core.calltracking) -----------
    "calltracking.for_marketers": "Коллтрекинг доступен маркетологам.",
    "calltracking.number_invalid": "{field:cap} «{value}» — не телефонный номер.",
    "calltracking.number_static": "{number} уже отслеживается как статический номер.",
    "calltracking.number_pooled": "{number} уже отслеживается как номер пула.",
    "calltracking.number_twice": "Номер указан дважды.",
    "calltracking.not_tracked": "{number} не отслеживается.",
    "calltracking.pool_empty": "Укажите хотя бы один номер для пула.",
    "calltracking.host_invalid": "«{value}» — не имя сайта (например, shop.example).",
    "calltracking.origin_invalid": "«{value}» — не адрес сайта (например, https://shop.example).",
    "calltracking.selector_invalid": "Селектор — CSS-селектор не длиннее 300 символов.",
    "calltracking.seconds_out_of_range": "{field:cap}: от {low} до {high} с.",
    "calltracking.channel_name": "Название канала — от 1 до 200 символов.",
    "calltracking.money_invalid": "{field:cap}: «{value}» — не число.",
    "calltracking.money_out_of_range": "{field:cap}: «{value}» — нужна неотрицательная сумма.",
    "calltracking.month_invalid": "«{value}» — не месяц (нужно ГГГГ-ММ).",
    "calltracking.months_reversed": "Первый месяц не может быть позже последнего.",
    "calltracking.costs_not_utf8": "Файл {path} не в кодировке UTF-8.",
    "calltracking.costs_header": "{path}: заголовок должен быть month,channel,amount.",
    "calltracking.costs_fields": "{path}, строка {line}: нужно три поля.",
    "calltracking.pool_too_many": "За один раз можно добавить не больше {max} номеров.",
    "calltracking.costs_too_many": "{path}: больше {max} строк — разделите файл.",
    "calltracking.costs_line": "{path}, строка {line}: {error:low}",
    "calltracking.grouping_invalid": "Группировка: {groupings}.",
    "calltracking.not_saved": "Не сохранено: {error}",
    "calltracking.not_loaded": "Не загружено: {error}",
    "calltracking.unknown_site": "Такого сайта нет.",
    "calltracking.origin_not_allowed": "Этому сайту не разрешено обращаться к коллтрекингу.",
    "calltracking.site_param": "Поле site — имя сайта.",
    "calltracking.client_ids": "client_ids — объект не больше чем из 5 идентификаторов.",
    "calltracking.client_ids_keys": "В client_ids допустимы ga и ym_uid (короткие "
                                    "идентификаторы).",
    "calltracking.client_id": "client_id — короткий идентификатор.",
    # costs from the ad systems' export files (crm_core.calltracking.cost_import)
    "calltracking.cost_file_encoding": "Файл {path} не в кодировке UTF-8.",
    "calltracking.cost_file_too_long": "Файл {path} длиннее {max} строк — разделите его.",
    "calltracking.cost_file_header": "В файле {path} нет строки с колонками даты и расхода — "
                                     "это не выгрузка {system}.",
    "calltracking.cost_file_campaign": "В файле {path} нет колонки с кампанией.",
    "calltracking.cost_file_empty": "В файле {path} нет ни одной строки расходов.",
    "calltracking.cost_file_date": "{path}, строка {line}: «{value}» — не дата.",
    "calltracking.cost_file_no_campaign": "{path}, строка {line}: не указана кампания.",
    "calltracking.cost_file_amount": "{path}, строка {line}: «{value}» — не сумма расхода.",
    "calltracking.cost_file_count": "{path}, строка {line}: «{value}» — не число кликов "
                                    "или показов.",
    "calltracking.cost_system": "Выберите рекламную систему: Яндекс Директ, VK Реклама "
                                "или Google Ads.",
    "calltracking.cost_file_missing": "Выберите файл выгрузки.",
    "calltracking.cost_file_too_big": "Файл {path} больше {megabytes} МБ.",
    # offline conversions (crm_core.calltracking.conversions)
    "conversions.system": "Выберите систему: Яндекс Метрика или Google Ads.",
    "conversions.counter": "Номер счётчика Метрики — только цифры.",
    "conversions.customer": "Номер аккаунта Google Ads — 10 цифр (можно с дефисами).",
    "conversions.action": "Идентификатор конверсии Google Ads — только цифры.",
    "conversions.goal": "Укажите цель: для звонков или для сделок.",
    "conversions.name": "Название цели или конверсии — не длиннее 200 символов.",
    "conversions.currency": "Валюта — три латинские буквы (RUB, USD, EUR).",
    "conversions.seconds": "Минимальная длительность разговора — от 0 до 3600 с.",
    "conversions.token": "Токен — одна строка не длиннее 1000 символов.",
    "conversions.file_kind": "Файл: metrica-calls, metrica-deals или google-ads.",

    # -- leads: site forms and callback requests (crm_core.calltracking.leads) ---------------
    "leads.kind_unknown": "Тип заявки — форма или обратный звонок.",
    "leads.name_invalid": "Имя — текст не длиннее {max:символа|символов|символов}.",
    "leads.phone_invalid": "«{value}» — не телефонный номер.",
    "leads.email_invalid": "«{value}» — не адрес электронной почты.",
    "leads.message_too_long": "Сообщение слишком длинное: не больше "
                              "{max:символа|символов|символов}.",
    "leads.message_invalid": "Сообщение содержит управляющие символы: уберите их.",
    "leads.phone_required": "Укажите номер телефона, чтобы мы перезвонили.",
    "leads.contact_required": "Укажите телефон или адрес электронной почты.",
    "leads.not_allowed": "Заявки доступны менеджерам, руководителям и маркетологам.",
    "leads.archive_not_allowed": "Убирать заявки в архив могут маркетологи и администраторы.",
    "leads.not_found": "Такой заявки нет.",

    # -- speech: audio, the Vosk model, sources of a call's audio (speech.*) -----------------
    "speech.audio.tool_missing": "Не установлен {tool}: без него записи не прочитать.",
    "speech.audio.no_file": "Файла {path} нет.",
    "speech.audio.unreadable": "{file} — не аудиофайл или он повреждён.",
    "speech.audio.undecodable": "{file} не читается как аудио ({detail}).",
    "speech.source.outside_root": "Путь записи «{path}» ведёт за пределы каталога записей.",
    "speech.source.missing_in_store": "Записи {key} нет в хранилище.",
    "speech.source.expired": "Запись удалена по сроку хранения.",
    "speech.source.no_recordings": "У звонка нет записей.",
    "speech.source.files_missing": "Файлов записи нет ({missing}), и сохранённой записи звонка "
                                   "тоже нет.",
    "speech.source.files_missing_status": "Файлов записи нет ({missing}), и сохранённой записи "
                                          "звонка тоже нет (обработка: {status}).",
    "speech.model.none": "Нет модели Vosk: укажите --model КАТАЛОГ или TELECRM_VOSK_MODEL "
                         "(см. speech/README.md).",
    "speech.model.not_a_model": "{path} — не каталог модели Vosk (нет am/ и conf/).",

    # -- speech: the KKP script YAML, transcripts, vocabulary (speech.script) -----------------
    "speech.script.at_line": "Строка {line}: {error:low}",
    "speech.script.in_file": "{path}: {error:low}",
    "speech.script.unknown_key": "Неизвестный ключ «{key}» (можно: {allowed}).",
    "speech.script.phrases_invalid": "phrases — непустой список фраз.",
    "speech.script.not_number": "{key} — неотрицательное число.",
    "speech.script.not_mapping": "Скрипт — словарь YAML со списком stages.",
    "speech.script.stage_no_id": "У этапа {n} нет id.",
    "speech.script.stage_twice": "Id этапа «{id}» встречается дважды.",
    "speech.script.required_bool": "required — true или false.",
    "speech.script.no_stages": "В скрипте нет этапов.",
    "speech.script.forbidden_not_list": "forbidden — список.",
    "speech.script.forbidden_no_id": "У запрета {n} нет id.",
    "speech.script.say_invalid": "say — список реплик (строк).",
    "speech.script.objections_not_list": "objections — список.",
    "speech.script.objection_no_title": "У возражения {n} нет title.",
    "speech.script.bad_yaml": "Это не YAML ({problem}).",
    "speech.script.not_yaml": "Это не YAML.",
    "speech.script.alias": "Ссылки YAML (* и &) в скрипте не поддерживаются — "
                           "напишите фразы полностью.",
    "speech.script.too_big": "В скрипте слишком много элементов (больше {max}).",
    "speech.script.too_long": "Скрипт слишком длинный.",
    "speech.script.unreadable": "Не удаётся прочитать скрипт {path}: {reason}",
    "speech.script.not_utf8": "Скрипт {path} не в кодировке UTF-8.",
    "speech.transcript.unreadable": "Не удаётся прочитать расшифровку {path}: {reason}",
    "speech.transcript.not_json": "Расшифровка {path} — не JSON.",
    "speech.transcript.no_speakers": "В расшифровке {path} нет speakers.",
    "speech.vocabulary.unreadable": "Не удаётся прочитать словарь {path}: {reason}",

    # -- speech: the QC queue and stored scripts (crm_core.speech, telecrm.speech) ------------
    "speech.qc_role": "Контроль качества недоступен для вашей роли.",
    "speech.no_transcript": "У этого звонка ещё нет расшифровки.",
    "speech.role_no_transcripts": "Расшифровки недоступны для вашей роли.",
    "speech.search.query_required": "Введите слова, которые нужно найти в разговорах.",
    "speech.search.too_many_words": "В поиске не больше {max:слова|слов|слов}.",
    "speech.search.bad_speaker": "Кто говорил: менеджер или клиент.",
    "speech.alerts.bosses_only": "Оповещения настраивают руководители отделов и администраторы.",
    "speech.alerts.own_team_only": "Руководитель отдела задаёт правила только для своего отдела.",
    "speech.alerts.bad_speaker": "Кто сказал: клиент, менеджер или любой.",
    "speech.alerts.rule_not_found": "Такого правила нет.",
    "speech.alerts.not_found": "Такого оповещения нет.",
    "speech.alerts.no_team": "Такого отдела нет.",
    "speech.dictionaries.bosses_only": "Словари меняют руководители отделов и администраторы.",
    "speech.dictionaries.not_found": "Такого словаря нет.",
    "speech.dictionaries.name_required": "Укажите название словаря.",
    "speech.dictionaries.name_taken": "Словарь «{name}» уже есть.",
    "speech.dictionaries.phrases_required": "Добавьте в словарь хотя бы одну фразу.",
    "speech.dictionaries.phrase_too_long": "Фраза «{phrase}» слишком длинная: не больше "
                                           "{max:символа|символов|символов}.",
    "speech.dictionaries.phrase_no_words": "В «{phrase}» нет ни одного слова.",
    "speech.dictionaries.too_many_phrases": "В словаре не больше {max:фразы|фраз|фраз}.",
    "speech.review.bosses_only": "Решение по нарушению принимает руководитель отдела менеджера.",
    "speech.review.decision_invalid": "Решение — confirmed (подтвердить) или dismissed "
                                      "(отклонить).",
    "speech.review.decision_not_string": "decision и reason — строки.",
    "speech.review.dismissal_needs_reason": "Укажите причину, чтобы отклонить нарушение.",
    "speech.review.result_not_found": "Такой проверки звонка нет или она вам недоступна.",
    "speech.review.violation_not_found": "В этой проверке нет такого нарушения.",
    "speech.review.confirmed_already": "Это нарушение уже подтверждено.",
    "speech.review.dismissed_already": "Это нарушение уже отклонено.",
    "speech.appeal.fine_not_found": "Такого штрафа нет или он вам недоступен.",
    "speech.appeal.not_a_fine": "Оспорить можно только подтверждённый штраф.",
    "speech.appeal.reason_required": "Напишите, почему вы не согласны со штрафом.",
    "speech.appeal.own_fines_only": "Оспорить штраф может только оштрафованный менеджер.",
    "speech.appeal.filed_already": "Этот штраф уже оспорен.",
    "speech.appeal.bosses_only": "Апелляцию рассматривает руководитель отдела или "
                                 "администратор.",
    "speech.appeal.decision_invalid": "Решение по апелляции — cancelled (отменить штраф) "
                                      "или kept (оставить).",
    "speech.appeal.comment_required": "Напишите комментарий к решению.",
    "speech.appeal.not_own_confirmation": "Апелляцию рассматривает не тот, кто подтвердил "
                                          "штраф.",
    "speech.appeal.not_found": "Этот штраф не оспаривали.",
    "speech.appeal.decided_already": "По этой апелляции уже принято решение.",
    "speech.appeal.not_string": "decision, reason и comment — строки.",
    "speech.scorecard.too_many": "В карточке не больше {max:пункта|пунктов|пунктов}.",
    "speech.scorecard.title_required": "У пункта {n} нет названия.",
    "speech.scorecard.title_too_long": "Название пункта {n} длиннее "
                                       "{max:символа|символов|символов}.",
    "speech.scorecard.weight_invalid": "Вес пункта {n} — целое число от 1 до {max}.",
    "speech.scorecard.no_checkpoints": "Нужен хотя бы один пункт с весом (не «провал "
                                       "сразу»).",
    "speech.scorecard.bosses_only": "Карточки оценки составляют руководители и "
                                    "администраторы.",
    "speech.scorecard.own_team_only": "Руководитель составляет карточку только для своего "
                                      "отдела.",
    "speech.scorecard.name_required": "Укажите название карточки.",
    "speech.scorecard.no_team": "Отдела «{team}» нет.",
    "speech.scorecard.items_not_list": "items — список пунктов.",
    "speech.scorecard.reviewers_only": "Оценивают звонки руководители и администраторы.",
    "speech.scorecard.version_changed": "Карточку оценки изменили: откройте звонок заново.",
    "speech.scorecard.not_found": "Такой карточки оценки нет.",
    "speech.scorecard.unanswered": "Ответьте на пункт «{item}».",
    "speech.scorecard.all_not_applicable": "Хотя бы один пункт с весом должен подходить к "
                                           "звонку.",
    "speech.calibration.bosses_only": "Калибровка доступна руководителям и администраторам.",
    "speech.sample.bosses_only": "Выборку настраивают руководители и администраторы.",
    "speech.sample.own_team_only": "Руководитель настраивает выборку только своего отдела.",
    "speech.sample.count_out_of_range": "Звонков на менеджера — от 0 до {max}.",
    "speech.scorecard.body_invalid": "scorecard_id — число, answers — объект, comment — "
                                     "строка.",
    "speech.scenario.not_yours": "Сценарии звонков читают менеджеры и руководители продаж.",
    "speech.scripts.bosses_only": "Скрипты загружают руководители и администраторы.",
    "speech.scripts.own_team_only": "Руководитель загружает скрипты только для своего отдела.",
    "speech.scripts.text_required": "Нужен текст скрипта (YAML).",
    "speech.scripts.too_long": "Скрипт слишком длинный.",
    "speech.scripts.invalid": "Ошибка в скрипте: {error:low}",
    "speech.scripts.fine_not_whole": "Штраф — целое число рублей.",
    "speech.scripts.fine_out_of_range": "Штраф — от 0 до 1 000 000 ₽.",
    "speech.scripts.fine_negative": "Штраф не может быть отрицательным.",
    "speech.scripts.no_team": "Отдела «{team}» нет.",
    "speech.scripts.not_found": "Такой версии скрипта нет.",
    "speech.scripts.upload_not_utf8": "Файл не в кодировке UTF-8.",
    "speech.scripts.not_saved": "Скрипт не сохранён: {error:low}",

    # -- the command line (telecrm.cli, telecrm.cli_support, telecrm.<feature>.cli) ----------
    "cli.date_required": "Укажите {option} — дату в формате ГГГГ-ММ-ДД.",
    "cli.users_nothing_to_change": "Нечего менять: укажите --name, --role, --team, "
                                   "--extension, --device или --mobile.",
    "cli.not_a_date": "«{value}» — не дата (нужно ГГГГ-ММ-ДД).",
    "cli.not_whole": "«{value}» — не целое число от 0 и больше.",
    "cli.team_or_company": "Укажите либо --team, либо --company, но не оба сразу.",
    "cli.team_required": "Укажите --team (название или номер отдела; --company — правила всей "
                         "компании).",
    "cli.team_not_found": "Отдела «{team}» нет (есть: {known}).",
    "cli.talktime_nothing_to_change": "Нечего менять: укажите --target-minutes, --weekdays, "
                                      "--min-call-seconds, --fine, --day-start или --day-end.",
    "cli.no_such_file": "Файла {path} нет.",
    "cli.not_utf8": "Файл {path} не в кодировке UTF-8.",
    "cli.recordings_days_need_team": "Для --days укажите отдел: --team НАЗВАНИЕ.",
    "cli.no_team": "Отдела «{team}» нет.",
    "cli.no_user": "Пользователя «{user}» нет (укажите логин или внутренний номер).",
    "cli.potential_nothing": "Укажите СУММУ или --contact-every ДНЕЙ.",
    "cli.not_key_value": "«{value}» — не КЛЮЧ=ЗНАЧЕНИЕ.",
    "cli.not_a_month": "«{value}» — не месяц (нужно ГГГГ-ММ).",
    "cli.not_a_moment": "«{value}» — не дата (ГГГГ-ММ-ДД) и не время ISO 8601.",
    "cli.timezone_unknown": "Неизвестный часовой пояс «{timezone}» в TELECRM_TIMEZONE.",
    "cli.database_url_invalid": "«{url}» — не адрес базы данных.",
    "cli.database_unusable": "Базой данных {database} нельзя пользоваться: {reason}",
    "cli.recordings_store": "Хранилище записей (TELECRM_RECORDINGS_STORE) не открывается: {reason}",
    "cli.files_or_backlog": "Укажите либо файлы, либо --backlog, но не то и другое.",
    "cli.transcribe_nothing": "Укажите файлы для распознавания или --backlog — все звонки "
                              "без расшифровки.",

    # -- settings of the server (telecrm.settings: TELECRM_* and the TOML file) --------------
    "settings.file_unreadable": "Не удаётся прочитать файл настроек {path}: {reason}",
    "settings.unknown": "Неизвестная настройка «{name}».",
    "settings.bad_value": "Настройка {name}: непригодное значение «{value}».",
    # -- metrics (telecrm.metrics) ----------------------------------------------------
    "metrics.admins_only": "Метрики системы доступны только администратору.",
    "metrics.bad_token": "Неверный токен сборщика метрик.",
    "activities.bosses_only": "Это доступно руководителю или администратору.",
    "activities.bad_period": "Проверьте даты: «с» не позже «по», не больше {days:дня|дней|дней}.",
    "outcomes.nothing_to_change": "Укажите новое название итога или отправьте его в архив.",
    "people.no_such_user": "Такого пользователя нет.",
    "talktime.bar_managers_only": "Норма разговора — только у менеджеров.",
    # -- the pipeline form's stage rows (telecrm.sales.deals_pages) --
    "sales.stage_form.incomplete": "Форма этапов пришла неполной: обновите страницу.",
    "sales.stage_form.kind": "Этап «{name}»: выберите вид этапа из списка.",
    "sales.stage_form.task": "Этап «{name}»: выберите задачу из списка.",
    "sales.stage_form.days": "Этап «{name}»: срок задачи — целое число дней от 0 до 365.",
    "sales.stage_form.assignee": "Этап «{name}»: выберите, кому ставится задача.",
    # -- the client card, call outcomes, tasks' due times, people --
    # the client card: notes, logged contacts (crm_core.activities.notes)
    "activities.empty_note": "Напишите текст заметки.",
    "activities.empty_result": "Опишите, о чём было письмо или чем закончилась встреча.",
    "activities.too_long": "Слишком длинный текст: не больше {limit} знаков.",
    "activities.no_client": "Такого клиента нет.",
    "activities.unknown_kind": "Выберите: письмо отправлено, письмо получено или встреча.",
    "activities.bad_time": "Укажите дату и время.",
    "activities.in_future": "Контакт ещё не состоялся: время не может быть в будущем.",
    "activities.not_yours": "Убрать запись может её автор или руководитель.",
    # call outcomes (crm_core.activities.outcomes)
    "outcomes.not_allowed": "Список итогов меняет руководитель или администратор.",
    "outcomes.empty_name": "Укажите название итога.",
    "outcomes.too_long": "Слишком длинное название: не больше {limit} знаков.",
    "outcomes.name_taken": "Итог «{name}» уже есть в списке.",
    "outcomes.not_found": "Такого итога нет в списке.",
    "outcomes.archived": "Итог «{name}» убран в архив: выберите другой.",
    "outcomes.not_a_client_call": "У внутреннего звонка итога не бывает.",
    "outcomes.call_in_progress": "Звонок ещё идёт: итог указывается после него.",
    # «Обзвон» (crm_core.dialer, telecrm.dialer)
    "dialer.managers_only": "Обзвон — для менеджеров со своим внутренним номером.",
    "dialer.bosses_only": "Это видит руководитель отдела или администратор.",
    "dialer.no_session": "Обзвон не начат: нажмите «Начать обзвон».",
    "dialer.no_current_task": "Сейчас некому звонить: список на сегодня пройден.",
    "dialer.call_in_progress": "Звонок ещё идёт: дождитесь его окончания.",
    "dialer.paused": "Обзвон на паузе: нажмите «Продолжить».",
    "dialer.not_a_dialer_call": "Этот звонок не относится к текущему клиенту обзвона.",
    "dialer.client_no_phone": "У клиента «{client}» нет номера телефона.",
    "dialer.rules_out_of_range": "Поле «{field}»: укажите целое число от {low} до {high}.",
    "dialer.rules_own_team": "Руководитель задаёт правила только своего отдела.",
    "dialer.rules_bosses_only": "Правила повторных звонков задаёт руководитель или "
                                "администратор.",
    "dialer.team_not_found": "Такого отдела нет.",
    # tasks (crm_core.sales.tasks)
    "tasks.due_in_past": "Это время уже прошло: выберите срок в будущем.",
    "tasks.assignee_not_manager": "{name} не менеджер: задачи ставятся менеджерам.",
    "tasks.assignee_not_in_team": "{name} не из вашего отдела: выберите менеджера своего "
                                  "отдела.",
    "tasks.assignee_cannot_open_client": "{name} не может открыть карточку клиента "
                                         "«{client}»: выберите того, кто с ним работает.",
    # people: users, teams, passwords (crm_core.people, telecrm.passwords)
    "people.admin_only": "Пользователями и отделами управляет администратор.",
    "people.list_not_allowed": "Список пользователей и их телефонов видят руководитель (свой "
                               "отдел) и администратор.",
    "people.user_not_found": "Пользователя «{username}» нет.",
    "people.team_not_found": "Такого отдела нет.",
    "people.username_invalid": "Логин — от 1 до 100 символов без пробелов.",
    "people.username_taken": "Логин «{username}» уже занят.",
    "people.role_unknown": "Неизвестная роль «{role}»: выберите менеджера, руководителя, "
                           "маркетолога или администратора.",
    "people.extension_invalid": "Внутренний номер — от 2 до 8 цифр, а не «{extension}».",
    "people.device_invalid": "Телефон в Asterisk записывается как технология/имя, например "
                             "PJSIP/ivanov или SIP/150010001, а не «{device}».",
    "people.mobile_invalid": "«{mobile}» — не номер телефона.",
    "people.device_taken": "Телефон {value} уже закреплён за пользователем {user}.",
    "people.mobile_taken": "Мобильный номер {value} уже закреплён за пользователем {user}.",
    "people.extension_taken": "Внутренний номер {extension} уже занят: он у пользователя "
                              "{user}.",
    "people.name_empty": "Укажите имя.",
    "people.team_name_empty": "Укажите название отдела.",
    "people.team_name_taken": "Отдел «{team}» уже есть.",
    "people.last_admin": "{user} — последний действующий администратор: без него "
                         "пользователями некому будет управлять.",
    "people.deactivate_self": "Отключить самого себя нельзя.",
    "people.already_inactive": "Пользователь {user} уже отключён.",
    "people.already_active": "Пользователь {user} и так активен.",
    "people.head_not_supervisor": "Руководителем отдела может быть только действующий "
                                  "пользователь с ролью «Руководитель», а {user} — нет.",
    "people.password_short": "Пароль должен быть не короче {min} символов.",
    "people.password_wrong": "Текущий пароль введён неверно.",
    "people.password_mismatch": "Новый пароль и его повтор не совпадают.",
    "people.password_same": "Новый пароль должен отличаться от прежнего.",
    "people.password_change_required": "Сначала смените временный пароль: до этого "
                                       "остальное недоступно.",
    # clients (crm_core.clients, telecrm.clients)
    "clients.name_required": "Укажите название клиента.",
    "clients.contact_name_required": "Укажите имя контактного лица.",
    "clients.too_long": "Слишком длинное значение: сократите его и сохраните ещё раз.",
    "clients.unknown_field": "Такого поля в карточке клиента нет.",
    "clients.not_text": "Поля карточки заполняются текстом.",
    "clients.inn_invalid": "ИНН «{inn}» неверный: нужно 10 цифр у организации или 12 у "
                           "предпринимателя, и контрольные цифры должны сходиться.",
    "clients.kpp_invalid": "КПП «{kpp}» неверный: нужно 9 знаков, например 773601001.",
    "clients.email_invalid": "«{email}» — не адрес электронной почты.",
    "clients.phone_taken": "Этот номер уже у клиента «{client}» ({phone}).",
    "clients.contact_not_found": "Такого контактного лица у клиента нет.",
    "clients.bad_cursor": "Ссылка на страницу списка устарела: откройте список заново.",
    "clients.bad_filter": "Неверный фильтр списка клиентов.",
    "clients.not_for_role": "Клиенты недоступны для вашей роли.",
    "clients.edit_not_allowed": "Менять эту карточку может её ответственный менеджер или "
                                "его руководитель.",
    "clients.owner_invalid": "Ответственным можно назначить только менеджера своего отдела.",
    "clients.potential_invalid": "«{value}» — не сумма годового потенциала.",
    "clients.potential_not_allowed": "Годовой потенциал задаёт руководитель отдела.",
    "clients.contact_archive_not_allowed": "Убрать контактное лицо в архив может руководитель "
                                           "или администратор.",
    "clients.potential_not_amount": "Годовой потенциал — сумма в рублях.",
    "clients.contacts_list": "Контактные лица передаются списком объектов.",
    "clients.contacts_elsewhere": "Контактных лиц меняют отдельно: /api/clients/{{id}}/contacts.",
    "clients.card_too_many_items": "За один раз можно записать не больше {max} телефонов и "
                                   "адресов почты вместе с контактными лицами; остальные "
                                   "добавьте в карточке.",
    "clients.contacts_too_many": "С новой карточкой можно добавить не больше {max} контактных "
                                 "лиц; остальных добавьте в карточке.",
    "clients.reassign_not_allowed": "Передавать клиентов может руководитель или администратор.",
    "clients.create_not_allowed": "Создавать клиентов может менеджер, руководитель или "
                                  "администратор.",
    "clients.merge_pick": "Выберите клиента, которого объединить с этим.",
    "clients.merge_same": "Нельзя объединить клиента с самим собой.",
    "clients.merge_archived": "Клиент «{client}» в архиве: объединять можно только работающих "
                              "клиентов.",
    "clients.merge_not_allowed": "Объединять клиентов может руководитель или администратор.",
    "clients.merge_not_in_team": "Клиент «{client}» не из вашего отдела.",

    # the call log's filters (telecrm.calls)
    "calls.filter_too_long": "Слишком длинное значение в поле «{label}».",
    "calls.bad_number_field": "В поле «{label}» нужно целое число, а не «{value}».",
    "calls.bad_choice": "В поле «{label}» нет варианта «{value}».",
    "calls.bad_moment": "«{value}» — не дата. Укажите дату в поле «{label}».",
    "calls.period_reversed": "Начало периода позже его конца.",
    "calls.period_too_long": "Выберите период не длиннее {days:дня|дней|дней}.",
    "calls.unknown_manager": "Такого сотрудника нет в вашем списке.",
    "calls.unknown_team": "Такой команды нет в вашем списке.",
    "calls.unknown_client": "Такого клиента нет или он вам недоступен.",
    "calls.client_name_too_broad": "Под «{text}» подходит слишком много клиентов — "
                                   "уточните название.",
    "calls.bad_phone": "«{number}» — не номер телефона. Напишите номер целиком, "
                       "например +7 926 555-00-99.",
    "calls.recordings_not_allowed": "Фильтры по записям и проверкам скрипта недоступны "
                                    "для вашей роли.",
    "calls.log_not_allowed": "Журнал звонков недоступен для вашей роли: источники звонков "
                             "— в коллтрекинге.",
    "calls.bad_cursor": "Ссылка на страницу списка устарела — откройте список заново.",
    "calls.bad_sort": "Такой сортировки нет.",
    # several PBXs (telecrm pbx ...)
    "pbx.bad_name": "Название АТС — до 40 строчных латинских букв, цифр, «-» или «_», "
                    "начиная с буквы или цифры (например, spb).",
    "pbx.bad_host": "Укажите адрес АТС без пробелов (например, 10.0.2.15 или pbx.spb.local).",
    "pbx.bad_port": "Порт AMI — число от 1 до 65535 (обычно 5038).",
    "pbx.bad_user": "Укажите пользователя AMI (раздел manager.conf).",
    "pbx.name_taken": "АТС «{name}» уже есть; измените её командой telecrm pbx edit.",
    "pbx.not_found": "АТС «{name}» нет; список — telecrm pbx list.",
    # missed calls (telecrm.missed)
    "missed.rules_not_allowed": "Срок перезвона команды меняет её руководитель или "
                                "администратор.",
    "missed.minutes_out_of_range": "Срок перезвона — от {low} до {high} минут.",
    "missed.report_not_allowed": "Отчёт о пропущенных звонках недоступен для вашей роли.",
    "missed.mail_not_allowed": "Почтовый сервер и адреса сотрудников настраивает администратор.",
    "missed.mail_host_missing": "Укажите адрес SMTP-сервера.",
    "missed.mail_port_invalid": "Порт SMTP — число от 1 до 65535 (обычно 587 или 25).",
    "missed.mail_security_invalid": "Шифрование — STARTTLS или без шифрования.",
    "missed.email_invalid": "«{email}» — не адрес электронной почты.",
    "missed.team_unknown": "Команды «{team}» нет.",
    "missed.mail_not_configured": "Почтовый сервер не настроен: telecrm mail set.",
    "missed.mail_failed": "Письмо не отправлено: {reason}",
    # presence: «на месте», pauses and their reasons
    "presence.reasons_for_bosses": "Причины паузы настраивает руководитель отдела или "
                                   "администратор.",
    "presence.reason_name_empty": "Укажите название причины.",
    "presence.reason_name_long": "Название причины — не длиннее {limit} символов.",
    "presence.reason_name_taken": "Причина «{name}» уже есть.",
    "presence.reason_not_found": "Такой причины паузы нет.",
    "presence.not_yours": "Статус менеджера меняет он сам, его руководитель или "
                          "администратор.",
    "presence.no_phone": "У пользователя {name} нет внутреннего номера: ему не из чего "
                         "уходить на паузу.",
    "presence.role_no_access": "Присутствие менеджеров недоступно для вашей роли.",
    "presence.state_invalid": "Статус — «на месте» или одна из причин паузы.",
    "presence.user_invalid": "Менеджер указан неверно.",
    "presence.user_not_found": "Такого менеджера нет.",
    "presence.flag_invalid": "Укажите «да» или «нет».",
    # sticky routing: a known client's call rings his owner first
    "routing.own_team_only": "Руководитель включает звонки своему менеджеру только для своего "
                             "отдела.",
    "routing.for_bosses": "Это настраивает руководитель отдела или администратор.",
    "routing.team_not_found": "Такого отдела нет.",
    "routing.ring_seconds": "Сколько звонить менеджеру: от {low} до {high} секунд.",
    "routing.did_invalid": "«{number}» — не номер телефона.",
    "routing.token_weak": "Токен АТС — не короче 16 знаков: латинские буквы, цифры, «-» и «_».",
    "routing.flag_invalid": "Укажите «да» или «нет».",
    "routing.did_mode_invalid": "Выберите, что делать со звонками на номер: сначала своему "
                                "менеджеру, всегда в очередь или как у отдела.",
    # backups: telecrm backup / telecrm restore
    "backup.no_such_dir": "Папки {path} нет.",
    "backup.no_manifest": "В папке {path} нет описи manifest.json: это не резервная копия "
                          "Telecrm или её создание не завершилось. Ничего не восстановлено.",
    "backup.manifest_unreadable": "Опись {path} повреждена или это не опись резервной копии "
                                  "Telecrm. Ничего не восстановлено.",
    "backup.file_damaged": "Резервная копия повреждена: файл {file} отсутствует или не совпадает "
                           "контрольная сумма. Ничего не восстановлено.",
    "backup.recording_not_in_store": "Записи разговора {path} нет в хранилище записей. Ничего "
                                     "не восстановлено.",
    "backup.recording_changed_in_store": "Запись разговора {path} в хранилище отличается от "
                                         "той, что была при копировании. Ничего не "
                                         "восстановлено.",
    "backup.database_not_empty": "База данных {database} не пустая: копию восстанавливают "
                                 "только в пустую базу. Ничего не записано.",
    "backup.other_backend": "Копия сделана из базы {backup}, а восстанавливается в {database}: "
                            "нужна база того же вида.",
    "backup.dir_not_empty": "Папка {path} не пустая: резервная копия пишется в новую или "
                            "пустую папку.",
    "backup.no_database": "Базы данных {database} нет: копировать нечего.",
    "backup.sqlite_in_memory": "Базу в памяти не скопировать: укажите файл SQLite.",
    "backup.sqlite_check_failed": "Копия базы SQLite не прошла проверку целостности: {reason}",
    "backup.pg_tool_missing": "Не установлена программа {tool} (пакет postgresql-client).",
    "backup.pg_tool_failed": "{tool} завершилась с ошибкой: {reason}",

    # -- integrations: API tokens, webhooks (crm_core.integrations, telecrm.integrations) ----
    "integrations.admin_only": "API-токенами и вебхуками управляет администратор.",
    "integrations.name_missing": "Укажите название.",
    "integrations.scope_unknown": "Неизвестное право доступа «{scope}».",
    "integrations.scopes_missing": "Отметьте хотя бы одно право: чтение или запись раздела.",
    "integrations.token_user_unknown": "Выберите активного пользователя, от имени которого "
                                       "действует токен.",
    "integrations.token_not_found": "Такого токена нет.",
    "integrations.token_invalid": "Токен API неизвестен или отозван.",
    "integrations.token_route_refused": "Этот запрос нельзя выполнить с токеном API: "
                                        "войдите в систему.",
    "integrations.token_scope_missing": "У токена нет права «{feature} — {access}».",
    "integrations.url_invalid": "Укажите адрес, начинающийся с http:// или https://.",
    "integrations.url_credentials": "Уберите логин и пароль из адреса: подпись запросов "
                                    "секретом заменяет их.",
    "integrations.url_private": "Адрес {host} — в локальной сети: CRM отправляет события "
                                "только на адреса в интернете (разрешить локальные — "
                                "настройка TELECRM_WEBHOOKS_ALLOW_PRIVATE).",
    "integrations.event_unknown": "Неизвестное событие: {event}.",
    "integrations.events_missing": "Отметьте хотя бы одно событие.",
    "integrations.endpoint_not_found": "Такого получателя вебхуков нет.",
    "integrations.delivery_not_found": "Такой отправки нет.",
    "integrations.delivery_waiting": "Эта отправка и так уходит в ближайшие секунды.",
    "integrations.attempt_network": "Не удалось соединиться: {reason}",
    "integrations.attempt_timeout": "Получатель не ответил за {seconds} с.",
    "integrations.attempt_redirect": "Получатель ответил перенаправлением; перенаправления не "
                                     "выполняются — укажите конечный адрес.",
    "integrations.attempt_status": "Получатель ответил ошибкой HTTP {status}.",
}

# What a command of ``telecrm`` prints when it has done its work: code -> sentence, filled
# as MESSAGES are (``{n:клиент|клиента|клиентов}``, ``{n:~создан|созданы|создано}``,
# ``{amount:money}``); printed through :func:`done`. Machine output (JSON, CSV) is not here.
DONE: dict[str, str] = {
    # -- telecrm.cli ---------------------------------------------------------------------------
    "db.upgraded": "База данных в актуальном состоянии.",
    "clients.imported": "{imported:~Импортирован|Импортировано|Импортировано} "
                        "{imported:клиент|клиента|клиентов}, "
                        "{updated:~обновлён|обновлено|обновлено} "
                        "{updated:клиент|клиента|клиентов}.",
    "clients.rows_skipped": "{rows:~Не импортирована|Не импортированы|Не импортировано} "
                            "{rows:строка|строки|строк}.",
    "ami.replayed": "Воспроизведено {events:событие|события|событий} AMI: "
                    "{ended:~завершён|завершены|завершено} {ended:звонок|звонка|звонков}, "
                    "не завершено к концу записи — {open}.",
    "users.created": "Пользователь {username} ({role}) создан.",
    "tokens.created": "Токен «{name}» для {user} создан и выведен один раз: сохраните его.",
    "tokens.revoked": "Токен «{name}» отозван: запросы с ним больше не принимаются.",
    "talktime.day_closed": "{day}: {count:новое нарушение|новых нарушения|новых нарушений} "
                           "нормы разговоров.",
    "recordings.retention_done": "{removed:~Удалена|Удалены|Удалено} "
                                 "{removed:запись|записи|записей} разговоров с истёкшим сроком "
                                 "хранения.",
    "recordings.finalized": "Записи разговоров: сохранено — {stored}, не удалось — {failed}, "
                            "ждут следующей попытки — {waiting}.",
    "recordings.nothing_to_finalize": "Записей разговоров, ждущих обработки, нет.",
    "demo.sandbox_unavailable": "Asterisk-песочница здесь не запускается: {reason}",

    # -- telecrm.sales.cli ---------------------------------------------------------------------
    "payments.added": "Платёж №{id}: {amount:money} от клиента №{client}, {day}.",
    "payments.imported": "{booked:~Проведён|Проведены|Проведено} "
                         "{booked:платёж|платежа|платежей} на {total:money}; "
                         "уже были проведены раньше: {skipped}.",
    "invoices.added": "Счёт №{number} на {amount:money} выставлен клиенту №{client}.",
    "clients.recomputed": "{clients:~Пересчитан|Пересчитаны|Пересчитано} "
                          "{clients:клиент|клиента|клиентов}: "
                          "{changed:~сменился|сменились|сменилось} "
                          "{changed:статус|статуса|статусов}, "
                          "{abc:~сменилась|сменились|сменилось} {abc:группа|группы|групп} ABC.",
    "clients.potential_set": "Клиент №{client}: годовой потенциал {potential:money}, группа "
                             "{group}, контакт раз в {days:день|дня|дней}.",
    "clients.potential_set_group_days": "Клиент №{client}: годовой потенциал "
                                        "{potential:money}, группа {group}, частота контактов "
                                        "— по правилам группы.",
    "clients.reassigned": "{moved:~Передан|Переданы|Передано} {moved:клиент|клиента|клиентов}.",
    "clients.archived": "Клиент №{client} перенесён в архив.",
    "clients.restored": "Клиент №{client} возвращён из архива.",
    "deals.pipeline_added": "Воронка №{id} «{name}»: {stages:этап|этапа|этапов}.",
    "deals.reason_added": "Причина проигрыша №{id}: «{name}».",
    "deals.plan_amount": "План на {month}: выигранные сделки на {target:money}.",
    "deals.plan_count": "План на {month}: {target:выигранная сделка|выигранные сделки|"
                        "выигранных сделок}.",

    # -- telecrm.calltracking.cli --------------------------------------------------------------
    "ct.static_added": "Статический номер {did} отслеживает канал «{channel}».",
    "ct.pool_added": "Сайт {host}: в пуле {numbers:номер|номера|номеров}.",
    "ct.costs_imported": "{count:~Загружен|Загружены|Загружено} "
                         "{count:месячный расход|месячных расхода|месячных расходов}.",
    "ct.static_archived": "Статический номер больше не отслеживается; его история сохранена.",
    "ct.pool_archived": "Номер убран из пула сайта; его история сохранена.",
    "ct.attributed": "Источник определён для {count:звонка|звонков|звонков}.",
    "ct.campaign_costs_imported": "{system}, {file}: {rows:строка|строки|строк}; новых "
                                  "{created}, заменено {replaced}, без изменений {unchanged}.",
    "conversions.sent": "{system}: отправлено {sent}, не удалось {failed}, отклонено {rejected}.",
    "conversions.nothing": "{system}: отправлять нечего.",
    "conversions.saved": "{system}: настройки сохранены.",

    # -- telecrm.talktime.cli ------------------------------------------------------------------
    "talktime.holidays_imported": "{added:~Добавлен|Добавлены|Добавлено} "
                                  "{added:праздничный день|праздничных дня|праздничных дней}; "
                                  "уже были в календаре: {skipped}.",
    "talktime.holiday_removed": "{day} снова рабочий день (праздник перенесён в архив).",
    "talktime.absence_cancelled": "Отсутствие №{id} отменено (перенесено в архив).",
    "talktime.rollup_done": "Итоги разговоров посчитаны и сохранены: "
                            "{days:день|дня|дней} менеджеров.",

    # -- telecrm.speech.cli (transcribe --backlog) ---------------------------------------------
    "speech.sample.drawn": "В выборку недели с {week} {count:~отобран|отобрано|отобрано} "
                           "{count:звонок|звонка|звонков}.",
    "speech.nothing_to_transcribe": "Расшифровывать нечего: у каждого звонка с записью уже "
                                    "есть расшифровка.",
    "speech.call_failed": "Звонок №{call}: {reason}",
    "speech.progress": "{done} из {total:звонка|звонков|звонков}{failed}, аудио {hours} ч из "
                       "{hours_total} ч, осталось около {eta}",
    "speech.progress_failed": ", с ошибкой — {failed}",
    # -- telecrm.pbxes.cli -----------------------------------------------------------------------
    "pbx.added": "АТС «{pbx}» добавлена ({address}). Перезапустите сервер ({command}), "
                 "чтобы начать её слушать.",
    "pbx.edited": "АТС «{pbx}» изменена. Перезапустите сервер ({command}).",
    "pbx.enabled": "АТС «{pbx}» включена. Перезапустите сервер ({command}).",
    "pbx.disabled": "АТС «{pbx}» отключена, её звонки остаются в журнале. Перезапустите "
                    "сервер ({command}).",
    # -- telecrm.missed.cli ----------------------------------------------------------------------
    "missed.mail_saved": "Почтовый сервер сохранён: {host}:{port}, отправитель {sender}.",
    "missed.address_saved": "Уведомления для {user} приходят на {email}.",
    "missed.address_removed": "Уведомления для {user} — только в браузере.",
    "missed.limit_saved": "Команда «{team}»: если за {minutes} мин не перезвонили, "
                          "руководитель получит уведомление.",
    "missed.mail_sent": "Проверочное письмо отправлено на {email}.",
    # -- telecrm routing -----------------------------------------------------------------------
    "routing.team_on": "Отдел «{team}»: звонки известных клиентов сначала идут их менеджеру "
                       "({ring} с), потом в очередь.",
    "routing.team_off": "Отдел «{team}»: звонки идут как настроено в АТС.",
    "routing.did_on": "Номер {number}: звонки известных клиентов сначала идут их менеджеру, "
                      "что бы ни было у отдела.",
    "routing.did_off": "Номер {number}: звонки всегда идут как настроено в АТС.",
    "routing.did_team": "Номер {number}: как у отдела ответственного менеджера.",
    # -- telecrm.backup.cli ----------------------------------------------------------------------
    "backup.created": "Резервная копия готова: {path} — база {backend}, "
                      "{calls:звонок|звонка|звонков}, {audit:запись|записи|записей} журнала "
                      "изменений, {recordings:файл|файла|файлов} записей разговоров.",
    "backup.problem_missing": "Звонок №{call}: файла записи {path} нет, в копию он не попал.",
    "backup.problem_checksum": "Звонок №{call}: запись {path} в хранилище изменилась после "
                               "сохранения (контрольная сумма не совпала); в копии — то, что "
                               "лежит в хранилище.",
    "backup.problem_other_store": "Звонок №{call}: запись {path} лежит в другом хранилище "
                                  "({backend}), в копию она не попала.",
    "backup.restored": "База данных восстановлена из копии от {created}: "
                       "{calls:звонок|звонка|звонков}, {audit:запись|записи|записей} журнала "
                       "изменений.",
    "backup.migrated": "Схема базы обновлена с версии {old} до {new}.",
    "backup.recordings_restored": "Записи разговоров: в хранилище возвращено — {stored}, "
                                  "исходных файлов АТС — {originals}, остались в облачном "
                                  "хранилище и проверены — {bucket}.",
}

# What a ``field`` param names, as a sentence calls it (the forms' and API's field names).
FIELDS: dict[str, str] = {
    # the dialer's retry rules
    "max_attempts": "сколько попыток", "retry_minutes": "через сколько минут",
    # money and dates of sales
    "amount": "сумма", "annual_potential": "годовой потенциал",
    "won_amount": "сумма выигранной сделки", "target": "план", "date": "дата",
    "issued_on": "дата счёта", "due_on": "срок оплаты",
    "next_due_at": "срок следующей задачи", "new_due_at": "новый срок",
    # the sales rules
    "new_period_days": "срок «нового» клиента", "lost_after_days": "срок до «потерянного»",
    "max_potential_days": "срок «потенциального» у менеджера",
    "max_new_days": "срок «нового» у менеджера",
    "abc_a_min": "порог группы A", "abc_b_min": "порог группы B",
    "contact_days_a": "частота контактов с группой A",
    "contact_days_b": "частота контактов с группой B",
    "contact_days_c": "частота контактов с группой C",
    "contact_days_none": "частота контактов с клиентами без группы",
    # talk-time settings
    "target_minutes": "норма", "min_call_seconds": "минимальная длина звонка",
    "fine_amount": "штраф", "working_weekdays": "рабочие дни",
    "day_start": "начало рабочего дня", "day_end": "конец рабочего дня",
    "effective_from": "дата начала действия", "team_id": "отдел", "user_id": "менеджер",
    "from": "первый день", "to": "последний день", "name": "название", "kind": "вид",
    "note": "примечание",
    # call tracking
    "number": "номер", "did": "номер DID", "default_number": "номер по умолчанию",
    "cost_per_month": "стоимость в месяц", "hold_seconds": "время удержания номера",
    "cooldown_seconds": "пауза перед повторной выдачей номера",
    "heartbeat_seconds": "интервал продления", "grace_seconds": "запас после ухода посетителя",
}


class _Params(dict[str, Any]):
    def __missing__(self, key: str) -> str:
        return "…"


# What a phone did when the PBX rang it for the user (pbx_bridge ClickToCallError.kind).
PHONE_REFUSALS: dict[str, str] = {
    "failed": "ваш телефон не удалось вызвать",
    "hung_up": "вызов на вашем телефоне сбросили",
    "no_answer": "ваш телефон не ответил",
    "busy": "ваш телефон занят",
    "unavailable": "ваш телефон не в сети",
    "refused": "АТС отказала в вызове",
}


def phone_refusal(kind: str) -> str:
    """The Russian words for what the user's phone did (an unknown kind: the PBX refused)."""
    return PHONE_REFUSALS.get(kind, PHONE_REFUSALS["refused"])


def plural(n: int, forms: str) -> str:
    """``plural(3, "день|дня|дней")`` is ``дня``: the Russian form after the number ``n``."""
    one, few, many = [*forms.split("|"), "", ""][:3]
    n = abs(n)
    if n % 10 == 1 and n % 100 != 11:
        return one
    if 2 <= n % 10 <= 4 and not 12 <= n % 100 <= 14:
        return few
    return many


class _Formatter(string.Formatter):
    """``{n:день|дня|дней}`` puts the plural after the number (``1 250 дней``) and
    ``{n:~сохранён|сохранены|сохранено}`` is the word alone, agreeing with ``n``;
    ``{x:money}`` is roubles (``45 000,50 ₽``); ``{x:cap}`` / ``{x:low}`` change the first
    letter's case (a field's name opening a sentence, a nested sentence after a colon)."""

    def format_field(self, value: Any, format_spec: str) -> str:
        from telecrm.web.present import money, number  # late: present imports the models

        if format_spec in ("cap", "low"):
            text = str(_plain(value))
            return (text[:1].upper() if format_spec == "cap" else text[:1].lower()) + text[1:]
        if format_spec == "money":
            return money(value)
        if "|" in format_spec:
            try:
                n = int(value)
            except (TypeError, ValueError):
                return str(_plain(value))
            if format_spec.startswith("~"):
                return plural(n, format_spec[1:])
            return f"{number(n)} {plural(n, format_spec)}"
        return format(_plain(value) if format_spec else str(_plain(value)), format_spec)


def _plain(value: Any) -> Any:
    """A scalar as a Russian reader reads it: ``31.12.2026``, ``1 250 000,50``."""
    from telecrm.web.present import number  # late: present imports the domain models

    if isinstance(value, datetime):
        return value.strftime("%d.%m.%Y %H:%M")
    if isinstance(value, date):
        return value.strftime("%d.%m.%Y")
    if isinstance(value, Decimal):
        return number(value, 0 if value == value.to_integral_value() else 2)
    return value


def _shown(key: str, value: Any) -> Any:
    """A param as the sentence shows it (numbers, dates and amounts stay themselves for
    plurals and ``money``; :class:`_Formatter` writes them out)."""
    if isinstance(value, DomainError):
        return russian(value)
    if key == "field" and isinstance(value, str):
        return FIELDS.get(value, value)
    if isinstance(value, list | tuple | set | frozenset):
        return ", ".join(str(_plain(_shown(key, item))) for item in value)
    return value


def _fill(template: str, params: Mapping[str, Any] | None) -> str:
    values = _Params({k: _shown(k, v) for k, v in (params or {}).items()})
    return _Formatter().vformat(template, (), values)


def sentence(code: str, params: Mapping[str, Any] | None = None,
             kind: Kind = "invalid") -> str:
    """The Russian sentence for ``code`` with ``params`` filled in."""
    template = MESSAGES.get(code)
    if template is None:
        log.warning("no Russian sentence for error code %r", code)
        return GENERIC[kind]
    return _fill(template, params)


def done(code: str, **params: Any) -> str:
    """What a command prints when it has done its work (:data:`DONE`), params filled in."""
    return _fill(DONE[code], params)


def russian(exc: DomainError) -> str:
    """The sentence a user reads for ``exc``."""
    return sentence(exc.code, exc.params, exc.kind)


def http_status(exc: DomainError) -> int:
    return STATUS[exc.kind]


def http_code(status: int) -> str:
    """The code of a bare HTTP status (what aiohttp itself refuses)."""
    return HTTP_CODES.get(status, "http.internal" if status >= 500 else "http.bad_request")
