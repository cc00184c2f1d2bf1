"""The policy pack's checks as plain functions: resource in, violation messages out.

Each takes a `PolicyResource` (type token, logical name, input properties, protect flag) and
returns a list of messages; empty means compliant. The pack in __main__.py adapts them to
pulumi-policy, and the tests feed them the inputs the program really declares (under mocks).

Secret markers: in the tests the properties keep Pulumi's secret wrappers, so
`no_plaintext_secrets` can check that every secret-looking value sits inside a secret. In a real
preview pulumi-policy hands validators plain values without that marker, so there the check
covers the inputs that must never hold a secret at all (command lines, labels, uploaded files
other than credential files, image names, commands); the tests' scan covers the rest.
"""

from __future__ import annotations

import ipaddress
import re
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from config.images import image_problem  # noqa: E402
from config.names import PROJECT  # noqa: E402

CONTAINER = "docker:index/container:Container"
REMOTE_IMAGE = "docker:index/remoteImage:RemoteImage"
RANDOM_PASSWORD = "random:index/randomPassword:RandomPassword"
WAIVER_LABEL = f"{PROJECT}.policy-waiver."  # + policy name; value: the reason
ROLE_LABEL = f"{PROJECT}.role"
SECRET_SIG = ("4dabf18193072939515e22adb298388d", "1b47061264138c4ac30d75fd1eb44270")
RESTART_POLICIES = {"always", "unless-stopped", "on-failure"}
DATASTORE_ROLES = {"postgres", "redis", "vault", "vault-dev"}


@dataclass
class PolicyResource:
    type: str
    name: str
    props: dict[str, Any]
    protect: bool = False
    # True when props keep Pulumi's secret markers (the tests, under mocks); a real preview has none.
    secrets_marked: bool = False
    urn: str = ""
    extra: dict[str, Any] = field(default_factory=dict)


def _is_secret(value: Any) -> bool:
    return isinstance(value, dict) and value.get(SECRET_SIG[0]) == SECRET_SIG[1]


def _plain(value: Any) -> Any:
    """The value without secret wrappers (pulumi-policy's own Secret class included)."""
    if _is_secret(value):
        return _plain(value.get("value"))
    if type(value).__name__ == "Secret" and hasattr(value, "value"):
        return _plain(value.value)
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    return value


def _labels(resource: PolicyResource) -> dict[str, str]:
    return {item.get("label"): item.get("value") for item in (_plain(resource.props.get("labels")) or [])}


def _waived(resource: PolicyResource, policy: str) -> str | None:
    return _labels(resource).get(WAIVER_LABEL + policy)


# --- images-pinned -------------------------------------------------------------------------------

# Kubernetes workloads (platform: kubernetes) and where their pod template is.
K8S_WORKLOADS = {f"kubernetes:{kind}" for kind in ("apps/v1:Deployment", "apps/v1:StatefulSet", "apps/v1:DaemonSet",
                                                    "batch/v1:Job", "batch/v1:CronJob")}


def _pod_spec(resource: PolicyResource) -> dict[str, Any]:
    spec = _plain(resource.props.get("spec")) or {}
    spec = (spec.get("jobTemplate") or {}).get("spec", spec)
    return (spec.get("template") or {}).get("spec") or {}


def _pod_containers(resource: PolicyResource) -> list[dict[str, Any]]:
    spec = _pod_spec(resource)
    return [c for c in [*(spec.get("initContainers") or []), *(spec.get("containers") or [])] if isinstance(c, dict)]


def images_pinned(resource: PolicyResource) -> list[str]:
    if resource.type in K8S_WORKLOADS:
        return [f"{resource.name}: container {c.get('name')}: image {problem}" for c in _pod_containers(resource)
                if (problem := image_problem(str(c.get("image") or "")))]
    if resource.type == REMOTE_IMAGE:
        reference = _plain(resource.props.get("name")) or ""
    elif resource.type == CONTAINER:
        reference = _plain(resource.props.get("image")) or ""
        if reference.startswith("sha256:"):
            return []  # an image ID, from a RemoteImage that this policy checks itself
    else:
        return []
    problem = image_problem(reference)
    return [f"{resource.name}: image {problem}"] if problem else []


# --- datastores-not-published --------------------------------------------------------------------

def _role(resource: PolicyResource) -> str:
    role = _labels(resource).get(ROLE_LABEL)
    if role:
        return role
    name = str(_plain(resource.props.get("name")) or resource.name)
    return next((r for r in ("postgres", "redis", "vault") if r in name and "exporter" not in name), "")


