"""`redis`, `cache`, `postgres` and `backups`: where the gateway keeps its data."""

from __future__ import annotations

from typing import Literal, Optional

from pydantic import Field

from ..types import (MAX_MEMORY_MB, CaCertificate, FieldName, HostAddress, HostPath, PgIdentifier, TimeOfDay,
                     VolumeName)
from .base import Section
from .vault import VaultFieldRef

DataStoreMode = Literal["container", "external"]
PostgresSslMode = Literal["disable", "require", "verify-ca", "verify-full"]


class VaultUrlRef(VaultFieldRef):
    field: FieldName = "url"
    """Field holding the URL."""


class VaultPasswordRef(VaultFieldRef):
    field: FieldName = "password"
    """Field holding the password."""


class SentinelNode(Section):
    host: HostAddress
    """A Sentinel's DNS name (or IP address), reachable from the gateway's replicas."""
    port: int = Field(default=26379, ge=1, le=65535)
    """The Sentinel's port."""


class ClusterNode(Section):
    host: HostAddress
    """A cluster node's DNS name (or IP address), or the cluster's configuration endpoint."""
    port: int = Field(default=6379, ge=1, le=65535)
    """The node's port."""


class RedisSentinelSettings(Section):
    nodes: tuple[SentinelNode, ...] = Field(min_length=1)
    """Every Sentinel that watches the primary: a client asks them in turn for the primary's address, so a
    Sentinel that is down costs its connect timeout while another answers."""
    master_name: str = Field(min_length=1, max_length=128, pattern=r"^[A-Za-z0-9_.:-]+$")
    """The name the Sentinels know the primary by (`sentinel monitor <masterName> ...`)."""


class RedisClusterSettings(Section):
    nodes: tuple[ClusterNode, ...] = Field(min_length=1)
    """Startup nodes: the client learns the whole cluster (slots, primaries, their moves) from the first one that
    answers; list several, or the cluster's configuration endpoint."""


class ExternalRedisSettings(Section):
    MULTILINE_FIELDS = frozenset({"ca_certificate"})

    host: Optional[HostAddress] = None
    """A standalone Redis (or a managed one's primary endpoint): its DNS name (or IP address), reachable from the
    gateway's replicas. Set exactly one of `host`, `sentinel` and `cluster`."""
    port: int = Field(default=6379, ge=1, le=65535)
    """The standalone Redis' port (`host`)."""
    sentinel: Optional[RedisSentinelSettings] = None
    """A primary with replicas behind Redis Sentinel: the clients ask the Sentinels for the primary and follow a
    failover. The Sentinels take the same TLS, user and password as the data nodes."""
    cluster: Optional[RedisClusterSettings] = None
    """A Redis Cluster (cluster mode enabled): keys spread over its primaries by slot."""
    tls: bool = True
    """Connect over TLS, verifying the server's certificate and name (`false`: dev stacks only)."""
    ca_certificate: Optional[CaCertificate] = None
    """PEM of the CA that signed the server's certificate. Unset: the system's trusted CAs."""
    username: Optional[str] = Field(default=None, min_length=1, max_length=128, pattern=r"^[A-Za-z0-9_.:@-]+$")
    """The Redis ACL user (Redis 6+). Unset: Redis' `default` user."""
    password_vault: Optional[VaultPasswordRef] = None
    """Where the user's password is in Vault. Unset: the secret config key `redisPassword` (required then)."""


class RedisSettings(Section):
    mode: DataStoreMode = "container"
    """`container`: the stack runs Redis (a container on Docker, a Deployment on Kubernetes). `external`: an
    existing Redis (a managed one) at `redis.external`."""
    image: str = "redis:7.4.6-alpine"
    """Redis 7 or newer, pinned (`mode: container`)."""
    max_memory_mb: int = Field(default=256, ge=16, le=MAX_MEMORY_MB)
    """Redis `maxmemory` (LRU eviction; `mode: container`)."""
    external: ExternalRedisSettings = ExternalRedisSettings()
    """The existing Redis (`mode: external`): standalone (`host`), behind Sentinel (`sentinel`) or a cluster
    (`cluster`); LiteLLM's cache, router and shared limits all use it."""


