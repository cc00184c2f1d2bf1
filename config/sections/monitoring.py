"""`monitoring`: Prometheus, the exporters, Grafana and the alert thresholds."""

from __future__ import annotations

from pydantic import Field

from ..types import HostPortText, IpAddress
from .base import Section


class ExporterSettings(Section):
    enabled: bool = True
    """Run this exporter (on the private network only)."""
    image: str
    """Pinned exporter image."""


class AlertSettings(Section):
    error_ratio: float = Field(default=0.05, gt=0, lt=1)
    """Alert when this share of gateway requests fails."""
    p95_latency_seconds: float = Field(default=30.0, gt=0)
    """Alert when the p95 request latency is above this."""
    for_minutes: int = Field(default=5, ge=1, le=1440)
    """How long a condition must hold before it alerts (gateway down: 2 min; outage and Redis: 1 min)."""


class MonitoringSettings(Section):
    enabled: bool = True
    """Prometheus, exporters and Grafana (BACKLOG-003, BACKLOG-007)."""
    prometheus_image: str = "prom/prometheus:v3.5.0"
    """Pinned Prometheus image."""
    grafana_image: str = "grafana/grafana:12.1.1"
    """Pinned Grafana image."""
    bind_address: IpAddress = "127.0.0.1"
    """Where Prometheus and Grafana are published; the same public-address rule as the gateway. Both ask for
    credentials: Prometheus basic auth (user `prometheus`, password `PROMETHEUS_PASSWORD` in Vault),
    Grafana its admin login."""
    allow_public_bind: bool = False
    """Explicitly allow a public `bindAddress`."""
    prometheus_port: int = Field(default=9090, ge=1, le=65535)
    """Prometheus' published port."""
    grafana_port: int = Field(default=3000, ge=1, le=65535)
    """Grafana's published port."""
    retention_days: int = Field(default=15, ge=1, le=3650)
    """Prometheus TSDB retention (data on a named volume)."""
    scrape_interval_seconds: int = Field(default=15, ge=1, le=300)
    """Scrape interval, 1-300 s."""
    evaluation_interval_seconds: int = Field(default=15, ge=1, le=300)
    """Rule evaluation interval, 1-300 s, not shorter than the scrape interval."""
    redis_exporter: ExporterSettings = ExporterSettings(image="oliver006/redis_exporter:v1.74.0-alpine")
    """`{enabled, image}` of the Redis exporter."""
    postgres_exporter: ExporterSettings = ExporterSettings(image="quay.io/prometheuscommunity/postgres-exporter:v0.17.1")
    """`{enabled, image}` of the Postgres exporter."""
    alerts: AlertSettings = AlertSettings()
    """Alert thresholds."""
    alertmanagers: tuple[HostPortText, ...] = ()
    """Alertmanagers (`host:port`) Prometheus sends alerts to; none: alerts show in Prometheus only."""
