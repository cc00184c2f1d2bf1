"""`models`, `gpuHosts`, `gpuSsh` and `modelPulls`: the GPU fleet, what it serves and how it is reached."""

from __future__ import annotations

from typing import Annotated, Optional

from pydantic import Field

from ..types import HostAddress, HostKey, ModelName, Name, OllamaDigest, OllamaTag, UnixUser
from .base import Section
from .vault import VaultFieldRef


class ModelSettings(Section):
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
    digest: Optional[OllamaDigest] = None
    """Pin the model: the ID `ollama list` shows (12 hex characters) or the full `sha256:` digest. A pull that
    yields another digest fails; a host holding another one is reported as drift."""


class LocalOllamaContainer(Section):
    image: str
    """Pinned Ollama image run as a CPU container on the gateway network, reachable as the host's `address`."""


class HostSshSettings(Section):
    user: Optional[UnixUser] = None
    """SSH user for this host. Unset: `gpuSsh.user`."""
    port: Optional[int] = Field(default=None, ge=1, le=65535)
    """SSH port for this host. Unset: `gpuSsh.port`."""
    host_key: Optional[HostKey] = None
    """The host's public key (`ssh-keyscan -t ed25519 -p <port> <address>`, the `ssh-ed25519 AAAA...` part;
    check it against the host's console). Checked on every connection; a mismatch stops `up` and `refresh`.
    Required unless `gpuSsh.allowUnpinnedHostKeys` says why not."""


class HostExporters(Section):
    node_exporter_port: Optional[int] = Field(default=None, ge=1, le=65535)
    """Port of node exporter on the host; Prometheus scrapes it when given."""
    dcgm_exporter_port: Optional[int] = Field(default=None, ge=1, le=65535)
    """Port of NVIDIA's DCGM exporter on the host; Prometheus scrapes it when given."""


class GpuHostSettings(Section):
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


class GpuSshSettings(Section):
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


class ModelPullSettings(Section):
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
