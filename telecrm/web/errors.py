"""One error shape for the API (``{"error": "..."}``) and friendly pages for people.

Hostile input must end in a 4xx, never a 500: the domain raises
:class:`~crm_core.errors.DomainError` (answered with its code, status and Russian
sentence from ``telecrm.messages``), handlers raise :class:`ApiError` (or aiohttp's
HTTP exceptions), and anything unexpected is logged and answered with a generic 500
that leaks nothing.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable

import aiohttp_jinja2
from aiohttp import web

from crm_core.errors import DomainError
from telecrm.messages import http_status, russian

log = logging.getLogger(__name__)

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]

_PAGE_MESSAGES = {
    400: "Неверный запрос.",
    403: "Недостаточно прав.",
    404: "Такой страницы нет или она вам недоступна.",
    405: "Метод не поддерживается.",
    413: "Слишком большой запрос.",
    429: "Слишком много попыток. Подождите и попробуйте снова.",
    500: "Внутренняя ошибка. Мы уже записали её в журнал.",
}


class ApiError(Exception):
    """An HTTP error with a JSON body (or an error page); raise it from any handler."""

    def __init__(self, status: int, message: str, *, headers: dict[str, str] | None = None,
                 **extra: object) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.headers = headers or {}
        self.extra = extra


def is_api(request: web.Request) -> bool:
    return request.path.startswith("/api/")


def json_error(status: int, message: str, headers: object = None,
               **extra: object) -> web.Response:
    response = web.json_response({"error": message, **extra}, status=status)
    if headers:
        for key, value in dict(headers).items():  # type: ignore[call-overload]
            if key.lower() in ("retry-after", "allow", "www-authenticate"):
                response.headers[key] = value
    return response


def _reason(exc: web.HTTPException) -> str:
    text = exc.text or ""
    if text.startswith(f"{exc.status}: "):
        text = text[len(f"{exc.status}: "):]
    return text.strip() or exc.reason


@web.middleware
async def error_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    try:
        return await handler(request)
    except DomainError as exc:
        status, text = http_status(exc), russian(exc)
        if is_api(request):
            return json_error(status, text, code=exc.code)
        return _page(request, status, text)
    except ApiError as exc:
        if is_api(request):
            return json_error(exc.status, exc.message, exc.headers, **exc.extra)
        return _page(request, exc.status, exc.message)
    except web.HTTPException as exc:
        if exc.status < 400:
            raise
        if is_api(request):
            return json_error(exc.status, _reason(exc), exc.headers)
        return _page(request, exc.status, None, headers=exc.headers)
    except Exception:
        log.exception("unhandled error on %s %s", request.method, request.path)
        if is_api(request):
            return json_error(500, "internal error")
        return _page(request, 500, None)


def _page(request: web.Request, status: int, message: str | None,
          headers: object = None) -> web.Response:
    text = _PAGE_MESSAGES.get(status, "Ошибка.") if status >= 500 or not message else message
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
