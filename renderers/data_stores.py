"""Where the gateway's data stores are (pure): the stack's own Postgres and Redis by their names, or the external
ones (postgres.mode, redis.mode: external) with their TLS, for every container that connects: the LiteLLM
replicas (through the rendered config), the migrations, the backups and the exporters.
"""

from __future__ import annotations

from typing import Any

from config.names import REDIS_PORT
from config.stack import StackSettings
from config.values import host_port, libpq_url, with_query

# The external data stores' CA certificates (postgres.external.caCertificate, redis.external.caCertificate),
# where every container that connects finds them.
CA_DIR = "/etc/litellm-gateway/ca"
POSTGRES_CA_PATH = f"{CA_DIR}/postgres.pem"
REDIS_CA_PATH = f"{CA_DIR}/redis.pem"


def ca_files(settings: StackSettings, postgres: bool = True, redis: bool = True) -> dict[str, str]:
    """The external data stores' CA certificates (public) a container needs, by path: the database's and Redis'."""
    files = {}
    if postgres and settings.postgres.mode == "external" and settings.postgres.external.ca_certificate:
        files[POSTGRES_CA_PATH] = settings.postgres.external.ca_certificate.rstrip("\n") + "\n"
    if redis and settings.redis.mode == "external" and settings.redis.external.ca_certificate:
        files[REDIS_CA_PATH] = settings.redis.external.ca_certificate.rstrip("\n") + "\n"
    return files


def redis_tls(settings: StackSettings) -> dict[str, Any]:
    """redis-py's connection arguments beyond host, port and password: the ACL user and TLS of an external Redis
    (the server's certificate and name are checked)."""
    if settings.redis.mode != "external":
        return {}
    external = settings.redis.external
    arguments: dict[str, Any] = {"username": external.username} if external.username else {}
    if external.tls:
        arguments.update(ssl=True, ssl_cert_reqs="required", ssl_check_hostname=True)
        if external.ca_certificate:
            arguments["ssl_ca_certs"] = REDIS_CA_PATH
    return arguments


def redis_topology(settings: StackSettings) -> str:
    """`standalone` (the stack's Redis, or an external `host`), `sentinel` or `cluster`."""
    external = settings.redis.external
    if settings.redis.mode == "external" and external.sentinel is not None:
        return "sentinel"
    if settings.redis.mode == "external" and external.cluster is not None:
        return "cluster"
    return "standalone"


def redis_address(settings: StackSettings) -> tuple[str, int]:
    """The one address a single-endpoint client (the exporter, the standalone router) takes: the stack's Redis by
    its name, the external server, its first Sentinel or its first cluster node."""
    external = settings.redis.external
    topology = redis_topology(settings)
    if topology != "standalone":
        node = getattr(external, topology).nodes[0]
        return node.host, node.port
    if settings.redis.mode == "external":
        return external.host, external.port
    return settings.names.redis, REDIS_PORT


def redis_connection(settings: StackSettings, password: str, host: str | None = None,
                     port: int | None = None) -> dict[str, Any]:
    """LiteLLM's connection arguments for Redis (`coordination_redis`'s spelling), with `password` (a reference):
    one server (`host`, `port`: by default redis_address()), the Sentinels and the primary's name (the same user
    and password authenticate to the Sentinels), or the cluster's startup nodes; then the ACL user and TLS."""
    topology = redis_topology(settings)
    if topology == "sentinel":
        sentinel = settings.redis.external.sentinel
        target: dict[str, Any] = {"sentinel_nodes": [[node.host, node.port] for node in sentinel.nodes],
                                  "service_name": sentinel.master_name, "sentinel_password": password}
    elif topology == "cluster":
        target = {"startup_nodes": [{"host": node.host, "port": node.port}
                                    for node in settings.redis.external.cluster.nodes]}
    else:
        default_host, default_port = redis_address(settings)
        target = {"host": host or default_host, "port": port or default_port}
    return {**target, "password": password, **redis_tls(settings)}


def redis_exporter_environment(settings: StackSettings) -> dict[str, str]:
    """redis_exporter's address, ACL user and CA (REDIS_PASSWORD comes from the secrets)."""
    host, port = redis_address(settings)
    external = settings.redis.external if settings.redis.mode == "external" else None
    tls = external is not None and external.tls
    environment = {"REDIS_ADDR": f"{'rediss' if tls else 'redis'}://{host_port(host, port)}"}
    if external is not None and external.username:
        environment["REDIS_USER"] = external.username
    if tls and external.ca_certificate:
        environment["REDIS_EXPORTER_TLS_CA_CERT_FILE"] = REDIS_CA_PATH
    return environment


def postgres_exporter_url(settings: StackSettings, database_url: str) -> str:
    """postgres_exporter's DATA_SOURCE_NAME: the stack's database in clear on its private network (lib/pq would
    try TLS first), an external one with its sslmode and CA, without Prisma's parameters."""
    if settings.postgres.mode == "container":
        return with_query(database_url, sslmode="disable")
    return libpq_url(database_url)


def host_labels(settings: StackSettings) -> dict[str, str]:
    """The `host` label of the redis and postgres scrape jobs: the store's name, or the external Redis' host (an
    external database's host is in its secret URL: `external`)."""
    return {"redis": redis_address(settings)[0],
            "postgres": settings.names.postgres if settings.postgres.mode == "container" else "external"}
