#!/usr/bin/env python3
"""How the program's evaluation cost grows with the GPU fleet (BACKLOG-002). A benchmark, not a test.

For fleets of 50, 100 and 200 GPU hosts with 20 models (every host pulls every model), runs the
whole program under Pulumi mocks, and beside it the "SDK floor": a program that declares the same
resource types in the same numbers with the same SDK classes (a bare remote.Command per pull and per
install step, a bare dynamic resource per reader, a bare docker.Container per container, ...) and
nothing else. Runs are paired and interleaved (program, floor; then floor, program; ...), and the
ratio program / floor is taken within each pair, so a machine that is busy for a while slows both
sides of a pair. Prints min/median/max of the paired ratios. Target: <= 1.2 at every size.

`--inputs` prints what a pull costs in the state instead: the declared input bytes per pull command
and in all, and how many pull commands change their inputs when retries, the dial limit or the SSH
key change, or when a model is added to one host (the unit tests assert the same at small scale).

    python3 bench/fleet_scale.py                    # 50, 100, 200 hosts x 20 models, 3 pairs each
    python3 bench/fleet_scale.py --hosts 10 --repeats 2
    python3 bench/fleet_scale.py --inputs --hosts 200
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
from collections import Counter
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
    """The same cheap mocks for the program and the floor: echo inputs, record types and inputs."""

    def __init__(self, keep_inputs: bool = False):
        self.types: Counter = Counter()
        self.keep_inputs = keep_inputs
        self.inputs: dict[str, dict] = {}

    def new_resource(self, args):
        self.types[args.typ] += 1
        if self.keep_inputs:
            self.inputs[args.name] = args.inputs
        state = dict(args.inputs)
        if args.typ == "pulumi-python:dynamic:Resource" and "expected" in args.inputs:
            state.update(models={}, missing=[], mismatched=[], status="in-sync")
        elif args.typ == "random:index/randomPassword:RandomPassword":
            state["result"] = "x" * int(args.inputs.get("length", 32))
        elif args.typ == "random:index/randomId:RandomId":
            state["hex"] = "00ff" * 4
        elif args.typ == "vault:kv/secretV2:SecretV2":
            state["metadata"] = {"version": "1"}
        elif args.typ == "tls:index/privateKey:PrivateKey":
            state.update(privateKeyOpenssh=SSH_KEY, publicKeyOpenssh="ssh-ed25519 AAAAbench\n")
        return f"{args.name}-id", state

    def call(self, args):
        return {}


def fleet_config(hosts: int, models: int) -> dict:
    raw = copy.deepcopy(stack_file_config("prod"))
    raw["gpuSsh"].pop("privateKeyVault", None)
    raw["gpuSsh"]["allowUnpinnedHostKeys"] = "benchmark fleet, no real hosts"
    raw["gpuHosts"] = [{"name": f"gpu-{i:03d}", "address": f"10.20.{i // 250}.{i % 250 + 1}"} for i in range(hosts)]
    raw["models"] = [{"name": f"model-{j:02d}", "ollamaTag": f"model{j}:7b", "hosts": [h["name"] for h in raw["gpuHosts"]]}
                     for j in range(models)]
    raw["access"] = {"teams": [], "users": [], "keys": []}
    return raw


def timed_run(body, config=None, secrets=None, keep_inputs=False) -> tuple[CountingMocks, float]:
    mocks = CountingMocks(keep_inputs)
    runtime_settings.ROOT.set(None)
    pulumi.runtime.set_mocks(mocks, project=PROJECT, stack="prod", preview=False)
    flat = {f"{PROJECT}:{k}": (v if isinstance(v, str) else json.dumps(v)) for k, v in (config or {}).items()}
    flat.update({f"{PROJECT}:{k}": v for k, v in (secrets or {}).items()})
    pulumi.runtime.set_all_config(flat, [f"{PROJECT}:{k}" for k in (secrets or {})])
    gc.collect()  # start each run from a clean heap: earlier runs' garbage is not this run's cost
    started = time.perf_counter()
    _sync_await(run_pulumi_func(body))
    return mocks, time.perf_counter() - started


def program(config, secrets=None, keep_inputs=False) -> tuple[CountingMocks, float]:
    return timed_run(lambda: runpy.run_path(str(ROOT / "__main__.py"), run_name="__bench__"),
                     config, secrets or {"gpuSshPrivateKey": SSH_KEY}, keep_inputs)


class _BareDynamic(pulumi.dynamic.Resource):  # type token pulumi-python:dynamic:Resource, as the program's
    pass


def _bare_dynamic(name: str):
    """A dynamic resource with the program's own provider class, pickled the way the program pickles it."""
    from components.ollama_drift import OllamaHostModelsProvider, pickled_by_value

    with pickled_by_value():
        return _BareDynamic(OllamaHostModelsProvider(), name, {"value": name})


