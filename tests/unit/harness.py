"""Run the whole Pulumi program under mocks and record what it declares.

`run_stack` executes __main__.py the way the Pulumi CLI would, but against `RecordingMocks`: every
registered resource is kept with its inputs (secret inputs stay wrapped, so tests can see which
values Pulumi would encrypt), and the stack outputs are resolved with their secretness.
"""

from __future__ import annotations

import copy

import runpy
import sys
from pathlib import Path
from typing import Any, Callable, Iterator, Optional

import yaml
from pulumi.runtime.rpc import is_rpc_secret

ROOT = Path(__file__).resolve().parents[2]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))
from config.stack_file import read_stack_file, stack_names  # noqa: E402
from operations import offline  # noqa: E402  (the program's own offline evaluator)
from operations.offline import Recorded, StackRun, unwrap_all  # noqa: E402,F401

MAIN = ROOT / "__main__.py"
PROJECT = yaml.safe_load((ROOT / "Pulumi.yaml").read_text())["name"]

# Every value the mocks generate for a secret contains this marker, so a scan can find leaks.
SECRET_MARKER = "MOCKSECRET"


class RecordingMocks(offline.RecordingMocks):
    """Test double for the Pulumi engine and providers (operations/offline.py), with secrets marked."""

    marker = SECRET_MARKER


FIXTURES = ROOT / "tests" / "fixtures"
# The stack files shipped as examples (Pulumi.dev.yaml, Pulumi.prod.yaml, and any a user adds).
EXAMPLE_STACKS = stack_names(ROOT)


def _project_config(stack: str, root: Path) -> dict[str, Any]:
    """The project's keys of a stack file, read as every tool reads it (config/stack_file.py)."""
    stack_file = read_stack_file(stack, root)
    assert not stack_file.problems, stack_file.problems
    return stack_file.plain


def stack_file_config(stack: str) -> dict[str, Any]:
    """The tests' own stack config (tests/fixtures/Pulumi.<stack>.yaml), keys without the project prefix.

    Tests with expectations about hosts, models or limits read these copies, never the shipped
    example files, so users can edit the examples freely."""
    return _project_config(stack, FIXTURES)


def with_external_data_stores(config: dict[str, Any]) -> dict[str, Any]:
    """`config` with the ext fixture's external Postgres and Redis (URLs and password in Vault, TLS with a CA),
    and without the keys only the stack's own stores read."""
    from config.checks.data import CONTAINER_ONLY_KEYS

    config = copy.deepcopy(config)
    external = stack_file_config("ext")
    config["postgres"], config["redis"] = copy.deepcopy(external["postgres"]), copy.deepcopy(external["redis"])
    for keys in CONTAINER_ONLY_KEYS.values():
        for path in keys:
            section, *rest = path.split(".")
            node = config.get(section)
            for part in rest[:-1]:
                node = node.get(part) if isinstance(node, dict) else None
            if isinstance(node, dict) and section not in ("postgres", "redis"):
                node.pop(rest[-1], None)
    return config


# An external Redis behind Sentinel, and a Redis Cluster (redis.external.sentinel, redis.external.cluster).
REDIS_TOPOLOGIES = {
    "sentinel": {"masterName": "gateway", "nodes": [{"host": "sentinel-a.example.internal"},
                                                    {"host": "sentinel-b.example.internal", "port": 26380}]},
    "cluster": {"nodes": [{"host": "cache-1.example.internal", "port": 7000}, {"host": "cache-2.example.internal"}]},
}


def with_redis_topology(config: dict[str, Any], topology: str) -> dict[str, Any]:
    """`config` (with an external Redis) with that Redis behind Sentinel or in a cluster (REDIS_TOPOLOGIES)."""
    config = copy.deepcopy(config)
    external = config["redis"]["external"]
    for key in ("host", "port"):
        external.pop(key, None)
    external[topology] = copy.deepcopy(REDIS_TOPOLOGIES[topology])
    return config


def example_config(stack: str) -> dict[str, Any]:
    """A shipped example stack file (Pulumi.<stack>.yaml at the project root): for tests that check the
    examples themselves and derive every expectation from the file."""
    return _project_config(stack, ROOT)


def run_stack(
    config: dict[str, Any], secrets: Optional[dict[str, str]] = None, stack: Optional[str] = None,
    preview: bool = False
) -> StackRun:
    """Run __main__.py under mocks with `config` (plain keys) and `secrets` (set as secret config).

    The stack is named after the config's `environment` unless `stack` says otherwise (the program
    refuses an environment that differs from the stack's name)."""
    if stack is None:
        environment = (config or {}).get("environment")
        stack = environment if isinstance(environment, str) and environment else "test"
    return run_under_mocks(
        lambda: runpy.run_path(str(MAIN), run_name="__pulumi_program__"), config, secrets, stack, preview
    )


def run_under_mocks(
    body: Callable[[], Any], config: Optional[dict[str, Any]] = None, secrets: Optional[dict[str, str]] = None,
    stack: str = "test", preview: bool = False,
) -> StackRun:
    """Run `body` (which declares resources, and may export outputs) to completion under fresh mocks."""
    return offline.run_under_mocks(body, config, secrets, stack, preview, RecordingMocks)


def walk_plain(value: Any, path: str = "") -> Iterator[tuple[str, Any]]:
    """Every leaf outside a secret wrapper, with its path (secret subtrees are skipped)."""
    if is_rpc_secret(value):
        return
    if isinstance(value, dict):
        for k, v in value.items():
            yield from walk_plain(v, f"{path}.{k}")
    elif isinstance(value, (list, tuple)):
        for i, v in enumerate(value):
            yield from walk_plain(v, f"{path}[{i}]")
    else:
        yield path, value
