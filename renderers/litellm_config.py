"""Render the LiteLLM proxy's config.yaml from stack settings.

Pure: settings in, text out. Secrets appear only as `os.environ/NAME` references, resolved by the
proxy from the container's environment (which Pulumi fills from secret Outputs).
"""

from __future__ import annotations

from typing import Any

import yaml

from config.names import DISPATCHER_PORT
from config.sections.access import litellm_limits
from config.sections.fleet import ModelSettings
from config.stack import StackSettings
from config.values import host_port
from renderers import data_stores
from renderers.haproxy import dispatcher_path
from renderers.monitoring import litellm_metrics_read

# Names of the environment variables the rendered config refers to; the gateway component sets
# each of them on the LiteLLM containers.
MASTER_KEY_ENV = "LITELLM_MASTER_KEY"
DATABASE_URL_ENV = "DATABASE_URL"
READ_REPLICA_URL_ENV = "DATABASE_URL_READ_REPLICA"   # LiteLLM reads it from the environment only
REDIS_PASSWORD_ENV = "REDIS_PASSWORD"
CONFIG_PATH = "/app/config.yaml"


def _ref(env_name: str) -> str:
    return f"os.environ/{env_name}"


def ollama_api_base(address: str, port: int) -> str:
    return f"http://{host_port(address, port)}"


def dispatcher_url(settings: StackSettings) -> str:
    """Where the replicas reach the GPU dispatcher: the load balancer's container on the gateway network."""
    return f"http://{settings.names.loadbalancer}:{DISPATCHER_PORT}"


def provider(model: ModelSettings) -> str:
    """LiteLLM's provider for the model: Ollama's chat API, or its embedding API."""
    return "ollama_chat" if model.mode == "chat" else "ollama"


def model_params(settings: StackSettings, model: ModelSettings, dispatcher: str) -> dict[str, Any]:
    params: dict[str, Any] = {
        "model": f"{provider(model)}/{model.ollama_tag}",
        # One deployment per model: its GPU hosts sit behind the dispatcher, which hands each request to
        # the first free slot (renderers/haproxy.py). LiteLLM choosing a host itself ignores capacity.
        "api_base": dispatcher + dispatcher_path(model),
        "timeout": settings.model_timeout(model),
        "stream_timeout": settings.model_stream_timeout(model),
    }
    if model.rpm is not None:
        params["rpm"] = model.rpm
    if model.tpm is not None:
        params["tpm"] = model.tpm
    if model.keep_alive is not None:
        # Ollama reads a JSON number as seconds and a string as a Go duration ("-1" is not one).
        params["keep_alive"] = int(model.keep_alive) if model.keep_alive in ("0", "-1") else model.keep_alive
    # Ollama options: LiteLLM passes a deployment's provider-specific params into Ollama's `options`.
    params.update(model.options.model_dump(exclude_none=True))
    params.update(model.extra_litellm_params)
    return params


def model_list(settings: StackSettings, dispatcher: str) -> list[dict[str, Any]]:
    return [
        {
            "model_name": model.name,
            "litellm_params": model_params(settings, model, dispatcher),
            # Explicit prices (the stack's own, 0 by default: the GPUs are yours). Without them LiteLLM
            # 1.108 prices every Ollama response by asking the GPU host (`/api/show`, a blocking call)
            # and scanning its whole cost map: 40% of a replica's CPU per request. In `model_info`,
            # not `litellm_params`: the router registers them once, at start; from `litellm_params`
            # LiteLLM registers them again on every request, which empties its model-info cache and
            # costs another 15% of the CPU (docs/benchmarks.md).
            # `litellm_provider` files the entry under the provider in LiteLLM's cost map: without it
            # LiteLLM's own look-up of the model (its pre-call context check) finds nothing.
            "model_info": {"id": model.name, "mode": model.mode, "gpu_hosts": list(model.hosts),
                           "litellm_provider": provider(model),
                           # Ollama's context is num_ctx: LiteLLM's pre-call check refuses (and sends to the
                           # contextWindowFallbacks) a prompt longer than this, where Ollama would cut it.
                           **({"max_input_tokens": model.options.num_ctx} if model.options.num_ctx else {}),
                           "input_cost_per_token": model.cost_per_million_input_tokens / 1_000_000,
                           "output_cost_per_token": model.cost_per_million_output_tokens / 1_000_000},
        }
        for model in settings.models
    ]


