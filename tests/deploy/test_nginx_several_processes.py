"""The deployment files on the real parts: Debian's nginx with ``deploy/nginx/`` (rendered
with loopback ports and a self-signed certificate) in front of two ``telecrm serve --web``
processes, one ``telecrm serve --listener`` on the sandbox PBX, PostgreSQL and Redis.

A manager signed in through nginx in Chromium gets the screen pop of a real call within
a second of the ringing; the web process holding his event stream is killed with
SIGKILL; the browser reconnects through nginx to the other one, and the next real call
pops up as promptly. The public face serves call tracking and nothing else; the office
face keeps ``/metrics`` for the scraper's address. The systemd units pass
``systemd-analyze verify``.
"""

from __future__ import annotations

import asyncio
import functools
import os
import shutil
import subprocess
import time
from pathlib import Path
from typing import Any

import pytest

from asterisk_conf.sandbox import Sandbox
from telecrm.bus import RedisBus
from tests.support.browser import (
    PASSWORD,
    chromium,
    free_port,
    screenshot,
    seed_world,
)
from tests.support.live import TELECRM, telecrm
from tests.support.nginx import (
    DEPLOY,
    Process,
    connections_to,
    nginx_site,
    running,
    status_of,
    until,
)

POP_DEADLINE = 1.0  # seconds from the ringing event to the card on screen, through nginx
ACTIVE = "election listener:main: this process is now the active one"
SITE = "shop.example.com"


def nginx_binary() -> str:
    found = shutil.which("nginx") or "/usr/sbin/nginx"
    if not Path(found).exists():
        pytest.skip("nginx is missing: run scripts/install-system-packages.sh")
    return found


# -- the test ------------------------------------------------------------------------------------

@pytest.mark.asterisk
@pytest.mark.postgres
async def test_nginx_in_front_of_two_web_processes_and_a_listener(
        sandbox: Sandbox, pg_url: str, redis_url: str, tmp_path: Path) -> None:
    nginx = nginx_binary()
    pbx = sandbox.pbx
    assert pbx is not None
    world = await seed_world(pg_url, sandbox.monitor_dir)
    telecrm("ct", "pool", "add", "--site", SITE, "+74951110077", "--db", pg_url)

    web_ports = [free_port(), free_port()]
    http_port, public_port, office_port = free_port(), free_port(), free_port()
    env = {**os.environ, "TELECRM_DATABASE_URL": pg_url, "TELECRM_REDIS_URL": redis_url,
           "TELECRM_AMI_HOST": pbx.ami_host, "TELECRM_AMI_PORT": str(pbx.ami_port),
           "TELECRM_AMI_USER": pbx.ami_user, "TELECRM_AMI_SECRET": pbx.ami_secret,
           "TELECRM_RECORDINGS_SOURCE": str(pbx.monitor_dir),
           "TELECRM_HTTP_HOST": "127.0.0.1", "TELECRM_TRUSTED_PROXIES": "127.0.0.1",
           "TELECRM_COOKIE_SECURE": "true"}

    def telecrm_process(name: str, *args: str) -> Process:
        data = tmp_path / name
        data.mkdir()
        return Process(name, [TELECRM, "serve", *args],
                       {**env, "TELECRM_DATA_DIR": str(data)}, tmp_path)

    listener = telecrm_process("listener", "--listener", "--port", str(free_port()))
    webs = [telecrm_process(f"web-{port}", "--web", "--port", str(port)) for port in web_ports]

    site = nginx_site(nginx, tmp_path / "nginx", web_ports, (http_port, public_port, office_port))
    proxy = site.process(nginx, env, tmp_path)

    public = site.public
    office = site.office
    with running(listener, *webs, proxy):
        await until(lambda: ACTIVE in listener.text()
                    and "connected to Asterisk AMI" in listener.text(),
                    what="the listener is active and connected")
        for port in web_ports:
            await until(functools.partial(_serves_login, f"http://127.0.0.1:{port}"),
                        what=f"the web process on {port} serves pages")
        await until(lambda: _serves_login(office), what="nginx passes the office on")

        # -- the two faces ------------------------------------------------------------------
        status, kind, body = await status_of(f"{public}/ct.js?site={SITE}")
        assert (status, kind) == (200, "application/javascript"), body
        assert SITE in body, "the CRM's snippet for the site, through the public face"
        status, _, _ = await status_of(f"{public}/api/ct/session", "OPTIONS",
                                       headers={"Origin": f"https://{SITE}",
                                                "Access-Control-Request-Method": "POST"})
        assert status in (200, 204), "the number requests reach the CRM"
        for path in ("/clients", "/login", "/api/calls", "/healthz", "/metrics"):
            status, kind, _ = await status_of(f"{public}{path}")
            assert (status, kind) == (404, "text/html"), f"{path} is not public (nginx's 404)"
        status, _, _ = await status_of(f"http://127.0.0.1:{http_port}/clients")
        assert status == 301, "plain HTTP only redirects"
        status, _, body = await status_of(f"{office}/metrics")
        assert status == 403 and "nginx" in body, \
            "/metrics: only the scraper's address, refused by nginx before the CRM"
        status, _, _ = await status_of(f"{office}/clients")
        assert status in (302, 303), "the office face is the CRM (sign in first)"

        # -- a manager through nginx: screen pops across the death of a web process ---------
        bus = RedisBus(redis_url)  # the test hears the ringing event as the web processes do
        async with sandbox.phones() as phones, chromium(ignore_https_errors=True) as browser:
            page = await browser.new_page()
            await page.goto(office + "/login")
            await page.fill("input[name=username]", "petrov")
            await page.fill("input[name=password]", PASSWORD)
            await page.click("button[type=submit]")
            await page.wait_for_url("**/today")
            await page.goto(office + "/clients")  # a page that refreshes only on events
            await _live(page)

            delay = await _screen_pop(page, phones, bus, "79161234567")
            assert delay < POP_DEADLINE, f"the event stream is not buffered: {delay:.2f} s"
            assert "ООО Ромашка" in await page.inner_text("#screenpop")
            assert await page.get_attribute("#screenpop a.open-card", "href") == \
                f"/clients/{world.clients['101']}"
            await phones.wait_idle(timeout=30)

            # Which web process holds his stream: once idle connections have timed out
            # (10 s), the only connection left from nginx is the stream's.
            holders: list[int] = []

            def one_holder() -> bool:
                holders[:] = [p for p in web_ports if connections_to(p)]
                return len(holders) == 1

            await until(one_holder, timeout=40, what="one web process holds the stream")
            [held] = holders
            victim = webs[web_ports.index(held)]
            survivor = webs[1 - web_ports.index(held)]
            victim.kill()
            await page.wait_for_function(
                "!document.getElementById('live-dot').classList.contains('on')",
                timeout=10_000)  # the stream broke...
            await _live(page)  # ...and the browser reconnected through nginx
            assert connections_to(held) == 0
            assert connections_to(web_ports[webs.index(survivor)]) >= 1

            delay = await _screen_pop(page, phones, bus, "79990001122")
            assert delay < POP_DEADLINE, f"after the reconnect: {delay:.2f} s"
            assert "Новый лид" in await page.inner_text("#screenpop")
            await page.wait_for_timeout(300)  # the pop's slide-in animation
            await screenshot(page, "deploy-screenpop-after-failover")
            await phones.wait_idle(timeout=30)
            await phones.reset_behaviours()

            # The other pages go on through the survivor as well.
            response = await page.goto(office + "/calls")
            assert response.status == 200
        await bus.close()
    assert "Traceback" not in survivor.text(), survivor.text()[-3000:]


