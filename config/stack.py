"""The typed root of a stack's settings, built from the sections once they all validated, and
`Parsed`, what the cross-checks see while some sections may still be wrong."""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass, field
from typing import Optional

from .names import StackNames
from .sections.access import AccessSettings
from .sections.containers import ContainersSettings, Limits
from .sections.data import BackupSettings, CacheSettings, PostgresSettings, RedisSettings
from .sections.docker import DockerSettings
from .sections.fleet import GpuHostSettings, GpuSshSettings, ModelPullSettings, ModelSettings
from .sections.gateway import GatewaySettings
from .sections.kubernetes import KubernetesSettings, Platform
from .sections.monitoring import MonitoringSettings
from .sections.router import RouterSettings
from .sections.secrets import SecretsSettings
from .sections.vault import VaultSettings

DEV_ENVIRONMENT = re.compile(r"dev(-[a-z0-9-]+)?")


def is_dev_environment(environment: str) -> bool:
    """`dev` and `dev-<name>` stacks may use what production must not (local containers, plain HTTP)."""
    return DEV_ENVIRONMENT.fullmatch(environment) is not None


@dataclass(frozen=True)
class SuppliedSecrets:
    """Secret config values the user set; plain strings here, wrapped as Pulumi secrets on use."""

    values: dict[str, str] = field(default_factory=dict)

    def get(self, key: str) -> Optional[str]:
        return self.values.get(key)

    def __repr__(self) -> str:  # never print a secret, even in a traceback
        return f"SuppliedSecrets(keys={sorted(self.values)})"


@dataclass(frozen=True)
class StackSettings:
    environment: str
    platform: Platform
    docker: DockerSettings
    kubernetes: KubernetesSettings
    vault: VaultSettings
    gateway: GatewaySettings
    models: tuple[ModelSettings, ...]
    gpu_hosts: tuple[GpuHostSettings, ...]
    router: RouterSettings
    redis: RedisSettings
    cache: CacheSettings
    postgres: PostgresSettings
    secrets: SecretsSettings
    gpu_ssh: GpuSshSettings
    model_pulls: ModelPullSettings
    monitoring: MonitoringSettings
    backups: BackupSettings
    containers: ContainersSettings
    access: AccessSettings
    supplied_secrets: SuppliedSecrets

    @property
    def on_kubernetes(self) -> bool:
        return self.platform == "kubernetes"

    @property
    def namespace(self) -> str:
        return self.kubernetes.namespace or self.names.prefix

    @property
    def names(self) -> StackNames:
        return StackNames(self.environment)

    @property
    def vault_path(self) -> str:
        return self.vault.path or self.names.vault_path

    @property
    def vault_policy_name(self) -> str:
        return self.vault.policy_name or self.names.vault_policy

    @property
    def postgres_volume(self) -> str:
        return self.postgres.volume_name or self.names.postgres_volume

    @property
    def backup_volume(self) -> str:
        return self.backups.volume_name or self.names.backup_volume

    def redis_limits(self) -> Limits:
        if self.containers.limits.redis is not None:
            return self.containers.limits.redis
        return Limits(memory_mb=self.redis.max_memory_mb + max(64, self.redis.max_memory_mb // 4), cpus=1)

    def replica_limits(self) -> Limits:
        """A LiteLLM replica's memory and CPU limit (gateway.memoryMb, gateway.cpus), on either platform."""
        return Limits(memory_mb=self.gateway.memory_mb, cpus=self.gateway.cpus)

    def resource_prefix(self) -> str:
        return self.names.prefix

    @functools.cached_property
    def _hosts_by_name(self) -> dict[str, GpuHostSettings]:
        return {h.name: h for h in self.gpu_hosts}

    @functools.cached_property
    def _models_by_name(self) -> dict[str, ModelSettings]:
        return {m.name: m for m in self.models}

    def host(self, name: str) -> GpuHostSettings:
        return self._hosts_by_name[name]

    def models_pulled_by(self, host: GpuHostSettings) -> tuple[str, ...]:
        if host.models is not None:
            return host.models
        return tuple(m.name for m in self.models if host.name in m.hosts)

    def model(self, name: str) -> ModelSettings:
        return self._models_by_name[name]

    def ssh_hosts(self) -> tuple[GpuHostSettings, ...]:
        """Hosts reached over SSH (every host but the dev stack's local Ollama containers)."""
        return tuple(h for h in self.gpu_hosts if h.local_container is None)

    def ssh_user(self, host: GpuHostSettings) -> str:
        return host.ssh.user or self.gpu_ssh.user

    def ssh_port(self, host: GpuHostSettings) -> int:
        return host.ssh.port or self.gpu_ssh.port

    def model_timeout(self, model: ModelSettings) -> int:
        return model.timeout_seconds or self.gateway.request_timeout_seconds

    def model_stream_timeout(self, model: ModelSettings) -> int:
        return model.stream_timeout_seconds or self.router.stream_timeout_seconds or self.model_timeout(model)

    def routes(self) -> list[tuple[ModelSettings, GpuHostSettings]]:
        """One (model, host) pair per deployment the gateway routes to, in config order."""
        return [(m, self.host(h)) for m in self.models for h in m.hosts]


@dataclass
class Parsed:
    """Every section that validated (None: missing or invalid, already reported), for the cross-checks."""

    environment: Optional[str] = None
    platform: Optional[str] = None
    docker: Optional[DockerSettings] = None
    kubernetes: Optional[KubernetesSettings] = None
    vault: Optional[VaultSettings] = None
    gateway: Optional[GatewaySettings] = None
    models: Optional[tuple[ModelSettings, ...]] = None
    gpu_hosts: Optional[tuple[GpuHostSettings, ...]] = None
    router: Optional[RouterSettings] = None
    redis: Optional[RedisSettings] = None
    cache: Optional[CacheSettings] = None
    postgres: Optional[PostgresSettings] = None
    secrets: Optional[SecretsSettings] = None
    gpu_ssh: Optional[GpuSshSettings] = None
    model_pulls: Optional[ModelPullSettings] = None
    monitoring: Optional[MonitoringSettings] = None
    backups: Optional[BackupSettings] = None
    containers: Optional[ContainersSettings] = None
    access: Optional[AccessSettings] = None
    supplied: dict[str, str] = field(default_factory=dict)  # secret config values the user set
    other_environments: frozenset[str] = frozenset()  # the project's other stacks, when known
