"""The real LiteLLM proxy in database mode, on real PostgreSQL, with the program's rendered config
and environment: the one place the database-mode tests get their gateway from.

The config and the environment are taken from what the program declares for the LiteLLM
containers (the dev stack run under mocks); only addresses and ports are rewritten (Redis, the
GPU hosts, the database). Prisma's engines come from the test-only shim in tests/prisma_shim
(see its docstring for provenance). One PostgreSQL server per test session holds a template
database with LiteLLM's schema; each test gets a fresh copy of it.
"""

from __future__ import annotations

import contextlib
import copy
import sys
import uuid
from dataclasses import dataclass
from typing import Iterator, Optional

import httpx
import yaml

from config.parse import parse_settings
from gateway_helpers import gpu_dispatcher, on_dispatcher, own_dev_config
from harness import ROOT, run_stack
from servers import litellm_proxy, postgres_cluster

sys.path.insert(0, str(ROOT / "tests" / "prisma_shim"))
import prisma_shim  # noqa: E402

TEMPLATE = "litellm_template"


@dataclass
class Declared:
    """What the program declares for LiteLLM replica 0 (config as data, environment as a dict)."""

    config: dict
    env: dict[str, str]
    settings_raw: dict


def declared_gateway(raw: Optional[dict] = None) -> Declared:
    raw = copy.deepcopy(raw if raw is not None else own_dev_config())
    run = run_stack(raw)
    container = run.mocks.named("gateway-litellm-0")
    env = dict(item.split("=", 1) for item in container.plain("envs"))
    (upload,) = [u for u in container.plain("uploads") if u["file"].endswith("config.yaml")]
    return Declared(yaml.safe_load(upload["content"]), env, raw)


def rewrite_addresses(config: dict, redis_port: int) -> dict:
    """The rendered config with Redis on loopback."""
    config = copy.deepcopy(config)
    for section in (config["router_settings"], config["litellm_settings"].get("cache_params") or {},
                    config["general_settings"].get("coordination_redis") or {}):
        for host_key, port_key in (("redis_host", "redis_port"), ("host", "port")):
            if host_key in section:
                section[host_key], section[port_key] = "127.0.0.1", redis_port
    return config


def settings_on(raw: dict, hosts: dict[str, str]):
    """The declared stack's settings with each GPU host at its double's URL (`http://127.0.0.1:<port>`). `raw`
    may hold secret config keys (an external data store's): they are read as set with --secret."""
    from config.secret_keys import SECRET_KEYS

    raw = copy.deepcopy(raw)
    for host in raw["gpuHosts"]:
        address, port = hosts[host["name"]].removeprefix("http://").rsplit(":", 1)
        host.update(address=address, ollamaPort=int(port))
    return parse_settings(raw, secret_keys=frozenset(k for k in SECRET_KEYS if k in raw))


class DatabaseServer:
    """A PostgreSQL server with LiteLLM's schema in a template database."""

    def __init__(self, admin_url: str):
        self.admin_url = admin_url  # .../litellm
        self.base = admin_url.rsplit("/", 1)[0]

    def _psql(self, sql: str) -> None:
        import subprocess

        done = subprocess.run(["psql", f"{self.base}/postgres", "-X", "-q", "-v", "ON_ERROR_STOP=1", "-c", sql],
                              capture_output=True, text=True)
        assert done.returncode == 0, done.stderr

    def prepare(self) -> "DatabaseServer":
        self._psql(f'CREATE DATABASE "{TEMPLATE}"')
        self.migrations = prisma_shim.apply_schema(f"{self.base}/{TEMPLATE}")
        return self

    def fresh_database(self) -> str:
        name = f"litellm_{uuid.uuid4().hex[:12]}"
        self._psql(f'CREATE DATABASE "{name}" TEMPLATE "{TEMPLATE}"')
        return f"{self.base}/{name}"

    def empty_database(self) -> str:
        name = f"empty_{uuid.uuid4().hex[:12]}"
        self._psql(f'CREATE DATABASE "{name}"')
        return f"{self.base}/{name}"


@contextlib.contextmanager
def database_server() -> Iterator[DatabaseServer]:
    prisma_shim.generate_client()
    with postgres_cluster() as url:
        yield DatabaseServer(url).prepare()


@contextlib.contextmanager
def litellm_in_database_mode(declared: Declared, database_url: str, redis_port: int, hosts: dict[str, str],
                             env_overrides: Optional[dict[str, str]] = None, migrate: bool = False,
                             host: str = "127.0.0.1", port: Optional[int] = None) -> Iterator["DbProxy"]:
    """The real proxy with the declared config and environment, on `database_url`; the GPU hosts (`hosts`:
    host name -> the double's URL) behind the stack's rendered dispatcher (Debian's HAProxy)."""
    settings = settings_on(declared.settings_raw, hosts)
    env = dict(declared.env)
    env.update(prisma_shim.environment())
    env["DATABASE_URL"] = database_url
    env["DISABLE_SCHEMA_UPDATE"] = "true"  # the schema comes from the migrations (no schema engine here)
    env.update(env_overrides or {})
    with gpu_dispatcher(settings) as dispatcher:
        config = on_dispatcher(rewrite_addresses(declared.config, redis_port), settings, dispatcher)
        with litellm_proxy(yaml.safe_dump(config, sort_keys=False), env, timeout=180, host=host, port=port) as proxy:
            yield DbProxy(proxy, env)


class DbProxy:
    def __init__(self, proxy, env: dict[str, str]):
        self.proxy = proxy
        self.env = env
        self.url = proxy.url
        self.management_url = proxy.url  # where `up` manages access objects: a test may put the load balancer here

    @property
    def master_key(self) -> str:
        return self.env["LITELLM_MASTER_KEY"]

    def call(self, method: str, path: str, key: Optional[str] = None, **kwargs) -> httpx.Response:
        headers = {"Authorization": f"Bearer {key or self.master_key}"}
        return httpx.request(method, f"{self.url}{path}", headers=headers, timeout=60, **kwargs)

    def chat(self, model: str, content: str, key: Optional[str] = None) -> httpx.Response:
        return self.call("POST", "/v1/chat/completions", key=key,
                         json={"model": model, "messages": [{"role": "user", "content": content}]})

    def log(self) -> str:
        return self.proxy.log()
