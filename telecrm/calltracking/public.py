"""The public side of call tracking: the page snippet and the lease endpoint.

Hostile ground: anyone on the internet can call these. So every field is checked
for type and length, the body is capped, each client IP is rate limited, CORS is
granted only to a site's configured origins, an unknown site is a 404, and the
answer never carries anything but the caller's own session and number (a visit
token is 96 random bits signed with the site's key: one visit cannot be guessed
from another, and a made-up token starts a new visit). The answer comes from the
lease store alone; the visit and its lease history are written a moment later,
in batches (:mod:`telecrm.calltracking.history`).
"""

from __future__ import annotations

import asyncio
import functools
import json
import re
import time
from collections import OrderedDict, deque
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from ipaddress import IPv6Address, ip_address, ip_network
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from aiohttp import web
from redis.asyncio import Redis

from crm_core.calltracking.leases import (
    Decision,
    LeaseStore,
    MemoryLeaseStore,
    Outcome,
    PoolRules,
)
from crm_core.calltracking.models import CtSite
from crm_core.calltracking.services import (
    CallTrackingError,
    VisitEvent,
    VisitReport,
    get_site,
    new_token,
    normalize_host,
    pool_of,
    rules_of,
    token_is_valid,
)
from crm_core.clock import utcnow
from telecrm.calltracking.history import HistoryWriter, ProcessHistoryWriter
from telecrm.calltracking.lease_store import RedisLeaseStore
from telecrm.calltracking.visitor_limits import RedisRateLimiter, RedisVisitorGuard, Refusal
from telecrm.messages import sentence
from telecrm.web.auth import client_ip
from telecrm.web.keys import SESSIONS, SETTINGS

MAX_BODY = 4096
MAX_URL = 1000
SITE_CACHE_SECONDS = 5.0
_CLIENT_ID = re.compile(r"[A-Za-z0-9._:-]{1,100}")
# Crawlers and tools that say who they are; a headless browser hiding it is caught by
# the activity rule instead (the snippet asks for a number only after real activity).
BOT_AGENTS = re.compile(
    r"bot\b|bot/|crawl|spider|slurp|yandex(?!browser)|googlebot|bingpreview|facebookexternal|"
    r"curl/|wget/|python-requests|python-urllib|aiohttp|go-http-client|java/|okhttp|"
    r"phantomjs|headlesschrome|lighthouse|pingdom|uptime|monitor",
    re.IGNORECASE)
SNIPPET = Path(__file__).resolve().parent.parent / "static" / "ct.js"
_COMMENT_LINE = re.compile(r"^\s*//.*$|  // .*$", re.MULTILINE)
_HEAD_COMMENT = re.compile(r"\A/\*.*?\*/\s*", re.DOTALL)


def compact_script(text: str) -> str:
    """The snippet as served: without its comments, indentation and blank lines (every
    page of a site loads it). ``ct.js`` keeps no ``//`` inside its strings or regexes
    after two spaces, which is all a comment here needs to be told apart."""
    text = _COMMENT_LINE.sub("", _HEAD_COMMENT.sub("", text))
    return "\n".join(line.strip() for line in text.splitlines() if line.strip()) + "\n"


class RateLimiter:
    """At most ``limit`` requests per IP in a sliding minute (per process, bounded memory)."""

    def __init__(self, limit: int, window: float = 60.0,
                 clock: Callable[[], float] = time.monotonic, max_keys: int = 100_000) -> None:
        self.limit, self.window, self.clock, self.max_keys = limit, window, clock, max_keys
        self._hits: dict[str, deque[float]] = {}

    async def allow(self, key: str, now: float | None = None) -> bool:
        """``now`` is for the shared (Redis) limiter; this one reads its monotonic clock."""
        now = self.clock()
        hits = self._hits.get(key)
        if hits is None:
            if len(self._hits) >= self.max_keys:
                self._prune(now)
            hits = self._hits[key] = deque()
        while hits and hits[0] <= now - self.window:
            hits.popleft()
        if len(hits) >= self.limit:
            return False
        hits.append(now)
        return True

    def _prune(self, now: float) -> None:
        for key in [k for k, v in self._hits.items() if not v or v[-1] <= now - self.window]:
            del self._hits[key]
        while len(self._hits) >= self.max_keys:
            self._hits.pop(next(iter(self._hits)))


