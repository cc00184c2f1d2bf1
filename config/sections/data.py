"""`redis`, `cache`, `postgres` and `backups`: where the gateway keeps its data."""

from __future__ import annotations

from typing import Optional

from pydantic import Field

from ..types import MAX_MEMORY_MB, HostPath, PgIdentifier, TimeOfDay, VolumeName
from .base import Section


class RedisSettings(Section):
    image: str = "redis:7.4.6-alpine"
    """Redis 7 or newer, pinned."""
    max_memory_mb: int = Field(default=256, ge=16, le=MAX_MEMORY_MB)
    """Redis `maxmemory` (LRU eviction)."""


class CacheSettings(Section):
    enabled: bool = True
    """LiteLLM's response cache in Redis (BACKLOG-008)."""
    ttl_seconds: int = Field(default=600, ge=1, le=7 * 24 * 3600)
    """How long a cached response is served."""


class PostgresSettings(Section):
    image: str = "postgres:16.10"
    """Pinned Postgres image."""
    volume_name: Optional[VolumeName] = None
    """Named volume for the database, kept on `pulumi destroy`. Unset: `litellm-gateway-<environment>-pgdata`."""
    database: PgIdentifier = "litellm"
    """Database name: lowercase letters, digits, `_`."""
    user: PgIdentifier = "litellm"
    """Database role: lowercase letters, digits, `_`."""


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
