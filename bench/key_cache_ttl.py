"""What a short key cache costs: gateway throughput with access.keyCacheTtlSeconds 3 vs LiteLLM's 60.

Two real LiteLLM proxies in database mode (the test infrastructure of tests/prisma_shim, the
program's rendered dev config and environment) on one PostgreSQL and one Redis, the same fast
Ollama test double behind both, each asked with the same virtual key. Runs are interleaved
(A, B, A, B, ...) with distinct prompts (no cache hits); prints req/s per run, min/median/max, and
the paired ratios short/long.

    python3 bench/key_cache_ttl.py [--repeats 5] [--requests 300] [--concurrency 16]
"""

from __future__ import annotations

import argparse
import copy
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
for path in (ROOT, ROOT / "bench", ROOT / "tests", ROOT / "tests" / "unit", ROOT / "tests" / "integration"):
    sys.path.insert(0, str(path))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--requests", type=int, default=300)
    parser.add_argument("--concurrency", type=int, default=16)
    args = parser.parse_args()
    if args.repeats < 1 or args.requests < 1 or args.concurrency < 1:
        parser.error("--repeats, --requests and --concurrency must be at least 1")

    from http_load import load, spread
    from database_mode import database_server, declared_gateway, litellm_in_database_mode
    from ollama_double import OllamaDouble
    from servers import redis_server
    from test_database_mode import start_together

    declared = declared_gateway()  # the tests' own dev config: one model, no limits, no access section
    long_ttl = copy.deepcopy(declared)
    long_ttl.config["general_settings"]["user_api_key_cache_ttl"] = 60
    double = OllamaDouble("ollama-dev", ["qwen2.5:0.5b"]).start()
    hosts = {"ollama-dev": f"http://127.0.0.1:{double.port}"}
    try:
        with database_server() as db, redis_server(declared.env["REDIS_PASSWORD"]) as redis_port:
            database = db.fresh_database()
            stack, (short, long_) = start_together(
                litellm_in_database_mode(declared, database, redis_port, hosts),
                litellm_in_database_mode(long_ttl, database, redis_port, hosts))
            with stack:
                key = short.call("POST", "/key/generate", json={"models": ["qwen-small"]}).json()["key"]
                load(short.url, key, 50, args.concurrency)  # warm both
                load(long_.url, key, 50, args.concurrency)
                results = {"ttl 3 s": [], "ttl 60 s": []}
                for _ in range(args.repeats):
                    results["ttl 60 s"].append(load(long_.url, key, args.requests, args.concurrency)[0])
                    results["ttl 3 s"].append(load(short.url, key, args.requests, args.concurrency)[0])
    finally:
        double.stop()
    print(f"{args.requests} requests at {args.concurrency} concurrent, {args.repeats} interleaved runs each (req/s):")
    for name, values in results.items():
        print(f"  {name:9s} {spread(values)}")
    ratios = [s / l for s, l in zip(results["ttl 3 s"], results["ttl 60 s"])]
    print(f"  ratio 3 s / 60 s (paired): {spread(ratios)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
