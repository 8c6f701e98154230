"""A marketer manages call tracking on the page: costs, static numbers, pools, archive.

The forms are posted the way the browser posts them (form fields with the CSRF
token); what is checked is what the marketer then sees on the page and in the report.
"""

from __future__ import annotations

import re

import aiohttp
from sqlalchemy import select

from crm_core.audit import AuditLog
from crm_core.db import create_engine, session_factory
from tests.calltracking import test_ct_web
from tests.calltracking.test_ct_web import HOST, Served
from tests.support.browser import PASSWORD

ct_app = test_ct_web.served  # the served app of test_ct_web, as a fixture here


async def _login(base: str, username: str) -> tuple[aiohttp.ClientSession, str]:
    http = aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True))
    async with http.post(f"{base}/api/login",
                         json={"username": username, "password": PASSWORD}) as response:
        assert response.status == 200
        token = (await response.json())["csrf_token"]
    return http, token


async def _submit(http: aiohttp.ClientSession, url: str, token: str,
                  numbers: tuple[str, ...] = (), **fields: str) -> tuple[int, str]:
    """Post a form as the browser does; ``numbers`` fill the number list (one field each)."""
    data = [("csrf_token", token), *fields.items(), *(("number", n) for n in numbers)]
    async with http.post(url, data=data) as response:
        return response.status, await response.text()


def _row_html(html: str, host: str) -> str:
    """A site's row in the table of pools."""
    match = re.search(rf'<tr data-site="{re.escape(host)}">.*?</tr>', html, re.S)
    assert match, host
    return match.group(0)


def _row(html: str, host: str) -> str:
    """The visible text of a site's row in the table of pools."""
    return re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", _row_html(html, host)))


def _text(html: str, table_id: str) -> str:
    """The visible text of one table of the page."""
    match = re.search(rf'<table[^>]*id="{table_id}".*?</table>', html, re.S)
    assert match, table_id
    return re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", match.group(0)))


async def test_marketer_enters_and_corrects_costs_on_the_page(ct_app: Served) -> None:
    base, url, _ = ct_app
    marketer, token = await _login(base, "marketer")
    manager, manager_token = await _login(base, "petrov")
    try:
        status, html = await _submit(marketer, f"{base}/calltracking/costs", token,
                                     month="2026-11", channel="Яндекс Директ", amount="45 000")
        assert status == 200 and "Сохранено." in html  # followed the redirect to the page
        assert "ноябрь 2026 Яндекс Директ 45 000 ₽" in _text(html, "ct-costs")
        status, html = await _submit(marketer, f"{base}/calltracking/costs", token,
                                     month="2026-11", channel="Яндекс Директ", amount="47500,5")
        costs = _text(html, "ct-costs")
        assert "47 500,50 ₽" in costs and "45 000 ₽" not in costs  # corrected, one row
        status, html = await _submit(marketer, f"{base}/calltracking/costs", token,
                                     month="2026-11", channel="Яндекс Директ", amount="-3")
        assert status == 400
        assert "Не сохранено: Сумма: «-3» — нужна неотрицательная сумма." in html
        assert "47 500,50 ₽" in _text(html, "ct-costs")  # nothing lost
        async with marketer.get(f"{base}/api/ct/report?from=2026-11-01&to=2026-11-30"
                                ) as response:
            rows = {r["key"]: r for r in (await response.json())["rows"]}
        assert rows["Яндекс Директ"]["cost"] == 47500.5
        # The sales floor may not change marketing money, and no form goes without CSRF.
        status, _ = await _submit(manager, f"{base}/calltracking/costs", manager_token,
                                  month="2026-11", channel="Яндекс Директ", amount="1")
        assert status == 403
        async with marketer.post(f"{base}/calltracking/costs",
                                 data={"month": "2026-11", "channel": "X", "amount": "1"}
                                 ) as response:
            assert response.status == 403
    finally:
        await marketer.close()
        await manager.close()
    engine = create_engine(url)
    try:
        async with session_factory(engine)() as session:
            audit = list(await session.scalars(select(AuditLog).where(
                AuditLog.entity == "ct_ad_cost").order_by(AuditLog.id)))
    finally:
        await engine.dispose()
    assert [(a.action, a.actor) for a in audit] == [("create", "marketer"),
                                                    ("update", "marketer")]
    assert audit[1].changes["amount"] == ["45000.00", "47500.50"]
    assert audit[1].user_id is not None


