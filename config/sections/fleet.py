"""`models`, `gpuHosts`, `gpuSsh` and `modelPulls`: the GPU fleet, what it serves and how it is reached."""

from __future__ import annotations

from typing import Annotated, Literal, Optional

from pydantic import Field

from ..types import Extra, HostAddress, HostKey, ModelName, Name, OllamaDigest, OllamaTag, Text, UnixUser
from .base import Section
from .vault import VaultFieldRef

# Ollama's keep_alive: a Go duration ("10m", "1h30m"), "0" (unload at once) or "-1" (keep loaded for ever).
KeepAlive = Annotated[str, Field(pattern=r"^(-1|0|([0-9]+(\.[0-9]+)?(ns|us|ms|s|m|h))+)$", max_length=32)]


class OllamaOptions(Section):
    """Ollama's request options (its API's `options`, the Modelfile's PARAMETER names), sent with every request
    to the model. Unset: the model's own (Modelfile) value; a client's own value for `temperature`, `top_p`,
    `seed` or `stop` wins over the one set here."""

    num_ctx: Optional[int] = Field(default=None, ge=256, le=1_048_576)
    """Context window in tokens. Ollama's default (2048-4096 by version) silently drops the start of a longer
    prompt: set it to what the model supports and the GPU's memory holds (it costs memory per parallel slot)."""
    num_predict: Optional[int] = Field(default=None, ge=-2, le=1_048_576)
    """Most tokens to generate (-1: no limit, -2: fill the context)."""
    num_batch: Optional[int] = Field(default=None, ge=1, le=65_536)
    """Prompt-processing batch size."""
    num_gpu: Optional[int] = Field(default=None, ge=0, le=1024)
    """Layers to offload to the GPU(s) (0: CPU only)."""
    num_thread: Optional[int] = Field(default=None, ge=1, le=1024)
    """CPU threads for the parts that run on the CPU."""
    temperature: Optional[float] = Field(default=None, ge=0, le=5)
    """Sampling temperature."""
    top_k: Optional[int] = Field(default=None, ge=0, le=100_000)
    """Sample from the k most likely tokens."""
    top_p: Optional[float] = Field(default=None, ge=0, le=1)
    """Nucleus sampling."""
    min_p: Optional[float] = Field(default=None, ge=0, le=1)
    """Minimum probability of a token, relative to the most likely one."""
    repeat_penalty: Optional[float] = Field(default=None, ge=0, le=10)
    """Penalty for repeated tokens."""
    repeat_last_n: Optional[int] = Field(default=None, ge=-1, le=1_048_576)
    """How far back repetitions count (-1: the whole context)."""
    seed: Optional[int] = Field(default=None, ge=0, le=2**63 - 1)
    """Random seed (the same prompt gives the same answer)."""
    stop: Optional[tuple[Annotated[Text, Field(min_length=1, max_length=256)], ...]] = Field(default=None, max_length=16)
    """Stop sequences."""


class ModelSettings(Section):
    name: ModelName
    """The model name clients send. Two names may not differ only in case or punctuation."""
    ollama_tag: OllamaTag
    """Ollama tag (`llama3.1:8b`), routed as `ollama_chat/<tag>`. Two models may not pull the same tag on one
    host (`x` and `x:latest` are the same): pruning one would delete the weights the other serves."""
    hosts: tuple[Name, ...] = Field(min_length=1)
    """GPU hosts serving it (names from `gpuHosts`): the GPU dispatcher sends each request to the first free
    slot among them (`gpuHosts[].parallel`)."""
    rpm: Optional[int] = Field(default=None, ge=1)
    """Requests per minute for the model, all its hosts together, shared by every replica through Redis; the
    excess is refused with 429 (and goes to its `fallbacks`)."""
    tpm: Optional[int] = Field(default=None, ge=1)
    """Tokens per minute for the model, shared like `rpm`."""
    cost_per_million_input_tokens: float = Field(default=0.0, ge=0, le=1_000_000)
    """What a million input tokens cost (USD), for spend tracking and budgets (`maxBudget`); 0: the GPUs
    are yours. Also spares LiteLLM a price lookup on the GPU host per request."""
    cost_per_million_output_tokens: float = Field(default=0.0, ge=0, le=1_000_000)
    """What a million output tokens cost (USD), as `costPerMillionInputTokens`."""
    digest: Optional[OllamaDigest] = None
    """Pin the model: the ID `ollama list` shows (12 hex characters) or the full `sha256:` digest. A pull that
    yields another digest fails; a host holding another one is reported as drift."""
    mode: Literal["chat", "embedding"] = "chat"
    """`chat`: served on `/v1/chat/completions` (LiteLLM's `ollama_chat/`, Ollama's `/api/chat`). `embedding`:
    served on `/v1/embeddings` (LiteLLM's `ollama/`, Ollama's `/api/embed`)."""
    options: OllamaOptions = OllamaOptions()
    """Ollama request options sent with every request to this model (`models[].options.*`)."""
    keep_alive: Optional[KeepAlive] = None
    """How long Ollama keeps the model loaded after a request (`10m`, `1h`, `"0"` to unload at once, `"-1"`
    for ever; Ollama's default is 5 minutes, then the next request pays the load)."""
    timeout_seconds: Optional[int] = Field(default=None, ge=1, le=86400)
    """LiteLLM's timeout for a request to this model, time queued for a free GPU slot included. Unset:
    `gateway.requestTimeoutSeconds`."""
    stream_timeout_seconds: Optional[int] = Field(default=None, ge=1, le=86400)
    """LiteLLM's timeout for a streamed request to this model. Unset: `router.streamTimeoutSeconds`, else the
    model's `timeoutSeconds`."""
    fallbacks: tuple[ModelName, ...] = ()
    """Models (names from `models`) tried in order when this one still fails after `router.retries` (every
    host down or failing, timed out, or refused with 429 by `router.queue.maxWaiting`). No loops."""
    context_window_fallbacks: tuple[ModelName, ...] = ()
    """Models tried in order when a prompt is longer than this model's context window: `options.numCtx`,
    required with it (LiteLLM counts the prompt's tokens before the call; Ollama itself would drop the
    prompt's start)."""
    extra_litellm_params: Extra = Field(default_factory=dict, max_length=64)
    """Extra keys for this model's `litellm_params` in LiteLLM's config.yaml, for settings the typed ones lack.
    Keys the stack renders (`model`, `api_base`, `rpm`, `tpm`, `timeout`, ...) are refused."""


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
    parallel: int = Field(default=1, ge=1, le=1024)
    """Requests the host serves at once per model: its `OLLAMA_NUM_PARALLEL` (Ollama's default is 1, or 4
    with enough memory: set it on the host and here alike). The gateway sends a host at most this many
    requests of a model at once and keeps the rest queued for the first free slot on any of the model's hosts:
    traffic follows capacity."""
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
