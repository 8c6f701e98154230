"""A real webhook receiver for the tests: an aiohttp server on loopback that checks each
request's signature the way the README tells receivers to, and answers as told."""

from __future__ import annotations

import contextlib
import hashlib
import hmac
import json
import re
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from aiohttp import web

from tests.support.browser import serve_on_loopback


def valid_signature(secret: str, timestamp: str, body: bytes, header: str) -> bool:
    """The README's check: HMAC-SHA256 of ``<timestamp>.<body>``, compared in constant time."""
    expected = "sha256=" + hmac.new(secret.encode(), timestamp.encode() + b"." + body,
                                    hashlib.sha256).hexdigest()
    return hmac.compare_digest(expected, header)


README = Path(__file__).resolve().parents[2] / "README.md"


def readme_check() -> Callable[..., bool]:
    """``verified(secret, headers, body)`` exactly as the README's snippet for receivers
    writes it (the snippet is run, not copied)."""
    text = README.read_text("utf-8")
    section = text[text.index("A receiver checks the signature"):]
    code = re.search(r"```python\n(.*?)```", section, re.S)
    assert code is not None, "the README lost its receiver snippet"
    namespace: dict[str, Any] = {}
    exec(compile(code.group(1), "README.md", "exec"), namespace)
    verified: Callable[..., bool] = namespace["verified"]
    return verified


@dataclass
class Received:
    headers: dict[str, str]
    body: bytes

    @property
    def json(self) -> Any:
        return json.loads(self.body)

    def signed_with(self, secret: str) -> bool:
        return valid_signature(secret, self.headers["X-Telecrm-Timestamp"], self.body,
                               self.headers["X-Telecrm-Signature"])

    def verified_as_readme_says(self, secret: str) -> bool:
        return readme_check()(secret, self.headers, self.body)


@dataclass
class Receiver:
    url: str = ""
    received: list[Received] = field(default_factory=list)
    answers: list[int] = field(default_factory=list)  # statuses to answer, then 200

    async def handle(self, request: web.Request) -> web.Response:
        self.received.append(Received(dict(request.headers), await request.read()))
        status = self.answers.pop(0) if self.answers else 200
        return web.Response(status=status, text="ok" if status < 300 else "no")


@contextlib.asynccontextmanager
async def receiver() -> AsyncIterator[Receiver]:
    found = Receiver()
    app = web.Application()
    app.router.add_post("/hook", found.handle)
    async with serve_on_loopback(app) as base:
        found.url = f"{base}/hook"
        yield found
