"""How well the gateway keeps a GPU fleet busy: served req/s against the fleet's capacity and against a
perfect dispatcher, and p50/p95 against the perfect dispatcher's, on fleets of unequal hosts.

The GPU hosts are Ollama test doubles that behave like GPUs (tests/integration/ollama_double.py): each
serves `slots` requests of a model at once for `service` seconds and queues the rest, as Ollama does
past OLLAMA_NUM_PARALLEL. In front of them, the stack as rendered: two real LiteLLM replicas (no database,
real Redis) behind Debian's HAProxy with the rendered haproxy.cfg (the gateway frontend and the GPU
dispatcher). The variants, in the same rounds and in an order shuffled per round (seeded):

- `gateway`: the rendered config (the dispatcher: one queue per model feeding the first free slot);
- `litellm-shuffle`: the config as rendered before the dispatcher (one LiteLLM deployment per host,
  simple-shuffle, no weights), the same replicas' code and HAProxy in front;
- `litellm-least-busy`: as `litellm-shuffle` with LiteLLM's `least-busy` routing;
- `perfect`: the physical limit: one global asyncio queue in this process feeding the first free slot of
  any host straight over Ollama's API (no LiteLLM, no HAProxy).

Each run is closed-loop: `2 x` the fleet's slots clients, each sending its next request when the last came
back, `--requests` requests in all. Capacity = sum over hosts of slots / service seconds.

    python3 bench/gpu_fleet.py [--repeats 3] [--requests 200] [--fleets 4:1 2:1:1 speed homogeneous shared] [--seed 1]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import random
import statistics
import sys
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
for path in (ROOT, ROOT / "bench", ROOT / "tests", ROOT / "tests" / "unit", ROOT / "tests" / "integration"):
    sys.path.insert(0, str(path))

SERVICE = 0.2  # seconds a request holds a slot on the reference GPU
VARIANTS = ["gateway", "litellm-shuffle", "litellm-least-busy", "perfect"]


@dataclass(frozen=True)
class Host:
    name: str
    slots: int
    service: float


@dataclass(frozen=True)
class Fleet:
    """Models served by hosts; `models` maps a model name to its hosts' names."""

    name: str
    hosts: tuple[Host, ...]
    models: dict[str, tuple[str, ...]]

    @property
    def capacity(self) -> float:
        """Requests per second with every slot busy: a host's slots count once per model it serves."""
        hosts = {h.name: h for h in self.hosts}
        return sum(hosts[n].slots / hosts[n].service for names in self.models.values() for n in names)

    @property
    def slots(self) -> int:
        hosts = {h.name: h for h in self.hosts}
        return sum(hosts[n].slots for names in self.models.values() for n in names)


def fleets() -> dict[str, Fleet]:
    s = SERVICE
    return {f.name: f for f in (
        Fleet("4:1", (Host("a", 4, s), Host("b", 1, s)), {"m": ("a", "b")}),
        Fleet("2:1:1", (Host("a", 2, s), Host("b", 1, s), Host("c", 1, s)), {"m": ("a", "b", "c")}),
        # Equal slots, three times different speeds (an H100 beside an older card).
        Fleet("speed", (Host("a", 2, s), Host("b", 2, 3 * s)), {"m": ("a", "b")}),
        Fleet("homogeneous", (Host("a", 2, s), Host("b", 2, s), Host("c", 2, s)), {"m": ("a", "b", "c")}),
        # Two models sharing a host (Ollama's slots are per model: OLLAMA_NUM_PARALLEL each).
        Fleet("shared", (Host("a", 2, s), Host("b", 2, s), Host("c", 1, s)), {"m": ("a", "b"), "n": ("b", "c")}),
    )}


def stack_config(fleets_run: list[Fleet], doubles: dict[tuple[str, str], object]) -> dict:
    """The dev stack with one model per (fleet, model) and one GPU host per (fleet, host) on its double."""
    from gateway_helpers import own_dev_config

    raw = own_dev_config()
    raw["gpuHosts"], raw["models"] = [], []
    for fleet in fleets_run:
        for host in fleet.hosts:
            raw["gpuHosts"].append({"name": f"{slug(fleet.name)}-{host.name}", "address": "127.0.0.1",
                                    "ollamaPort": doubles[(fleet.name, host.name)].port, "parallel": host.slots,
                                    "localContainer": {"image": "ollama/ollama:0.12.6"}})  # no SSH
        for model, hosts in fleet.models.items():
            raw["models"].append({"name": f"{slug(fleet.name)}-{model}", "ollamaTag": f"{slug(fleet.name)}-{model}:1b",
                                  "hosts": [f"{slug(fleet.name)}-{h}" for h in hosts]})
    raw["cache"] = {"enabled": False}
    return raw


def slug(name: str) -> str:
    return {"4:1": "f41", "2:1:1": "f211"}.get(name, name)


