#!/usr/bin/env python3
"""What the gateway's features cost: the program's rendered LiteLLM config against bare LiteLLM.

Real LiteLLM proxies (the pinned litellm[proxy], one worker each, LITELLM_LOG and LITELLM_MODE as in
the container), one real Redis, and the fast Ollama test double behind them. Variants:

    bare          one model_list entry per route and the master key, nothing else
    bare-priced   bare, plus the explicit (zero) prices the rendered config gives each deployment
    rendered      the program's rendered config (metrics, Redis cache, shared limits), distinct prompts: cache misses
    rendered-hit  the same proxy, one prompt every time: cache hits
    direct        the Ollama double itself, no gateway: the floor
    levers        (--levers) the rendered config with one feature taken out (or one lever undone) at a time;
                  log-info: the rendered config with LITELLM_LOG=INFO instead of gateway.logLevel

Runs are interleaved (every variant once, then again, ...), each `--requests` requests at each
concurrency; prints req/s, p50/p95 and CPU ms per request of the proxy process (min/median/max),
and the paired ratios to bare. Target: rendered (cache miss) >= 0.90x bare at 16 and 32 concurrent.

    python3 bench/gateway_throughput.py [--repeats 5] [--requests 300] [--concurrency 16 32] [--levers]
"""

from __future__ import annotations

import argparse
import contextlib
import copy
import os
import statistics
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
for path in (ROOT, ROOT / "bench", ROOT / "tests", ROOT / "tests" / "unit", ROOT / "tests" / "integration"):
    sys.path.insert(0, str(path))

import yaml  # noqa: E402

from http_load import cpu_seconds  # noqa: E402


def bare_config(rendered: dict) -> dict:
    """One model_list entry per route (model and api_base only) and the master key."""
    return {
        "model_list": [{"model_name": d["model_name"],
                        "litellm_params": {"model": d["litellm_params"]["model"],
                                           "api_base": d["litellm_params"]["api_base"]}}
                       for d in rendered["model_list"]],
        "general_settings": {"master_key": rendered["general_settings"]["master_key"]},
    }


def priced(bare: dict, rendered: dict) -> dict:
    config = copy.deepcopy(bare)
    for entry, source in zip(config["model_list"], rendered["model_list"]):
        entry["model_info"] = {key: source["model_info"][key] for key in ("input_cost_per_token", "output_cost_per_token")}
    return config


def without(rendered: dict, lever: str) -> dict:
    """The rendered config with one feature taken out (for --levers)."""
    config = copy.deepcopy(rendered)
    litellm, router, general = config["litellm_settings"], config["router_settings"], config["general_settings"]
    if lever == "no-prometheus":
        litellm.pop("callbacks", None)
    elif lever == "no-cache":
        litellm.pop("cache", None)
        litellm.pop("cache_params", None)
    elif lever == "no-router-redis":
        for key in ("redis_host", "redis_port", "redis_password"):
            router.pop(key, None)
    elif lever == "no-coordination-redis":
        general.pop("coordination_redis", None)
    elif lever == "no-json-logs":
        litellm["json_logs"] = False
    elif lever == "no-rate-limit-check":
        router.pop("optional_pre_call_checks", None)
    elif lever == "all-metrics":
        litellm.pop("prometheus_metrics_config", None)
    elif lever == "unpriced":
        for entry in config["model_list"]:
            entry["model_info"].pop("input_cost_per_token", None)
            entry["model_info"].pop("output_cost_per_token", None)
    elif lever == "prices-per-request":  # where the prices were before: LiteLLM registers them on every request
        for entry in config["model_list"]:
            for key in ("input_cost_per_token", "output_cost_per_token"):
                entry["litellm_params"][key] = entry["model_info"].pop(key)
    else:
        raise ValueError(lever)
    return config


