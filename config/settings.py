"""Typed, validated settings for one stack.

Pure Python (no Pulumi imports): `parse_settings` turns the raw values of the project's config
namespace into one `StackSettings` object, or raises `SettingsError` listing every problem with
its config key path. `config.loader` feeds it from Pulumi; the tests feed it dictionaries.
"""

from __future__ import annotations

import copy
import functools
import re
from dataclasses import dataclass, field
from typing import Annotated, Any, Literal, Optional

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, TypeAdapter, ValidationError, field_validator
from pydantic.alias_generators import to_camel

from .access import build_models, check_access
from .values import (
    PG_IDENTIFIER, UNIX_USER, control_character_problem, duplicates as _duplicates, full_ollama_tag, host_key_problem, host_path_problem,
    host_problem, ip_or_none, slug, split_host_port,
)

PROJECT = "litellm-gateway"

# Secret config keys a user may set with `pulumi config set --secret <key>`; any of them left
# unset is generated with pulumi-random and kept in Vault.
SECRET_KEYS = ("masterKey", "saltKey", "uiPassword", "postgresPassword", "redisPassword", "grafanaAdminPassword",
               "gpuSshPrivateKey", "gatewayTlsCertificate", "gatewayTlsKey")
# Secret config keys that are not generated when unset (supplied material, not passwords).
NOT_GENERATED = frozenset({"gpuSshPrivateKey", "gatewayTlsCertificate", "gatewayTlsKey"})
PUBLICLY_KNOWN_MASTER_KEYS = frozenset({"sk-1234"})
MIN_MASTER_KEY_RANDOM_CHARS = 32

_NAME = r"[a-z0-9]([a-z0-9-]{0,38}[a-z0-9])?"
_NAME_HELP = "lowercase letters, digits and '-', 1-40 characters, not starting or ending with '-'"
_MODEL_NAME = r"[A-Za-z0-9][A-Za-z0-9._:/-]{0,63}"
_MODEL_NAME_HELP = "letters, digits and . _ : / -, up to 64 characters, starting with a letter or digit"
# Ollama's [registry[:port]/][namespace/]model[:tag]
_OLLAMA_TAG = r"[A-Za-z0-9][A-Za-z0-9._-]*(:[0-9]{1,5})?(/[A-Za-z0-9][A-Za-z0-9._-]*)*(:[A-Za-z0-9_][A-Za-z0-9._-]{0,127})?"
_VAULT_PATH = r"[A-Za-z0-9_.-]+(/[A-Za-z0-9_.-]+)*"
# Vault's built-in policies: `default` is attached to every token, `root` can do anything.
VAULT_BUILTIN_POLICIES = frozenset({"default", "root"})
DEV_ENVIRONMENT = re.compile(r"dev(-[a-z0-9-]+)?")
MAX_MEMORY_MB = 1024 * 1024  # 1 TiB
MAX_CPUS = 512


def is_dev_environment(environment: str) -> bool:
    """`dev` and `dev-<name>` stacks may use what production must not (local containers, plain HTTP)."""
    return DEV_ENVIRONMENT.fullmatch(environment) is not None


def _check(test, message: str):
    """A pydantic validator: `message` (with {value!r}) when `test(value)` is false."""
    def validate(value):
        if not test(value):
            raise ValueError(message.format(value=value))
        return value
    return AfterValidator(validate)


def _full(pattern: str, message: str):
    compiled = re.compile(pattern)
    return _check(lambda value: compiled.fullmatch(value) is not None, message)


def _no_problem(problem_of):
    def validate(value):
        problem = problem_of(value)
        if problem:
            raise ValueError(problem)
        return value
    return AfterValidator(validate)


Name = Annotated[str, _full(_NAME, "{value!r} is not a valid name: " + _NAME_HELP)]
ModelName = Annotated[str, _full(_MODEL_NAME, "{value!r} is not a valid model name: " + _MODEL_NAME_HELP)]
OllamaTag = Annotated[str, _full(_OLLAMA_TAG, "{value!r} is not an Ollama model name ([registry/][namespace/]model[:tag])")]
VaultPath = Annotated[str, _full(_VAULT_PATH, "{value!r} is not a valid Vault path (letters, digits, _ . -, "
                                              "segments separated by '/', no leading or trailing '/')")]
VaultPolicyName = Annotated[str, _full(r"[A-Za-z0-9_.-]{1,128}", "{value!r} is not a valid Vault policy name"),
                            _check(lambda v: v not in VAULT_BUILTIN_POLICIES,
                                   "{value!r} is one of Vault's built-in policies; name a policy of this stack's own")]
HostAddress = Annotated[str, _no_problem(host_problem)]
IpAddress = Annotated[str, _check(lambda v: ip_or_none(v) is not None, "{value!r} is not an IP address")]
UnixUser = Annotated[str, _check(lambda v: UNIX_USER.fullmatch(v) is not None,
                                 "{value!r} is not a user name (lowercase letters, digits, _ . -, up to 32)")]
PgIdentifier = Annotated[str, _check(lambda v: PG_IDENTIFIER.fullmatch(v) is not None,
                                     "{value!r} must be lowercase letters, digits and '_', starting with a letter "
                                     "or '_', up to 63 characters")]