def per_host_config(rendered: dict, settings, strategy: str) -> dict:
    """The config as rendered before the dispatcher: one deployment per (model, host), LiteLLM choosing."""
    from renderers.litellm_config import ollama_api_base

    config = dict(rendered)
    deployments = []
    for deployment in rendered["model_list"]:
        model = settings.model(deployment["model_name"])
        for host_name in model.hosts:
            host = settings.host(host_name)
            params = dict(deployment["litellm_params"], api_base=ollama_api_base(host.address, host.ollama_port))
            deployments.append({**deployment, "litellm_params": params,
                                "model_info": {**deployment["model_info"], "id": f"{model.name}@{host.name}"}})
    config["model_list"] = deployments
    config["router_settings"] = {**rendered["router_settings"], "routing_strategy": strategy}
    return config


async def _closed_loop(send, models: list[str], requests: int, clients: int) -> tuple[float, list[float]]:
    latencies: list[float] = []
    counter = iter(range(requests))

    async def client(k: int):
        for i in counter:
            started = time.perf_counter()
            await send(models[i % len(models)], i)
            latencies.append(time.perf_counter() - started)

    started = time.perf_counter()
    await asyncio.gather(*(client(k) for k in range(clients)))
    return requests / (time.perf_counter() - started), sorted(latencies)


async def through_gateway(url: str, key: str, models: list[str], requests: int, clients: int):
    import httpx

    limits = httpx.Limits(max_connections=clients, max_keepalive_connections=clients)
    async with httpx.AsyncClient(base_url=url, headers={"Authorization": f"Bearer {key}"}, timeout=120,
                                 limits=limits) as http:
        async def send(model: str, i: int):
            response = await http.post("/v1/chat/completions", json={
                "model": model, "messages": [{"role": "user", "content": f"bench {i} {uuid.uuid4()}"}]})
            if response.status_code != 200:
                raise RuntimeError(f"{response.status_code}: {response.text[:300]}")
        return await _closed_loop(send, models, requests, clients)


async def perfect(fleet: Fleet, doubles, models: list[str], requests: int, clients: int):
    """One queue per model feeding the first free slot of any of its hosts, straight to Ollama's API."""
    import httpx

    queues = {m: asyncio.Queue() for m in fleet.models}
    async with httpx.AsyncClient(timeout=120, limits=httpx.Limits(max_connections=4 * fleet.slots)) as http:
        async def slot(model: str, host: Host):
            port = doubles[(fleet.name, host.name)].port
            while True:
                i, done = await queues[model].get()
                response = await http.post(f"http://127.0.0.1:{port}/api/chat", json={
                    "model": f"{slug(fleet.name)}-{model}:1b", "stream": False,
                    "messages": [{"role": "user", "content": f"bench {i}"}]})
                done.set_result(response.status_code)

        hosts = {h.name: h for h in fleet.hosts}
        workers = [asyncio.create_task(slot(m, hosts[h])) for m, hs in fleet.models.items() for h in hs
                   for _ in range(hosts[h].slots)]

        async def send(model: str, i: int):
            done = asyncio.get_running_loop().create_future()
            queues[model.split("-", 1)[1]].put_nowait((i, done))
            if await done != 200:
                raise RuntimeError("the double refused a request")
        try:
            return await _closed_loop(send, models, requests, clients)
        finally:
            for worker in workers:
                worker.cancel()


def spread(values: list[float], digits: int = 2) -> str:
    return f"{min(values):.{digits}f} / {statistics.median(values):.{digits}f} / {max(values):.{digits}f}"


