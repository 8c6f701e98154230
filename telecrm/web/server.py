"""The HTTP server's own limits: how long a client may take to send a request.

The README tells operators to expose ``/ct.js`` and the call-tracking endpoints to the
internet, so slow clients are expected. aiohttp parses requests without blocking the
loop, but a connection that trickles its headers or body, or idles, holds a socket and
a task; these limits close it:

- headers: a connection that has not sent a complete request line and headers within
  :data:`HEADER_TIMEOUT` seconds of opening (or of its previous response) is closed —
  aiohttp's keep-alive timer covers exactly that wait, and idle keep-alive connections
  with it (armed when a connection opens since aiohttp 3.14.4, the minimum in
  pyproject.toml; before, a connection that never completed a request had no timer);
- bodies: :func:`body_timeout_middleware` reads a request's body before the handler
  runs, within :data:`BODY_TIMEOUT` seconds, and answers 408 otherwise.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

from aiohttp import web
from aiohttp.streams import StreamReader

from telecrm.web.errors import ApiError

HEADER_TIMEOUT = 10.0  # seconds for the request line and headers, and for an idle connection
BODY_TIMEOUT = 10.0  # seconds for the whole body (bodies are capped at 64 KiB)
_BODY_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def runner(app: web.Application, *, shutdown_timeout: float = 60.0) -> web.AppRunner:
    """An ``AppRunner`` with the header and idle timeouts (use it for every listener)."""
    return web.AppRunner(app, keepalive_timeout=HEADER_TIMEOUT,
                         shutdown_timeout=shutdown_timeout)


async def start(app: web.Application, host: str, port: int, *,
                shutdown_timeout: float = 60.0,
                before_listening: Callable[[web.Application], None] | None = None,
                ) -> web.AppRunner:
    """Serve ``app`` on ``host:port`` with the timeouts above; the caller cleans it up.

    ``before_listening`` runs once the app is set up (its ``cleanup_ctx`` entered) and
    before the socket takes connections."""
    served = runner(app, shutdown_timeout=shutdown_timeout)
    await served.setup()
    if before_listening is not None:
        before_listening(app)
    await web.TCPSite(served, host, port).start()
    return served


@web.middleware
async def body_timeout_middleware(request: web.Request, handler: Handler
                                  ) -> web.StreamResponse:
    """Read the body (at most ``client_max_size``) within :data:`BODY_TIMEOUT`, then hand
    the handler a request whose body is already here, so no handler waits on a slow
    client while it holds a database session."""
    if request.method not in _BODY_METHODS or not request.body_exists:
        return await handler(request)
    try:
        async with asyncio.timeout(BODY_TIMEOUT):
            body = await request.read()
    except TimeoutError:
        raise ApiError(408, "http.too_slow") from None
    except web.HTTPRequestEntityTooLarge:
        raise ApiError(413, "http.too_large") from None
    # Handlers that parse the stream themselves (multipart forms, the call-tracking
    # endpoint) get a stream of the bytes already read; ``read()`` answers from its cache.
    stream = StreamReader(request.protocol, 2**16, loop=asyncio.get_running_loop())
    stream.feed_data(body)
    stream.feed_eof()
    request._payload = stream  # aiohttp has no public way to hand a handler the bytes again
    return await handler(request)
