"""`gateway`: the LiteLLM replicas, and the HAProxy load balancer with its TLS in front of them."""

from __future__ import annotations

from typing import Literal, Optional

from pydantic import Field

from ..types import MAX_CPUS, MAX_MEMORY_MB, HostAddress, IpAddress, Waiver
from .base import Section
from .vault import TlsVaultRef


class TlsSettings(Section):
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


class LoadBalancerSettings(Section):
    image: str = "haproxy:3.0.5-alpine"
    """Pinned HAProxy image."""
    max_replicas: int = Field(default=16, ge=2, le=256)
    """`server-template` slots: at least twice `gateway.replicas`, so old and new replicas fit side by side
    during a rolling replacement."""
    max_connections: int = Field(default=4096, ge=64, le=1_000_000)
    """Client connections the gateway accepts at once (its frontend's limit); the stats and health endpoint
    keep room of their own beyond it, so a full gateway still answers its health check."""
    max_connections_per_client: int = Field(default=256, ge=1, le=1_000_000)
    """Connections one client address may hold at once; more are refused at once. Without it, one client
    could take every connection (and, before, the health endpoint with them)."""
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
    max_request_body_mb: int = Field(default=32, ge=1, le=1024)
    """Largest request body the load balancer passes on, MB (by its `Content-Length`; a larger one gets 413,
    one without a length 411). A replica reads a whole body before it checks the key: this bounds what any
    client can make it hold. 32 MB fits a 128k-token prompt many times over and a few images."""
    max_unauthenticated_body_kb: int = Field(default=64, ge=1, le=16384)
    """Largest body of a request that carries no credentials (`Authorization`, `x-api-key`, `api-key`),
    KB; a larger one gets 401 at the load balancer, before any replica reads it. The admin UI's login
    form fits."""
    tls: TlsSettings = TlsSettings()
    """TLS at the load balancer (see `gateway.loadBalancer.tls.*`)."""
    allow_plain_http: Optional[Waiver] = None
    """The named waiver for serving the gateway over plain HTTP outside dev stacks (10-300 characters, for
    example "TLS ends at the corporate load balancer in front of this host"). Unset, a stack other than dev
    needs `tls.enabled`: the master key and every client's key travel in each request."""


class GatewaySettings(Section):
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
    """CPU limit per replica (up to 512, and at most the Docker host's CPU count, or Docker refuses the container)."""
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
    """Bump to rotate the generated master key (docs/operations.md, "Rotating the master key")."""
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "WARNING"
    """LiteLLM's log level (`LITELLM_LOG`). `INFO` adds four JSON lines per request (the load balancer
    logs every request already) and costs throughput (docs/benchmarks.md); errors show at `WARNING`."""
    ui_username: str = Field(default="admin", min_length=1, max_length=128)
    """Admin UI user name; the password is `UI_PASSWORD` in Vault."""
    load_balancer: LoadBalancerSettings = LoadBalancerSettings()
    """HAProxy in front of the replicas: the only published gateway port, one URL for clients."""