@functools.lru_cache(maxsize=65_536)  # every request asks; ipaddress parsing is slow
def visitor_address(ip: str) -> str:
    """What the visitor limits count by: an IPv4 address, or an IPv6 address's /64.

    One IPv6 subscriber is given a whole /64 and picks addresses in it at will; counted
    per address, he would be as many visitors as he likes."""
    try:
        address = ip_address(ip)
    except ValueError:
        return ip
    if isinstance(address, IPv6Address):
        if address.ipv4_mapped is not None:
            return str(address.ipv4_mapped)
        return str(ip_network(f"{address}/64", strict=False))
    return str(address)


class VisitorGuard:
    """Bounds what one visitor, and a few of them together, take from a site's pool (per
    process, bounded memory). An address is an IPv4 address or an IPv6 /64
    (:func:`visitor_address`).

    - A visitor (address + the browser's analytics ids + user agent) that comes back
      without its visit token within the hold time gets its previous visit, hence its
      number.
    - New visits per address are limited per minute (``new_per_minute``, room for an
      office behind one address); beyond that a request is treated as a bot's: no lease.
    - One address holds at most ``share`` of a pool's numbers at a time (a quarter, at
      least one); a further visit from it is shown the company's number.
    - Per pool: the addresses that hold more than one number hold together at most
      ``several_share`` of it (half). An address's first number is never refused by this
      rule, so visitors each on his own address still find numbers while a few addresses
      (four, at a quarter each, held the whole pool) take what they can; a visit refused
      by it is the pool's exhaustion, counted where the marketer sees it.
    """

    def __init__(self, new_per_minute: int, *, share: float = 0.25, several_share: float = 0.5,
                 max_keys: int = 100_000) -> None:
        self.new_visits = RateLimiter(new_per_minute)
        self.share, self.several_share, self.max_keys = share, several_share, max_keys
        self._visitors: OrderedDict[str, tuple[str, float]] = OrderedDict()
        # site -> address -> token -> end of the lease
        self._held: dict[str, dict[str, dict[str, float]]] = {}

    @staticmethod
    def visitor(site: str, address: str, ids: dict[str, str], agent: str) -> str:
        return "|".join((site, address, ",".join(f"{k}={v}" for k, v in sorted(ids.items())),
                         agent))

    async def returning(self, visitor: str, now: float) -> str | None:
        """The token of this visitor's visit if its lease may still be live."""
        seen = self._visitors.get(visitor)
        return seen[0] if seen is not None and seen[1] > now else None

    async def refusal(self, site: str, address: str, token: str, pool: int,
                      now: float) -> Refusal | None:
        """Why this visit may not take a number now (None: it may; a visit holding one
        always keeps it)."""
        held = self._held.get(site, {})
        mine = held.get(address, {})
        if mine.get(token, 0.0) > now:
            return None
        for where in list(held):  # only new leases pay for this walk, at most the pool
            live = {t: end for t, end in held[where].items() if end > now}
            if live:
                held[where] = live
            else:
                del held[where]
        return _refusal(len(held.get(address, ())), [len(t) for t in held.values()], pool,
                        self.share, self.several_share)

    async def leased(self, site: str, address: str, visitor: str, token: str, until: float,
                     now: float) -> None:
        held = self._held.setdefault(site, {})
        held.setdefault(address, {})[token] = until
        self._visitors[visitor] = (token, until)
        self._visitors.move_to_end(visitor)
        while len(self._visitors) > self.max_keys:
            self._visitors.popitem(last=False)
        if len(held) > self.max_keys:  # only with numbers shared among live visits
            for where in [a for a, tokens in held.items() if max(tokens.values()) <= now]:
                del held[where]


def _refusal(mine: int, counts: list[int], pool: int, share: float,
             several_share: float) -> Refusal | None:
    """The rule of :class:`VisitorGuard` (the Redis guard runs the same in Lua): ``mine``
    live leases of this address, ``counts`` those of every address on the site."""
    if mine >= max(1, int(pool * share)):
        return Refusal.VISITOR
    if mine == 0:
        return None
    several = sum(n for n in counts if n > 1) + (2 if mine == 1 else 1)
    return Refusal.POOL if several > max(1, int(pool * several_share)) else None


@dataclass(frozen=True)
class SiteView:
    """A site as the public endpoints use it, with its pool and rules worked out once."""

    site: CtSite
    pool: tuple[str, ...]
    rules: PoolRules


