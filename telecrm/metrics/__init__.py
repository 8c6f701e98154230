"""Metrics for Prometheus: ``/metrics``, its per-app registry, and what feeds it.

Exposes :func:`setup_metrics` (the app factory's one call), :data:`METRICS` (the app's
:class:`Metrics`) and :func:`route_label`.
"""

from telecrm.metrics.registry import Metrics
from telecrm.metrics.web import METRICS, route_label, setup_metrics

__all__ = ["METRICS", "Metrics", "route_label", "setup_metrics"]