def _builders():
    """type token -> a function declaring one bare resource of that type with the SDK's own class."""
    import pulumi_command as command
    import pulumi_docker as docker
    import pulumi_random as random
    import pulumi_tls as tls
    import pulumi_vault as vault

    connection = command.remote.ConnectionArgs(host="10.0.0.1", user="bench", private_key="key")
    return {
        "command:remote:Command": lambda n: command.remote.Command(n, connection=connection, create="true"),
        "command:local:Command": lambda n: command.local.Command(n, create="true"),
        "pulumi-python:dynamic:Resource": _bare_dynamic,
        "docker:index/container:Container": lambda n: docker.Container(n, image="bench"),
        "docker:index/remoteImage:RemoteImage": lambda n: docker.RemoteImage(n, name="bench"),
        "docker:index/volume:Volume": lambda n: docker.Volume(n),
        "docker:index/network:Network": lambda n: docker.Network(n),
        "random:index/randomPassword:RandomPassword": lambda n: random.RandomPassword(n, length=16),
        "random:index/randomId:RandomId": lambda n: random.RandomId(n, byte_length=4),
        "tls:index/privateKey:PrivateKey": lambda n: tls.PrivateKey(n, algorithm="ED25519"),
        "vault:kv/secretV2:SecretV2": lambda n: vault.kv.SecretV2(n, mount="secret", name=n, data_json="{}"),
        "vault:index/policy:Policy": lambda n: vault.Policy(n, policy="x"),
        "pulumi:providers:docker": lambda n: docker.Provider(n),
        "pulumi:providers:vault": lambda n: vault.Provider(n, address="http://127.0.0.1:8200"),
    }


def sdk_floor(types: Counter) -> tuple[CountingMocks, float]:
    """The same resource types in the same numbers, each a bare resource of the SDK's own class
    (components as bare ComponentResources, unknown types as plain CustomResources)."""
    builders = _builders()

    def body():
        for kind, count in types.items():
            if kind == "pulumi:pulumi:Stack":
                continue
            build = builders.get(kind)
            for i in range(count):
                name = f"{kind.replace(':', '-').replace('/', '-')}-{i}"
                if build is not None:
                    build(name)
                elif kind.startswith(f"{PROJECT}:"):
                    pulumi.ComponentResource(kind, name)
                else:
                    pulumi.CustomResource(kind, name, {"value": str(i)})
    return timed_run(body)


def paired(hosts: int, models: int, repeats: int) -> dict:
    config = fleet_config(hosts, models)
    mocks, _ = program(config)
    types = mocks.types
    floor_mocks, _ = sdk_floor(types)
    assert floor_mocks.types == types, (floor_mocks.types - types, types - floor_mocks.types)
    ratios, program_s, floor_s = [], [], []
    for i in range(repeats):
        order = [("program", lambda: program(config)), ("floor", lambda: sdk_floor(types))]
        if i % 2:
            order.reverse()  # A B, B A, A B, ...
        seconds = {label: run()[1] for label, run in order}
        program_s.append(seconds["program"])
        floor_s.append(seconds["floor"])
        ratios.append(seconds["program"] / seconds["floor"])
    return {"hosts": hosts, "models": models, "resources": sum(types.values()), "ratios": ratios,
            "program": program_s, "floor": floor_s}


