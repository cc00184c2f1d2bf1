"""What the load balancer costs: throughput and latency through HAProxy vs straight to one replica.

One real LiteLLM proxy with the rendered dev config (no database, real Redis), the fast Ollama test
double behind it, and Debian's HAProxy with the rendered haproxy.cfg in front (replicas found
through the DNS test double). Each round runs every variant once, in an order shuffled per round
(seeded), with distinct prompts (no cache hits). This machine's speed drifts by a third within a
minute, so the rounds are short and many: the result is the pooled ratio (all requests over all the
time, variant against direct) with a 90% bootstrap interval over the rounds, beside the paired
ratios (min/median/max), req/s and p50/p95, and the CPU each request costs the replica and HAProxy
(from /proc).
With --fresh-connections a second HAProxy renders `reuseServerConnections: false` (a new connection
to the replica per request) in front of the same replica. With --relay an HAProxy in TCP mode (a
byte relay: no HTTP parsing, no checks, no retries) joins as a control: what any hop between the
client and the replica costs on this machine, against which the rendered config's own cost reads.

With --pin (machines with 2+ CPUs), the replica runs on a CPU of its own and everything else (the
load generator, the Ollama double, Redis, HAProxy) on another, as in a deployment where the replicas
have their `gateway.cpus` and HAProxy its own: the ratio then shows what the extra hop costs rather
than what sharing the replica's CPU with HAProxy costs.

    python3 bench/loadbalancer.py [--repeats 20] [--requests 160] [--concurrency 16 32] [--relay] [--fresh-connections] [--pin] [--seed 1]
"""

from __future__ import annotations