async def _serves_login(base: str) -> bool:
    status, _, body = await status_of(f"{base}/login")
    return status == 200 and "Вход" in body


async def _live(page: Any) -> None:
    await page.wait_for_function(
        "document.getElementById('live-dot').classList.contains('on')", timeout=15_000)


async def _screen_pop(page: Any, phones: Any, bus: RedisBus, number: str) -> float:
    """A real inbound call to 101: seconds from its ringing event to the pop on screen."""
    ringing_at: list[float] = []
    subscription = await bus.subscribe("ext:101")

    async def watch() -> None:
        async for event in subscription:
            if event.get("kind") == "ringing" and event.get("extension") == "101":
                ringing_at.append(time.monotonic())
                return

    watcher = asyncio.create_task(watch())
    try:
        await phones.set_behaviour("101", mode="answer", answer_after=4)
        await phones.client_calls(number, "74951110002", talk=2)
        await page.wait_for_selector("#screenpop:not([hidden])", timeout=15_000)
        shown_at = time.monotonic()
        await asyncio.wait_for(watcher, 5)
    finally:
        watcher.cancel()
        await subscription.close()
    return shown_at - ringing_at[0]


def test_the_systemd_units_verify(tmp_path: Path) -> None:
    """``systemd-analyze verify`` on each unit, with ExecStart pointing at this install."""
    analyze = shutil.which("systemd-analyze")
    if analyze is None:
        pytest.skip("systemd-analyze is not installed (Debian's systemd package)")
    units = sorted((DEPLOY / "systemd").iterdir())
    assert {u.name for u in units} == {
        "telecrm-web@.service", "telecrm-listener.service", "telecrm-worker.service",
        "telecrm-backup.service", "telecrm-backup.timer"}
    for unit in units:
        text = unit.read_text()
        if unit.suffix == ".service":
            assert "User=telecrm" in text and "EnvironmentFile=/etc/telecrm/telecrm.env" in text
            assert "/opt/telecrm/venv/bin/telecrm " in text
    for unit in units:
        text = unit.read_text().replace("/opt/telecrm/venv/bin/telecrm", TELECRM)
        (tmp_path / unit.name).write_text(text)
    # A template is verified as an instance of it (the port 8080).
    names = [f"./{u.name.replace('@.service', '@8080.service')}" for u in units]
    result = subprocess.run([analyze, "verify", "--man=no", *names], cwd=tmp_path,
                            capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    assert result.stderr.strip() == "", f"no warnings: {result.stderr}"
