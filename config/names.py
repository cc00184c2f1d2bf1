"""The stack's vocabulary of names and ports: one place for what components, renderers, operations
and tests must agree on (pure, no imports beyond the standard library).

Every Docker object a stack declares is named from `StackNames(environment)`, so two stacks can
never name the same container, volume, network alias or Vault path unless a setting says so.
"""

from __future__ import annotations

from dataclasses import dataclass

PROJECT = "litellm-gateway"

# Ports inside the gateway network (containers listen on them; none is published but the load
# balancer's, Prometheus' and Grafana's, which come from settings).
PROXY_PORT = 4000            # a LiteLLM replica
REDIS_PORT = 6379
POSTGRES_PORT = 5432
PROMETHEUS_PORT = 9090
GRAFANA_PORT = 3000
REDIS_EXPORTER_PORT = 9121
POSTGRES_EXPORTER_PORT = 9187
HAPROXY_HTTP_PORT = 8080     # inside the load balancer's container (it runs as a non-root user)
HAPROXY_HTTPS_PORT = 8443
HAPROXY_STATS_PORT = 8405    # the load balancer's stats, Prometheus exporter and /healthz
VAULT_PORT = 8200
# The GPU dispatcher inside the load balancer: the replicas send every Ollama request here (never published).
DISPATCHER_PORT = 11400
DISPATCHER_PATH = "/models"   # + /<model slug>: the model's queue and its hosts

# The replicas' shared alias on the gateway network: HAProxy and Prometheus find them through
# Docker's DNS under this name.
REPLICA_SERVICE = "litellm"


@dataclass(frozen=True)
class StackNames:
    """Names of one stack's Docker objects and Vault paths; all derived from the environment."""

    environment: str

    @property
    def prefix(self) -> str:
        return f"{PROJECT}-{self.environment}"

    def _named(self, role: str) -> str:
        return f"{self.prefix}-{role}"

    @property
    def network(self) -> str:
        return self._named("net")

    @property
    def postgres(self) -> str:
        return self._named("postgres")

    @property
    def redis(self) -> str:
        return self._named("redis")

    @property
    def backup(self) -> str:
        """The backup scheduler (`pg_dump` on a timer)."""
        return self._named("pgbackup")

    @property
    def loadbalancer(self) -> str:
        return self._named("lb")

    @property
    def prometheus(self) -> str:
        return self._named("prometheus")

    @property
    def grafana(self) -> str:
        return self._named("grafana")

    @property
    def redis_exporter(self) -> str:
        return self._named("redis-exporter")

    @property
    def postgres_exporter(self) -> str:
        return self._named("postgres-exporter")

    @property
    def vault_dev(self) -> str:
        return self._named("vault-dev")

    def replica(self, index: int, suffix: str) -> str:
        """A LiteLLM replica; `suffix` is a random revision so a replacement can start beside it."""
        return self._named(f"litellm-{index}-{suffix}")

    def replica_prefix(self, index: int) -> str:
        return self._named(f"litellm-{index}-")

    def ollama(self, host: str) -> str:
        """A dev stack's local Ollama container for GPU host `host`."""
        return self._named(f"ollama-{host}")

    def ollama_volume(self, host: str) -> str:
        return self._named(f"ollama-{host}-models")

    @property
    def postgres_volume(self) -> str:
        return self._named("pgdata")

    @property
    def backup_volume(self) -> str:
        return self._named("pgbackups")

    @property
    def prometheus_volume(self) -> str:
        return self._named("prometheus-data")

    @property
    def grafana_volume(self) -> str:
        return self._named("grafana-data")

    @property
    def vault_path(self) -> str:
        return f"{PROJECT}/{self.environment}"

    @property
    def vault_policy(self) -> str:
        return self._named("read")

    def key_policy(self, alias: str) -> str:
        return self._named(f"key-{alias}")