TimeOfDay = Annotated[str, _full(r"([01][0-9]|2[0-3]):[0-5][0-9]", "{value!r} is not a time of day as HH:MM (UTC)")]
VolumeName = Annotated[str, _full(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,127}", "{value!r} is not a Docker volume name")]
HostKey = Annotated[str, _no_problem(host_key_problem)]
HostPath = Annotated[str, _no_problem(host_path_problem)]
HostPortText = Annotated[str, _check(lambda v: split_host_port(v) is not None,
                                     "{value!r} must be host:port ([address]:port for IPv6)")]
DockerHost = Annotated[str, _full(r"(unix|ssh|tcp)://[^\s]+", "{value!r} must start with unix://, ssh:// or tcp://")]
VaultAddress = Annotated[str, _full(r"https?://[^\s/]+(/[^\s]*)?", "{value!r} must be an http:// or https:// URL")]


class SettingsError(Exception):
    """Every problem found in a stack's configuration, each as (key path, message)."""

    def __init__(self, problems: list[tuple[str, str]]):
        self.problems = problems
        lines = [f"  - {PROJECT}:{key}: {message}" for key, message in problems]
        super().__init__(
            f"invalid configuration ({len(problems)} problem{'s' if len(problems) != 1 else ''}); "
            "nothing was deployed:\n" + "\n".join(lines)
        )


class _Section(BaseModel):
    model_config = ConfigDict(
        alias_generator=to_camel, populate_by_name=True, extra="forbid", frozen=True, allow_inf_nan=False,
        use_attribute_docstrings=True,  # each field's docstring is its description (docs/configuration.md)
    )

    @field_validator("*", mode="after")
    @classmethod
    def _no_control_characters(cls, value: Any) -> Any:
        # A newline or NUL in any value ends up in a rendered file, a command line or a URL.
        items = value if isinstance(value, tuple) else (
            [*value.keys(), *value.values()] if isinstance(value, dict) else (value,))
        for text in items:
            if isinstance(text, str):
                problem = control_character_problem(text)
                if problem:
                    raise ValueError(problem)
        return value


Port = Field(ge=1, le=65535)


class DockerSettings(_Section):
    host: DockerHost = "unix:///var/run/docker.sock"
    """Docker engine the containers run on: `unix:///var/run/docker.sock` (local), `ssh://user@host` or
    `tcp://host:port`."""
    ssh_opts: tuple[Annotated[str, _no_problem(control_character_problem)], ...] = ()
    """Extra `ssh` options for an `ssh://` Docker host."""


class VaultSettings(_Section):
    mode: Literal["dev-container", "external"] = "external"
    """`external`: an existing Vault (`vault.address` or `VAULT_ADDR`, token from `VAULT_TOKEN`).
    `dev-container`: the stack runs Vault in dev mode on the local engine (dev stacks only; needs a
    `unix://` Docker host)."""
    address: Optional[VaultAddress] = None
    """Vault URL; `https://` outside dev stacks; not allowed with `dev-container`. Unset: `VAULT_ADDR`."""
    dev_image: str = "hashicorp/vault:1.20.4"
    """Image of the dev-mode Vault (pinned)."""
    dev_port: int = Field(default=8200, ge=1, le=65535)
    """Loopback port the dev-mode Vault is published on."""
    mount: VaultPath = "secret"
    """KV **v2** mount (must exist; dev mode creates `secret/`)."""
    path: Optional[VaultPath] = None
    """Secret path inside the mount. Unset: `litellm-gateway/<environment>`."""
    policy_name: Optional[VaultPolicyName] = None
    """Name of the read-only policy the stack declares for that path (never Vault's built-in `default` or
    `root`). Unset: `litellm-gateway-<environment>-read`."""
    skip_tls_verify: bool = False
    """dev stacks only: for a Vault with a self-signed certificate you cannot install."""


class TlsVaultRef(_Section):
    mount: VaultPath = "secret"
    """KV v2 mount of the certificate secret."""
    path: VaultPath
    """Path of the secret holding the certificate chain and key."""
    certificate_field: Annotated[str, _full(r"[A-Za-z0-9_.-]{1,128}", "{value!r} is not a valid field name")] = "certificate"
    """Field with the PEM certificate chain."""
    key_field: Annotated[str, _full(r"[A-Za-z0-9_.-]{1,128}", "{value!r} is not a valid field name")] = "private_key"
    """Field with the PEM private key."""


class TlsSettings(_Section):
    """TLS at the load balancer: certificate (chain) and key from Vault, or the secret config keys
    gatewayTlsCertificate and gatewayTlsKey."""

    enabled: bool = False
    """Terminate TLS at the load balancer (off in dev). The certificate and key come from `tls.vault` or the
    secret config keys `gatewayTlsCertificate` and `gatewayTlsKey`; a secret from end to end."""
    vault: Optional[TlsVaultRef] = None
    """`{mount, path, certificateField, keyField}` of a Vault KV v2 secret holding the certificate chain and
    key."""
    server_name: Optional[HostAddress] = None
    """The name in the certificate; `gatewayUrl` uses it."""
    http_redirect_port: Optional[int] = Field(default=None, ge=1, le=65535)
    """Also publish plain HTTP on this port, answering only with a redirect to HTTPS (308). Unset: plain HTTP
    is closed."""


class LoadBalancerSettings(_Section):
    image: str = "haproxy:3.0.5-alpine"
    """Pinned HAProxy image."""
    max_replicas: int = Field(default=16, ge=2, le=256)
    """`server-template` slots: at least twice `gateway.replicas`, so old and new replicas fit side by side
    during a rolling replacement."""
    max_connections: int = Field(default=4096, ge=64, le=1_000_000)
    """HAProxy's connection limit."""
    retries: int = Field(default=3, ge=1, le=10)
    """Attempts on another replica when a connection fails or a replica closes without answering."""
    threads: int = Field(default=1, ge=1, le=64)
    """HAProxy threads; one serves far more requests than the LiteLLM replicas do."""
    reuse_server_connections: bool = True
    """`true`: HAProxy keeps its connections to the replicas open and gives any request any idle one
    (`http-reuse always`), sparing the replica a TCP connection and HAProxy a third of its CPU per request;
    replicas leave the balancer before they close one, and a request that still meets a closing connection is
    replayed on another replica. `false`: a new connection per request (`option http-server-close`).
    Figures: docs/benchmarks.md."""
    tls: TlsSettings = TlsSettings()
    """TLS at the load balancer (see `gateway.loadBalancer.tls.*`)."""


class GatewaySettings(_Section):
    image: str
    """`litellm-database` image pinned to a version tag (`main-v1.108.7-stable`). Keep it on the version in
    `requirements-test.txt` (a test checks)."""
    replicas: int = Field(default=1, ge=1, le=16)
    """LiteLLM containers (1-16) behind the load balancer; none publishes a port. Only replica 0 runs database
    migrations."""
    bind_address: IpAddress = "127.0.0.1"
    """Host IP address the load balancer is published on. A public or all-interfaces address (`0.0.0.0`, `::`,
    `::ffff:0.0.0.0`) is refused unless `gateway.allowPublicBind: true`."""
    port: int = Field(default=4000, ge=1, le=65535)
    """The load balancer's published port (HTTPS when TLS is on)."""
    allow_public_bind: bool = False
    """Explicitly allow a public `bindAddress`."""
    memory_mb: int = Field(default=2048, ge=256, le=MAX_MEMORY_MB)
    """Memory limit per replica, MB (up to 1 TiB)."""
    cpus: float = Field(default=2.0, gt=0, le=MAX_CPUS)
    """CPU limit per replica (up to 512)."""
    num_workers: int = Field(default=1, ge=1, le=64)
    """Uvicorn workers per replica. Prefer more replicas: LiteLLM's drain switch reaches one worker of a
    replica, so with more than one a stopping replica leaves the load balancer only when it stops listening,
    and a request above 16 KB that meets a connection it closes can fail (docs/operations.md)."""
    request_timeout_seconds: int = Field(default=600, ge=1, le=86400)
    """LiteLLM request and router timeout."""
    stop_grace_seconds: int = Field(default=60, ge=14, le=3600)
    """How long a stopped or replaced replica has before it is killed: about 4 s for the load balancer to
    take it out, then in-flight requests and streams finish (all but 9 s of it), then LiteLLM exits
    (docs/operations.md, "What a change does, in order"). At least 14."""
    master_key_rotation: int = Field(default=0, ge=0)
    """Bump to rotate the generated master key (docs/operations.md, "Rotate the master key")."""
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "WARNING"
    """LiteLLM's log level (`LITELLM_LOG`). `INFO` adds four JSON lines per request (the load balancer
    logs every request already) and costs throughput (docs/benchmarks.md); errors show at `WARNING`."""
    ui_username: str = Field(default="admin", min_length=1, max_length=128)
    """Admin UI user name; the password is `UI_PASSWORD` in Vault."""
    load_balancer: LoadBalancerSettings = LoadBalancerSettings()
    """HAProxy in front of the replicas: the only published gateway port, one URL for clients."""


class ModelSettings(_Section):
    name: ModelName
    """The model name clients send. Two names may not differ only in case or punctuation."""
    ollama_tag: OllamaTag
    """Ollama tag (`llama3.1:8b`), routed as `ollama_chat/<tag>`. Two models may not pull the same tag on one
    host (`x` and `x:latest` are the same): pruning one would delete the weights the other serves."""
    hosts: tuple[Name, ...] = Field(min_length=1)
    """GPU hosts serving it (names from `gpuHosts`); one LiteLLM deployment per host."""
    rpm: Optional[int] = Field(default=None, ge=1)
    """Requests per minute per deployment, shared by every replica through Redis; the excess is refused with
    429."""
    tpm: Optional[int] = Field(default=None, ge=1)
    """Tokens per minute per deployment, shared like `rpm`."""
    cost_per_million_input_tokens: float = Field(default=0.0, ge=0, le=1_000_000)
    """What a million input tokens cost (USD), for spend tracking and budgets (`maxBudget`); 0: the GPUs
    are yours. Also spares LiteLLM a price lookup on the GPU host per request."""
    cost_per_million_output_tokens: float = Field(default=0.0, ge=0, le=1_000_000)
    """What a million output tokens cost (USD), as `costPerMillionInputTokens`."""
    digest: Optional[Annotated[str, _full(r"(sha256:)?[0-9a-f]{12,64}",
                                          "{value!r} is not an Ollama model ID (12 to 64 hex characters)")]] = None
    """Pin the model: the ID `ollama list` shows (12 hex characters) or the full `sha256:` digest. A pull that
    yields another digest fails; a host holding another one is reported as drift."""


class LocalOllamaContainer(_Section):
    image: str
    """Pinned Ollama image run as a CPU container on the gateway network, reachable as the host's `address`."""


class HostSshSettings(_Section):
    user: Optional[UnixUser] = None
    """SSH user for this host. Unset: `gpuSsh.user`."""
    port: Optional[int] = Field(default=None, ge=1, le=65535)
    """SSH port for this host. Unset: `gpuSsh.port`."""
    host_key: Optional[HostKey] = None
    """The host's public key (`ssh-keyscan -t ed25519 -p <port> <address>`, the `ssh-ed25519 AAAA...` part;
    check it against the host's console). Checked on every connection; a mismatch stops `up` and `refresh`.
    Required unless `gpuSsh.allowUnpinnedHostKeys` says why not."""


class HostExporters(_Section):
    node_exporter_port: Optional[int] = Field(default=None, ge=1, le=65535)
    """Port of node exporter on the host; Prometheus scrapes it when given."""
    dcgm_exporter_port: Optional[int] = Field(default=None, ge=1, le=65535)
    """Port of NVIDIA's DCGM exporter on the host; Prometheus scrapes it when given."""


class GpuHostSettings(_Section):
    name: Name
    """Host name used in routes and resource names (lowercase letters, digits, `-`)."""
    address: HostAddress
    """IP address (v4 or v6) or DNS name the gateway reaches Ollama on; a URL, a port or `user@` is refused."""
    ollama_port: int = Field(default=11434, ge=1, le=65535)
    """Ollama's port."""
    ssh: HostSshSettings = HostSshSettings()
    """Per-host SSH settings (`user`, `port`, `hostKey`)."""
    exporters: HostExporters = HostExporters()
    """Exporters running on the host, scraped by Prometheus."""
    models: Optional[tuple[ModelName, ...]] = None
    """What the host pulls. Unset: exactly the models routed to it. Given: it must include every model routed
    to the host; it may list more."""
    local_container: Optional[LocalOllamaContainer] = None
    """dev stacks only: run this host as a CPU Ollama container (`{image}`) on the gateway network."""


class VaultFieldRef(_Section):
    mount: VaultPath = "secret"
    """KV v2 mount of the secret."""
    path: VaultPath
    """Path of the secret."""
    field: Annotated[str, _full(r"[A-Za-z0-9_.-]{1,128}", "{value!r} is not a valid field name")] = "private_key"
    """Field holding the value."""


class GpuSshSettings(_Section):
    """Defaults for reaching every GPU host over SSH (a host's own `ssh` block overrides them)."""

    user: UnixUser = "ollama"
    """SSH user on the GPU hosts."""
    port: int = Field(default=22, ge=1, le=65535)
    """SSH port of the GPU hosts."""
    private_key_vault: Optional[VaultFieldRef] = None
    """`{mount, path, field}` of a Vault KV v2 secret holding the SSH private key. Alternative to the secret
    config key `gpuSshPrivateKey`; one of the two is required when a host is reached over SSH."""
    dial_error_limit: int = Field(default=3, ge=1, le=100)
    """SSH connection attempts before a pull gives up on an unreachable host."""
    allow_unpinned_host_keys: Optional[Annotated[str, Field(min_length=10, max_length=300)]] = None
    """The named waiver: why hosts without `ssh.hostKey` may be reached without checking their key (10-300
    characters). Unset, every SSH host needs `ssh.hostKey`: a man in the middle would otherwise get the
    key's signature and every command's output."""


class ModelPullSettings(_Section):
    retries: int = Field(default=4, ge=1, le=20)
    """`ollama pull` attempts for transient errors (network, registry). Unknown tags and a full disk fail at
    once."""
    backoff_seconds: int = Field(default=5, ge=0, le=600)
    """Wait before the second attempt; doubles after each failure."""
    attempt_timeout_seconds: int = Field(default=1800, ge=10)
    """Limit for one `ollama pull`."""
    timeout_seconds: int = Field(default=3600, ge=10)
    """Limit for all attempts of one model together."""
    prune: bool = False
    """`true`: a model removed from the config is removed from its hosts (`ollama rm`) on the next `pulumi
    up`."""


class ExporterSettings(_Section):
    enabled: bool = True
    """Run this exporter (on the private network only)."""
    image: str
    """Pinned exporter image."""


class AlertSettings(_Section):
    error_ratio: float = Field(default=0.05, gt=0, lt=1)
    """Alert when this share of gateway requests fails."""
    p95_latency_seconds: float = Field(default=30.0, gt=0)
    """Alert when the p95 request latency is above this."""
    for_minutes: int = Field(default=5, ge=1, le=1440)
    """How long a condition must hold before it alerts (gateway down: 2 min; outage and Redis: 1 min)."""


class MonitoringSettings(_Section):
    enabled: bool = True
    """Prometheus, exporters and Grafana (BACKLOG-003, BACKLOG-007)."""
    prometheus_image: str = "prom/prometheus:v3.5.0"
    """Pinned Prometheus image."""
    grafana_image: str = "grafana/grafana:12.1.1"
    """Pinned Grafana image."""
    bind_address: IpAddress = "127.0.0.1"
    """Where Prometheus and Grafana are published; the same public-address rule as the gateway. Both ask for
    credentials: Prometheus basic auth (user `prometheus`, password `PROMETHEUS_PASSWORD` in Vault),
    Grafana its admin login."""
    allow_public_bind: bool = False
    """Explicitly allow a public `bindAddress`."""
    prometheus_port: int = Field(default=9090, ge=1, le=65535)
    """Prometheus' published port."""
    grafana_port: int = Field(default=3000, ge=1, le=65535)
    """Grafana's published port."""
    retention_days: int = Field(default=15, ge=1, le=3650)
    """Prometheus TSDB retention (data on a named volume)."""
    scrape_interval_seconds: int = Field(default=15, ge=1, le=300)
    """Scrape interval, 1-300 s."""
    evaluation_interval_seconds: int = Field(default=15, ge=1, le=300)
    """Rule evaluation interval, 1-300 s, not shorter than the scrape interval."""
    redis_exporter: ExporterSettings = ExporterSettings(image="oliver006/redis_exporter:v1.74.0-alpine")
    """`{enabled, image}` of the Redis exporter."""
    postgres_exporter: ExporterSettings = ExporterSettings(image="quay.io/prometheuscommunity/postgres-exporter:v0.17.1")
    """`{enabled, image}` of the Postgres exporter."""
    alerts: AlertSettings = AlertSettings()
    """Alert thresholds."""
    alertmanagers: tuple[HostPortText, ...] = ()
    """Alertmanagers (`host:port`) Prometheus sends alerts to; none: alerts show in Prometheus only."""


class RedisSettings(_Section):
    image: str = "redis:7.4.6-alpine"
    """Redis 7 or newer, pinned."""
    max_memory_mb: int = Field(default=256, ge=16, le=MAX_MEMORY_MB)
    """Redis `maxmemory` (LRU eviction)."""


class CacheSettings(_Section):
    enabled: bool = True
    """LiteLLM's response cache in Redis (BACKLOG-008)."""
    ttl_seconds: int = Field(default=600, ge=1, le=7 * 24 * 3600)
    """How long a cached response is served."""


class PostgresSettings(_Section):
    image: str = "postgres:16.10"
    """Pinned Postgres image."""
    volume_name: Optional[VolumeName] = None
    """Named volume for the database, kept on `pulumi destroy`. Unset: `litellm-gateway-<environment>-pgdata`."""
    database: PgIdentifier = "litellm"
    """Database name: lowercase letters, digits, `_`."""
    user: PgIdentifier = "litellm"
    """Database role: lowercase letters, digits, `_`."""


class BackupSettings(_Section):
    enabled: bool = True
    """Scheduled `pg_dump` of the LiteLLM database (BACKLOG-004)."""
    times_utc: tuple[TimeOfDay, ...] = Field(default=("03:00",), min_length=1)
    """Daily run times, UTC, `HH:MM`."""
    retention: int = Field(default=7, ge=1, le=365)
    """Keep the newest N dumps (with their checksums)."""
    host_path: Optional[HostPath] = None
    """Write dumps to this absolute, normalised path on the Docker host (a directory of its own, never `/`,
    `/etc`, `/var` and the like). It becomes the `postgres` user's, mode 0700; dumps are 0600."""
    volume_name: Optional[VolumeName] = None
    """Write dumps to this named volume (kept on destroy; never the database's). Unset (and no `hostPath`):
    `litellm-gateway-<environment>-pgbackups`."""


class Limits(_Section):
    memory_mb: int = Field(ge=16, le=MAX_MEMORY_MB)
    """Memory limit, MB."""
    cpus: float = Field(gt=0, le=MAX_CPUS)
    """CPU limit (fractions allowed)."""


class ContainerLimits(_Section):
    """Memory and CPU limits per container (the LiteLLM replicas: gateway.memoryMb and gateway.cpus)."""

    postgres: Limits = Limits(memory_mb=2048, cpus=2)
    """Postgres."""
    redis: Optional[Limits] = None
    """Redis. Unset: `redis.maxMemoryMb` plus a quarter (at least 64 MB) for buffers and connections, 1 CPU."""
    prometheus: Limits = Limits(memory_mb=2048, cpus=1)
    """Prometheus."""
    grafana: Limits = Limits(memory_mb=512, cpus=1)
    """Grafana."""
    redis_exporter: Limits = Limits(memory_mb=128, cpus=0.25)
    """The Redis exporter."""
    postgres_exporter: Limits = Limits(memory_mb=128, cpus=0.25)
    """The Postgres exporter."""
    backup: Limits = Limits(memory_mb=1024, cpus=1)
    """The backup scheduler."""
    vault_dev: Limits = Limits(memory_mb=256, cpus=0.5)
    """The dev-mode Vault (dev stacks)."""
    ollama_dev: Limits = Limits(memory_mb=8192, cpus=4)
    """A dev stack's local Ollama container."""
    loadbalancer: Limits = Limits(memory_mb=256, cpus=1)
    """The HAProxy load balancer."""


class ContainersSettings(_Section):
    log_max_size_mb: int = Field(default=20, ge=1, le=10240)
    """Docker json-file log size per container before it rotates, MB."""
    log_max_files: int = Field(default=5, ge=1, le=100)
    """Rotated log files kept per container."""
    limits: ContainerLimits = ContainerLimits()
    """`{memoryMb, cpus}` per container role (the LiteLLM replicas: `gateway.memoryMb` and `gateway.cpus`)."""


AccessSettings = build_models(_Section)


class SecretsSettings(_Section):
    protect_salt_key: bool = True
    """Protect the salt key and keep the Vault secret on destroy (a policy requires it outside dev). The salt
    key encrypts credentials stored in the database; it must never change."""


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
    docker: DockerSettings
    vault: VaultSettings
    gateway: GatewaySettings
    models: tuple[ModelSettings, ...]
    gpu_hosts: tuple[GpuHostSettings, ...]
    redis: RedisSettings
    cache: CacheSettings
    postgres: PostgresSettings
    secrets: SecretsSettings
    gpu_ssh: GpuSshSettings
    model_pulls: ModelPullSettings
    monitoring: MonitoringSettings
    backups: BackupSettings
    containers: ContainersSettings
    access: Any  # AccessSettings
    supplied_secrets: SuppliedSecrets

    @property
    def vault_path(self) -> str:
        return self.vault.path or f"{PROJECT}/{self.environment}"

    @property
    def vault_policy_name(self) -> str:
        return self.vault.policy_name or f"{PROJECT}-{self.environment}-read"

    @property
    def postgres_volume(self) -> str:
        return self.postgres.volume_name or f"{PROJECT}-{self.environment}-pgdata"

    @property
    def backup_volume(self) -> str:
        return self.backups.volume_name or f"{PROJECT}-{self.environment}-pgbackups"

    def redis_limits(self) -> Limits:
        if self.containers.limits.redis is not None:
            return self.containers.limits.redis
        return Limits(memory_mb=self.redis.max_memory_mb + max(64, self.redis.max_memory_mb // 4), cpus=1)

    def resource_prefix(self) -> str:
        return f"{PROJECT}-{self.environment}"

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

    def routes(self) -> list[tuple[ModelSettings, GpuHostSettings]]:
        """One (model, host) pair per deployment the gateway routes to, in config order."""
        return [(m, self.host(h)) for m in self.models for h in m.hosts]


_SECTIONS: dict[str, tuple[str, Any, bool]] = {
    # config key: (attribute, type, required)
    "docker": ("docker", DockerSettings, False),
    "vault": ("vault", VaultSettings, False),
    "gateway": ("gateway", GatewaySettings, True),
    "models": ("models", tuple[ModelSettings, ...], True),
    "gpuHosts": ("gpu_hosts", tuple[GpuHostSettings, ...], True),
    "redis": ("redis", RedisSettings, False),
    "cache": ("cache", CacheSettings, False),
    "postgres": ("postgres", PostgresSettings, False),
    "secrets": ("secrets", SecretsSettings, False),
    "gpuSsh": ("gpu_ssh", GpuSshSettings, False),
    "modelPulls": ("model_pulls", ModelPullSettings, False),
    "monitoring": ("monitoring", MonitoringSettings, False),
    "backups": ("backups", BackupSettings, False),
    "containers": ("containers", ContainersSettings, False),
    "access": ("access", AccessSettings, False),
}
_SCALARS = ("environment",)
STRUCTURED_KEYS = frozenset(_SECTIONS)


def _key_path(root: str, loc: tuple[Any, ...]) -> str:
    path = root
    for part in loc:
        path += f"[{part}]" if isinstance(part, int) else f".{part}"
    return path


def _pydantic_problems(root: str, error: ValidationError) -> list[tuple[str, str]]:
    problems = []
    for item in error.errors():
        message = item["msg"]
        if item["type"] == "extra_forbidden":
            message = "unknown key (check the spelling against docs/configuration.md)"
        elif item["type"] == "missing":
            message = "required key is missing"
        elif item["type"] == "value_error":
            message = message.removeprefix("Value error, ")
        problems.append((_key_path(root, item["loc"]), message))
    return problems


_IMAGE = re.compile(
    r"(?P<repo>[a-z0-9]+(?:[._/-][a-z0-9]+)*(?::[0-9]+)?(?:/[a-z0-9]+(?:[._-][a-z0-9]+)*)*)"
    r"(?::(?P<tag>[\w][\w.-]{0,127}))?(?:@(?P<digest>sha256:[0-9a-f]{64}))?",
    re.ASCII,
)


def image_problem(image: str) -> Optional[str]:
    """Why an image reference is not pinned, or None when it is."""
    match = _IMAGE.fullmatch(image)
    if not match:
        return f"'{image}' is not a valid image reference"
    if match["tag"] is None and match["digest"] is None:
        return f"'{image}' has no tag; pin a version (for example '{image}:<version>')"
    if match["tag"] in ("latest", "main-latest", "main-stable", "stable") and match["digest"] is None:
        return f"'{image}' uses the moving tag '{match['tag']}'; pin a version"
    return None


def image_tag(image: str) -> str:
    match = _IMAGE.fullmatch(image)
    return (match["tag"] or "") if match else ""


LITELLM_IMAGE_VERSION = re.compile(r"v(\d+\.\d+\.\d+)")


def litellm_version_of(image: str) -> Optional[str]:
    found = LITELLM_IMAGE_VERSION.search(image_tag(image))
    return found.group(1) if found else None


def _bind_problem(address: str, allowed: bool, allow_key: str) -> Optional[str]:
    ip = ip_or_none(address)
    if ip is None:
        return f"{address!r} is not an IP address"
    if ip.is_loopback or allowed:
        return None
    if ip.is_unspecified or not ip.is_private:
        return (
            f"{address!r} publishes on a public or on all interfaces; bind to 127.0.0.1 or "
            f"a private address, or set {allow_key}: true if that is intended"
        )
    return None


def _published_ports(parsed: dict[str, Any]) -> list[tuple[str, str, int]]:
    """(config key, bind address, port) of every port the stack publishes on the Docker host."""
    published = []
    gateway: Optional[GatewaySettings] = parsed.get("gateway")
    if gateway is not None:
        # Only the load balancer publishes; the replicas are reached on the private network.
        published.append(("gateway.port", gateway.bind_address, gateway.port))
        redirect = gateway.load_balancer.tls.http_redirect_port
        if gateway.load_balancer.tls.enabled and redirect is not None:
            published.append(("gateway.loadBalancer.tls.httpRedirectPort", gateway.bind_address, redirect))
    monitoring: Optional[MonitoringSettings] = parsed.get("monitoring")
    if monitoring is not None and monitoring.enabled:
        published.append(("monitoring.prometheusPort", monitoring.bind_address, monitoring.prometheus_port))
        published.append(("monitoring.grafanaPort", monitoring.bind_address, monitoring.grafana_port))
    vault: Optional[VaultSettings] = parsed.get("vault")
    if vault is not None and vault.mode == "dev-container":
        published.append(("vault.devPort", "127.0.0.1", vault.dev_port))
    return published


def _same_socket(a: str, b: str) -> bool:
    ip_a, ip_b = ip_or_none(a), ip_or_none(b)
    if ip_a is None or ip_b is None:
        return False
    return ip_a == ip_b or ip_a.is_unspecified or ip_b.is_unspecified


def _check_port_clashes(parsed: dict[str, Any], problems) -> None:
    published = _published_ports(parsed)
    for i, (key, address, port) in enumerate(published):
        for other_key, other_address, other_port in published[:i]:
            if port == other_port and _same_socket(address, other_address):
                problems.append((key, f"port {port} on {address} is already published for {other_key}"))
                break


def _check_environment_specific(parsed: dict[str, Any], problems) -> None:
    """What only a dev stack may do."""
    environment = parsed.get("environment")
    if environment is None or is_dev_environment(environment):
        return
    vault: Optional[VaultSettings] = parsed.get("vault")
    if vault is not None:
        if vault.mode == "dev-container":
            problems.append(("vault.mode", f"dev-container keeps secrets in memory only; {environment} needs mode: external"))
        if vault.address and vault.address.startswith("http://"):
            problems.append(("vault.address", f"{vault.address!r} sends the Vault token in plain text; "
                             f"{environment} needs https:// (only dev stacks may use http://)"))
        if vault.skip_tls_verify:
            problems.append(("vault.skipTlsVerify", f"turns off TLS verification; only dev stacks may do that, not {environment}"))
    for i, host in enumerate(parsed.get("gpu_hosts") or ()):
        if host.local_container is not None:
            problems.append((f"gpuHosts[{i}].localContainer", f"runs Ollama on the gateway's Docker engine, "
                             f"which only dev stacks do; {environment} needs real GPU hosts"))


def _check_fleet(parsed: dict[str, Any], raw: dict[str, Any], problems) -> None:
    models: Optional[tuple[ModelSettings, ...]] = parsed.get("models")
    hosts: Optional[tuple[GpuHostSettings, ...]] = parsed.get("gpu_hosts")
    if models is not None:
        if not models:
            problems.append(("models", "declare at least one model"))
        for i, model in enumerate(models):
            for dup in _duplicates(list(model.hosts)):
                problems.append((f"models[{i}].hosts", f"host '{dup}' is listed twice"))
        for dup in _duplicates([m.name for m in models]):
            problems.append(("models", f"model name '{dup}' is declared more than once"))
        # Resource names are built from a slug of the model name: two names, one slug, one resource.
        by_slug: dict[str, str] = {}
        for i, model in enumerate(models):
            first = by_slug.setdefault(slug(model.name), model.name)
            if first != model.name:
                problems.append((f"models[{i}].name", f"'{model.name}' and '{first}' differ only in case or "
                                 f"punctuation; both would be named '{slug(model.name)}' in the stack"))
    if hosts is not None:
        if not hosts:
            problems.append(("gpuHosts", "declare at least one GPU host"))
        for dup in _duplicates([h.name for h in hosts]):
            problems.append(("gpuHosts", f"host name '{dup}' is declared more than once"))
        for dup in _duplicates([f"{h.address.lower()}:{h.ollama_port}" for h in hosts]):
            problems.append(("gpuHosts", f"two hosts share the Ollama endpoint {dup}"))
    if models is None or hosts is None:
        return
    host_names = {h.name for h in hosts}
    model_names = {m.name for m in models}
    models_by_name = {m.name: m for m in models}
    for i, model in enumerate(models):
        for host_name in model.hosts:
            if host_name not in host_names:
                problems.append((f"models[{i}].hosts", f"unknown GPU host '{host_name}' (declared: {sorted(host_names)})"))
    pull_names: dict[str, tuple[str, str]] = {}
    for i, host in enumerate(hosts):
        for model_name in host.models or ():
            if model_name not in model_names:
                problems.append((f"gpuHosts[{i}].models", f"unknown model '{model_name}' (declared: {sorted(model_names)})"))
        if host.models is not None:
            for dup in _duplicates(list(host.models)):
                problems.append((f"gpuHosts[{i}].models", f"model '{dup}' is listed twice"))
            for model in models:
                if host.name in model.hosts and model.name not in host.models:
                    problems.append(
                        (f"gpuHosts[{i}].models",
                         f"model '{model.name}' is routed to '{host.name}' (models[].hosts) but the host does not pull it")
                    )
        pulled = host.models if host.models is not None else [m.name for m in models if host.name in m.hosts]
        # Pruning removes a tag when its model leaves the config: two models sharing a tag on one
        # host would delete weights the other still routes to. One model per tag and host.
        by_tag: dict[str, str] = {}
        for model_name in dict.fromkeys(pulled):
            model = models_by_name.get(model_name)
            if model is None:
                continue
            first = by_tag.setdefault(full_ollama_tag(model.ollama_tag), model.name)
            if first != model.name:
                problems.append((f"gpuHosts[{i}]", (
                    f"models '{first}' and '{model.name}' both pull {full_ollama_tag(model.ollama_tag)!r} on "
                    f"'{host.name}'; removing one would prune the weights the other serves. Declare the tag once "
                    "(use LiteLLM model aliases for a second name)")))
            pair = f"{host.name}-{slug(model.name)}"
            other = pull_names.setdefault(pair, (host.name, model.name))
            if other != (host.name, model.name):
                problems.append((f"gpuHosts[{i}]", (
                    f"host '{host.name}' with model '{model.name}' and host '{other[0]}' with model '{other[1]}' "
                    f"would both declare the pull resource '{pair}'; rename one of them")))


def _image_references(raw: dict[str, Any]) -> list[tuple[str, Any]]:
    """(key path, value) of every image reference in the raw config, valid sections or not."""
    found = []
    for section, key in (("gateway", "image"), ("redis", "image"), ("postgres", "image"), ("vault", "devImage")):
        if isinstance(raw.get(section), dict) and key in raw[section]:
            found.append((f"{section}.{key}", raw[section][key]))
    gateway = raw.get("gateway")
    if isinstance(gateway, dict) and isinstance(gateway.get("loadBalancer"), dict) and "image" in gateway["loadBalancer"]:
        found.append(("gateway.loadBalancer.image", gateway["loadBalancer"]["image"]))
    monitoring = raw.get("monitoring")
    if isinstance(monitoring, dict):
        for key in ("prometheusImage", "grafanaImage"):
            if key in monitoring:
                found.append((f"monitoring.{key}", monitoring[key]))
        for key in ("redisExporter", "postgresExporter"):
            if isinstance(monitoring.get(key), dict) and "image" in monitoring[key]:
                found.append((f"monitoring.{key}.image", monitoring[key]["image"]))
    hosts = raw.get("gpuHosts")
    if isinstance(hosts, list):
        for i, host in enumerate(hosts):
            local = host.get("localContainer") if isinstance(host, dict) else None
            if isinstance(local, dict) and "image" in local:
                found.append((f"gpuHosts[{i}].localContainer.image", local["image"]))
    return found


def _check_images(raw: dict[str, Any], problems: list[tuple[str, str]]) -> None:
    # Checked on the raw values so that an unpinned image is reported even when a sibling key
    # of the same section has the wrong type.
    for key, value in _image_references(raw):
        if not isinstance(value, str):
            continue  # the type error is reported by the section's own validation
        problem = image_problem(value)
        if problem:
            problems.append((key, problem))
        elif key == "gateway.image" and litellm_version_of(value) is None:
            problems.append((key, f"'{value}' names no LiteLLM version (expected a tag like main-v1.108.7-stable)"))
        elif key == "redis.image":
            major = re.match(r"(\d+)", image_tag(value))
            if major and int(major.group(1)) < 7:
                problems.append((key, f"'{value}' is Redis {major.group(1)}; Redis 7 or newer is required"))


def _cross_check(parsed: dict[str, Any], raw: dict[str, Any], problems: list[tuple[str, str]]) -> None:
    gateway: Optional[GatewaySettings] = parsed.get("gateway")
    if gateway is not None:
        problem = _bind_problem(gateway.bind_address, gateway.allow_public_bind, "gateway.allowPublicBind")
        if problem:
            problems.append(("gateway.bindAddress", problem))
        if gateway.load_balancer.max_replicas < 2 * gateway.replicas:
            problems.append(("gateway.loadBalancer.maxReplicas",
                             f"{gateway.load_balancer.max_replicas} slots cannot hold {gateway.replicas} replicas and their "
                             f"replacements side by side during a rolling replacement; use at least {2 * gateway.replicas}"))
        tls = gateway.load_balancer.tls
        if not tls.enabled and (tls.vault is not None or tls.http_redirect_port is not None):
            problems.append(("gateway.loadBalancer.tls.enabled", "is false, but other TLS settings are given"))

    vault: Optional[VaultSettings] = parsed.get("vault")
    if vault is not None and vault.mode == "dev-container":
        if vault.address:
            problems.append(("vault.address", "must not be set with vault.mode dev-container (the stack runs its own Vault)"))
        docker_settings = parsed.get("docker")
        if docker_settings is not None and not docker_settings.host.startswith("unix://"):
            problems.append(("vault.mode", "dev-container needs the local Docker engine (docker.host unix://...): "
                             "the stack talks to the dev Vault on 127.0.0.1"))

    monitoring: Optional[MonitoringSettings] = parsed.get("monitoring")
    if monitoring is not None and monitoring.enabled:
        problem = _bind_problem(monitoring.bind_address, monitoring.allow_public_bind, "monitoring.allowPublicBind")
        if problem:
            problems.append(("monitoring.bindAddress", problem))
        if monitoring.evaluation_interval_seconds < monitoring.scrape_interval_seconds:
            problems.append(("monitoring.evaluationIntervalSeconds",
                             "is shorter than monitoring.scrapeIntervalSeconds (rules would see stale data)"))
    _check_port_clashes(parsed, problems)

    backups: Optional[BackupSettings] = parsed.get("backups")
    if backups is not None:
        for dup in _duplicates(list(backups.times_utc)):
            problems.append(("backups.timesUtc", f"'{dup}' is listed twice"))
        if backups.host_path is not None and backups.volume_name is not None:
            problems.append(("backups.volumeName", "set either backups.hostPath or backups.volumeName, not both"))
        postgres_settings = parsed.get("postgres")
        environment = parsed.get("environment", "")
        pg_volume = (postgres_settings.volume_name if postgres_settings else None) or f"{PROJECT}-{environment}-pgdata"
        if backups.volume_name is not None and backups.volume_name == pg_volume:
            problems.append(("backups.volumeName", "is the database's volume; backups must live elsewhere"))

    redis: Optional[RedisSettings] = parsed.get("redis")
    containers: Optional[ContainersSettings] = parsed.get("containers")
    if redis is not None and containers is not None and containers.limits.redis is not None \
            and containers.limits.redis.memory_mb < redis.max_memory_mb + 32:
        problems.append(("containers.limits.redis.memoryMb",
                         f"{containers.limits.redis.memory_mb} MB leaves no room above redis.maxMemoryMb "
                         f"({redis.max_memory_mb} MB): give it at least {redis.max_memory_mb + 32}"))

    _check_environment_specific(parsed, problems)
    _check_fleet(parsed, raw, problems)
    access = parsed.get("access")
    if access is not None:
        models = parsed.get("models")
        check_access(access, {m.name for m in models} if models is not None else None, problems)


def _check_fleet_access(parsed: dict[str, Any], supplied: dict[str, str], problems) -> None:
    hosts = parsed.get("gpu_hosts")
    ssh = parsed.get("gpu_ssh")
    pulls = parsed.get("model_pulls")
    if pulls is not None and pulls.attempt_timeout_seconds > pulls.timeout_seconds:
        problems.append(("modelPulls.attemptTimeoutSeconds", "is longer than modelPulls.timeoutSeconds"))
    if hosts is None or ssh is None:
        return
    ssh_hosts = [h.name for h in hosts if h.local_container is None]
    from_config = "gpuSshPrivateKey" in supplied
    from_vault = ssh.private_key_vault is not None
    if ssh_hosts and not (from_config or from_vault):
        problems.append(("gpuSshPrivateKey", (
            f"required: GPU hosts {ssh_hosts} are reached over SSH to pull their models; set it with "
            "`pulumi config set --secret gpuSshPrivateKey < ~/.ssh/id_ed25519`, or set gpuSsh.privateKeyVault")))
    if from_config and from_vault:
        problems.append(("gpuSsh.privateKeyVault", "set both this and gpuSshPrivateKey; keep one source for the key"))
    if ssh.allow_unpinned_host_keys is None:
        for i, host in enumerate(hosts):
            if host.local_container is None and host.ssh.host_key is None:
                problems.append((f"gpuHosts[{i}].ssh.hostKey", (
                    f"required: pin the SSH host key of '{host.name}' (`ssh-keyscan -t ed25519 -p "
                    f"{host.ssh.port or ssh.port} {host.address}`, the part after the address), or set "
                    "gpuSsh.allowUnpinnedHostKeys to the reason the keys cannot be pinned")))


def _check_tls_source(parsed: dict[str, Any], supplied: dict[str, str], problems) -> None:
    gateway: Optional[GatewaySettings] = parsed.get("gateway")
    from_config = {"gatewayTlsCertificate", "gatewayTlsKey"} & set(supplied)
    if gateway is None:
        return
    tls = gateway.load_balancer.tls
    if not tls.enabled:
        if from_config:
            problems.append((sorted(from_config)[0], "is set but gateway.loadBalancer.tls.enabled is false"))
        return
    if tls.vault is not None and from_config:
        problems.append(("gateway.loadBalancer.tls.vault", "set both this and gatewayTlsCertificate/gatewayTlsKey; "
                         "keep one source for the certificate"))
    elif tls.vault is None and len(from_config) != 2:
        problems.append(("gateway.loadBalancer.tls", "TLS needs the certificate and key: set gateway.loadBalancer.tls.vault "
                         "{mount, path}, or both secret config keys gatewayTlsCertificate and gatewayTlsKey"))


def _check_supplied_secret(key: str, value: str, is_secret: bool, problems) -> None:
    if not is_secret:
        problems.append(
            (key, f"is stored in plain text; set it with `pulumi config set --secret {key} <value>`")
        )
    if not value:
        problems.append((key, "is empty; remove it to have one generated"))
        return
    # A key file has line breaks; no other secret may have control characters (a newline in the
    # Redis password stops Redis from starting). The message never shows the value.
    allowed = "\n\r" if key in ("gpuSshPrivateKey", "gatewayTlsCertificate", "gatewayTlsKey") else ""
    bad = sorted({c for c in value if (ord(c) < 32 or ord(c) == 127) and c not in allowed})
    if bad:
        problems.append((key, f"contains control characters ({', '.join(repr(c) for c in bad)}); "
                              "set it again without them (`pulumi config set --secret` takes the value as given)"))
    if key == "masterKey":
        if value in PUBLICLY_KNOWN_MASTER_KEYS:
            problems.append((key, "is the publicly known example key; LiteLLM refuses to start with it"))
        elif not value.startswith("sk-"):
            problems.append((key, "must start with 'sk-'"))
        elif len(value) - 3 < MIN_MASTER_KEY_RANDOM_CHARS:
            problems.append((key, f"is too short: use 'sk-' and at least {MIN_MASTER_KEY_RANDOM_CHARS} random characters"))
        elif any(c.isspace() for c in value):
            problems.append((key, "contains white space; clients send it in an Authorization header"))
    elif key == "gatewayTlsCertificate":
        if "-----BEGIN CERTIFICATE-----" not in value:
            problems.append((key, "is not a PEM certificate (chain); set it with "
                                  "`pulumi config set --secret gatewayTlsCertificate < fullchain.pem`"))
    elif key == "gatewayTlsKey":
        if "-----BEGIN" not in value or "PRIVATE KEY-----" not in value:
            problems.append((key, "is not a PEM private key; set it with `pulumi config set --secret gatewayTlsKey < key.pem`"))
    elif key == "gpuSshPrivateKey":
        if "-----BEGIN" not in value or "PRIVATE KEY-----" not in value:
            problems.append((key, "is not a PEM/OpenSSH private key (expected '-----BEGIN ... PRIVATE KEY-----'); "
                                  "set it with `pulumi config set --secret gpuSshPrivateKey < ~/.ssh/id_ed25519`"))
    elif len(value) < 16:
        problems.append((key, "is too short: use at least 16 random characters"))


def _without(value: Any, loc: tuple[Any, ...]) -> None:
    """Remove the value at `loc` (a pydantic error location) from nested dicts/lists, in place."""
    parent = value
    for depth, part in enumerate(loc[:-1]):
        try:
            child = parent[part]
        except (KeyError, IndexError, TypeError):
            return
        if not isinstance(child, (dict, list)):
            # The error is about a scalar inside `parent[part]`: drop that whole field.
            loc = loc[:depth + 1]
            break
        parent = child
    last = loc[-1]
    if isinstance(parent, dict) and isinstance(last, str):
        parent.pop(last, None)
    elif isinstance(parent, dict):
        for key in [k for k in parent if k == last]:
            parent.pop(key)


def _validate_section(key: str, kind: Any, value: Any) -> tuple[Any, list[tuple[str, str]]]:
    """(parsed value, problems). With problems, the value is what remains valid once the wrong keys
    are left out (defaults in their place), so the cross-checks still run on the rest; None if that
    fails too."""
    adapter = TypeAdapter(kind)
    try:
        return adapter.validate_python(value), []
    except ValidationError as error:
        problems = _pydantic_problems(key, error)
        salvaged = copy.deepcopy(value)
        for item in error.errors():
            if item["type"] not in ("missing",) and item["loc"]:
                _without(salvaged, tuple(item["loc"]))
        try:
            return adapter.validate_python(salvaged), problems
        except ValidationError:
            return None, problems


def parse_settings(raw: dict[str, Any], secret_keys: frozenset[str] = frozenset(),
                   stack: Optional[str] = None) -> StackSettings:
    """Validate a stack's raw config (keys without the project prefix) into settings.

    `raw` holds decoded values: dicts and lists for structured keys, strings for scalars.
    `secret_keys` names the keys that Pulumi holds encrypted; `stack` is the stack's name when
    known (`environment` must equal it). Raises SettingsError.
    """
    problems: list[tuple[str, str]] = []
    parsed: dict[str, Any] = {}

    known = set(_SECTIONS) | set(_SCALARS) | set(SECRET_KEYS)
    for key in sorted(set(raw) - known):
        problems.append((key, f"unknown key (known keys: {', '.join(sorted(known))})"))

    environment = raw.get("environment")
    if environment is None:
        problems.append(("environment", "required key is missing (for example: dev or prod)"))
    elif not isinstance(environment, str) or not re.fullmatch(r"[a-z][a-z0-9-]{0,19}", environment):
        problems.append(("environment", f"{environment!r} must be lowercase letters, digits and '-', up to 20 characters"))
    elif stack is not None and environment != stack:
        problems.append(("environment", (
            f"is {environment!r} but the stack is {stack!r}: container, volume and Vault names come from "
            f"it, so this stack would take over {environment}'s. Set environment: {stack}")))
    else:
        parsed["environment"] = environment

    for key, (attr, kind, required) in _SECTIONS.items():
        if key not in raw:
            if required:
                problems.append((key, "required key is missing"))
            else:
                parsed[attr] = kind()
            continue
        value, section_problems = _validate_section(key, kind, raw[key])
        if value is not None:
            parsed[attr] = value
        problems.extend(section_problems)

    _check_images(raw, problems)
    # Cross-checks run on what is valid; a key already reported is not reported again.
    reported = {key for key, _ in problems}
    more: list[tuple[str, str]] = []
    _cross_check(parsed, raw, more)

    supplied = {}
    for key in SECRET_KEYS:
        if key in raw:
            value = raw[key]
            if not isinstance(value, str):
                problems.append((key, "must be a string"))
                continue
            _check_supplied_secret(key, value, key in secret_keys, problems)
            supplied[key] = value

    _check_fleet_access(parsed, supplied, more)
    _check_tls_source(parsed, supplied, more)
    problems.extend(p for p in more if p[0] not in reported)

    if problems:
        raise SettingsError(problems)
    return StackSettings(
        environment=parsed["environment"],
        docker=parsed["docker"],
        vault=parsed["vault"],
        gateway=parsed["gateway"],
        models=parsed["models"],
        gpu_hosts=parsed["gpu_hosts"],
        redis=parsed["redis"],
        cache=parsed["cache"],
        postgres=parsed["postgres"],
        secrets=parsed["secrets"],
        gpu_ssh=parsed["gpu_ssh"],
        model_pulls=parsed["model_pulls"],
        monitoring=parsed["monitoring"],
        backups=parsed["backups"],
        containers=parsed["containers"],
        access=parsed["access"],
        supplied_secrets=SuppliedSecrets(supplied),
    )