def quantile(values: list[float], q: float) -> float:
    return values[max(0, int(len(values) * q) - 1)]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--requests", type=int, default=200)
    parser.add_argument("--fleets", nargs="+", default=list(fleets()), choices=list(fleets()))
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--variants", nargs="+", default=VARIANTS, choices=VARIANTS,
                        help="the variants to run (perfect always runs: it is the reference)")
    args = parser.parse_args()
    if args.repeats < 1 or args.requests < 1:
        parser.error("--repeats and --requests must be at least 1")

    import yaml

    from config.parse import parse_settings
    from dns_double import DnsDouble
    from gateway_helpers import MASTER_KEY, REDIS_PASSWORD
    from ollama_double import OllamaDouble
    from renderers.haproxy import Listen, render_haproxy_config
    from renderers.litellm_config import render_config_dict
    from http_load import cpu_seconds, process_tree
    from servers import free_port, haproxy_server, litellm_proxy, redis_server

    chosen = [fleets()[name] for name in args.fleets]
    doubles = {}
    for fleet in chosen:
        for host in fleet.hosts:
            tags = [f"{slug(fleet.name)}-{m}:1b" for m, hs in fleet.models.items() if host.name in hs]
            doubles[(fleet.name, host.name)] = OllamaDouble(host.name, tags, slots=host.slots,
                                                            service_seconds=host.service).start()
    settings = parse_settings(stack_config(chosen, doubles))
    dns = DnsDouble()
    work = Path(os.environ.get("TMPDIR", "/tmp")) / f"gpu-fleet-{uuid.uuid4().hex[:6]}"
    work.mkdir()
    results: dict[tuple[str, str], list[tuple[float, float, float]]] = {}
    variants = [v for v in VARIANTS if v in args.variants or v == "perfect"]
    cpu: dict[tuple[str, str], list[float]] = {}  # (fleet, variant) -> the replicas' CPU ms per request
    try:
        with contextlib.ExitStack() as stack:
            redis_port = stack.enter_context(redis_server(REDIS_PASSWORD))
            urls = {}
            # One HAProxy per LiteLLM variant, each with its own replicas (127.0.0.2-7, two per variant);
            # the dispatcher of the first serves the `gateway` replicas.
            dispatcher_port = free_port()
            replica_port = free_port()
            names = {"gateway": ["127.0.0.2", "127.0.0.3"], "litellm-shuffle": ["127.0.0.4", "127.0.0.5"],
                     "litellm-least-busy": ["127.0.0.6", "127.0.0.7"]}
            rendered = render_config_dict(settings, redis_host="127.0.0.1", redis_port=redis_port,
                                          dispatcher=f"http://127.0.0.1:{dispatcher_port}")
            rendered["general_settings"].pop("database_url")
            configs = {"gateway": rendered,
                       "litellm-shuffle": per_host_config(rendered, settings, "simple-shuffle"),
                       "litellm-least-busy": per_host_config(rendered, settings, "least-busy")}
            pids: dict[str, list[int]] = {}
            for variant, addresses in names.items():
                if variant not in variants:
                    continue
                service = f"replicas-{variant}"
                dns.set(service, addresses)
                for address in addresses:
                    pids.setdefault(variant, []).append(stack.enter_context(litellm_proxy(
                        yaml.safe_dump(configs[variant], sort_keys=False),
                        {"LITELLM_MASTER_KEY": MASTER_KEY, "REDIS_PASSWORD": REDIS_PASSWORD,
                         "LITELLM_LOG": settings.gateway.log_level}, host=address, port=replica_port,
                        stop_grace_seconds=settings.gateway.stop_grace_seconds)).process.pid)
                http, stats = free_port(), free_port()
                workdir = work / variant
                workdir.mkdir()
                listen = Listen(http=f"127.0.0.1:{http}", stats=f"127.0.0.1:{stats}", nameserver=dns.address,
                                service=service, replica_port=replica_port,
                                dispatcher=f"127.0.0.1:{dispatcher_port if variant == 'gateway' else free_port()}")
                stack.enter_context(haproxy_server(render_haproxy_config(settings, listen), workdir,
                                                   f"http://127.0.0.1:{stats}/healthz"))
                urls[variant] = f"http://127.0.0.1:{http}"
            for fleet in chosen:
                models = [f"{slug(fleet.name)}-{m}" for m in fleet.models]
                clients = 2 * fleet.slots
                for url in urls.values():  # warm up: every replica is UP behind its HAProxy
                    deadline = time.monotonic() + 60
                    while True:
                        try:
                            asyncio.run(through_gateway(url, MASTER_KEY, models, 4 * clients, clients))
                            break
                        except Exception:
                            if time.monotonic() > deadline:
                                raise
                            time.sleep(1)
                for round_ in range(args.repeats):
                    order = list(variants)
                    random.Random(f"{args.seed}/{fleet.name}/{round_}").shuffle(order)
                    for variant in order:
                        if variant == "perfect":
                            rate, latencies = asyncio.run(perfect(fleet, doubles, models, args.requests, clients))
                        else:
                            tree = [p for pid in pids[variant] for p in process_tree(pid)]
                            before = sum(map(cpu_seconds, tree))
                            rate, latencies = asyncio.run(
                                through_gateway(urls[variant], MASTER_KEY, models, args.requests, clients))
                            cpu.setdefault((fleet.name, variant), []).append(
                                1000 * (sum(map(cpu_seconds, tree)) - before) / args.requests)
                        results.setdefault((fleet.name, variant), []).append(
                            (rate, quantile(latencies, 0.5), quantile(latencies, 0.95)))
                        print(f"# {fleet.name} round {round_ + 1} {variant}: {rate:.1f} req/s, "
                              f"p95 {quantile(latencies, 0.95):.2f} s", flush=True)
    finally:
        for double in doubles.values():
            double.stop()
        dns.stop()
    print(f"{args.requests} requests per run, {args.repeats} rounds (order shuffled per round, seed "
          f"{args.seed}), clients = 2 x the fleet's slots; min / median / max")
    for fleet in chosen:
        best = results[(fleet.name, "perfect")]
        print(f"fleet {fleet.name}: capacity {fleet.capacity:.1f} req/s, {fleet.slots} slots")
        for variant in variants:
            runs = results[(fleet.name, variant)]
            paired = [(r[0] / p[0], r[2] / p[2]) for r, p in zip(runs, best)]
            print(f"  {variant:19s} served/capacity {spread([r[0] / fleet.capacity for r in runs])}"
                  f"  /perfect {spread([p[0] for p in paired])}"
                  f"  p50 s {spread([r[1] for r in runs])}  p95 s {spread([r[2] for r in runs])}"
                  f"  p95/perfect {spread([p[1] for p in paired])}"
                  + (f"  replicas' CPU ms/request {spread(cpu[(fleet.name, variant)])}" if (fleet.name, variant) in cpu else ""))
    return 0


if __name__ == "__main__":
    sys.exit(main())
