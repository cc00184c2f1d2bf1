"""The gateway's cross-checks: where it is published, room for a rolling replacement, one source of TLS."""

from __future__ import annotations

from ..stack import Parsed
from ..values import ip_or_none
from .network import bind_problem


def check_gateway(parsed: Parsed, problems) -> None:
    gateway = parsed.gateway
    if gateway is None:
        return
    problem = bind_problem(gateway.bind_address, gateway.allow_public_bind, "gateway.allowPublicBind")
    if problem:
        problems.append(("gateway.bindAddress", problem))
    if parsed.platform != "kubernetes" and gateway.load_balancer.max_replicas < 2 * gateway.replicas:
        problems.append(("gateway.loadBalancer.maxReplicas",
                         f"{gateway.load_balancer.max_replicas} slots cannot hold {gateway.replicas} replicas and their "
                         f"replacements side by side during a rolling replacement; use at least {2 * gateway.replicas}"))
    tls = gateway.load_balancer.tls
    if not tls.enabled and (tls.vault is not None or tls.http_redirect_port is not None):
        problems.append(("gateway.loadBalancer.tls.enabled", "is false, but other TLS settings are given"))


def certificate_source_problems(parsed: Parsed, enabled: bool, vault, key: str, disabled_why: str, problems) -> None:
    """TLS material from one place: the Vault secret `<key>.vault`, or both secret config keys."""
    from_config = {"gatewayTlsCertificate", "gatewayTlsKey"} & set(parsed.supplied)
    if not enabled:
        if from_config:
            problems.append((sorted(from_config)[0], f"is set but {disabled_why}"))
        return
    if vault is not None and from_config:
        problems.append((f"{key}.vault", "set both this and gatewayTlsCertificate/gatewayTlsKey; "
                         "keep one source for the certificate"))
    elif vault is None and len(from_config) != 2:
        problems.append((key, f"TLS needs the certificate and key: set {key}.vault "
                         "{mount, path}, or both secret config keys gatewayTlsCertificate and gatewayTlsKey"))


def check_tls_source(parsed: Parsed, problems) -> None:
    gateway = parsed.gateway
    if gateway is None or parsed.platform == "kubernetes":  # the Ingress's: check_kubernetes_tls_source
        return
    tls = gateway.load_balancer.tls
    certificate_source_problems(parsed, tls.enabled, tls.vault, "gateway.loadBalancer.tls",
                                "gateway.loadBalancer.tls.enabled is false", problems)


def check_management_reach(parsed: Parsed, problems) -> None:
    """With a remote Docker engine, the load balancer on the engine's loopback is not this machine's:
    the default management URL would hand the master key to whatever listens on the operator's own."""
    gateway, docker, access = parsed.gateway, parsed.docker, parsed.access
    if gateway is None or docker is None or access is None or access.management_url or parsed.platform == "kubernetes":
        return
    address = ip_or_none(gateway.bind_address)
    if docker.host.startswith("unix://") or address is None or not address.is_loopback:
        return
    problems.append(("access.managementUrl", (
        f"required: the gateway listens on {gateway.bind_address} of the Docker host {docker.host}, which this machine "
        "cannot reach as its own loopback (the master key would go to whatever listens here). Set it to the URL "
        "this machine reaches the gateway on (an SSH tunnel's local end, or a private address)")))
