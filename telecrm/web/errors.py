"""One error shape for the API (``{"error": "...", "code": "..."}``) and friendly pages.

Hostile input must end in a 4xx, never a 500: the domain and the handlers raise
:class:`~crm_core.errors.DomainError` (answered with its code, status and Russian
sentence from ``telecrm.messages``); :class:`ApiError` is only for what is not a
refusal of the domain (sign-in, throttling, the PBX or the store being down, a body
too large) or needs headers; aiohttp's own HTTP errors get the sentence of their
status; anything unexpected is logged and answered with a generic 500 that leaks
nothing.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import Any

import aiohttp_jinja2
from aiohttp import web

from crm_core.errors import DomainError
from telecrm.messages import http_code, http_status, russian, sentence

log = logging.getLogger(__name__)

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


class ApiError(Exception):
    """An HTTP error with a status of its own (401, 413, 429, 502, 503...), headers or
    extra JSON fields; ``code`` names its sentence in ``telecrm.messages``."""

    def __init__(self, status: int, code: str, /, *, headers: dict[str, str] | None = None,
                 extra: dict[str, Any] | None = None, **params: object) -> None:
        self.status = status
        self.code = code
        self.params = params
        self.message = sentence(code, params)
        super().__init__(self.message)
        self.headers = headers or {}
        self.extra = extra or {}


def is_api(request: web.Request) -> bool:
    return request.path.startswith("/api/")


def json_error(status: int, message: str, code: str, headers: object = None,
               **extra: object) -> web.Response:
    response = web.json_response({"error": message, "code": code, **extra}, status=status)
    if headers:
        for key, value in dict(headers).items():  # type: ignore[call-overload]
            if key.lower() in ("retry-after", "allow", "www-authenticate"):
                response.headers[key] = value
    return response


@web.middleware
async def error_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    try:
        return await handler(request)
    except DomainError as exc:
        status, text = http_status(exc), russian(exc)
        if is_api(request):
            return json_error(status, text, exc.code)
        return _page(request, status, text)
    except ApiError as exc:
        if is_api(request):
            return json_error(exc.status, exc.message, exc.code, exc.headers, **exc.extra)
        return _page(request, exc.status, exc.message)
    except web.HTTPException as exc:
        if exc.status < 400:
            raise
        code = http_code(exc.status)
        if is_api(request):
            return json_error(exc.status, sentence(code), code, exc.headers)
        return _page(request, exc.status, sentence(code), headers=exc.headers)
    except Exception as exc:
        if _number_out_of_range(exc):  # the net under telecrm.web.params' bounds
            log.warning("a number out of range reached the database on %s %s",
                        request.method, request.path)
            text = sentence("request.number_too_big")
            if is_api(request):
                return json_error(400, text, "request.number_too_big")
            return _page(request, 400, text)
        log.exception("unhandled error on %s %s", request.method, request.path)
        if is_api(request):
            return json_error(500, sentence("http.internal"), "http.internal")
        return _page(request, 500, sentence("http.internal"))


_OUT_OF_RANGE = ("out of int32 range", "out of int64 range", "integer out of range",
                 "value out of range", "too large to convert")


def _number_out_of_range(exc: BaseException) -> bool:
    """A number no column can hold, refused by the driver (SQLite: OverflowError;
    asyncpg and PostgreSQL: "out of int32 range"), wrapped by SQLAlchemy or not."""
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        if isinstance(current, OverflowError) or any(
                text in str(current) for text in _OUT_OF_RANGE):
            return True
        orig = getattr(current, "orig", None)
        current = orig if isinstance(orig, BaseException) else current.__cause__
    return False


def _page(request: web.Request, status: int, message: str,
          headers: object = None) -> web.Response:
    text = sentence("http.internal") if status >= 500 and status not in (502, 503) else message
    try:
        response = aiohttp_jinja2.render_template(
            "error.html", request, {"status": status, "message": text}, status=status)
    except Exception:  # the error page must never fail itself
        log.exception("cannot render the error page")
        response = web.Response(status=status, text=text)
    if headers:
        for key, value in dict(headers).items():  # type: ignore[call-overload]
            if key.lower() in ("retry-after", "allow"):
                response.headers[key] = value
    return response
