"""Settings that only one platform can honour are refused on the other, each with what to use instead.

A key counts as set when the stack file gives it (pydantic's `model_fields_set`), so a default never
trips these checks.
"""

from __future__ import annotations

from typing import Any

from ..stack import Parsed, is_dev_environment
from ..values import ip_or_none
from .gateway import certificate_source_problems

# Keys of a section that only the Docker platform reads: (section attribute, key path, camelCase keys, why).
_DOCKER_ONLY = (
    ("gateway", "gateway", ("bindAddress", "port", "allowPublicBind"),
     "the gateway is reached through kubernetes.ingress (or its Service) on Kubernetes, not on a host port"),
    ("monitoring", "monitoring", ("prometheusImage", "grafanaImage", "bindAddress", "allowPublicBind", "prometheusPort",
                                  "grafanaPort", "retentionDays", "evaluationIntervalSeconds", "alertmanagers"),
     "on Kubernetes the cluster's Prometheus (prometheus-operator) scrapes the gateway and evaluates its rules, "
     "and Grafana's sidecar loads its dashboards; these belong to that Prometheus"),
    ("postgres", "postgres", ("volumeName",),
     "the in-cluster database keeps its data on a PersistentVolumeClaim (kubernetes.storageClass, "
     "kubernetes.postgresStorageGb)"),
    ("backups", "backups", ("hostPath", "volumeName"),
     "dumps go to a PersistentVolumeClaim on Kubernetes (kubernetes.storageClass, kubernetes.backupStorageGb)"),
    ("containers", "containers", ("logMaxSizeMb", "logMaxFiles"),
     "the kubelet rotates container logs on Kubernetes (its containerLogMaxSize and containerLogMaxFiles)"),
)
_DOCKER_ONLY_LIMITS = ("prometheus", "grafana", "vaultDev", "ollamaDev")
_DOCKER_ONLY_LOAD_BALANCER = {
    "tls": "TLS ends at the Ingress on Kubernetes: use kubernetes.ingress.tls",
    "allowPlainHttp": "the waiver for plain HTTP is kubernetes.ingress.allowPlainHttp on Kubernetes",
    "maxConnectionsPerClient": "behind an Ingress every client arrives from the controller's addresses, so a limit "
                               "per client address would throttle everyone together; use your controller's limits",
}


# Every key path only the Docker platform reads (with why), besides the whole `docker` section and
# `gpuHosts[].localContainer`: for the reference's platform column and the tests.
DOCKER_ONLY_KEYS = {
    **{f"{path}.{key}": why for _, path, keys, why in _DOCKER_ONLY for key in keys},
    **{f"containers.limits.{key}": "that container runs only on the Docker platform" for key in _DOCKER_ONLY_LIMITS},
    **{f"gateway.loadBalancer.{key}": why for key, why in _DOCKER_ONLY_LOAD_BALANCER.items()},
}


def option_platform(path: str) -> str | None:
    """'docker' or 'kubernetes' for a key path (`gateway.port`, `gpuHosts[].localContainer.image`) only one
    platform reads; None for a key both read."""
    if path == "kubernetes" or path.startswith("kubernetes."):
        return "kubernetes"
    if path == "docker" or path.startswith(("docker.", "gpuHosts[].localContainer")):
        return "docker"
    for key in DOCKER_ONLY_KEYS:
        if path == key or path.startswith(key + "."):
            return "docker"
    return None


def given_keys(model: Any) -> set[str]:
    """The camelCase keys the stack file set on a section model."""
    if model is None:
        return set()
    fields = type(model).model_fields
    return {fields[name].alias or name for name in model.model_fields_set}


def check_platform(parsed: Parsed, problems) -> None:
    if parsed.platform == "kubernetes":
        _check_kubernetes(parsed, problems)
    elif parsed.platform == "docker" and given_keys(parsed.kubernetes):
        problems.append(("kubernetes", "is set but platform is docker; set platform: kubernetes to deploy to a "
                         "cluster, or remove this section"))