def _bytes(value) -> int:
    return len(json.dumps(value, sort_keys=True, default=str).encode())


def inputs_report(hosts: int, models: int) -> None:
    from operations.offline import unwrap_all as plain

    def pull_inputs(config, secrets=None):
        mocks, _ = program(config, secrets, keep_inputs=True)
        return {n: plain(i) for n, i in mocks.inputs.items()
                if n.startswith("models-pull-") and n != "models-pull-key"}, mocks

    config = fleet_config(hosts, models)
    base, mocks = pull_inputs(config)
    sizes = [_bytes(i) for i in base.values()]
    everything = sum(_bytes(plain(i)) for i in mocks.inputs.values())
    print(f"{hosts} hosts x {models} models: {len(base)} pull commands, declared inputs per pull: "
          f"min {min(sizes)} B, max {max(sizes)} B (target <= 1024 B); all pulls {sum(sizes) / 1e6:.2f} MB, "
          f"all {len(mocks.inputs)} resources {everything / 1e6:.2f} MB")

    def changed(mutate=None, secrets=None):
        raw = copy.deepcopy(config)
        if mutate:
            mutate(raw)
        after, _ = pull_inputs(raw, secrets)
        return (sum(1 for n in base if n in after and after[n] != base[n]), len(set(after) - set(base)))

    scenarios = [
        ("modelPulls.retries 4 -> 7", lambda r: r["modelPulls"].update(retries=7), None),
        ("gpuSsh.dialErrorLimit 3 -> 9", lambda r: r["gpuSsh"].update(dialErrorLimit=9), None),
        ("rotated SSH key (gpuSshPrivateKey)", None, {"gpuSshPrivateKey": SSH_KEY.replace("bench", "rotated")}),
        ("a model added to one host", lambda r: r["models"].append(
            {"name": "extra", "ollamaTag": "extra:1b", "hosts": [r["gpuHosts"][0]["name"]]}), None),
    ]
    for label, mutate, secrets in scenarios:
        changes, added = changed(mutate, secrets)
        print(f"  {label:<38} pull commands with changed inputs: {changes:>5}, new pull commands: {added}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])

    def positive(text: str) -> int:
        value = int(text)
        if value < 1:
            raise argparse.ArgumentTypeError(f"must be 1 or more, not {value}")
        return value

    parser.add_argument("--hosts", type=positive, nargs="+", default=[50, 100, 200], help="fleet sizes")
    parser.add_argument("--models", type=positive, default=20, help="models per host (default 20)")
    parser.add_argument("--repeats", type=positive, default=3, help="paired runs per size (default 3)")
    parser.add_argument("--inputs", action="store_true", help="pull input sizes and what changes them, then stop")
    options = parser.parse_args()
    if options.inputs:
        for hosts in options.hosts:
            inputs_report(hosts, options.models)
        return 0
    program(fleet_config(1, 1))  # warm up: imports and first-use caches are not what is measured
    sdk_floor(Counter({"command:remote:Command": 1}))
    print(f"{'hosts':>5} {'models':>6} {'resources':>9} {'program s (median)':>18} {'sdk floor s (median)':>20} "
          f"{'ratio min':>9} {'median':>6} {'max':>6}")
    worst = 0.0
    for hosts in options.hosts:
        row = paired(hosts, options.models, options.repeats)
        ratios = row["ratios"]
        worst = max(worst, statistics.median(ratios))
        print(f"{hosts:>5} {options.models:>6} {row['resources']:>9} {statistics.median(row['program']):>18.2f} "
              f"{statistics.median(row['floor']):>20.2f} {min(ratios):>9.2f} {statistics.median(ratios):>6.2f} "
              f"{max(ratios):>6.2f}", flush=True)
    print(f"\nworst median paired ratio: {worst:.2f} (target <= 1.2); {options.repeats} interleaved pairs per size")
    return 0


if __name__ == "__main__":
    sys.exit(main())
