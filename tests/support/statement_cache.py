"""One cache of compiled SQL per kind of database for all the engines of a test process.

SQLAlchemy compiles a statement once per engine and keeps it in that engine's cache,
keyed by the engine's own dialect object. A long-running ``telecrm serve`` has one
engine, so each statement is compiled once in its life; a test process makes about
900 engines (each app, command, fixture and migration check has its own, on its own
database file), and a whole run compiled about 129,000 statements afresh, the same
few thousand over and over: 67 of the test processes' core-seconds went to compiling
and looking up. Shared, a run compiles 11,500 and spends 26 core-seconds on it.

Here the engines of a test process whose dialects are configured alike (same class,
same driver, same server version and settings) share one cache, as the engines of one
long-running process would if there were several. The SQL sent and the results are
the same; only the compiling is saved. A dialect whose settings differ gets a cache of
its own, and anything SQLAlchemy does not hand us in the expected shape is left to its
own cache.
"""

from __future__ import annotations

import enum
import inspect
import weakref
from typing import Any

from sqlalchemy.engine import Dialect
from sqlalchemy.sql import elements
from sqlalchemy.util import LRUCache, memoized_property, symbol

# Distinct statements a test process keeps compiled, per kind of database: a whole run's
# busiest process held 1,500 on SQLite and 1,200 on PostgreSQL. SQLAlchemy's own
# default is 500 per engine.
STATEMENTS_KEPT = 4_000

_SIMPLE = (str, int, float, bool, type(None), tuple, symbol, enum.Enum)


class _SharedCache:
    """An engine's compiled cache, as SQLAlchemy uses it (``get`` and item setting),
    over one LRU shared by every dialect with the same settings."""

    def __init__(self, number: int) -> None:
        self._number = number  # stands for the settings in keys: hashed on every lookup
        self._compiled: LRUCache[Any, Any] = LRUCache(STATEMENTS_KEPT)

    def _key(self, key: tuple[Any, ...]) -> tuple[Any, ...]:
        if not isinstance(key[0], Dialect):  # not the layout this was written for
            return key
        return (self._number, *key[1:])

    def get(self, key: tuple[Any, ...], default: Any = None) -> Any:
        return self._compiled.get(self._key(key), default)

    def __setitem__(self, key: tuple[Any, ...], value: Any) -> None:
        self._compiled[self._key(key)] = value


_by_settings: dict[tuple[Any, ...], _SharedCache] = {}
_by_dialect: weakref.WeakKeyDictionary[Dialect, _SharedCache] = weakref.WeakKeyDictionary()


def _settings_of(dialect: Dialect) -> tuple[Any, ...]:
    """What a compiled statement depends on: the dialect's class, its driver, and every
    plain setting it holds (server version, paramstyle, RETURNING support, ...).

    Values SQLAlchemy computes from those on first use and then keeps on the dialect
    (memoized properties) are left out: they would tell apart two dialects set up alike
    by what each had been asked so far.
    """
    cls = type(dialect)
    plain = tuple(sorted((name, value) for name, value in vars(dialect).items()
                         if isinstance(value, _SIMPLE)
                         and not isinstance(getattr(cls, name, None), memoized_property)))
    return (type(dialect), type(getattr(dialect, "loaded_dbapi", None)), plain)


def _shared_cache(dialect: Dialect) -> _SharedCache | None:
    shared = _by_dialect.get(dialect)
    if shared is None:
        if "server_version_info" not in vars(dialect):  # not yet connected: settings not final
            return None
        settings = _settings_of(dialect)
        try:
            shared = _by_settings.get(settings)
        except TypeError:  # a setting that cannot be compared: this engine keeps its own
            return None
        if shared is None:
            shared = _by_settings[settings] = _SharedCache(len(_by_settings))
        _by_dialect[dialect] = shared
    return shared


def share_compiled_statements() -> None:
    """Install the shared caches in this process (idempotent)."""
    original = elements.ClauseElement._compile_w_cache
    if getattr(original, "shares_compiled_statements", False):
        return
    if "compiled_cache" not in inspect.signature(original).parameters:
        return  # another SQLAlchemy than the one this was written for: leave it alone

    def compile_w_shared_cache(self: elements.ClauseElement, dialect: Dialect, *,
                               compiled_cache: Any, **kw: Any) -> Any:
        if compiled_cache is not None:
            shared = _shared_cache(dialect)
            if shared is not None:
                compiled_cache = shared
        return original(self, dialect, compiled_cache=compiled_cache, **kw)

    compile_w_shared_cache.shares_compiled_statements = True  # type: ignore[attr-defined]
    elements.ClauseElement._compile_w_cache = compile_w_shared_cache  # type: ignore[method-assign]
