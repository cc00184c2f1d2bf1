"""`router`: how requests reach the GPU hosts: LiteLLM's retries, cooldown and timeouts, the queue in front
of the hosts' slots, the hosts' health checks, and the escape hatch for LiteLLM settings the typed ones lack."""

from __future__ import annotations

from typing import Optional

from pydantic import Field

from ..types import Extra
from .base import Section


class QueueSettings(Section):
    """Requests beyond the free GPU slots wait at the gateway, one queue per model, for the first slot that
    frees on any of the model's hosts."""

    max_waiting: Optional[int] = Field(default=None, ge=0, le=1_000_000)
    """Requests of one model that may wait for a slot at once; more are refused at once with 429 (and go to
    the model's `fallbacks`). Unset: every request waits, up to `timeoutSeconds`."""
    timeout_seconds: Optional[int] = Field(default=None, ge=1, le=86400)
    """Longest wait for a slot; then 429. Unset: the model's timeout (LiteLLM gives up first)."""


class HostHealthSettings(Section):
    """How a failing GPU host leaves the rotation and comes back (HAProxy's checks and observation)."""

    check_interval_seconds: int = Field(default=2, ge=1, le=300)
    """Seconds between health checks (`GET /` on Ollama, answered "Ollama is running") of each host."""
    fall: int = Field(default=2, ge=1, le=100)
    """Consecutive failed checks, or consecutive failed requests (refused connection, timeout, 5xx), that take
    a host out: its requests go to the model's other hosts."""
    rise: int = Field(default=2, ge=1, le=100)
    """Consecutive good checks that bring a host back."""
    connect_timeout_seconds: int = Field(default=3, ge=1, le=60)
    """A host that does not accept the connection within this time counts as failed; the request goes to
    another host at once."""


class ExtraConfig(Section):
    """Keys merged into LiteLLM's config.yaml for settings the typed ones lack (docs/configuration.md's
    example). A key the stack renders itself (the master key, database, Redis, callbacks, cache, limits, ...)
    is refused with its name: set it through its typed setting."""

    litellm_settings: Extra = Field(default_factory=dict, max_length=64)
    """Extra `litellm_settings` keys."""
    router_settings: Extra = Field(default_factory=dict, max_length=64)
    """Extra `router_settings` keys."""
    general_settings: Extra = Field(default_factory=dict, max_length=64)
    """Extra `general_settings` keys."""


class RouterSettings(Section):
    retries: int = Field(default=2, ge=0, le=10)
    """LiteLLM's retries of a failed request (each goes to the model's next free host), before its
    `fallbacks`. A 429 of the queue is not retried."""
    allowed_fails: int = Field(default=3, ge=1, le=1000)
    """Failures of a model within a minute before LiteLLM cools it down and sends its requests to its
    `fallbacks` (only models with fallbacks are cooled down: a model without any keeps trying its hosts)."""
    cooldown_seconds: int = Field(default=30, ge=1, le=86400)
    """How long a model that failed `allowedFails` times goes to its fallbacks."""
    stream_timeout_seconds: Optional[int] = Field(default=None, ge=1, le=86400)
    """Timeout for streamed requests (LiteLLM's `stream_timeout`). Unset: each model's timeout."""
    queue: QueueSettings = QueueSettings()
    """The queue in front of the GPU slots (`router.queue.*`)."""
    host_health: HostHealthSettings = HostHealthSettings()
    """Health checks of the GPU hosts (`router.hostHealth.*`)."""
    extra_config: ExtraConfig = ExtraConfig()
    """The escape hatch: extra keys for LiteLLM's `litellm_settings`, `router_settings` and `general_settings`."""


# Keys of LiteLLM's config.yaml the stack renders or must keep (secrets, callbacks, the model list): an
# escape-hatch key among them is refused, naming the typed setting where there is one. The renderer's
# tests render every section and check that each key they find is listed here.
OWNED_LITELLM_SETTINGS = {
    "request_timeout": "gateway.requestTimeoutSeconds", "set_verbose": None, "json_logs": None,
    "drop_params": None, "callbacks": "monitoring", "success_callback": "monitoring",
    "failure_callback": "monitoring", "service_callback": "monitoring", "callback_settings": "monitoring",
    "require_auth_for_metrics_endpoint": "monitoring", "prometheus_metrics_config": "monitoring",
    "cache": "cache.enabled", "cache_params": "cache.ttlSeconds", "default_key_generate_params": "access.defaults.keyGenerate",
    "default_internal_user_params": "access.defaults.internalUser",
    "upperbound_key_generate_params": "access.defaults.upperBound", "num_retries": "router.retries",
    "fallbacks": "models[].fallbacks", "context_window_fallbacks": "models[].contextWindowFallbacks",
}
OWNED_ROUTER_SETTINGS = {
    "routing_strategy": None, "redis_host": "redis", "redis_port": "redis", "redis_password": "redis",
    "redis_url": "redis", "cache_kwargs": "redis.external", "num_retries": "router.retries", "allowed_fails": "router.allowedFails",
    "cooldown_time": "router.cooldownSeconds", "timeout": "gateway.requestTimeoutSeconds",
    "stream_timeout": "router.streamTimeoutSeconds", "optional_pre_call_checks": "models[].rpm",
    "fallbacks": "models[].fallbacks", "context_window_fallbacks": "models[].contextWindowFallbacks",
    "retry_policy": "router.retries", "model_list": "models", "enable_pre_call_checks": "models[].contextWindowFallbacks",
}
OWNED_GENERAL_SETTINGS = {
    "master_key": "gateway.masterKeyRotation", "database_url": "postgres", "proxy_batch_write_at": None,
    "database_connection_pool_limit": None, "disable_error_logs": None, "coordination_redis": "redis",
    "user_api_key_cache_ttl": "access.keyCacheTtlSeconds", "enable_drain_endpoint": None,
    "store_model_in_db": "models", "disable_master_key_return": None,
}
OWNED_EXTRA = {"litellm_settings": OWNED_LITELLM_SETTINGS, "router_settings": OWNED_ROUTER_SETTINGS,
               "general_settings": OWNED_GENERAL_SETTINGS}
# A deployment's litellm_params the stack renders; the Ollama options have typed settings of their own.
OWNED_LITELLM_PARAMS = {
    "model": "models[].ollamaTag", "api_base": "gpuHosts", "api_key": None, "rpm": "models[].rpm",
    "tpm": "models[].tpm", "timeout": "models[].timeoutSeconds", "stream_timeout": "models[].streamTimeoutSeconds",
    "keep_alive": "models[].keepAlive", "max_parallel_requests": "gpuHosts[].parallel",
    "input_cost_per_token": "models[].costPerMillionInputTokens",
    "output_cost_per_token": "models[].costPerMillionOutputTokens", "options": "models[].options",
}
