#!/usr/bin/env python3
"""How the program's cost grows with the GPU fleet (BACKLOG-002). A benchmark, not a test.

For fleets of 1, 10, 50 and 200 GPU hosts with 5 and 20 models (every host pulls every model),
runs the whole program under Pulumi mocks and prints the resources declared and the seconds it
took, beside a floor: a bare program that declares the same number of plain resources under the
same mocks. Target: linear growth, and at most 1.5x the floor.

Beside it, the "SDK floor": the same number of resources, of which one bare pulumi_command
remote.Command per (host, model) pull (the resource type the issue prescribes) and the rest plain.
"bound" = SDK floor / floor: the ratio this program could not beat even if all its own code were free.
`--explain` prints what one resource of each kind costs, and why a remote.Command costs more.

    python3 bench/fleet_scale.py            # all sizes
    python3 bench/fleet_scale.py --quick    # 1 and 10 hosts only
    python3 bench/fleet_scale.py --explain  # per-resource costs only
"""

from __future__ import annotations

import argparse
import copy
import gc
import json
import runpy
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "tests" / "unit")]

import pulumi  # noqa: E402
from pulumi.runtime import settings as runtime_settings  # noqa: E402
from pulumi.runtime.stack import run_pulumi_func  # noqa: E402
from pulumi.runtime.sync_await import _sync_await  # noqa: E402

from harness import PROJECT, stack_file_config  # noqa: E402

SSH_KEY = "-----BEGIN OPENSSH PRIVATE KEY-----\nbench\n-----END OPENSSH PRIVATE KEY-----\n"


class CountingMocks(pulumi.runtime.Mocks):
    """The same cheap mocks for the program and the floor: echo inputs, count resources."""

    def __init__(self):
        self.count = 0

    def new_resource(self, args):
        self.count += 1
        state = dict(args.inputs)
        if args.typ == "pulumi-python:dynamic:Resource" and "expected" in args.inputs:
            state.update(models={}, missing=[], mismatched=[], status="in-sync")
        if args.typ == "random:index/randomPassword:RandomPassword":
            state["result"] = "x" * int(args.inputs.get("length", 32))
        if args.typ == "vault:kv/secretV2:SecretV2":
            state["metadata"] = {"version": "1"}
        return f"{args.name}-id", state

    def call(self, args):
        return {}


def fleet_config(hosts: int, models: int) -> dict:
    raw = copy.deepcopy(stack_file_config("prod"))
    raw["gpuSsh"].pop("privateKeyVault", None)
    raw["gpuHosts"] = [{"name": f"gpu-{i:03d}", "address": f"10.20.{i // 250}.{i % 250 + 1}"} for i in range(hosts)]
    raw["models"] = [{"name": f"model-{j:02d}", "ollamaTag": f"model{j}:7b", "hosts": [h["name"] for h in raw["gpuHosts"]]}
                     for j in range(models)]
    return raw


def timed_run(body, config=None, secrets=None) -> tuple[int, float]:
    mocks = CountingMocks()
    runtime_settings.ROOT.set(None)
    pulumi.runtime.set_mocks(mocks, project=PROJECT, stack="bench", preview=False)
    flat = {f"{PROJECT}:{k}": (v if isinstance(v, str) else json.dumps(v)) for k, v in (config or {}).items()}
    flat.update({f"{PROJECT}:{k}": v for k, v in (secrets or {}).items()})
    pulumi.runtime.set_all_config(flat, [f"{PROJECT}:{k}" for k in (secrets or {})])
    gc.collect()  # start each run from a clean heap: earlier runs' garbage is not this run's cost
    started = time.perf_counter()
    _sync_await(run_pulumi_func(body))
    return mocks.count, time.perf_counter() - started


def program(config) -> tuple[int, float]:
    return timed_run(lambda: runpy.run_path(str(ROOT / "__main__.py"), run_name="__bench__"),
                     config, {"gpuSshPrivateKey": SSH_KEY})


def floor(count: int) -> tuple[int, float]:
    def body():
        for i in range(count - 1):  # the root stack is one of the program's resources too
            pulumi.CustomResource("bench:index:Plain", f"plain-{i}", {"value": str(i)})
    return timed_run(body)


def sdk_floor(count: int, commands: int) -> tuple[int, float]:
    """The plain floor, but with `commands` of the resources bare pulumi_command remote.Commands:
    what the SDK itself charges for the resource type the issue prescribes for pulls."""
    import pulumi_command as command

    def body():
        connection = command.remote.ConnectionArgs(host="10.0.0.1", user="bench", private_key="key")
        for i in range(commands):
            command.remote.Command(f"cmd-{i}", connection=connection, create="true")
        for i in range(count - 1 - commands):
            pulumi.CustomResource("bench:index:Plain", f"plain-{i}", {"value": str(i)})
    return timed_run(body)


