"""The settings sections, one module each, and the registry of top-level config keys.

`SECTIONS` is the one list of structured keys: the parser validates each with its model, the
reference generator documents it, Pulumi.yaml declares it. A reader finds a key's model in the
module its name says (`gateway.loadBalancer.tls` in sections/gateway.py, `gpuHosts` in
sections/fleet.py).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from .access import AccessSettings
from .containers import ContainersSettings
from .data import BackupSettings, CacheSettings, PostgresSettings, RedisSettings
from .docker import DockerSettings
from .fleet import GpuHostSettings, GpuSshSettings, ModelPullSettings, ModelSettings
from .gateway import GatewaySettings
from .kubernetes import PLATFORM_DESCRIPTION, KubernetesSettings
from .monitoring import MonitoringSettings
from .router import RouterSettings
from .secrets import SecretsSettings
from .vault import VaultSettings


@dataclass(frozen=True)
class SectionSpec:
    key: str          # the config key (`gpuHosts`)
    attribute: str    # StackSettings' attribute (`gpu_hosts`)
    kind: Any         # the model, or tuple[model, ...] for a list
    required: bool
    description: str  # the reference's and Pulumi.yaml's description


# The scalar top-level key; every other top-level key is a section.
ENVIRONMENT_DESCRIPTION = (
    "The stack's name (it must equal it), used in every resource, volume and Vault name: lowercase "
    "letters, digits and `-`, up to 20 characters. `dev` and `dev-<name>` are dev stacks.")
SCALARS = {"environment": ENVIRONMENT_DESCRIPTION, "platform": PLATFORM_DESCRIPTION}
# Scalars a stack may leave out, with the value that means.
SCALAR_DEFAULTS = {"platform": "docker"}

SECTIONS = (
    SectionSpec("docker", "docker", DockerSettings, False, "The Docker engine the containers run on (`platform: docker`)."),
    SectionSpec("kubernetes", "kubernetes", KubernetesSettings, False,
                "The cluster, namespace, Ingress and autoscaling of a `platform: kubernetes` stack."),
    SectionSpec("vault", "vault", VaultSettings, False, "Where the stack's secrets live (BACKLOG-001)."),
    SectionSpec("gateway", "gateway", GatewaySettings, True,
                "The LiteLLM replicas and the HAProxy load balancer in front of them."),
    SectionSpec("models", "models", tuple[ModelSettings, ...], True,
                "The models the gateway routes to, and the GPU hosts serving each (BACKLOG-002)."),
    SectionSpec("gpuHosts", "gpu_hosts", tuple[GpuHostSettings, ...], True, "The Ollama GPU hosts."),
    SectionSpec("router", "router", RouterSettings, False,
                "How requests reach the GPU hosts: queue, retries, failover, timeouts, extra LiteLLM settings."),
    SectionSpec("redis", "redis", RedisSettings, False,
                "Redis: the response cache and the counters shared by every replica (BACKLOG-005, BACKLOG-008)."),
    SectionSpec("cache", "cache", CacheSettings, False, "LiteLLM's response cache (BACKLOG-008)."),
    SectionSpec("postgres", "postgres", PostgresSettings, False,
                "LiteLLM's database: keys, users, teams, spend (BACKLOG-006, BACKLOG-007)."),
    SectionSpec("secrets", "secrets", SecretsSettings, False, "How the generated secrets are kept."),
    SectionSpec("gpuSsh", "gpu_ssh", GpuSshSettings, False, "How `pulumi up` reaches the GPU hosts over SSH."),
    SectionSpec("modelPulls", "model_pulls", ModelPullSettings, False, "How models are pulled on the GPU hosts."),
    SectionSpec("monitoring", "monitoring", MonitoringSettings, False,
                "Prometheus, exporters and Grafana (BACKLOG-003, BACKLOG-007)."),
    SectionSpec("backups", "backups", BackupSettings, False, "Scheduled database dumps (BACKLOG-004)."),
    SectionSpec("containers", "containers", ContainersSettings, False,
                "Log rotation and resource limits of every container."),
    SectionSpec("access", "access", AccessSettings, False,
                "Teams, users and API keys with their limits, kept in the stack (BACKLOG-005)."),
)
SECTIONS_BY_KEY = {spec.key: spec for spec in SECTIONS}
STRUCTURED_KEYS = frozenset(SECTIONS_BY_KEY)
