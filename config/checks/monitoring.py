"""Monitoring: published like the gateway, rules evaluated no faster than data arrives."""

from __future__ import annotations

from ..stack import Parsed
from .network import bind_problem


def check_monitoring(parsed: Parsed, problems) -> None:
    monitoring = parsed.monitoring
    if monitoring is None or not monitoring.enabled:
        return
    problem = bind_problem(monitoring.bind_address, monitoring.allow_public_bind, "monitoring.allowPublicBind")
    if problem:
        problems.append(("monitoring.bindAddress", problem))
    if monitoring.evaluation_interval_seconds < monitoring.scrape_interval_seconds:
        problems.append(("monitoring.evaluationIntervalSeconds",
                         "is shorter than monitoring.scrapeIntervalSeconds (rules would see stale data)"))