def _check_kubernetes(parsed: Parsed, problems) -> None:
    def refuse(key: str, why: str) -> None:
        problems.append((key, f"applies only to platform docker: {why}"))

    if given_keys(parsed.docker):
        refuse("docker", "a kubernetes stack places its containers with kubernetes.kubeconfig and kubernetes.context")
    for attribute, path, keys, why in _DOCKER_ONLY:
        given = given_keys(getattr(parsed, attribute))
        for key in keys:
            if key in given:
                refuse(f"{path}.{key}", why)
    if parsed.containers is not None:
        given_limits = given_keys(parsed.containers.limits)
        for key in _DOCKER_ONLY_LIMITS:
            if key in given_limits:
                refuse(f"containers.limits.{key}", "that container runs only on the Docker platform")
    if parsed.gateway is not None:
        given_lb = given_keys(parsed.gateway.load_balancer)
        for key, why in _DOCKER_ONLY_LOAD_BALANCER.items():
            if key in given_lb:
                refuse(f"gateway.loadBalancer.{key}", why)
    if parsed.vault is not None and parsed.vault.mode == "dev-container":
        problems.append(("vault.mode", "dev-container runs Vault on the Docker host; a kubernetes stack needs "
                         "mode: external (a Vault `pulumi up` reaches: it writes the secrets the pods get)"))
    for i, host in enumerate(parsed.gpu_hosts or ()):
        if host.local_container is not None:
            refuse(f"gpuHosts[{i}].localContainer", "a kubernetes stack reaches its GPU hosts over the network "
                   "(the pods route to each host's address and Ollama port; `pulumi up` pulls models over SSH)")
    kube = parsed.kubernetes
    if kube is None:
        return
    ingress = kube.ingress
    if ingress.enabled and not ingress.host:
        problems.append(("kubernetes.ingress.host", "required with the Ingress (the gateway's DNS name); or set "
                         "kubernetes.ingress.enabled: false"))
    if not ingress.tls.enabled and ingress.tls.vault is not None:
        problems.append(("kubernetes.ingress.tls.enabled", "is false, but tls.vault is given"))
    environment = parsed.environment
    if (ingress.enabled and not ingress.tls.enabled and ingress.allow_plain_http is None and environment
            and not is_dev_environment(environment)):
        problems.append(("kubernetes.ingress.tls.enabled", (
            f"is false: {environment} would carry the master key and every client's key over plain HTTP. Enable "
            "kubernetes.ingress.tls, or set kubernetes.ingress.allowPlainHttp to the reason")))
    scaling = kube.autoscaling
    if parsed.gateway is not None:
        # One server-template slot per pod the load balancer may see: the most pods, and the one a rollout adds.
        most = scaling.max_replicas if scaling.enabled else parsed.gateway.replicas
        if parsed.gateway.load_balancer.max_replicas < most + 1:
            key = "kubernetes.autoscaling.maxReplicas" if scaling.enabled else "gateway.replicas"
            problems.append(("gateway.loadBalancer.maxReplicas", (
                f"{parsed.gateway.load_balancer.max_replicas} slots cannot hold {most} replicas ({key}) and the one a "
                f"rolling update adds: a pod beyond the slots would be ready but get no traffic; use at least {most + 1}")))
        if (not scaling.enabled and parsed.gateway.replicas < 2 and environment
                and not is_dev_environment(environment)):
            problems.append(("gateway.replicas", (
                f"{parsed.gateway.replicas} replica: every node drain or node failure takes the gateway down; "
                f"{environment} needs at least 2 on Kubernetes (or kubernetes.autoscaling)")))
    if ingress.host and ip_or_none(ingress.host) is not None:
        problems.append(("kubernetes.ingress.host", f"{ingress.host!r} is an IP address; an Ingress host is a DNS name"))
    if not ingress.enabled:
        for key in sorted(given_keys(ingress) - {"enabled"}):
            problems.append((f"kubernetes.ingress.{key}", "is set but kubernetes.ingress.enabled is false"))
    if not scaling.enabled:
        for key in sorted(given_keys(scaling) - {"enabled"}):
            problems.append((f"kubernetes.autoscaling.{key}", "is set but kubernetes.autoscaling.enabled is false"))
    for i, host in enumerate(parsed.gpu_hosts or ()):
        if ip_or_none(host.address) is None and "." not in host.address:
            problems.append((f"gpuHosts[{i}].address", (
                f"{host.address!r} is a short name: the load balancer's resolver in the pod uses no search domains; "
                "give the host's full DNS name or its IP address")))
    if scaling.enabled and scaling.min_replicas > scaling.max_replicas:
        problems.append(("kubernetes.autoscaling.minReplicas",
                         f"{scaling.min_replicas} is above maxReplicas {scaling.max_replicas}"))
    if parsed.gateway is not None and scaling.enabled and "replicas" in given_keys(parsed.gateway):
        problems.append(("gateway.replicas", "must be left out with kubernetes.autoscaling.enabled: the autoscaler "
                         "owns the replica count (between kubernetes.autoscaling.minReplicas and maxReplicas)"))
    if (parsed.access is not None and not parsed.access.management_url and not ingress.enabled):
        problems.append(("access.managementUrl", "required without the Ingress: the URL this machine reaches the "
                         "gateway's Service on (for example a `kubectl port-forward`'s local end)"))


def check_kubernetes_tls_source(parsed: Parsed, problems) -> None:
    """The Ingress certificate comes from one place: Vault, or both secret config keys."""
    kube = parsed.kubernetes
    if parsed.platform != "kubernetes" or kube is None:
        return
    tls = kube.ingress.tls
    certificate_source_problems(parsed, kube.ingress.enabled and tls.enabled, tls.vault, "kubernetes.ingress.tls",
                                "the Ingress has no TLS (kubernetes.ingress.tls)", problems)