import argparse
import contextlib
import os
import random
import sys
import time
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
for path in (ROOT, ROOT / "bench", ROOT / "tests", ROOT / "tests" / "unit", ROOT / "tests" / "integration"):
    sys.path.insert(0, str(path))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeats", type=int, default=20)
    parser.add_argument("--requests", type=int, default=160)
    parser.add_argument("--concurrency", type=int, nargs="+", default=[16, 32])
    parser.add_argument("--fresh-connections", action="store_true",
                        help="also measure gateway.loadBalancer.reuseServerConnections: false")
    parser.add_argument("--relay", action="store_true", help="also measure a TCP relay (HAProxy in TCP mode): any hop's cost")
    parser.add_argument("--pin", action="store_true", help="the replica on CPU 1, everything else on CPU 0")
    parser.add_argument("--seed", type=int, default=1, help="seed of the per-round order")
    args = parser.parse_args()
    if args.repeats < 1 or args.requests < 1 or min(args.concurrency) < 1:
        parser.error("--repeats, --requests and --concurrency must be at least 1")
    if args.pin:
        if len(os.sched_getaffinity(0)) < 2 or not {0, 1} <= os.sched_getaffinity(0):
            parser.error("--pin needs CPUs 0 and 1")
        os.sched_setaffinity(0, {0})  # inherited by every thread and process started from here

    import httpx

    from config.parse import parse_settings
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
    order: list[str] = []  # the variants as reported: direct first
    cpu: dict[tuple[int, str, str], list[float]] = {}  # (concurrency, variant, process) -> ms per request
    try:
        with contextlib.ExitStack() as stack:
            redis_port = stack.enter_context(redis_server(REDIS_PASSWORD))
            port = free_port()
            dispatcher = free_port()  # the first load balancer's: the replica's way to the GPU host
            replica = stack.enter_context(litellm_proxy(
                config_without_database(settings, redis_port, f"http://127.0.0.1:{dispatcher}"),
                {"LITELLM_MASTER_KEY": MASTER_KEY, "REDIS_PASSWORD": REDIS_PASSWORD,
                 "LITELLM_LOG": settings.gateway.log_level}, host="127.0.0.2", port=port,
                stop_grace_seconds=settings.gateway.stop_grace_seconds))  # as deployed: the entrypoint, keep-alive 300 s
            dns.set("litellm", ["127.0.0.2"])
            if args.pin:
                for pid in process_tree(replica.process.pid):
                    for task in Path(f"/proc/{pid}/task").iterdir():
                        os.sched_setaffinity(int(task.name), {1})
            targets = {"direct": replica.url}
            balancers = {}
            variants = [("load balancer", settings)] + ([("lb, fresh conns", fresh)] if args.fresh_connections else [])
            if args.relay:
                variants.append(("tcp relay", None))
            for name, variant in variants:
                http, stats = free_port(), free_port()
                workdir = work / str(len(targets))
                workdir.mkdir()
                config = (tcp_relay(http, stats, f"127.0.0.2:{port}") if variant is None else render_haproxy_config(
                    variant, Listen(http=f"127.0.0.1:{http}", stats=f"127.0.0.1:{stats}", nameserver=dns.address,
                                    replica_port=port,
                                    dispatcher=f"127.0.0.1:{dispatcher if len(targets) == 1 else free_port()}")))
                balancers[name] = stack.enter_context(haproxy_server(
                    config, workdir, f"http://127.0.0.1:{stats}/healthz")).process.pid
                targets[name] = f"http://127.0.0.1:{http}"
                deadline = time.monotonic() + 30
                while time.monotonic() < deadline:
                    with contextlib.suppress(httpx.HTTPError):
                        if httpx.get(f"{targets[name]}/health/liveliness", timeout=2).status_code == 200:
                            break
                    time.sleep(0.3)
            order += targets
            for url in targets.values():  # warm up
                load(url, MASTER_KEY, 50, 8)
            for concurrency in args.concurrency:
                for round_ in range(args.repeats):
                    runs = list(targets.items())
                    random.Random(f"{args.seed}/{concurrency}/{round_}").shuffle(runs)
                    for name, url in runs:
                        pids = {"replica": process_tree(replica.process.pid)}
                        if name in balancers:
                            pids["haproxy"] = [balancers[name]]
                        before = {k: sum(map(cpu_seconds, v)) for k, v in pids.items()}
                        results.setdefault((concurrency, name), []).append(
                            load(url, MASTER_KEY, args.requests, concurrency))
                        for k, v in pids.items():
                            cpu.setdefault((concurrency, name, k), []).append(
                                1000 * (sum(map(cpu_seconds, v)) - before[k]) / args.requests)
                        print(f"# concurrency {concurrency} round {round_ + 1} {name}: {results[(concurrency, name)][-1][0]:.1f}"
                              f" req/s, replica CPU {cpu[(concurrency, name, 'replica')][-1]:.2f} ms/request", flush=True)
    finally:
        backend.stop()
        dns.stop()
    print(f"{args.requests} requests per run, {args.repeats} rounds (order shuffled per round, seed {args.seed});"
          " min / median / max")
    names = order
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
            low, pooled, high = pooled_ratio([d[0] for d in direct], [v[0] for v in via])
            print(f"  throughput {name} / direct: pooled {pooled:.3f} (90% interval {low:.3f}-{high:.3f}),"
                  f" paired {spread([v[0] / d[0] for v, d in zip(via, direct)])}")
    return 0


def pooled_ratio(direct: list[float], via: list[float], resamples: int = 2000) -> tuple[float, float, float]:
    """Throughput of all the variant's rounds over all the direct rounds' (the same requests per run, so the
    ratio of the summed times), with a 90% bootstrap interval: rounds resampled with replacement, in pairs."""
    def ratio(indices):
        return sum(1 / direct[i] for i in indices) / sum(1 / via[i] for i in indices)
    rounds = range(len(direct))
    rng = random.Random(0)
    samples = sorted(ratio(rng.choices(rounds, k=len(direct))) for _ in range(resamples))
    return samples[int(0.05 * resamples)], ratio(rounds), samples[int(0.95 * resamples) - 1]


def tcp_relay(port: int, stats: int, replica: str) -> str:
    """HAProxy as a bare TCP relay to one replica: the control for what any hop costs."""
    return f"""global
    maxconn 4096
    nbthread 1
defaults
    timeout connect 5s
    timeout client 300s
    timeout server 300s
frontend relay
    mode tcp
    bind 127.0.0.1:{port}
    default_backend replica
backend replica
    mode tcp
    server replica {replica}
frontend stats
    mode http
    bind 127.0.0.1:{stats}
    http-request return status 200 content-type text/plain string ok if {{ path /healthz }}
"""


if __name__ == "__main__":
    sys.exit(main())
