"""Backups live apart from the database; Redis' container has room above its maxmemory."""

from __future__ import annotations

from ..names import StackNames
from ..stack import Parsed, is_dev_environment
from ..values import duplicates, endpoint_identity
from .platform import given_keys


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
    if redis is None or redis.mode == "external" or containers is None or containers.limits.redis is None:
        return
    if containers.limits.redis.memory_mb < redis.max_memory_mb + 32:
        problems.append(("containers.limits.redis.memoryMb",
                         f"{containers.limits.redis.memory_mb} MB leaves no room above redis.maxMemoryMb "
                         f"({redis.max_memory_mb} MB): give it at least {redis.max_memory_mb + 32}"))


# Keys only a store the stack runs reads (postgres.mode or redis.mode: container), with why.
CONTAINER_ONLY_KEYS = {
    "postgres": {"postgres.volumeName": "the external database keeps its own data",
                 "postgres.database": "the external database's name is in its URL",
                 "postgres.user": "the external database's user is in its URL",
                 "containers.limits.postgres": "the stack runs no database",
                 "kubernetes.postgresStorageGb": "the stack runs no database"},
    "redis": {"redis.image": "configure the external Redis itself",
              "redis.maxMemoryMb": "configure the external Redis itself",
              "containers.limits.redis": "the stack runs no Redis"},
}


def option_mode(path: str) -> str | None:
    """'container' or 'external' for a key path only one data store mode reads; None for the others."""
    if path.startswith(("postgres.external", "redis.external")):
        return "external"
    if any(path == key or path.startswith(key + ".") for keys in CONTAINER_ONLY_KEYS.values() for key in keys):
        return "container"
    return None


def _given_paths(parsed: Parsed) -> set[str]:
    """The key paths of CONTAINER_ONLY_KEYS the stack file set."""
    sections = {"postgres": parsed.postgres, "redis": parsed.redis, "kubernetes": parsed.kubernetes,
                "containers.limits": parsed.containers.limits if parsed.containers is not None else None}
    return {f"{path}.{key}" for path, model in sections.items() for key in given_keys(model)}


def check_data_stores(parsed: Parsed, problems) -> None:
    """`postgres.mode` and `redis.mode`: the keys of the other mode are refused, an external store's TLS is checked."""
    dev = parsed.environment is not None and is_dev_environment(parsed.environment)
    given = _given_paths(parsed)
    for store in ("postgres", "redis"):
        section = getattr(parsed, store)
        if section is None:
            continue
        if section.mode == "container":
            for key in sorted(given_keys(section.external)):
                problems.append((f"{store}.external.{key}", f"is set but {store}.mode is container; set {store}.mode: "
                                 "external to use an existing one, or remove it"))
        else:
            for key, why in CONTAINER_ONLY_KEYS[store].items():
                if key in given:
                    problems.append((key, f"applies only to {store}.mode: container ({why})"))
    postgres = parsed.postgres
    if postgres is not None and postgres.mode == "external":
        external = postgres.external
        if external.sslmode == "disable" and not dev:
            problems.append(("postgres.external.sslmode", (
                f"disable sends the database password and every key's hash in clear; {parsed.environment} needs "
                "verify-full (or verify-ca, or at least require)")))
        if external.sslmode in ("verify-ca", "verify-full") and external.ca_certificate is None:
            problems.append(("postgres.external.caCertificate", (
                f"required with sslmode {external.sslmode}: the PEM of the CA that signed the server's "
                "certificate (your provider's CA bundle)")))
        if external.sslmode in ("disable", "require") and external.ca_certificate is not None:
            problems.append(("postgres.external.caCertificate", (
                f"is not checked with sslmode {external.sslmode}; use sslmode verify-full to verify the server")))
    redis = parsed.redis
    if redis is not None and redis.mode == "external":
        external = redis.external
        check_redis_topology(external, given_keys(external), problems)
        if not external.tls and not dev:
            problems.append(("redis.external.tls", (
                f"is false: the Redis password and every cached response would cross the network in clear; "
                f"{parsed.environment} needs TLS")))
        if not external.tls and external.ca_certificate is not None:
            problems.append(("redis.external.caCertificate", "is set but redis.external.tls is false"))


def check_data_store_sources(parsed: Parsed, problems) -> None:
    """An external store's secrets come from one place: Vault, or the secret config key."""
    supplied = parsed.supplied
    postgres, redis = parsed.postgres, parsed.redis
    if postgres is not None:
        external = postgres.external
        sources = (("postgresUrl", "urlVault", external.url_vault, True),
                   ("postgresReadReplicaUrl", "readReplicaUrlVault", external.read_replica_url_vault, False))
        for key, vault_key, ref, required in sources:
            if postgres.mode == "container":
                if key in supplied:
                    problems.append((key, "is set but postgres.mode is container (the stack's own database); set "
                                     "postgres.mode: external to use the database at this URL"))
            elif key in supplied and ref is not None:
                problems.append((key, f"and postgres.external.{vault_key} are both set; keep one"))
            elif required and key not in supplied and ref is None:
                problems.append((key, "required with postgres.mode: external: `pulumi config set --secret postgresUrl` "
                                 "(postgresql://user:password@host:5432/database), or set postgres.external.urlVault"))
        if postgres.mode == "external" and "postgresPassword" in supplied:
            problems.append(("postgresPassword", "applies only to postgres.mode: container; the external database's "
                             "password is in postgresUrl"))
    if redis is not None and redis.mode == "external":
        ref = redis.external.password_vault
        if "redisPassword" in supplied and ref is not None:
            problems.append(("redisPassword", "and redis.external.passwordVault are both set; keep one"))
        elif "redisPassword" not in supplied and ref is None:
            problems.append(("redisPassword", "required with redis.mode: external: `pulumi config set --secret "
                             "redisPassword` (the external Redis user's password), or set redis.external.passwordVault"))


def check_redis_topology(external, given: set[str], problems) -> None:
    """An external Redis is one of: a standalone server (`host`), a primary behind Sentinel, a cluster."""
    chosen = [key for key in ("host", "sentinel", "cluster") if getattr(external, key) is not None]
    if not chosen:
        problems.append(("redis.external.host", "required with redis.mode: external (the Redis server's DNS name), "
                         "or set redis.external.sentinel or redis.external.cluster"))
    for key in chosen[1:]:
        problems.append((f"redis.external.{key}", f"and redis.external.{chosen[0]} are both set; an external Redis "
                         "is one of host (standalone), sentinel or cluster"))
    if "port" in given and external.host is None:
        problems.append(("redis.external.port", "applies to redis.external.host only; give each Sentinel's or "
                         "cluster node's port in its nodes entry"))
    for key in ("sentinel", "cluster"):
        group = getattr(external, key)
        if group is not None:
            for dup in duplicates([endpoint_identity(node.host, node.port) for node in group.nodes]):
                problems.append((f"redis.external.{key}.nodes", f"'{dup}' is listed twice"))
