"""Routes AMI events to the tracker, turning channel listings into reconciliation.

After every (re)connect the listener asks Asterisk for ``CoreShowChannels``. The
listing arrives as ``CoreShowChannel`` events closed by ``CoreShowChannelsComplete``,
in order with every other event, and lands in the AMI capture like them. Feeding
live events and replayed captures through this one router makes a replay rebuild
exactly what the live listener concluded, outages included. Sans-IO.
"""

from __future__ import annotations

from collections.abc import Mapping

from .frames import EventFilter
from .tracker import HANDLED_EVENTS, KNOWN_VARIABLES, CallTracker, Fact

LISTING_ITEM = "CoreShowChannel"
LISTING_END = "CoreShowChannelsComplete"
RECONCILE_PREFIX = "telecrm-reconcile-"

# Everything a TrackerFeed reads, for FrameParser(events=...): the rest of the stream
# is passed over before it becomes dicts (the feed's results are the same).
TRACKER_EVENTS = EventFilter(wanted=HANDLED_EVENTS | {LISTING_ITEM, LISTING_END},
                             variables=KNOWN_VARIABLES)


class TrackerFeed:
    """Feeds events to a :class:`CallTracker`; a finished listing reconciles it."""

    def __init__(self, tracker: CallTracker, *, text_only: bool = False) -> None:
        """``text_only``: every event fed is a dict of ``str`` to ``str`` (``FrameParser``'s),
        so the tracker need not copy it (``CallTracker.feed_text``)."""
        self.tracker = tracker
        self._apply = tracker.feed_text if text_only else tracker.feed
        self._listings: dict[str, list[Mapping[str, str]]] = {}
        self.reconciliations = 0

    def feed(self, event: Mapping[str, str]) -> list[Fact]:
        name = event.get("Event")
        if name == LISTING_ITEM or name == LISTING_END:
            action_id = event.get("ActionID", "")
            if not action_id.startswith(RECONCILE_PREFIX):
                return []  # somebody else's listing (a CLI user, another app)
            if name == LISTING_ITEM:
                self._listings.setdefault(action_id, []).append(event)
                return []
            listing = self._listings.pop(action_id, [])
            self.reconciliations += 1
            return self.tracker.reconcile(listing, _listing_time(event, self.tracker))
        return self._apply(event)


def _listing_time(event: Mapping[str, str], tracker: CallTracker) -> float:
    try:
        return float(event["Timestamp"])
    except (KeyError, TypeError, ValueError):
        clock = tracker.clock
        return clock.timestamp() if clock else 0.0
