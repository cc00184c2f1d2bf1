"""What only a dev stack may do (dev-mode Vault, plain-HTTP Vault, skipped TLS checks, local Ollama)."""

from __future__ import annotations

from urllib.parse import urlparse

from ..stack import Parsed, is_dev_environment
from ..values import ip_or_none


def check_environment(parsed: Parsed, problems) -> None:
    """What only a dev stack may do."""
    environment = parsed.environment
    if environment is None or is_dev_environment(environment):
        return
    vault = parsed.vault
    if vault is not None:
        if vault.mode == "dev-container":
            problems.append(("vault.mode", f"dev-container keeps secrets in memory only; {environment} needs mode: external"))
        if vault.address and vault.address.startswith("http://"):
            problems.append(("vault.address", f"{vault.address!r} sends the Vault token in plain text; "
                             f"{environment} needs https:// (only dev stacks may use http://)"))
        if vault.skip_tls_verify:
            problems.append(("vault.skipTlsVerify", f"turns off TLS verification; only dev stacks may do that, not {environment}"))
    _check_secrets_travel_encrypted(parsed, environment, problems)
    for i, host in enumerate(parsed.gpu_hosts or ()):
        if host.local_container is not None:
            problems.append((f"gpuHosts[{i}].localContainer", f"runs Ollama on the gateway's Docker engine, "
                             f"which only dev stacks do; {environment} needs real GPU hosts"))


def _loopback_url(url: str) -> bool:
    host = urlparse(url).hostname or ""
    address = ip_or_none(host)
    return host == "localhost" or (address is not None and address.is_loopback)


def _check_secrets_travel_encrypted(parsed: Parsed, environment: str, problems) -> None:
    """Outside dev stacks every hop that carries a secret is encrypted, or a named waiver says why not."""
    gateway, docker, access = parsed.gateway, parsed.docker, parsed.access
    kube = parsed.kubernetes if parsed.platform == "kubernetes" else None
    # On Kubernetes the Ingress carries the keys (check_platform asks for its TLS) and has its own waiver.
    waiver_key = "kubernetes.ingress.allowPlainHttp" if kube is not None else "gateway.loadBalancer.allowPlainHttp"
    if kube is not None:
        waived = kube.ingress.allow_plain_http is not None
    else:
        waived = gateway is not None and gateway.load_balancer.allow_plain_http is not None
    if kube is None and gateway is not None and not gateway.load_balancer.tls.enabled and not waived:
        problems.append(("gateway.loadBalancer.tls.enabled", (
            f"is false: {environment} would carry the master key and every client's key over plain HTTP. Enable "
            "TLS (gateway.loadBalancer.tls), or set gateway.loadBalancer.allowPlainHttp to the reason it is not "
            "needed (for example: TLS ends at a load balancer in front of this host)")))
    url = access.management_url if access is not None else None
    if url and url.startswith("http://") and not _loopback_url(url) and not waived:
        problems.append(("access.managementUrl", (
            f"{url!r} sends the master key over plain HTTP; use https:// (or a loopback URL, such as an SSH tunnel's), "
            f"or set {waiver_key} to the reason")))
    if docker is not None and docker.host.startswith("tcp://") and docker.allow_plain_tcp is None:
        problems.append(("docker.host", (
            f"{docker.host!r}: the Docker API on TCP carries every container's secrets unauthenticated; {environment} "
            "needs ssh://user@host, or docker.allowPlainTcp set to the reason")))
