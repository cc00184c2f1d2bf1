"""Backups live apart from the database; Redis' container has room above its maxmemory."""

from __future__ import annotations

from ..names import StackNames
from ..stack import Parsed
from ..values import duplicates


def check_backups(parsed: Parsed, problems) -> None:
    backups = parsed.backups
    if backups is None:
        return
    for dup in duplicates(list(backups.times_utc)):
        problems.append(("backups.timesUtc", f"'{dup}' is listed twice"))
    if backups.host_path is not None and backups.volume_name is not None:
        problems.append(("backups.volumeName", "set either backups.hostPath or backups.volumeName, not both"))
    postgres = parsed.postgres
    pg_volume = (postgres.volume_name if postgres else None) or StackNames(parsed.environment or "").postgres_volume
    if backups.volume_name is not None and backups.volume_name == pg_volume:
        problems.append(("backups.volumeName", "is the database's volume; backups must live elsewhere"))


def check_redis_room(parsed: Parsed, problems) -> None:
    redis, containers = parsed.redis, parsed.containers
    if redis is None or containers is None or containers.limits.redis is None:
        return
    if containers.limits.redis.memory_mb < redis.max_memory_mb + 32:
        problems.append(("containers.limits.redis.memoryMb",
                         f"{containers.limits.redis.memory_mb} MB leaves no room above redis.maxMemoryMb "
                         f"({redis.max_memory_mb} MB): give it at least {redis.max_memory_mb + 32}"))
