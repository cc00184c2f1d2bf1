"""What the load balancer costs: throughput and latency through HAProxy vs straight to one replica.

One real LiteLLM proxy with the rendered dev config (no database, real Redis), the fast Ollama test
double behind it, and Debian's HAProxy with the rendered haproxy.cfg in front (replicas found
through the DNS test double). Runs alternate direct / through the load balancer with distinct
prompts (no cache hits); prints req/s and p50/p95 per run (min/median/max) and the paired ratios.

    python3 bench/loadbalancer.py [--repeats 5] [--requests 300] [--concurrency 16 32] [--reuse-server-connections]
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
    parser.add_argument("--reuse-server-connections", action="store_true",
                        help="render gateway.loadBalancer.reuseServerConnections: true")
    args = parser.parse_args()
    if args.repeats < 1 or args.requests < 1 or min(args.concurrency) < 1:
        parser.error("--repeats, --requests and --concurrency must be at least 1")

    import httpx

    from config.settings import parse_settings
    from dns_double import DnsDouble
    from gateway_helpers import MASTER_KEY, REDIS_PASSWORD, config_without_database, own_dev_config
    from ollama_double import OllamaDouble
    from renderers.haproxy import Listen, render_haproxy_config
    from http_load import load, spread
    from servers import free_port, haproxy_server, litellm_proxy, redis_server

    backend = OllamaDouble("ollama-dev", ["qwen2.5:0.5b"]).start()
    raw = own_dev_config()
    raw = {**raw, "gpuHosts": [dict(raw["gpuHosts"][0], address="127.0.0.1", ollamaPort=backend.port)],
           "cache": {"enabled": False},
           "gateway": {**raw["gateway"], "loadBalancer": {"reuseServerConnections": args.reuse_server_connections}}}
    settings = parse_settings(raw)
    dns = DnsDouble()
    work = Path(os.environ.get("TMPDIR", "/tmp")) / f"lb-bench-{uuid.uuid4().hex[:6]}"
    work.mkdir()
    results: dict[tuple[int, str], list[tuple[float, float, float]]] = {}
    try:
        with contextlib.ExitStack() as stack:
            redis_port = stack.enter_context(redis_server(REDIS_PASSWORD))
            port = free_port()
            replica = stack.enter_context(litellm_proxy(
                config_without_database(settings, redis_port),
                {"LITELLM_MASTER_KEY": MASTER_KEY, "REDIS_PASSWORD": REDIS_PASSWORD}, host="127.0.0.2", port=port))
            dns.set("litellm", ["127.0.0.2"])
            http, stats = free_port(), free_port()
            stack.enter_context(haproxy_server(render_haproxy_config(settings, Listen(
                http=f"127.0.0.1:{http}", stats=f"127.0.0.1:{stats}", nameserver=dns.address, replica_port=port)),
                work, f"http://127.0.0.1:{stats}/healthz"))
            lb = f"http://127.0.0.1:{http}"
            deadline = time.monotonic() + 30
            while time.monotonic() < deadline:
                with contextlib.suppress(httpx.HTTPError):
                    if httpx.get(f"{lb}/health/liveliness", timeout=2).status_code == 200:
                        break
                time.sleep(0.3)
            for url in (replica.url, lb):  # warm up
                load(url, MASTER_KEY, 50, 8)
            for concurrency in args.concurrency:
                for _ in range(args.repeats):
                    for name, url in (("direct", replica.url), ("load balancer", lb)):
                        results.setdefault((concurrency, name), []).append(
                            load(url, MASTER_KEY, args.requests, concurrency))
    finally:
        backend.stop()
        dns.stop()
    print(f"{args.requests} requests per run, {args.repeats} interleaved runs each; min / median / max")
    for concurrency in args.concurrency:
        direct, via = results[(concurrency, "direct")], results[(concurrency, "load balancer")]
        print(f"concurrency {concurrency}:")
        for name, runs in (("direct", direct), ("load balancer", via)):
            print(f"  {name:14s} req/s {spread([r[0] for r in runs])}   p50 ms {spread([r[1] for r in runs])}"
                  f"   p95 ms {spread([r[2] for r in runs])}")
        print(f"  throughput ratio load balancer / direct (paired): {spread([v[0] / d[0] for v, d in zip(via, direct)])}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
