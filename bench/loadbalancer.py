"""What the load balancer costs: throughput and latency through HAProxy vs straight to one replica.

One real LiteLLM proxy with the rendered dev config (no database, real Redis), the fast Ollama test
double behind it, and Debian's HAProxy with the rendered haproxy.cfg in front (replicas found
through the DNS test double). Runs alternate direct / through the load balancer with distinct
prompts (no cache hits); prints req/s and p50/p95 per run (min/median/max), the paired ratios, and
the CPU each request costs the replica and HAProxy (from /proc): on a machine where HAProxy has a core
of its own, HAProxy's share is what remains of the throughput cost.
With --fresh-connections a second HAProxy renders `reuseServerConnections: false` (a new connection
to the replica per request) in front of the same replica, and joins the rotation.

With --pin (machines with 2+ CPUs), the replica runs on a CPU of its own and everything else (the
load generator, the Ollama double, Redis, HAProxy) on another, as in a deployment where the replicas
have their `gateway.cpus` and HAProxy its own: the ratio then shows what the extra hop costs rather
than what sharing the replica's CPU with HAProxy costs.

    python3 bench/loadbalancer.py [--repeats 5] [--requests 300] [--concurrency 16 32] [--fresh-connections] [--pin]
"""

from __future__ import annotations

import argparse
import contextlib
import os
import sys
import time
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
for path in (ROOT, ROOT / "bench", ROOT / "tests", ROOT / "tests" / "unit", ROOT / "tests" / "integration"):
    sys.path.insert(0, str(path))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--requests", type=int, default=300)
    parser.add_argument("--concurrency", type=int, nargs="+", default=[16, 32])
    parser.add_argument("--fresh-connections", action="store_true",
                        help="also measure gateway.loadBalancer.reuseServerConnections: false")
    parser.add_argument("--pin", action="store_true", help="the replica on CPU 1, everything else on CPU 0")
    args = parser.parse_args()
    if args.repeats < 1 or args.requests < 1 or min(args.concurrency) < 1:
        parser.error("--repeats, --requests and --concurrency must be at least 1")
    if args.pin:
        if len(os.sched_getaffinity(0)) < 2 or not {0, 1} <= os.sched_getaffinity(0):
            parser.error("--pin needs CPUs 0 and 1")
        os.sched_setaffinity(0, {0})  # inherited by every thread and process started from here

    import httpx

    from config.settings import parse_settings
    from dns_double import DnsDouble
    from gateway_helpers import MASTER_KEY, REDIS_PASSWORD, config_without_database, own_dev_config
    from ollama_double import OllamaDouble
    from renderers.haproxy import Listen, render_haproxy_config
    from http_load import cpu_seconds, load, process_tree, spread
    from servers import free_port, haproxy_server, litellm_proxy, redis_server

    backend = OllamaDouble("ollama-dev", ["qwen2.5:0.5b"]).start()
    raw = own_dev_config()
    raw = {**raw, "gpuHosts": [dict(raw["gpuHosts"][0], address="127.0.0.1", ollamaPort=backend.port)],
           "cache": {"enabled": False}}
    settings = parse_settings(raw)
    fresh = parse_settings({**raw, "gateway": {**raw["gateway"], "loadBalancer": {"reuseServerConnections": False}}})
    dns = DnsDouble()
    work = Path(os.environ.get("TMPDIR", "/tmp")) / f"lb-bench-{uuid.uuid4().hex[:6]}"
    work.mkdir()
    results: dict[tuple[int, str], list[tuple[float, float, float]]] = {}
    cpu: dict[tuple[int, str, str], list[float]] = {}  # (concurrency, variant, process) -> ms per request
    try:
        with contextlib.ExitStack() as stack:
            redis_port = stack.enter_context(redis_server(REDIS_PASSWORD))
            port = free_port()
            replica = stack.enter_context(litellm_proxy(
                config_without_database(settings, redis_port),
                {"LITELLM_MASTER_KEY": MASTER_KEY, "REDIS_PASSWORD": REDIS_PASSWORD}, host="127.0.0.2", port=port,
                stop_grace_seconds=settings.gateway.stop_grace_seconds))  # as deployed: the entrypoint, keep-alive 300 s
            dns.set("litellm", ["127.0.0.2"])
            if args.pin:
                for pid in process_tree(replica.process.pid):
                    for task in Path(f"/proc/{pid}/task").iterdir():
                        os.sched_setaffinity(int(task.name), {1})
            targets = {"direct": replica.url}
            balancers = {}
            variants = [("load balancer", settings)] + ([("lb, fresh conns", fresh)] if args.fresh_connections else [])
            for name, variant in variants:
                http, stats = free_port(), free_port()
                workdir = work / str(len(targets))
                workdir.mkdir()
                balancers[name] = stack.enter_context(haproxy_server(render_haproxy_config(variant, Listen(
                    http=f"127.0.0.1:{http}", stats=f"127.0.0.1:{stats}", nameserver=dns.address, replica_port=port)),
                    workdir, f"http://127.0.0.1:{stats}/healthz")).process.pid
                targets[name] = f"http://127.0.0.1:{http}"
                deadline = time.monotonic() + 30
                while time.monotonic() < deadline:
                    with contextlib.suppress(httpx.HTTPError):
                        if httpx.get(f"{targets[name]}/health/liveliness", timeout=2).status_code == 200:
                            break
                    time.sleep(0.3)
            for url in targets.values():  # warm up
                load(url, MASTER_KEY, 50, 8)
            for concurrency in args.concurrency:
                for _ in range(args.repeats):
                    for name, url in targets.items():
                        pids = {"replica": process_tree(replica.process.pid)}
                        if name in balancers:
                            pids["haproxy"] = [balancers[name]]
                        before = {k: sum(map(cpu_seconds, v)) for k, v in pids.items()}
                        results.setdefault((concurrency, name), []).append(
                            load(url, MASTER_KEY, args.requests, concurrency))
                        for k, v in pids.items():
                            cpu.setdefault((concurrency, name, k), []).append(
                                1000 * (sum(map(cpu_seconds, v)) - before[k]) / args.requests)
    finally:
        backend.stop()
        dns.stop()
    print(f"{args.requests} requests per run, {args.repeats} interleaved runs each; min / median / max")
    names = list(dict.fromkeys(name for _, name in results))
    for concurrency in args.concurrency:
        direct = results[(concurrency, "direct")]
        print(f"concurrency {concurrency}:")
        for name in names:
            runs = results[(concurrency, name)]
            print(f"  {name:16s} req/s {spread([r[0] for r in runs])}   p50 ms {spread([r[1] for r in runs])}"
                  f"   p95 ms {spread([r[2] for r in runs])}")
            for process in ("replica", "haproxy"):
                if (concurrency, name, process) in cpu:
                    print(f"  {'':16s} CPU ms/request, {process:8s} {spread(cpu[(concurrency, name, process)])}")
        for name in names[1:]:
            via = results[(concurrency, name)]
            print(f"  throughput ratio {name} / direct (paired): {spread([v[0] / d[0] for v, d in zip(via, direct)])}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
