"""Render the LiteLLM proxy's config.yaml from stack settings.

Pure: settings in, text out. Secrets appear only as `os.environ/NAME` references, resolved by the
proxy from the container's environment (which Pulumi fills from secret Outputs).
"""

from __future__ import annotations

from typing import Any

import yaml

from config.names import REDIS_PORT
from config.sections.access import litellm_limits
from config.stack import StackSettings
from config.values import host_port
from renderers.monitoring import litellm_metrics_read

# Names of the environment variables the rendered config refers to; the gateway component sets
# each of them on the LiteLLM containers.
MASTER_KEY_ENV = "LITELLM_MASTER_KEY"
DATABASE_URL_ENV = "DATABASE_URL"
REDIS_PASSWORD_ENV = "REDIS_PASSWORD"
CONFIG_PATH = "/app/config.yaml"


def _ref(env_name: str) -> str:
    return f"os.environ/{env_name}"


def deployment_id(model_name: str, host_name: str) -> str:
    return f"{model_name}@{host_name}"


def ollama_api_base(address: str, port: int) -> str:
    return f"http://{host_port(address, port)}"


def model_list(settings: StackSettings) -> list[dict[str, Any]]:
    deployments = []
    for model, host in settings.routes():
        params: dict[str, Any] = {
            "model": f"ollama_chat/{model.ollama_tag}",
            "api_base": ollama_api_base(host.address, host.ollama_port),
        }
        if model.rpm is not None:
            params["rpm"] = model.rpm
        if model.tpm is not None:
            params["tpm"] = model.tpm
        deployments.append(
            {
                "model_name": model.name,
                "litellm_params": params,
                # Explicit prices (the stack's own, 0 by default: the GPUs are yours). Without them LiteLLM
                # 1.108 prices every Ollama response by asking the GPU host (`/api/show`, a blocking call)
                # and scanning its whole cost map: 40% of a replica's CPU per request. In `model_info`,
                # not `litellm_params`: the router registers them once, at start; from `litellm_params`
                # LiteLLM registers them again on every request, which empties its model-info cache and
                # costs another 15% of the CPU (docs/benchmarks.md).
                "model_info": {"id": deployment_id(model.name, host.name), "gpu_host": host.name,
                               "input_cost_per_token": model.cost_per_million_input_tokens / 1_000_000,
                               "output_cost_per_token": model.cost_per_million_output_tokens / 1_000_000},
            }
        )
    return deployments


def prometheus_metrics_config(settings: StackSettings) -> list[dict[str, Any]]:
    """LiteLLM's prometheus_metrics_config: one group per metric the stack reads, with its labels."""

    groups: list[dict[str, Any]] = []
    for metric, labels in litellm_metrics_read(settings).items():
        group: dict[str, Any] = {"group": metric.removeprefix("litellm_"), "metrics": [metric]}
        if labels:
            group["include_labels"] = labels
        groups.append(group)
    return groups


def render_config_dict(settings: StackSettings, redis_host: str, redis_port: int = REDIS_PORT) -> dict[str, Any]:
    """The config as a dict; `redis_host` is the Redis container's name on the gateway network."""
    redis_connection = {"host": redis_host, "port": redis_port, "password": _ref(REDIS_PASSWORD_ENV)}
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
            **redis_connection,
            "ttl": settings.cache.ttl_seconds,
            "namespace": f"litellm.{settings.environment}.cache",
        }
    litellm_settings.update(access_defaults(settings))
    router_settings: dict[str, Any] = {
        "routing_strategy": "simple-shuffle",
        # Cooldowns, and the deployment rpm/tpm counters below, shared across replicas.
        "redis_host": redis_host,
        "redis_port": redis_port,
        "redis_password": _ref(REDIS_PASSWORD_ENV),
        "num_retries": 2,
        "allowed_fails": 3,
        "cooldown_time": 30,
        "timeout": settings.gateway.request_timeout_seconds,
    }
    if any(m.rpm is not None or m.tpm is not None for m in settings.models):
        # simple-shuffle only weights its choice by rpm/tpm. This check enforces them per minute,
        # counting in the router's Redis (an atomic INCR shared by every replica), and refuses the
        # excess with 429.
        router_settings["optional_pre_call_checks"] = ["enforce_model_rate_limits"]
    return {
        "model_list": model_list(settings),
        "router_settings": router_settings,
        "litellm_settings": litellm_settings,
        "general_settings": {
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
        },
    }


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
    settings: StackSettings, redis_host: str, redis_port: int = REDIS_PORT, config: dict[str, Any] | None = None
) -> str:
    """The config.yaml text; pass `config` when render_config_dict already built it."""
    header = (
        f"# Rendered by the {settings.resource_prefix()} Pulumi stack; edit the stack config, not this file.\n"
        "# Secrets are os.environ/ references filled from Vault-held values at container start.\n"
    )
    config = config if config is not None else render_config_dict(settings, redis_host, redis_port)
    return header + yaml.dump(config, sort_keys=False, Dumper=getattr(yaml, "CSafeDumper", yaml.SafeDumper))