LEVERS = ["unpriced", "prices-per-request", "all-metrics", "no-prometheus", "no-cache", "no-router-redis", "no-coordination-redis",
          "no-json-logs", "no-rate-limit-check"]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--requests", type=int, default=300)
    parser.add_argument("--concurrency", type=int, nargs="+", default=[16, 32])
    parser.add_argument("--levers", action="store_true", help="also the rendered config minus one feature at a time")
    parser.add_argument("--only", nargs="+", help="measure only these variants (with bare)")
    args = parser.parse_args()
    if args.repeats < 1 or args.requests < 1 or min(args.concurrency) < 1:
        parser.error("--repeats, --requests and --concurrency must be at least 1")

    from config.parse import parse_settings
    from gateway_helpers import MASTER_KEY, REDIS_PASSWORD, gpu_dispatcher, own_dev_config
    from http_load import load, spread
    from ollama_double import OllamaDouble
    from renderers.litellm_config import render_config_dict
    from servers import litellm_proxy, redis_server

    backend = OllamaDouble("ollama-dev", ["qwen2.5:0.5b"]).start()
    raw = own_dev_config()
    raw = {**raw, "gpuHosts": [dict(raw["gpuHosts"][0], address="127.0.0.1", ollamaPort=backend.port)]}
    settings = parse_settings(raw)
    # Every variant with the container's LITELLM_LOG (gateway.logLevel); the lever "log-info" shows INFO's cost.
    env = {"LITELLM_MASTER_KEY": MASTER_KEY, "REDIS_PASSWORD": REDIS_PASSWORD, "LITELLM_LOG": settings.gateway.log_level}
    results: dict[tuple[int, str], list[tuple[float, float, float, float]]] = {}
    try:
        with contextlib.ExitStack() as stack:
            redis_port = stack.enter_context(redis_server(REDIS_PASSWORD))
            # The replicas reach the GPU host through the rendered dispatcher (HAProxy), as deployed.
            dispatcher = stack.enter_context(gpu_dispatcher(settings))
            rendered = render_config_dict(settings, redis_host="127.0.0.1", redis_port=redis_port, dispatcher=dispatcher)
            rendered["general_settings"].pop("database_url")  # no database: what the benchmark compares is per request
            configs = {"bare": bare_config(rendered), "bare-priced": priced(bare_config(rendered), rendered),
                       "rendered": rendered}
            if args.levers:
                configs.update({lever: without(rendered, lever) for lever in LEVERS})
            if args.only:
                configs = {k: v for k, v in configs.items() if k in ("bare", "bare-priced", *args.only)}
            if args.levers and (not args.only or "log-info" in args.only):
                configs["log-info"] = rendered
            proxies = {name: stack.enter_context(litellm_proxy(
                yaml.safe_dump(config, sort_keys=False), {**env, "LITELLM_LOG": "INFO"} if name == "log-info" else env))
                for name, config in configs.items()}
            variants = [(name, proxies[name].url, proxies[name].process.pid, {}) for name in proxies]
            if "rendered" in proxies:
                variants.append(("rendered-hit", proxies["rendered"].url, proxies["rendered"].process.pid,
                                 {"distinct": False}))
            variants.append(("direct", f"http://127.0.0.1:{backend.port}", None,
                             {"path": "/api/chat", "model": "qwen2.5:0.5b"}))
            for _, url, _, options in variants:  # warm up (and fill the cache for rendered-hit)
                load(url, MASTER_KEY, 60, 8, **options)
            for concurrency in args.concurrency:
                for _ in range(args.repeats):
                    for name, url, pid, options in variants:
                        before = cpu_seconds(pid) if pid else 0.0
                        rps, p50, p95 = load(url, MASTER_KEY, args.requests, concurrency, **options)
                        cpu_ms = 1000 * (cpu_seconds(pid) - before) / args.requests if pid else 0.0
                        results.setdefault((concurrency, name), []).append((rps, p50, p95, cpu_ms))
    finally:
        backend.stop()
    names = [name for name, *_ in variants]
    print(f"{args.requests} requests per run, {args.repeats} interleaved runs per variant; min / median / max")
    for concurrency in args.concurrency:
        print(f"concurrency {concurrency}:")
        bare = results[(concurrency, "bare")]
        for name in names:
            runs = results[(concurrency, name)]
            ratio = spread([r[0] / b[0] for r, b in zip(runs, bare)])
            cpu = f"   CPU ms/req {spread([r[3] for r in runs])}" if name != "direct" else ""
            print(f"  {name:22s} req/s {spread([r[0] for r in runs])}   p50 ms {spread([r[1] for r in runs])}"
                  f"   p95 ms {spread([r[2] for r in runs])}{cpu}   vs bare {ratio}")
    for concurrency in args.concurrency:
        for base in ("bare", "bare-priced"):
            if (concurrency, "rendered") in results and (concurrency, base) in results:
                ratios = [r[0] / b[0] for r, b in zip(results[(concurrency, "rendered")], results[(concurrency, base)])]
                print(f"rendered / {base} at {concurrency}: min {min(ratios):.2f} median {statistics.median(ratios):.2f} "
                      f"max {max(ratios):.2f}" + (" (target >= 0.90)" if base == "bare" else ""))
    return 0


if __name__ == "__main__":
    sys.exit(main())
