"""Small helpers shared by the components that declare Kubernetes objects (pulumi-kubernetes).

Objects are built as plain dicts in the Python SDK's snake_case (the SDK sends them in Kubernetes'
camelCase); every object gets an explicit name, so references between objects (a Secret key, a Service
name) are known before `pulumi up` and the mock tests can follow them.
"""

from __future__ import annotations

import hashlib
from typing import Any, Optional

import pulumi
import pulumi_kubernetes as k8s

from config.names import PROJECT
from config.sections.containers import Limits
from config.stack import StackSettings
from renderers import data_stores

# Why a workload may keep what a checkov Kubernetes check forbids: checkov's own skip annotation on the
# object (`checkov.io/skip<n>: <check>=<reason>`), so `checkov --framework kubernetes` reads the waiver and its
# reason where a reviewer of the object sees it.
SKIP_ANNOTATION = "checkov.io/skip"
# What every workload of the stack waives.
IMAGE_WAIVERS = {
    "CKV_K8S_43": "images are pinned to a version tag (the settings refuse latest and untagged ones); write "
                  "image@sha256:<digest> in the stack file to pin a digest as well",
    "CKV_K8S_15": "a pinned tag does not move; IfNotPresent lets a pod start from the node's copy while the "
                  "registry is down",
}
IMAGE_USER_WAIVER = {"CKV_K8S_40": "the image runs as the user its files belong to (postgres 999, redis 999, "
                                   "haproxy 99, LiteLLM root); a UID above 10000 would not own them"}


def kubernetes_provider(settings: StackSettings) -> k8s.Provider:
    kube = settings.kubernetes
    return k8s.Provider("kubernetes", kubeconfig=kube.kubeconfig, context=kube.context,
                        namespace=settings.namespace)


def selector_labels(settings: StackSettings, component: str) -> dict[str, str]:
    """What a Service, a PodDisruptionBudget or a ServiceMonitor selects a component's pods by."""
    return {"app.kubernetes.io/name": PROJECT, "app.kubernetes.io/instance": settings.environment,
            "app.kubernetes.io/component": component}


def object_labels(settings: StackSettings, component: str) -> dict[str, str]:
    return {**selector_labels(settings, component), "app.kubernetes.io/managed-by": "pulumi",
            "app.kubernetes.io/part-of": PROJECT}


def metadata(settings: StackSettings, name: str, component: str, *, labels: Optional[dict[str, str]] = None,
             annotations: Optional[dict[str, Any]] = None) -> dict[str, Any]:
    meta: dict[str, Any] = {"name": name, "namespace": settings.namespace,
                            "labels": {**object_labels(settings, component), **(labels or {})}}
    if annotations:
        meta["annotations"] = annotations
    return meta


def resources(limits: Limits) -> dict[str, Any]:
    """Requests equal to limits (the Guaranteed QoS class): the scheduler reserves what Docker would cap."""
    values = {"cpu": f"{max(1, round(limits.cpus * 1000))}m", "memory": f"{limits.memory_mb}Mi"}
    return {"requests": dict(values), "limits": dict(values)}


def pod_security(*, user: Optional[int] = None, group: Optional[int] = None) -> dict[str, Any]:
    """The pod's securityContext: the runtime's default seccomp profile, and a fixed user when it has one."""
    context: dict[str, Any] = {"seccomp_profile": {"type": "RuntimeDefault"}}
    if user is not None:
        context.update(run_as_non_root=True, run_as_user=user, run_as_group=group if group is not None else user,
                       fs_group=group if group is not None else user, fs_group_change_policy="OnRootMismatch")
    return context


def container_security(*, read_only: bool = True, cap_adds: tuple[str, ...] = ()) -> dict[str, Any]:
    """A container's securityContext: no privilege escalation, every capability dropped but `cap_adds`."""
    capabilities: dict[str, Any] = {"drop": ["ALL"]}
    if cap_adds:
        capabilities["add"] = list(cap_adds)
    return {"allow_privilege_escalation": False, "privileged": False, "read_only_root_filesystem": read_only,
            "capabilities": capabilities}


def secret_env(secret_name: str, *keys: str) -> list[dict[str, Any]]:
    """Environment variables read from a Secret's keys (the value never enters the pod spec)."""
    return [{"name": key, "value_from": {"secret_key_ref": {"name": secret_name, "key": key}}} for key in keys]


SECRETS_DIR = "/run/secrets/litellm-gateway"


def secret_file_volume(name: str, secret_name: str, *keys: str) -> dict[str, Any]:
    """A volume of a Secret's keys as files (0440: the pod's fsGroup reads them; under SECRETS_DIR where mounted)."""
    return {"name": name, "secret": {"secret_name": secret_name, "default_mode": 0o440,
                                     "items": [{"key": key, "path": key} for key in keys]}}


def plain_env(values: dict[str, str]) -> list[dict[str, Any]]:
    return [{"name": key, "value": value} for key, value in values.items()]


def waivers(reasons: dict[str, str]) -> dict[str, str]:
    """Annotations naming each checkov check a workload does not meet, and why (with the image waivers)."""
    merged = {**IMAGE_WAIVERS, **reasons}
    for check, reason in merged.items():
        assert "=" not in reason and len(reason) >= 10, (check, reason)  # checkov splits on "="
    return {f"{SKIP_ANNOTATION}{index}": f"{check}={reason}" for index, (check, reason) in enumerate(sorted(merged.items()), 1)}


def sha256(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def child_options(parent: pulumi.Resource, provider: k8s.Provider, **extra) -> pulumi.ResourceOptions:
    return pulumi.ResourceOptions(parent=parent, provider=provider, **extra)


def http_probe(path: str, port: str, *, period: int, timeout: int, failures: int) -> dict[str, Any]:
    return {"http_get": {"path": path, "port": port}, "period_seconds": period, "timeout_seconds": timeout,
            "failure_threshold": failures}


def exec_probe(command: list[str], *, period: int, timeout: int, failures: int) -> dict[str, Any]:
    return {"exec_": {"command": command}, "period_seconds": period, "timeout_seconds": timeout,
            "failure_threshold": failures}


def emptydir(name: str, size_mb: int, medium: Optional[str] = None) -> dict[str, Any]:
    spec: dict[str, Any] = {"size_limit": f"{size_mb}Mi"}
    if medium:
        spec["medium"] = medium
    return {"name": name, "empty_dir": spec}


def ca_config_map_name(settings: StackSettings) -> str:
    """The ConfigMap of the external data stores' CA certificates (KubeGateway declares it)."""
    return f"{settings.names.prefix}-ca"


def ca_volume(settings: StackSettings) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """(volumes, volume mounts) that put the external data stores' CA certificates where the URLs and the rendered
    config name them (renderers.data_stores.CA_DIR); none when there are none."""
    files = data_stores.ca_files(settings)
    if not files:
        return [], []
    items = [{"key": path.rsplit("/", 1)[1], "path": path.rsplit("/", 1)[1]} for path in files]
    return ([{"name": "data-store-ca", "config_map": {"name": ca_config_map_name(settings), "items": items,
                                                      "default_mode": 0o444}}],
            [{"name": "data-store-ca", "mount_path": data_stores.CA_DIR, "read_only": True}])
