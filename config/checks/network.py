"""Published addresses and ports: nothing public by accident, nothing published twice."""

from __future__ import annotations

from typing import Optional

from ..stack import Parsed
from ..values import ip_or_none


def bind_problem(address: str, allowed: bool, allow_key: str) -> Optional[str]:
    ip = ip_or_none(address)
    if ip is None:
        return f"{address!r} is not an IP address"
    if ip.is_loopback or allowed:
        return None
    if ip.is_unspecified or not ip.is_private:
        return (
            f"{address!r} publishes on a public or on all interfaces; bind to 127.0.0.1 or "
            f"a private address, or set {allow_key}: true if that is intended"
        )
    return None


def _published_ports(parsed: Parsed) -> list[tuple[str, str, int]]:
    """(config key, bind address, port) of every port the stack publishes on the Docker host."""
    published = []
    gateway = parsed.gateway
    if gateway is not None:
        # Only the load balancer publishes; the replicas are reached on the private network.
        published.append(("gateway.port", gateway.bind_address, gateway.port))
        redirect = gateway.load_balancer.tls.http_redirect_port
        if gateway.load_balancer.tls.enabled and redirect is not None:
            published.append(("gateway.loadBalancer.tls.httpRedirectPort", gateway.bind_address, redirect))
    monitoring = parsed.monitoring
    if monitoring is not None and monitoring.enabled:
        published.append(("monitoring.prometheusPort", monitoring.bind_address, monitoring.prometheus_port))
        published.append(("monitoring.grafanaPort", monitoring.bind_address, monitoring.grafana_port))
    vault = parsed.vault
    if vault is not None and vault.mode == "dev-container":
        published.append(("vault.devPort", "127.0.0.1", vault.dev_port))
    return published


def _same_socket(a: str, b: str) -> bool:
    ip_a, ip_b = ip_or_none(a), ip_or_none(b)
    if ip_a is None or ip_b is None:
        return False
    return ip_a == ip_b or ip_a.is_unspecified or ip_b.is_unspecified


def check_port_clashes(parsed: Parsed, problems) -> None:
    published = _published_ports(parsed)
    for i, (key, address, port) in enumerate(published):
        for other_key, other_address, other_port in published[:i]:
            if port == other_port and _same_socket(address, other_address):
                problems.append((key, f"port {port} on {address} is already published for {other_key}"))
                break
