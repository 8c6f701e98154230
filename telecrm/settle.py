"""What a ``telecrm serve`` process does once it is set up and before it takes requests.

Two costs otherwise land on the first pages and then on every page after:

- **templates**: Jinja loads a template (from the compiled cache on disk) the first
  time a page renders it, so a process (re)started under a full floor paid for them in
  its first requests; loading all of them takes about 10 ms here instead;
- **the garbage collector**: a full collection walks every object alive, and a serving
  process holds some 200,000 from its start (modules, the schema, routes, templates)
  that live as long as it does. Under bursts of pages each full collection took about
  90 ms of a web process, a pause for every request in flight, and the collector's
  work was a sixth of the process's processor time (bench/RESULTS.md). ``gc.freeze()``
  sets the start-up's objects aside, so that collections walk only what requests
  create, as CPython's documentation advises for servers. What the start-up made and
  later drops is still freed by reference counting; only a reference cycle among those
  objects would stay, once, never a growth.
"""

from __future__ import annotations

import gc
import logging

import aiohttp_jinja2
from aiohttp import web

log = logging.getLogger(__name__)


def load_templates(app: web.Application) -> int:
    """Load every page template of a web-role app into its environment; returns how many."""
    env = app.get(aiohttp_jinja2.APP_KEY)
    if env is None:  # the listener role renders no page
        return 0
    names = env.list_templates()
    for name in names:
        env.get_template(name)
    return len(names)


def settle(app: web.Application) -> None:
    """Load the templates, then set aside from the collector what start-up left alive."""
    templates = load_templates(app)
    gc.collect()
    gc.freeze()
    log.info("ready: %d templates loaded, %d objects of the start-up set aside from the "
             "garbage collector", templates, gc.get_freeze_count())