def datastores_not_published(resource: PolicyResource) -> list[str]:
    if resource.type != CONTAINER or _role(resource) not in DATASTORE_ROLES:
        return []
    ports = _plain(resource.props.get("ports")) or []
    if not ports:
        return []
    if _waived(resource, "datastores-not-published"):
        public = [p for p in ports if not ipaddress.ip_address(p.get("ip") or "0.0.0.0").is_loopback]
        if not public:
            return []  # waived, and bound to loopback only
        return [f"{resource.name}: a waiver allows loopback only, but {public} is published beyond it"]
    published = ", ".join(f"{p.get('ip') or '0.0.0.0'}:{p.get('external')}" for p in ports)
    return [f"{resource.name}: {_role(resource)} must not be published on a host port (found {published}); "
            "reach it on the private network"]


# --- containers-healthy-and-restarting -----------------------------------------------------------

def containers_healthy_and_restarting(resource: PolicyResource) -> list[str]:
    if resource.type != CONTAINER or _plain(resource.props.get("mustRun")) is False:
        return []
    problems = []
    if not (_plain(resource.props.get("healthcheck")) or {}).get("tests"):
        problems.append(f"{resource.name}: a long-running container needs a healthcheck")
    if _plain(resource.props.get("restart")) not in RESTART_POLICIES:
        problems.append(f"{resource.name}: restart policy is {_plain(resource.props.get('restart'))!r}; "
                        f"use one of {sorted(RESTART_POLICIES)}")
    return problems


# --- replicas-behind-the-load-balancer ------------------------------------------------------------

def replicas_not_published(resource: PolicyResource) -> list[str]:
    """LiteLLM replicas are reached through the load balancer only: a published replica port
    bypasses its health checks and retries (and its TLS)."""
    if resource.type != CONTAINER or _role(resource) != "litellm":
        return []
    ports = _plain(resource.props.get("ports")) or []
    if not ports:
        return []
    published = ", ".join(f"{p.get('ip') or '0.0.0.0'}:{p.get('external')}" for p in ports)
    return [f"{resource.name}: a LiteLLM replica publishes {published}; clients go through the load balancer"]


# --- containers-hardened -------------------------------------------------------------------------

ROOT_USERS = {"", "root", "0", "0:0", "root:root"}


def containers_hardened(resource: PolicyResource) -> list[str]:
    """No privilege escalation, no default capabilities, rotated logs, limits, a clean stop, and a
    non-root user and read-only root filesystem unless a waiver label says why not."""
    if resource.type != CONTAINER:
        return []
    props = _plain(resource.props)
    problems = []
    if "no-new-privileges:true" not in (props.get("securityOpts") or []) and not _waived(resource, "no-new-privileges"):
        problems.append("security_opts lacks no-new-privileges:true")
    if "ALL" not in ((props.get("capabilities") or {}).get("drops") or []):
        problems.append("capabilities do not drop ALL (add back only what the image needs)")
    log_opts = props.get("logOpts") or {}
    if props.get("logDriver") != "json-file" or "max-size" not in log_opts or "max-file" not in log_opts:
        problems.append("logs are not rotated (json-file with max-size and max-file)")
    if not props.get("memory") or not props.get("cpus"):
        problems.append("no memory or CPU limit")
    if not props.get("destroyGraceSeconds"):
        problems.append("no stop grace period (destroy_grace_seconds): a replacement would kill it mid-write")
    if str(props.get("user") or "") in ROOT_USERS and not _waived(resource, "non-root-user"):
        problems.append("runs as root; set a user, or a non-root-user waiver saying why the image needs root")
    if not props.get("readOnly") and not _waived(resource, "read-only-rootfs"):
        problems.append("root filesystem is writable; set read_only, or a read-only-rootfs waiver saying why not")
    return [f"{resource.name}: {p}" for p in problems]


# --- no-plaintext-secrets ------------------------------------------------------------------------

SECRET_PATTERNS = [
    (re.compile(r"\bsk-[A-Za-z0-9_-]{20,}"), "an API key (sk-...)"),
    (re.compile(r"-----BEGIN [A-Z ]*PRIVATE KEY-----"), "a private key"),
    (re.compile(r"[a-z][a-z0-9+.-]*://[^/\s:@]+:[^/\s@]+@"), "a URL with a password"),
    (re.compile(r"\b[A-Z0-9_]*(PASSWORD|SECRET|TOKEN|_KEY)[A-Z0-9_]*=(?!\$)[^\s\"']{8,}"), "a secret variable"),
    (re.compile(r"\b(hvs|hvb|s)\.[A-Za-z0-9]{24,}"), "a Vault token"),
]
# Inputs that Pulumi does not need to encrypt, so a secret must never be in them.
NEVER_SECRET_FIELDS = {
    CONTAINER: ("command", "entrypoints", "labels", "name", "image", "uploads"),
    REMOTE_IMAGE: ("name",),
    "command:remote:Command": ("create", "delete", "update", "triggers"),
    "command:local:Command": ("create", "delete", "update", "triggers", "environment"),
    # Kubernetes: everything but a Secret's data; pods read secrets through secretKeyRef or Secret volumes.
    **{workload: ("metadata", "spec") for workload in K8S_WORKLOADS},
    "kubernetes:core/v1:ConfigMap": ("metadata", "data"),
    "kubernetes:core/v1:Service": ("metadata", "spec"),
    "kubernetes:networking.k8s.io/v1:Ingress": ("metadata", "spec"),
}
CREDENTIAL_FILE_DIRS = ("/etc/prometheus/secrets/", "/usr/local/etc/redis/")