def unit_costs(count: int = 1000) -> list[tuple[str, float]]:
    """Milliseconds per resource for `count` resources of one kind, from plain to a bare remote.Command."""
    import pulumi_command as command

    connection = {"host": "10.0.0.1", "user": "bench", "privateKey": "key", "port": 22,
                  "dialErrorLimit": 10, "perDialTimeout": 15}
    # A remote.Command always sends all of its properties (None when unset) and wraps the
    # connection in a secret Output; the SDK gives every property its own Output and futures.
    shape = dict.fromkeys(["addPreviousOutputInEnv", "delete", "environment", "logging", "stdin",
                           "triggers", "update", "stdout", "stderr"])

    def plain():
        for i in range(count):
            pulumi.CustomResource("bench:index:Plain", f"plain-{i}", {"value": str(i)})

    def same_properties():
        for i in range(count):
            pulumi.CustomResource("command:remote:Command", f"shape-{i}", {**shape, "create": "true",
                                                                           "connection": connection})

    def same_properties_secret():
        for i in range(count):
            pulumi.CustomResource("command:remote:Command", f"secret-{i}", {
                **shape, "create": "true", "connection": pulumi.Output.secret(connection)})

    def remote_command():
        args = command.remote.ConnectionArgs(host="10.0.0.1", user="bench", private_key="key")
        for i in range(count):
            command.remote.Command(f"cmd-{i}", connection=args, create="true")

    kinds = [("plain CustomResource, 1 property (the floor's unit)", plain),
             ("CustomResource with a remote.Command's 11 properties", same_properties),
             ("  ... and its connection as a secret Output", same_properties_secret),
             ("bare pulumi_command remote.Command", remote_command)]
    return [(label, 1000 * best_of(3, timed_run, body)[1] / count) for label, body in kinds]


def best_of(repeats: int, fn, *args) -> tuple[int, float]:
    runs = [fn(*args) for _ in range(repeats)]
    return runs[0][0], min(seconds for _, seconds in runs)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="1 and 10 hosts only")
    parser.add_argument("--repeats", type=int, default=3, help="best of N runs per size (default 3)")
    parser.add_argument("--explain", action="store_true", help="per-resource cost of each kind, then stop")
    options = parser.parse_args()
    if options.explain:
        timed_run(lambda: pulumi.CustomResource("bench:index:Plain", "warm", {}))
        costs = unit_costs()
        for label, ms in costs:
            print(f"{label:<55} {ms:6.2f} ms  {ms / costs[0][1]:5.2f}x")
        return 0
    sizes = [1, 10] if options.quick else [1, 10, 50, 200]
    program(fleet_config(1, 1))  # warm up: imports and first-use caches are not what is measured
    print(f"{'hosts':>5} {'models':>6} {'resources':>9} {'program s':>10} {'floor s':>8} {'ratio':>6} "
          f"{'sdk floor s':>11} {'bound':>6} {'vs sdk':>6} {'ms/resource':>11}")
    rows = []
    for models in (5, 20):
        for hosts in sizes:
            count, seconds = best_of(options.repeats, program, fleet_config(hosts, models))
            _, floor_seconds = best_of(options.repeats, floor, count)
            _, sdk_seconds = best_of(options.repeats, sdk_floor, count, hosts * models)
            ratio = seconds / floor_seconds
            bound = sdk_seconds / floor_seconds
            rows.append((hosts, models, count, seconds, ratio, bound))
            print(f"{hosts:>5} {models:>6} {count:>9} {seconds:>10.2f} {floor_seconds:>8.2f} {ratio:>6.2f} "
                  f"{sdk_seconds:>11.2f} {bound:>6.2f} {seconds / sdk_seconds:>6.2f} {1000 * seconds / count:>11.2f}",
                  flush=True)
    per_resource = [1000 * s / c for _, _, c, s, _, _ in rows if c >= 100]
    if per_resource:
        print(f"\nms per resource for runs of 100+ resources: min {min(per_resource):.2f}, "
              f"median {statistics.median(per_resource):.2f}, max {max(per_resource):.2f} (flat means linear)")
    worst = max(rows, key=lambda r: r[4])
    print(f"worst ratio to the floor: {worst[4]:.2f} at {worst[0]} hosts x {worst[1]} models (target <= 1.5); "
          f"bound there: {worst[5]:.2f}")
    print("floor: the same number of bare pulumi.CustomResource; sdk floor: the same, with one bare "
          "pulumi_command remote.Command per (host, model) pull; bound: sdk floor / floor, the best ratio "
          "any program declaring those Commands can reach")
    return 0


if __name__ == "__main__":
    sys.exit(main())