@dataclass
class CallTracking:
    """What the public endpoints share: leases, the history writer, limiter, site cache."""

    leases: LeaseStore
    history: HistoryWriter
    limiter: RateLimiter | RedisRateLimiter
    visitors: VisitorGuard | RedisVisitorGuard
    sites: dict[str, tuple[float, SiteView | None]] = field(default_factory=dict)
    loading: dict[str, asyncio.Future[SiteView | None]] = field(default_factory=dict)
    # leads (forms, callback requests) per visitor address a minute, beyond ``limiter``
    leads: RateLimiter | RedisRateLimiter | None = None
    # callbacks being placed: watched until the manager's phone answers or not
    callbacks: set[asyncio.Task[None]] = field(default_factory=set)


CT = web.AppKey("calltracking", CallTracking)


async def calltracking_ctx(app: web.Application) -> AsyncIterator[None]:
    """Leases in Redis when ``TELECRM_REDIS_URL`` is set, else in this process.

    With Redis (scale-out) the visit history is written by a child process, so a busy
    web process never shares its interpreter lock with the writer; else by a thread.
    """
    settings = app[SETTINGS]
    store: LeaseStore = (RedisLeaseStore.from_url(settings.redis_url) if settings.redis_url
                         else MemoryLeaseStore())
    writer = ProcessHistoryWriter if settings.redis_url else HistoryWriter
    history = writer(settings.resolved_database_url)
    history.start()
    # The visitor limits are shared too with Redis: any process may get the next request.
    limits = Redis.from_url(settings.redis_url) if settings.redis_url else None
    app[CT] = CallTracking(
        store, history,
        RedisRateLimiter(limits, settings.ct_rate_per_minute) if limits is not None
        else RateLimiter(settings.ct_rate_per_minute),
        RedisVisitorGuard(limits, settings.ct_new_visits_per_minute) if limits is not None
        else VisitorGuard(settings.ct_new_visits_per_minute),
        leads=RedisRateLimiter(limits, settings.ct_leads_per_minute, prefix="ct:leads")
        if limits is not None else RateLimiter(settings.ct_leads_per_minute))
    yield
    for task in list(app[CT].callbacks):
        task.cancel()
    await history.close()
    await store.close()
    if limits is not None:
        await limits.aclose()


def _error(status: int, code: str, headers: dict[str, str] | None = None,
           **params: object) -> web.Response:
    """The error shape of the API (``{"error", "code"}``), with this endpoint's CORS headers."""
    return web.json_response({"error": sentence(code, params), "code": code}, status=status,
                             headers=headers)


async def _load_site(app: web.Application, host: str) -> SiteView | None:
    ct = app[CT]
    async with app[SESSIONS]() as session:
        site = await get_site(session, host)
        view = None
        if site is not None:
            view = SiteView(site, tuple(pool_of(site)), rules_of(site))
            session.expunge_all()  # detached, with its numbers loaded: safe to share
    if len(ct.sites) > 10_000:
        ct.sites.clear()
    ct.sites[host] = (time.monotonic() + SITE_CACHE_SECONDS, view)
    return view


async def _site(request: web.Request, host: str) -> SiteView | None:
    """The site from a few seconds' cache; one query refreshes it, the others never wait."""
    ct = request.app[CT]
    cached = ct.sites.get(host)
    if cached is not None and cached[0] > time.monotonic():
        return cached[1]
    pending = ct.loading.get(host)
    if pending is None:
        pending = asyncio.ensure_future(_load_site(request.app, host))
        ct.loading[host] = pending
        pending.add_done_callback(lambda _: ct.loading.pop(host, None))
    if cached is not None:
        return cached[1]  # a moment stale while one request reloads it
    return await asyncio.shield(pending)


def _host_param(raw: Any) -> str | None:
    if not isinstance(raw, str) or not raw or len(raw) > 253:
        return None
    try:
        return normalize_host(raw)
    except CallTrackingError:
        return None


def _cors(request: web.Request, site: CtSite) -> dict[str, str] | None:
    """CORS headers for an allowed origin; None when the origin is not the site's."""
    origin = request.headers.get("Origin")
    if origin is None:
        return {}  # not a browser's cross-origin request: CORS does not apply
    if origin.lower().rstrip("/") not in site.allowed_origins:
        return None
    return {"Access-Control-Allow-Origin": origin, "Vary": "Origin",
            "Access-Control-Allow-Methods": "POST, OPTIONS",
            "Access-Control-Allow-Headers": "Content-Type", "Access-Control-Max-Age": "600"}


@functools.cache
def _snippet_text() -> str:
    return compact_script(SNIPPET.read_text("utf-8"))