def prometheus_metrics_config(settings: StackSettings) -> list[dict[str, Any]]:
    """LiteLLM's prometheus_metrics_config: one group per metric the stack reads, with its labels."""

    groups: list[dict[str, Any]] = []
    for metric, labels in litellm_metrics_read(settings).items():
        group: dict[str, Any] = {"group": metric.removeprefix("litellm_"), "metrics": [metric]}
        if labels:
            group["include_labels"] = labels
        groups.append(group)
    return groups


def render_config_dict(settings: StackSettings, redis_host: str | None = None, redis_port: int | None = None,
                       dispatcher: str | None = None) -> dict[str, Any]:
    """The config as a dict; `redis_host`/`redis_port` default to redis_address() (a test's loopback server
    otherwise; one server only: Sentinel's and a cluster's nodes come from the settings), `dispatcher` the GPU
    dispatcher's base URL (a test's; default: the load balancer's container)."""
    dispatcher = dispatcher or dispatcher_url(settings)
    router = settings.router
    redis_connection = data_stores.redis_connection(settings, _ref(REDIS_PASSWORD_ENV), redis_host, redis_port)
    litellm_settings: dict[str, Any] = {
        "request_timeout": settings.gateway.request_timeout_seconds,
        "set_verbose": False,
        "json_logs": True,
        "drop_params": True,
        # /metrics for Prometheus; it requires a bearer key (require_auth_for_metrics_endpoint).
        "callbacks": ["prometheus"],
        "require_auth_for_metrics_endpoint": True,
        # Only the metrics (and labels) the dashboards and alert rules read: LiteLLM updates every
        # metric it emits on every request (docs/benchmarks.md: the gateway's throughput).
        "prometheus_metrics_config": prometheus_metrics_config(settings),
    }
    if settings.cache.enabled:
        litellm_settings["cache"] = True
        litellm_settings["cache_params"] = {
            "type": "redis",
            # The cache's spelling of a cluster's startup nodes.
            **{("redis_startup_nodes" if key == "startup_nodes" else key): value
               for key, value in redis_connection.items()},
            "ttl": settings.cache.ttl_seconds,
            "namespace": f"litellm.{settings.environment}.cache",
        }
    litellm_settings.update(access_defaults(settings))
    router_settings: dict[str, Any] = {
        "routing_strategy": "simple-shuffle",
        # Cooldowns, and the deployment rpm/tpm counters below, shared across replicas.
        **_router_redis(settings, redis_connection),
        "num_retries": router.retries,
        # The dispatcher already tried the model's other hosts: a 503 (no host up, or the queue's wait ran
        # out) or its queue's 429 is not sent again; timeouts, 500s and lost connections are.
        "retry_policy": {"ServiceUnavailableErrorRetries": 0, "RateLimitErrorRetries": 0},
        # A model that failed this often in a minute is cooled down, its requests go to its fallbacks
        # (LiteLLM never cools down a model that has none: it is the only way to serve its requests).
        "allowed_fails": router.allowed_fails,
        "cooldown_time": router.cooldown_seconds,
        "timeout": settings.gateway.request_timeout_seconds,
    }
    if router.stream_timeout_seconds is not None:
        router_settings["stream_timeout"] = router.stream_timeout_seconds
    for key, field in (("fallbacks", "fallbacks"), ("context_window_fallbacks", "context_window_fallbacks")):
        chains = [{m.name: list(getattr(m, field))} for m in settings.models if getattr(m, field)]
        if chains:
            router_settings[key] = chains
    if any(m.context_window_fallbacks for m in settings.models):
        # Counts a prompt's tokens against each model's max_input_tokens before the call (Ollama itself
        # never refuses a long prompt: it drops its start).
        router_settings["enable_pre_call_checks"] = True
    if any(m.rpm is not None or m.tpm is not None for m in settings.models):
        # simple-shuffle only weights its choice by rpm/tpm. This check enforces them per minute,
        # counting in the router's Redis (an atomic INCR shared by every replica), and refuses the
        # excess with 429.
        router_settings["optional_pre_call_checks"] = ["enforce_model_rate_limits"]
    general_settings: dict[str, Any] = {
        "master_key": _ref(MASTER_KEY_ENV),
        "database_url": _ref(DATABASE_URL_ENV),
        "proxy_batch_write_at": 60,
        "database_connection_pool_limit": 10,
        "disable_error_logs": True,
        # Key/user/team rate limits and spend counters shared across replicas.
        "coordination_redis": dict(redis_connection),
        # How long a replica trusts its cached key/user/team: a deleted key is refused everywhere
        # within this time (LiteLLM's default: 60 s).
        "user_api_key_cache_ttl": settings.access.key_cache_ttl_seconds,
        # /health/drain turns readiness 503 before the replica stops (renderers/replica_entrypoint.py);
        # it needs the DRAIN_ENDPOINT_TOKEN the container gets, and the load balancer refuses it.
        "enable_drain_endpoint": True,
    }
    # The escape hatch: keys the stack does not render (config/checks/routing.py refuses the others).
    extra = router.extra_config
    litellm_settings.update(extra.litellm_settings)
    router_settings.update(extra.router_settings)
    general_settings.update(extra.general_settings)
    return {
        "model_list": model_list(settings, dispatcher),
        "router_settings": router_settings,
        "litellm_settings": litellm_settings,
        "general_settings": general_settings,
    }