class CacheSettings(Section):
    enabled: bool = True
    """LiteLLM's response cache in Redis (BACKLOG-008)."""
    ttl_seconds: int = Field(default=600, ge=1, le=7 * 24 * 3600)
    """How long a cached response is served."""


class ExternalPostgresSettings(Section):
    MULTILINE_FIELDS = frozenset({"ca_certificate"})

    url_vault: Optional[VaultUrlRef] = None
    """Where the database URL (`postgresql://user:password@host:5432/database`) is in Vault. Unset: the secret
    config key `postgresUrl` (required then). The URL carries no `ssl*` parameters (they come from `sslmode` and
    `caCertificate`) and names its one host, port, user and database in the URL itself, not as parameters."""
    read_replica_url_vault: Optional[VaultUrlRef] = None
    """Where a read replica's URL is in Vault (or the secret config key `postgresReadReplicaUrl`): LiteLLM sends
    its reads there (`DATABASE_URL_READ_REPLICA`). Unset, and no `postgresReadReplicaUrl`: no read replica."""
    sslmode: PostgresSslMode = "verify-full"
    """libpq's `sslmode` for every connection (the replicas, migrations, backups, the exporter): `verify-full`
    checks the server's certificate and name, `verify-ca` the certificate only, `require` encrypts without
    checking either (a man in the middle can read the traffic), `disable` sends the password in clear (dev stacks
    only)."""
    ca_certificate: Optional[CaCertificate] = None
    """PEM of the CA (or bundle, such as a cloud provider's) that signed the server's certificate; required with
    `verify-ca` and `verify-full`."""


class PostgresSettings(Section):
    mode: DataStoreMode = "container"
    """`container`: the stack runs Postgres (a container on Docker, a StatefulSet on Kubernetes). `external`: an
    existing database (a managed one) at `postgres.external`; the stack never creates or drops it."""
    external: ExternalPostgresSettings = ExternalPostgresSettings()
    """The existing database (`mode: external`)."""
    image: str = "postgres:16.10"
    """Pinned Postgres image: the database's (`mode: container`), and the backups' `pg_dump` on both modes (use
    the server's major version or newer)."""
    volume_name: Optional[VolumeName] = None
    """Named volume for the database, kept on `pulumi destroy` (`mode: container`). Unset:
    `litellm-gateway-<environment>-pgdata`."""
    database: PgIdentifier = "litellm"
    """Database name: lowercase letters, digits, `_` (`mode: container`; an external database's is in its URL)."""
    user: PgIdentifier = "litellm"
    """Database role: lowercase letters, digits, `_` (`mode: container`; an external database's is in its URL)."""


class BackupSettings(Section):
    enabled: bool = True
    """Scheduled `pg_dump` of the LiteLLM database (BACKLOG-004)."""
    times_utc: tuple[TimeOfDay, ...] = Field(default=("03:00",), min_length=1)
    """Daily run times, UTC, `HH:MM`."""
    retention: int = Field(default=7, ge=1, le=365)
    """Keep the newest N dumps (with their checksums)."""
    host_path: Optional[HostPath] = None
    """Write dumps to this absolute, normalised path on the Docker host: a directory of its own, never a system
    tree (`/etc`, `/root`, `/usr`, `/run`, `/tmp`, Docker's `/var/lib/docker`, ...) or a home directory itself.
    The scheduler takes it over (the `postgres` user's, mode 0700, marked as the stack's) only when it is empty,
    marked already or holds nothing but this stack's dumps; anything else stops it with the reason. Dumps are
    0600."""
    volume_name: Optional[VolumeName] = None
    """Write dumps to this named volume (kept on destroy; never the database's). Unset (and no `hostPath`):
    `litellm-gateway-<environment>-pgbackups`."""