def _leaks(value: Any, path: str, inside_secret: bool) -> list[str]:
    if _is_secret(value):
        return []
    if isinstance(value, dict):
        return [m for k, v in value.items() for m in _leaks(v, f"{path}.{k}", inside_secret)]
    if isinstance(value, (list, tuple)):
        return [m for i, v in enumerate(value) for m in _leaks(v, f"{path}[{i}]", inside_secret)]
    if isinstance(value, str):
        return [f"{path} holds {what} in plain text" for pattern, what in SECRET_PATTERNS if pattern.search(value)]
    return []


def no_plaintext_secrets(resource: PolicyResource) -> list[str]:
    props = dict(resource.props)
    if resource.type == CONTAINER and isinstance(props.get("uploads"), list):
        props["uploads"] = [u for u in props["uploads"]
                            if not str(_plain(u).get("file", "")).startswith(CREDENTIAL_FILE_DIRS)]
    if resource.secrets_marked:
        # Secretness is known (tests under mocks): every input outside a secret counts.
        fields = props
    else:
        fields = {k: props[k] for k in NEVER_SECRET_FIELDS.get(resource.type, ()) if k in props}
    return [f"{resource.name}: {m}" for key, value in fields.items() for m in _leaks(value, key, False)]


# --- kubernetes-pods-hardened --------------------------------------------------------------------

def kubernetes_pods_hardened(resource: PolicyResource) -> list[str]:
    """The Docker hardening's counterpart for pods: no privilege escalation, every capability dropped (adds
    named), the runtime's seccomp profile, limits, and no service-account token unless the pod needs one."""
    if resource.type not in K8S_WORKLOADS:
        return []
    spec = _pod_spec(resource)
    problems = []
    if ((spec.get("securityContext") or {}).get("seccompProfile") or {}).get("type") != "RuntimeDefault":
        problems.append("the pod's securityContext.seccompProfile is not RuntimeDefault")
    if spec.get("automountServiceAccountToken") is not False:
        problems.append("the pod mounts a service-account token it does not use (automountServiceAccountToken)")
    for container in _pod_containers(resource):
        name = container.get("name")
        context = container.get("securityContext") or {}
        if context.get("allowPrivilegeEscalation") is not False:
            problems.append(f"container {name} may gain privileges (allowPrivilegeEscalation is not false)")
        if "ALL" not in ((context.get("capabilities") or {}).get("drop") or []):
            problems.append(f"container {name} keeps the default capabilities (capabilities.drop lacks ALL)")
        if context.get("privileged"):
            problems.append(f"container {name} is privileged")
        limits = (container.get("resources") or {}).get("limits") or {}
        if not {"cpu", "memory"} <= set(limits):
            problems.append(f"container {name} has no cpu and memory limits")
    return [f"{resource.name}: {p}" for p in problems]


# --- salt-key-protected --------------------------------------------------------------------------

def salt_key_protected(resource: PolicyResource) -> list[str]:
    if resource.type == RANDOM_PASSWORD and resource.name.endswith("saltKey") and not resource.protect:
        return [f"{resource.name}: the LiteLLM salt key must be protected (protect=True): replacing it makes "
                "every credential stored in the database unreadable"]
    return []


POLICIES: dict[str, tuple[str, Callable[[PolicyResource], list[str]]]] = {
    "images-pinned": ("Images are pinned to a version: no `latest`, no tag-less image.", images_pinned),
    "datastores-not-published": ("Postgres, Redis and Vault are never published on a host port.",
                                 datastores_not_published),
    "containers-healthy-and-restarting": ("Every long-running container has a healthcheck and a restart policy.",
                                          containers_healthy_and_restarting),
    "replicas-not-published": ("LiteLLM replicas publish no host port; the load balancer is the way in.",
                               replicas_not_published),
    "containers-hardened": ("Containers drop capabilities, cannot gain privileges, rotate logs, have limits and a "
                            "stop grace period, and run as non-root on a read-only root filesystem unless waived.",
                            containers_hardened),
    "kubernetes-pods-hardened": ("Pods cannot gain privileges, drop every capability, use the runtime's seccomp "
                                 "profile, have limits and no unused service-account token.",
                                 kubernetes_pods_hardened),
    "no-plaintext-secrets": ("No secret-looking value in plain text in a resource input.", no_plaintext_secrets),
    "salt-key-protected": ("The LiteLLM salt key is protected.", salt_key_protected),
}