def _router_redis(settings: StackSettings, connection: dict[str, Any]) -> dict[str, Any]:
    """The router's own Redis client: one server, with the ACL user and TLS of an external one in `cache_kwargs`.
    Behind Sentinel or in a cluster, none: LiteLLM gives the router coordination_redis' client when
    router_settings names no Redis (the router's own would need a host and port even then, which a Sentinel
    client refuses), so every client follows the same failover and slot moves."""
    if data_stores.redis_topology(settings) != "standalone":
        return {}
    tls = data_stores.redis_tls(settings)
    return {"redis_host": connection["host"], "redis_port": connection["port"], "redis_password": connection["password"],
            # The ACL user and TLS of an external Redis (the router passes these to its Redis client).
            **({"cache_kwargs": dict(tls)} if tls else {})}


def access_defaults(settings: StackSettings) -> dict[str, Any]:
    """LiteLLM's defaults and ceiling for keys and users created outside the stack (admin UI, API)."""
    defaults = settings.access.defaults
    rendered: dict[str, Any] = {}
    if litellm_limits(defaults.key_generate):
        rendered["default_key_generate_params"] = litellm_limits(defaults.key_generate)
    user = {k: v for k, v in (("max_budget", defaults.internal_user.max_budget),
                               ("budget_duration", defaults.internal_user.budget_duration),
                               ("models", list(defaults.internal_user.models) or None)) if v is not None}
    if user:
        rendered["default_internal_user_params"] = user
    if litellm_limits(defaults.upper_bound):
        rendered["upperbound_key_generate_params"] = litellm_limits(defaults.upper_bound)
    return rendered


def render_litellm_config(
    settings: StackSettings, redis_host: str | None = None, redis_port: int | None = None,
    config: dict[str, Any] | None = None,
    dispatcher: str | None = None,
) -> str:
    """The config.yaml text; pass `config` when render_config_dict already built it."""
    header = (
        f"# Rendered by the {settings.resource_prefix()} Pulumi stack; edit the stack config, not this file.\n"
        "# Secrets are os.environ/ references filled from Vault-held values at container start.\n"
    )
    config = config if config is not None else render_config_dict(settings, redis_host, redis_port, dispatcher)
    return header + yaml.dump(config, sort_keys=False, Dumper=getattr(yaml, "CSafeDumper", yaml.SafeDumper))