async def test_marketer_manages_static_numbers_and_pools(ct_app: Served) -> None:
    base, _, _ = ct_app
    marketer, token = await _login(base, "marketer")
    try:
        status, html = await _submit(marketer, f"{base}/calltracking/static", token,
                                     did="8 (495) 111-00-41", channel="Билборд на МКАД",
                                     campaign="зима", cost_per_month="25000")
        assert status == 200 and "Билборд на МКАД" in _text(html, "ct-statics")
        status, html = await _submit(marketer, f"{base}/calltracking/static", token,
                                     did="+74951110041", channel="Дубль")
        assert status == 400
        assert "Не сохранено: +74951110041 уже отслеживается как статический номер." in html
        # A new site with its pool: one field per number, the company's number apart.
        status, html = await _submit(marketer, f"{base}/calltracking/pool", token,
                                     ("+74951110051", "8 495 111-00-52", ""),
                                     form="new", site="promo.example",
                                     default_number="+7 495 111-00-50")
        assert status == 200
        promo = _row(html, "promo.example")
        assert "+7 495 111-00-50" in promo
        assert "+7 495 111-00-51 × +7 495 111-00-52 ×" in promo
        async with marketer.get(f"{base}/ct.js?site=promo.example") as response:
            assert response.status == 200  # the new site's snippet is served at once
        status, html = await _submit(marketer, f"{base}/calltracking/archive", token,
                                     number="+74951110041")
        assert status == 200 and "Билборд на МКАД" not in _text(html, "ct-statics")
        status, html = await _submit(marketer, f"{base}/calltracking/archive", token,
                                     number="+74951110052")
        assert "111-00-52" not in _row(html, "promo.example")
        assert "111-00-51" in _row(html, "promo.example")
        status, html = await _submit(marketer, f"{base}/calltracking/archive", token,
                                     number="+74951110052")
        assert status == 400 and "Не сохранено: +74951110052 не отслеживается." in html
        assert HOST in _text(html, "ct-sites")
        # More numbers for a site already tracked: its own form in the sites table.
        status, html = await _submit(marketer, f"{base}/calltracking/pool", token,
                                     ("+7 495 111-00-13",), form="site", site=HOST)
        assert status == 200 and "+7 495 111-00-13" in _row(html, HOST)
        # A bad number re-shows the page with what was typed, in the site's own form.
        status, html = await _submit(marketer, f"{base}/calltracking/pool", token,
                                     ("+7 495 111-00-14", "12"), form="site", site=HOST)
        assert status == 400 and "Не сохранено" in html
        assert 'value="+7 495 111-00-14"' in _row_html(html, HOST)
        assert "111-00-14 ×" not in _row(html, HOST)  # nothing of the form was added
        # The page never sends the marketer to a shell, and the snippet names this CRM.
        assert "telecrm " not in html and f'src="{base}/ct.js?site={HOST}"' in html.replace(
            "&lt;", "<").replace("&gt;", ">").replace("&#34;", '"')
    finally:
        await marketer.close()


async def test_marketer_loads_costs_from_a_csv_file_on_the_page(ct_app: Served) -> None:
    base, _, _ = ct_app
    marketer, token = await _login(base, "marketer")

    async def upload(name: str, text: str) -> tuple[int, str]:
        form = aiohttp.FormData()
        form.add_field("csrf_token", token)
        form.add_field("file", text.encode("utf-8"), filename=name, content_type="text/csv")
        async with marketer.post(f"{base}/calltracking/costs/import", data=form) as response:
            return response.status, await response.text()

    try:
        # As a Russian Excel saves it: semicolons and decimal commas.
        status, html = await upload("расходы.csv", "month;channel;amount\n"
                                    "2026-10;Яндекс Директ;40 000\n2026-11;Радио;12500,50\n")
        assert status == 200 and "Сохранено." in html
        costs = _text(html, "ct-costs")
        assert "октябрь 2026 Яндекс Директ 40 000 ₽" in costs
        assert "ноябрь 2026 Радио 12 500,50 ₽" in costs
        # A broken line stops the file: nothing of it is booked, the line is named.
        status, html = await upload("плохой.csv", "month,channel,amount\n"
                                    "2026-12,Радио,100\n2026-12,Радио,много\n")
        assert status == 400 and "строка 3" in html and "декабрь 2026" not in _text(
            html, "ct-costs")
        status, html = await upload("", "")
        assert status == 400 and "Выберите файл CSV." in html
        # What was entered comes back as the same kind of file, to edit and load again.
        async with marketer.get(f"{base}/calltracking/costs.csv") as response:
            assert response.status == 200
            assert await response.text() == ("month,channel,amount\n"
                                              "2026-11,Радио,12500.50\n"
                                              "2026-10,Яндекс Директ,40000.00\n")
    finally:
        await marketer.close()
