"""Shared by the integration tests that boot the real LiteLLM proxy with the rendered config."""

from __future__ import annotations

import copy
import uuid

import httpx
import yaml

from config.parse import parse_settings
from harness import stack_file_config
from ollama_double import OllamaDouble
from renderers.litellm_config import render_config_dict

MASTER_KEY = "sk-" + uuid.uuid4().hex + uuid.uuid4().hex
REDIS_PASSWORD = uuid.uuid4().hex
UI_PASSWORD = uuid.uuid4().hex  # the admin UI password the stack generates into Vault


def config_without_database(settings, redis_port: int) -> str:
    config = render_config_dict(settings, redis_host="127.0.0.1", redis_port=redis_port)
    assert config["general_settings"].pop("database_url") == "os.environ/DATABASE_URL"
    return yaml.safe_dump(config, sort_keys=False)


def settings_on_doubles(stack: str, doubles: dict[str, OllamaDouble]):
    """The stack's settings with each GPU host pointed at its loopback double."""
    raw = copy.deepcopy(stack_file_config(stack))
    for host in raw["gpuHosts"]:
        host["address"] = "127.0.0.1"
        host["ollamaPort"] = doubles[host["name"]].port
    return parse_settings(raw)


def chat(proxy, model: str, content: str, key: str | None = MASTER_KEY) -> httpx.Response:
    headers = {"Authorization": f"Bearer {key}"} if key else {}
    return httpx.post(
        f"{proxy.url}/v1/chat/completions", headers=headers, timeout=60,
        json={"model": model, "messages": [{"role": "user", "content": content}]},
    )




def own_dev_config() -> dict:
    """The dev stack file with a GPU host and a model the tests own: users edit the example file,
    the gateway tests must not depend on what they put there (only on its other sections)."""
    raw = copy.deepcopy(stack_file_config("dev"))
    raw["gpuHosts"] = [{"name": "ollama-dev", "address": "ollama-dev", "ollamaPort": 11434,
                        "localContainer": {"image": "ollama/ollama:0.12.6"}}]
    raw["models"] = [{"name": "qwen-small", "ollamaTag": "qwen2.5:0.5b", "hosts": ["ollama-dev"]}]
    raw.pop("access", None)
    return raw