async def snippet(request: web.Request) -> web.Response:
    """``GET /ct.js?site=HOST``: the script a site owner adds with one tag."""
    host = _host_param(request.query.get("site"))
    view = await _site(request, host) if host else None
    if view is None:
        return _error(404, "calltracking.unknown_site")
    site = view.site
    config = {"site": site.host, "selector": site.selector, "numbers": site.default_numbers,
              "heartbeat": site.heartbeat_seconds}
    body = _snippet_text().replace("/*CONFIG*/null", json.dumps(config, ensure_ascii=True))
    return web.Response(text=body, content_type="application/javascript", charset="utf-8",
                        headers={"Cache-Control": "public, max-age=300",
                                 "X-Content-Type-Options": "nosniff"})


def _text(body: dict[str, Any], key: str, limit: int, *, required: bool = False) -> str | None:
    value = body.get(key)
    if value is None or value == "":
        if required:
            raise CallTrackingError("request.field_required", f"{key} is required", name=key)
        return None
    if not isinstance(value, str) or len(value) > limit or not value.isprintable():
        raise CallTrackingError("request.text_too_long",
                                f"{key} must be text of at most {limit} characters",
                                name=key, max=limit)
    return value


def _page_url(value: str | None, key: str) -> str | None:
    if value is None:
        return None
    parts = urlsplit(value)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise CallTrackingError("request.not_url", f"{key} must be an http(s) URL", name=key)
    return value


def _client_ids(body: dict[str, Any]) -> dict[str, str]:
    ids: dict[str, str] = {}
    raw = body.get("client_ids")
    if raw is not None:
        if not isinstance(raw, dict) or len(raw) > 5:
            raise CallTrackingError("calltracking.client_ids",
                                    "client_ids must be an object of at most 5 ids")
        for key, value in raw.items():
            if key not in ("ga", "ym_uid") or not isinstance(value, str) or \
                    not _CLIENT_ID.fullmatch(value):
                raise CallTrackingError("calltracking.client_ids_keys",
                                        "client_ids may hold ga and ym_uid (short ids)")
            ids[key] = value
    single = body.get("client_id")
    if single is not None:
        if not isinstance(single, str) or not _CLIENT_ID.fullmatch(single):
            raise CallTrackingError("calltracking.client_id", "client_id must be a short id")
        ids.setdefault("client_id", single)
    return ids


async def preflight(request: web.Request) -> web.Response:
    body_site = _host_param(request.query.get("site"))
    origin = (request.headers.get("Origin") or "").lower().rstrip("/")
    host = body_site or (urlsplit(origin).netloc if origin else None)
    view = await _site(request, host) if host else None
    headers = _cors(request, view.site) if view is not None else None
    if not headers:
        return _error(403, "calltracking.origin_not_allowed")
    return web.Response(status=204, headers=headers)


def _too_many() -> web.Response:
    return _error(429, "http.too_many", {"Retry-After": "60"})


@dataclass(frozen=True)
class PublicRequest:
    """A public request past the checks every public endpoint makes: the visitor's
    address within its rate, a small JSON object naming a known site, an allowed origin."""

    view: SiteView
    cors: dict[str, str]
    body: dict[str, Any]
    address: str


async def public_request(request: web.Request, *, max_body: int = MAX_BODY,
                         rate_limited: bool = True) -> PublicRequest | web.Response:
    """The checked request, or the refusal to answer with (429, 413, 400, 404, 403).

    ``rate_limited`` False: the caller counts the request against the address's rate
    itself, as :func:`session_endpoint` does together with the visitor limits."""
    ct = request.app[CT]
    address = visitor_address(client_ip(request))
    if rate_limited and not await ct.limiter.allow(address, utcnow().timestamp()):
        return _too_many()
    if request.content_length is not None and request.content_length > max_body:
        return _error(413, "http.too_large")
    raw = await request.content.read(max_body + 1)
    if len(raw) > max_body:
        return _error(413, "http.too_large")
    try:
        body = json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, ValueError):
        return _error(400, "request.not_object")
    if not isinstance(body, dict):
        return _error(400, "request.not_object")
    host = _host_param(body.get("site"))
    if host is None:
        return _error(400, "calltracking.site_param")
    view = await _site(request, host)
    if view is None:
        return _error(404, "calltracking.unknown_site")
    cors = _cors(request, view.site)
    if cors is None:
        return _error(403, "calltracking.origin_not_allowed")
    return PublicRequest(view, cors, body, address)


async def _counted(request: web.Request, refusal: web.Response) -> web.Response:
    """A refused request counts against its address's rate too, and a 429 comes first."""
    ct = request.app[CT]
    address = visitor_address(client_ip(request))
    if not await ct.limiter.allow(address, utcnow().timestamp()):
        return _too_many()
    return refusal


