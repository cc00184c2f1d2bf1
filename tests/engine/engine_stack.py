"""A stack evaluated under the mocks and deployed on the real engine (tests/engine/deploy.py), for tests.

`engine_config` moves a stack file's published ports to free ones on 127.0.0.1 and fits CPU limits to this machine
(Docker refuses a limit above the host's CPU count: "Range of CPUs is from 0.01 to 2.00"; the dev
Ollama container's default is 4). `deployed` creates everything the program declares but Grafana, and
removes it all afterwards, also when a test fails.
"""

from __future__ import annotations

import contextlib
import datetime
import os
from typing import Iterator

import httpx

from deploy import Deployment
from harness import run_stack, unwrap_all
from images import NO_STANDIN, standin_name
from servers import free_port

EXCLUDED = {"monitoring-grafana": NO_STANDIN["grafana/grafana"]}
# Linux capability numbers (linux/capability.h), to name the bits of /proc/<pid>/status.
CAPABILITIES = ("CHOWN DAC_OVERRIDE DAC_READ_SEARCH FOWNER FSETID KILL SETGID SETUID SETPCAP LINUX_IMMUTABLE "
                "NET_BIND_SERVICE NET_BROADCAST NET_ADMIN NET_RAW IPC_LOCK IPC_OWNER SYS_MODULE SYS_RAWIO "
                "SYS_CHROOT SYS_PTRACE SYS_PACCT SYS_ADMIN SYS_BOOT SYS_NICE SYS_RESOURCE SYS_TIME "
                "SYS_TTY_CONFIG MKNOD LEASE AUDIT_WRITE AUDIT_CONTROL SETFCAP MAC_OVERRIDE MAC_ADMIN SYSLOG "
                "WAKE_ALARM BLOCK_SUSPEND AUDIT_READ PERFMON BPF CHECKPOINT_RESTORE").split()


def bounding_set(pid: int) -> set[str]:
    """The capability bounding set of a process, by name (what --cap-drop/--cap-add left it)."""
    with open(f"/proc/{pid}/status") as status:
        mask = int(next(line for line in status if line.startswith("CapBnd:")).split()[1], 16)
    return {name for bit, name in enumerate(CAPABILITIES) if mask >> bit & 1}
PROMETHEUS_USER = "prometheus"


def engine_config(raw: dict) -> dict:
    # Published on this machine's loopback (prod binds its gateway host's private address).
    raw["gateway"]["bindAddress"] = "127.0.0.1"
    raw["monitoring"]["bindAddress"] = "127.0.0.1"
    raw["gateway"]["port"] = free_port()
    if raw.get("vault", {}).get("mode") == "dev-container":
        raw["vault"]["devPort"] = free_port()
    raw["monitoring"]["prometheusPort"] = free_port()
    raw["monitoring"]["grafanaPort"] = free_port()
    cpus = min(4, os.cpu_count() or 1)
    raw.setdefault("containers", {}).setdefault("limits", {})["ollamaDev"] = {"memoryMb": 8192, "cpus": cpus}
    raw["gateway"]["cpus"] = min(float(raw["gateway"].get("cpus", 2)), cpus)
    return raw


class StackOnEngine:
    def __init__(self, run, deployment: Deployment, raw: dict, client, stack: str):
        self.run, self.deployment, self.raw, self.client, self.stack = run, deployment, raw, client, stack
        self.only = lambda typ, name: name not in EXCLUDED
        self.gateway = f"http://127.0.0.1:{raw['gateway']['port']}"
        self.prometheus = f"http://127.0.0.1:{raw['monitoring']['prometheusPort']}"

    def inputs(self, logical: str) -> dict:
        return unwrap_all(self.run.mocks.named(logical).inputs)

    def env(self, logical: str) -> dict[str, str]:
        return dict(item.split("=", 1) for item in self.inputs(logical).get("envs", []))

    @property
    def master_key(self) -> str:
        return self.env("gateway-litellm-0")["LITELLM_MASTER_KEY"]

    def container(self, logical: str):
        return self.client.containers.get(self.inputs(logical)["name"])

    def declared_containers(self) -> list[str]:
        return [r.name for r in self.run.resources if r.type == "docker:index/container:Container"
                and r.name not in EXCLUDED]

    def apply(self, raw: dict) -> list[str]:
        """Evaluate `raw` and deploy it over what runs (an `up` of a config change): what it did."""
        before = len(self.deployment.log)
        self.raw, self.run = raw, run_stack(raw, stack=self.stack)
        self.deployment.up(self.run, only=self.only)
        return self.deployment.log[before:]


def leftovers(client, stack: str) -> list[str]:
    """Containers, networks and volumes of `stack` still on the engine (names start litellm-gateway-<stack>-)."""
    prefix = f"litellm-gateway-{stack}-"
    found = [f"container {c.name}" for c in client.containers.list(all=True) if c.name.startswith(prefix)]
    found += [f"network {n.name}" for n in client.networks.list() if n.name.startswith(prefix)]
    found += [f"volume {v.name}" for v in client.volumes.list() if v.name.startswith(prefix)]
    return found


@contextlib.contextmanager
def deployed(client, standin_images: dict[str, str], raw: dict, stack: str,
             left_out_types: frozenset[str] = frozenset()) -> Iterator[StackOnEngine]:
    """Deploy everything `raw` declares but EXCLUDED and `left_out_types`; afterwards delete it all and
    check that nothing of the stack is left on the engine (also when the test failed)."""
    run = run_stack(raw, stack=stack)
    deployment = Deployment(client, image_for=lambda ref: standin_images[standin_name(ref)])
    only = lambda typ, name: name not in EXCLUDED and typ not in left_out_types  # noqa: E731
    try:
        deployment.up(run, only=only)
        stack_on_engine = StackOnEngine(run, deployment, raw, client, stack)
        stack_on_engine.only = only
        yield stack_on_engine
    finally:
        failed = deployment.down()
        left = leftovers(client, stack)
        assert not failed and not left, f"not removed: {failed} {left}"


def chat(stack: StackOnEngine, key: str, stream: bool = False, content: str = "hello",
         timeout: float = 60) -> httpx.Response:
    return httpx.post(f"{stack.gateway}/v1/chat/completions", headers={"Authorization": f"Bearer {key}"},
                      json={"model": "qwen-small", "messages": [{"role": "user", "content": content}],
                            "stream": stream}, timeout=timeout)


def backup_minutes(lead_seconds: int = 0) -> list[str]:
    """Two HH:MM (UTC) times in the coming minutes, for the backup scheduler."""
    start = datetime.datetime.now(datetime.timezone.utc) + datetime.timedelta(seconds=lead_seconds)
    return [(start + datetime.timedelta(minutes=m)).strftime("%H:%M") for m in (1, 2)]
