"""Shared by the integration tests that boot the real LiteLLM proxy with the rendered config."""

from __future__ import annotations

import contextlib
import copy
import shutil
import tempfile
import uuid
from pathlib import Path
from typing import Iterator

import httpx
import yaml

from config.parse import parse_settings
from harness import stack_file_config
from ollama_double import OllamaDouble
from renderers.haproxy import Listen, render_haproxy_config
from renderers.litellm_config import dispatcher_url, render_config_dict
from servers import free_port, haproxy_server

MASTER_KEY = "sk-" + uuid.uuid4().hex + uuid.uuid4().hex
REDIS_PASSWORD = uuid.uuid4().hex
UI_PASSWORD = uuid.uuid4().hex  # the admin UI password the stack generates into Vault


def config_without_database(settings, redis_port: int, dispatcher: str) -> str:
    """The rendered LiteLLM config on loopback: Redis at `redis_port`, the GPU dispatcher at `dispatcher`."""
    config = render_config_dict(settings, redis_host="127.0.0.1", redis_port=redis_port, dispatcher=dispatcher)
    assert config["general_settings"].pop("database_url") == "os.environ/DATABASE_URL"
    return yaml.safe_dump(config, sort_keys=False)


@contextlib.contextmanager
def gpu_dispatcher(settings, port: int | None = None, address: str = "127.0.0.1", **listen) -> Iterator[str]:
    """Debian's HAProxy with the stack's rendered haproxy.cfg, for its GPU dispatcher: the replicas' only way to
    the GPU hosts (`settings`' hosts: the tests' doubles). Yields the base URL of the models' api_base.
    `listen` overrides where the rest of the load balancer listens and finds replicas (renderers.haproxy.Listen)."""
    workdir = Path(tempfile.mkdtemp(prefix="dispatcher-"))
    port = port or free_port()
    where = {"http": f"{address}:{free_port()}", "https": f"{address}:{free_port()}",
             "stats": f"{address}:{free_port()}", "nameserver": "127.0.0.1:9", **listen}
    try:
        with haproxy_server(render_haproxy_config(settings, Listen(**where, dispatcher=f"{address}:{port}")), workdir,
                            f"http://{where['stats']}/healthz"):
            yield f"http://{address}:{port}"
    finally:
        shutil.rmtree(workdir, ignore_errors=True)


def on_dispatcher(config: dict, settings, dispatcher: str) -> dict:
    """A config the program declared, its models' api_base moved from the load balancer's container to a test's
    dispatcher."""
    config = copy.deepcopy(config)
    for deployment in config["model_list"]:
        params = deployment["litellm_params"]
        assert params["api_base"].startswith(dispatcher_url(settings)), params["api_base"]
        params["api_base"] = dispatcher + params["api_base"].removeprefix(dispatcher_url(settings))
    return config


def settings_on_doubles(stack: str, doubles: dict[str, OllamaDouble]):
    """The stack's settings with each GPU host pointed at its loopback double."""
    raw = copy.deepcopy(stack_file_config(stack))
    for host in raw["gpuHosts"]:
        host["address"] = "127.0.0.1"
        host["ollamaPort"] = doubles[host["name"]].port
    return parse_settings(raw)


def replicas_up(stats_url: str) -> int:
    """Replica slots the load balancer's HAProxy exporter reports UP."""
    text = httpx.get(f"{stats_url}/metrics", timeout=5).text
    return sum(1 for line in text.splitlines() if line.startswith("haproxy_server_status")
               and 'proxy="litellm"' in line and 'state="UP"' in line and line.endswith(" 1"))


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
    # The double has no slot limit (unless a test gives it one): declare as many as a test sends at once.
    raw["gpuHosts"] = [{"name": "ollama-dev", "address": "ollama-dev", "ollamaPort": 11434, "parallel": 64,
                        "localContainer": {"image": "ollama/ollama:0.12.6"}}]
    raw["models"] = [{"name": "qwen-small", "ollamaTag": "qwen2.5:0.5b", "hosts": ["ollama-dev"]}]
    raw.pop("access", None)
    return raw