async def _admit(ct: CallTracking, site: CtSite, address: str, visitor: str,
                 token: str | None, bot: bool, wants: bool, pool: int, now: float
                 ) -> tuple[bool, str, bool, Refusal | None]:
    """(within the address's rate, the visit's token, bot, why no number): in one Redis
    round trip when the limits are shared, else step by step in this process."""
    offered = new_token(site) if token is None else None
    limiter, visitors = ct.limiter, ct.visitors
    if isinstance(visitors, RedisVisitorGuard) and isinstance(limiter, RedisRateLimiter):
        return await visitors.admit(limiter, site=site.host, address=address, visitor=visitor,
                                    token=token, offered=offered, bot=bot, wants=wants,
                                    pool=pool, now=now)
    if not await limiter.allow(address, now):
        return False, "", bot, None
    if token is None:
        # a visitor who lost his token gets his visit back; a forged, foreign or missing
        # token otherwise starts a new visit, and new visits per address are limited
        token = await visitors.returning(visitor, now)
        if token is None:
            assert offered is not None
            token = offered
            bot = bot or not await visitors.new_visits.allow(f"{site.host}|{address}", now)
    refused = (await visitors.refusal(site.host, address, token, pool, now)
               if wants and not bot else None)
    return True, token, bot, refused


async def session_endpoint(request: web.Request) -> web.Response:
    """``POST /api/ct/session``: record the visit and keep or lease it a number.

    On the request's path: the checks, one round trip for the address's rate and the
    visitor limits, the lease and its record in the visitor limits; the visit and its
    history are written in batches, behind the answer."""
    ct = request.app[CT]
    checked = await public_request(request, rate_limited=False)
    if isinstance(checked, web.Response):
        return await _counted(request, checked)
    view, cors, body, address = checked.view, checked.cors, checked.body, checked.address
    site = view.site
    try:
        url = _page_url(_text(body, "url", MAX_URL, required=True), "url")
        referrer = _page_url(_text(body, "referrer", MAX_URL), "referrer")
        token = _text(body, "session", 64)
        ids = _client_ids(body)
        activity = body.get("activity", True)
        if not isinstance(activity, bool):
            raise CallTrackingError("request.not_boolean", "activity must be true or false",
                                    name="activity")
    except CallTrackingError as exc:
        return await _counted(request, _error(400, exc.code, cors, **exc.params))
    assert url is not None
    agent = request.headers.get("User-Agent", "")[:300]
    bot = not agent or BOT_AGENTS.search(agent) is not None
    now = utcnow()
    moment = now.timestamp()
    visitor = VisitorGuard.visitor(site.host, address, ids, agent)
    if token is not None and not token_is_valid(site, token):
        token = None
    allowed, token, bot, refused = await _admit(
        ct, site, address, visitor, token, bot, activity and bool(view.pool), len(view.pool),
        moment)
    if not allowed:
        return _too_many()
    number = None
    timing: dict[str, str] = {}
    decision = None
    wants = activity and not bot and bool(view.pool)
    if wants and refused is None:
        leases, visitors = ct.leases, ct.visitors
        started = time.perf_counter()
        if isinstance(leases, RedisLeaseStore) and isinstance(visitors, RedisVisitorGuard):
            # shared leases and limits: the lease records itself in the limits, one script
            decision = await leases.acquire(site.host, view.pool, view.rules, token, moment,
                                            record=visitors.record_keys(site.host, address,
                                                                        visitor))
            recorded = True
        else:
            decision = await leases.acquire(site.host, view.pool, view.rules, token, moment)
            recorded = False
        # how long the lease itself took (the benchmark reads it; browsers show it)
        timing = {"Server-Timing": f"lease;dur={(time.perf_counter() - started) * 1000:.3f}"}
        number = decision.number
        if number is not None and not recorded:
            await visitors.leased(site.host, address, visitor, token,
                                  decision.expires_at or moment + view.rules.hold, moment)
    elif refused == Refusal.POOL:
        # a few addresses would take the rest of the pool: for this visitor it ran out
        decision = Decision(None, Outcome.FALLBACK)
    await ct.history.put(VisitEvent(site.id, site.hold_seconds, token,
                                    VisitReport(url, referrer, ids, agent), now, bot, decision))
    fallback = site.default_numbers[0] if site.default_numbers else None
    return web.json_response(
        {"session": token, "number": number or fallback, "tracked": number is not None,
         "heartbeat": site.heartbeat_seconds},
        headers={**cors, **timing, "Cache-Control": "no-store"})
