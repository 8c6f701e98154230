"""The garbage collector's work in a test process: fewer and smaller full collections.

A full collection walks every object the process holds, and in a whole run of the suite
the four test processes spent 28-64 s each in them (``gc.callbacks``; about a sixth of
their processor time), growing to 2-3 million objects each. Three causes, three answers:

- aiohttp memoizes each (handler, applications) chain of middlewares in a module-level
  LRU cache of 1,024 entries (``aiohttp.web_app._cached_build_middleware``). One server
  builds one application, so that costs nothing in production; a test process builds
  hundreds, and the cache kept the last few dozen alive with all they hold (engines and
  their compiled statements, templates, metrics registries). It is emptied after each
  test.
- What is alive once the tests are collected (every library's modules, classes and
  functions, and the test modules': 840,000 objects) is frozen out of the collections.
- A full collection comes after 20 collections of the middle generation instead of 10,
  and a young one after 10,000 new objects instead of 700: the suite makes objects by the
  million (statements, rows, pages), and most of them live as long as one test.
"""

from __future__ import annotations

import gc

import aiohttp.web_app
import pytest


def pytest_collection_finish(session: pytest.Session) -> None:
    gc.collect()
    gc.freeze()
    gc.set_threshold(10_000, 20, 20)


@pytest.hookimpl(trylast=True)
def pytest_runtest_teardown(item: pytest.Item, nextitem: pytest.Item | None) -> None:
    aiohttp.web_app._cached_build_middleware.cache_clear()
