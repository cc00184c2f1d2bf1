"""TEST INFRASTRUCTURE: deploy what the program declares onto the real Docker engine, as pulumi-docker would.

The Pulumi engine cannot run here (no Pulumi CLI), so this stands in for it and for pulumi-docker's
provider, and for nothing else: the program is evaluated under the mocks (tests/unit/harness.py), and
every declared network, volume and container is created with all its inputs through the Docker Engine
API (API 1.41, the `docker` SDK's low-level client), in the order the program registered them (a valid
dependency order: a resource can only use outputs of resources registered before it). The mapping
follows pulumi-docker 5 (terraform-provider-docker's resource_docker_container_funcs.go, read with
`fetch`):

- create with the image, name, command, entrypoint, env, user, labels, healthcheck (Go durations to
  nanoseconds), stop signal and timeout, exposed ports and their bindings, restart policy, capability
  add/drop as given, security options, read-only root, tmpfs, volume and bind mounts, memory (MB) and
  NanoCPUs, log driver and options, init false; on the default bridge, then disconnected from it and
  connected to each `networksAdvanced` entry with its aliases;
- each upload as a one-file tar extracted at `/` (root-owned, mode 0644, 0744 when executable), after
  create and before start, so a read-only root refuses it as Docker refuses it;
- start; if `wait`, poll health every second until healthy or `waitTimeout` (default 60 s), an image
  without a healthcheck being an error; a container that is not running afterwards is logged, not an
  error (the v4 provider records `mustRun: false` instead); env and networks keep the input's order
  (the provider's set order differs only for duplicates, which the program never declares);
- delete: `docker stop` with `destroyGraceSeconds` (0, a kill, when unset), then a forced remove with
  its anonymous volumes;
- a change of an input the provider updates in place (restart policy, memory, CPU shares) is one
  `docker update`; a change of one it only records (healthcheck, wait, timeouts, tmpfs, init, ...) does
  nothing to the container, as with the provider; any other change is a replacement, which deletes
  first unless the resource says `delete_before_replace=False` (pulumi-docker's provider asks for
  delete-before-replace on containers); create-before-delete replacements delete the old ones after
  every create, dependents first, as Pulumi does.

Only `image` is mapped, to its stand-in (tests/engine/images.py). An input this harness cannot apply
faithfully is an error (`NotApplied`), never dropped. Declared `command:local` commands (the model pulls
on a dev host: `docker exec` into the Ollama container) run as the command provider runs them. Vault
policies and KV secrets are written to the stack's own dev Vault container when the stack runs one.
"""

from __future__ import annotations

import hashlib
import io
import json
import re
import subprocess
import tarfile
import time
from dataclasses import dataclass, field
from typing import Any, Callable, Optional


from operations.offline import StackRun, unwrap_all

CONTAINER = "docker:index/container:Container"
NETWORK = "docker:index/network:Network"
VOLUME = "docker:index/volume:Volume"
IMAGE = "docker:index/remoteImage:RemoteImage"
COMMAND = "command:local:Command"
VAULT_POLICY = "vault:index/policy:Policy"
VAULT_KV = "vault:kv/secretV2:SecretV2"
VAULT_PROVIDER = "pulumi:providers:vault"
DYNAMIC = "pulumi-python:dynamic:Resource"

# Container inputs this harness applies (pulumi-docker property names). Anything else is NotApplied.
APPLIED = {
    "name", "image", "command", "entrypoints", "envs", "user", "labels", "healthcheck", "stopSignal",
    "stopTimeout", "ports", "restart", "maxRetryCount", "capabilities", "securityOpts", "readOnly", "tmpfs",
    "mounts", "memory", "cpus", "logDriver", "logOpts", "networksAdvanced", "uploads", "wait", "waitTimeout",
    "mustRun", "start", "destroyGraceSeconds", "init",
}
# Changed in place by one ContainerUpdate (the provider's Update), or only recorded in state.
UPDATED_IN_PLACE = {"restart", "maxRetryCount", "memory", "memoryReservation", "memorySwap", "cpuShares", "cpuSet"}
STATE_ONLY = {"wait", "waitTimeout", "mustRun", "start", "destroyGraceSeconds", "healthcheck", "tmpfs", "init",
              "rm", "attach", "logs", "removeVolumes", "containerReadRefreshTimeoutMilliseconds"}
NETWORK_APPLIED = {"name", "driver", "labels", "internal", "attachable", "options"}
VOLUME_APPLIED = {"name", "driver", "labels", "driverOpts"}


class NotApplied(AssertionError):
    """A declared input the harness cannot apply as pulumi-docker would: the test fails on it."""


class DeployFailed(AssertionError):
    """What pulumi-docker would have reported as a failed create (with the container's log)."""


_DURATION = re.compile(r"(\d+(?:\.\d+)?)(ns|us|µs|ms|s|m|h)")
_UNIT_NS = {"ns": 1, "us": 1_000, "µs": 1_000, "ms": 1_000_000, "s": 1_000_000_000, "m": 60_000_000_000,
            "h": 3_600_000_000_000}


def go_duration_ns(value: Optional[str]) -> int:
    """Go's time.ParseDuration in nanoseconds ("1m30s"); like the provider, an unparsable value is 0."""
    if not value:
        return 0
    parts = _DURATION.findall(value)
    if not parts or "".join(n + u for n, u in parts) != value:
        return 0
    return int(sum(float(n) * _UNIT_NS[u] for n, u in parts))


def upload_tar(file: str, content: bytes, executable: bool = False, permissions: Optional[str] = None) -> bytes:
    """The provider's upload: one tar entry named `file` (as given), root-owned, mode 0644 or 0744."""
    mode = int(permissions, 8) if permissions else (0o744 if executable else 0o644)
    data = io.BytesIO()
    with tarfile.open(fileobj=data, mode="w") as archive:
        info = tarfile.TarInfo(name=file)
        info.size, info.mode, info.mtime = len(content), mode, int(time.time())
        archive.addfile(info, io.BytesIO(content))
    return data.getvalue()


@dataclass
class Created:
    kind: str          # "network" | "volume" | "container"
    logical: str       # the Pulumi resource name
    name: str          # the Docker object's name
    inputs: dict
    dbr: bool = True   # delete before replace


@dataclass
class Deployment:
    """The objects one stack evaluation declared, as created on the engine (`up`), and their removal."""

    client: Any                                   # docker.DockerClient
    image_for: Callable[[str], str]               # declared image reference -> stand-in tag
    created: dict[str, Created] = field(default_factory=dict)
    pending_deletes: list[Created] = field(default_factory=list)
    log: list[str] = field(default_factory=list)  # what was done, in order (for order assertions)
    command_runner: Optional[Callable[[dict], subprocess.CompletedProcess]] = None

    @property
    def api(self):
        return self.client.api

    # --- the stack -------------------------------------------------------------------------------------
    def up(self, run: StackRun, only: Optional[Callable[[str, str], bool]] = None) -> "Deployment":
        """Create (or replace, or leave) every declared object of `run`, in registration order.

        `only(type, logical_name)` limits the deployment to some resources (the rest are not created
        and must not be needed by those that are)."""
        images = {f"sha256:{hashlib.sha256(r.name.encode()).hexdigest()}": unwrap_all(r.inputs)["name"]
                  for r in run.resources if r.type == IMAGE}
        for resource in run.resources:
            if only is not None and not only(resource.type, resource.name):
                continue
            inputs = unwrap_all(resource.inputs)
            if resource.type == NETWORK:
                self._ensure("network", resource.name, inputs, lambda: self._network(inputs))
            elif resource.type == VOLUME:
                self._ensure("volume", resource.name, inputs, lambda: self._volume(inputs))
            elif resource.type == CONTAINER:
                reference = images.get(inputs["image"])
                if reference is None:
                    raise NotApplied(f"{resource.name}: image {inputs['image']} is not a declared RemoteImage")
                options = run.mocks.options_of(resource.name)
                dbr = options.delete_before_replace is not False  # the provider's default: delete first
                self._ensure("container", resource.name, inputs,
                             lambda: self._container(resource.name, inputs, self.image_for(reference)), dbr=dbr)
            elif resource.type == COMMAND:
                self._ensure("command", resource.name, inputs, lambda: self._command(resource.name, inputs))
            elif resource.type == VAULT_PROVIDER and vault_container_declared(run):
                self.vault = {"address": inputs["address"], "token": inputs["token"]}
            elif resource.type in (VAULT_POLICY, VAULT_KV):
                self._vault_write(run, resource.type, resource.name, inputs)
            elif resource.type == DYNAMIC:
                self._ensure("dynamic", resource.name, inputs, lambda: self._dynamic(resource.name, inputs))
        for old in reversed(self.pending_deletes):  # create-before-delete: the old ones go last, dependents first
            self._delete(old)
        self.pending_deletes = []
        return self

    def _ensure(self, kind: str, logical: str, inputs: dict, create: Callable[[], str], dbr: bool = True) -> None:
        key = f"{kind}:{logical}"
        old = self.created.get(key)
        if old is not None and old.inputs == inputs:
            return
        if old is not None and kind == "container":
            changed = {k for k in set(old.inputs) | set(inputs) if old.inputs.get(k) != inputs.get(k)}
            if changed <= UPDATED_IN_PLACE | STATE_ONLY:
                if changed & UPDATED_IN_PLACE:
                    self._update(old.name, inputs)
                self.created[key] = Created(kind, logical, old.name, inputs, dbr)
                return
        if old is not None and kind in ("command", "dynamic"):  # their create runs again on a replacement
            pass
        elif old is not None and dbr:
            self._delete(old)
        elif old is not None:
            self.pending_deletes.append(old)
        name = create()
        self.created[key] = Created(kind, logical, name, inputs, dbr)

    def down(self) -> list[str]:
        """Delete everything this deployment created, dependents first (reverse creation order); returns
        what could not be deleted (every object is tried, also after a failure)."""
        failed = []
        for item in reversed([*self.created.values(), *self.pending_deletes]):
            try:
                self._delete(item)
            except Exception as error:  # noqa: BLE001 - keep removing the rest
                failed.append(f"{item.kind} {item.name}: {error}")
        self.created.clear()
        self.pending_deletes.clear()
        return failed

    def _update(self, name: str, inputs: dict) -> None:
        """The provider's Update: one ContainerUpdate with the restart policy and the resources."""
        self.api.update_container(
            name, restart_policy={"Name": inputs.get("restart", "no"),
                                  "MaximumRetryCount": int(inputs.get("maxRetryCount", 0))},
            mem_limit=int(inputs["memory"]) * 1024 * 1024 if inputs.get("memory") else None,
            cpu_shares=int(inputs["cpuShares"]) if inputs.get("cpuShares") else None)
        self.log.append(f"update container {name}")

    # --- networks and volumes --------------------------------------------------------------------------
    def _network(self, inputs: dict) -> str:
        extra = set(inputs) - NETWORK_APPLIED
        if extra:
            raise NotApplied(f"network {inputs.get('name')}: inputs {sorted(extra)} are not applied by the harness")
        labels = {item["label"]: item["value"] for item in inputs.get("labels", [])}
        self.api.create_network(inputs["name"], driver=inputs.get("driver"), labels=labels or None,
                                internal=bool(inputs.get("internal")), attachable=bool(inputs.get("attachable")),
                                options=inputs.get("options") or None, check_duplicate=True,
                                ipam={"Driver": "default", "Config": [], "Options": None})
        self.log.append(f"create network {inputs['name']}")
        return inputs["name"]

    def _volume(self, inputs: dict) -> str:
        extra = set(inputs) - VOLUME_APPLIED
        if extra:
            raise NotApplied(f"volume {inputs.get('name')}: inputs {sorted(extra)} are not applied by the harness")
        labels = {item["label"]: item["value"] for item in inputs.get("labels", [])}
        self.api.create_volume(inputs["name"], driver=inputs.get("driver") or "local",
                               driver_opts=inputs.get("driverOpts") or None, labels=labels or None)
        self.log.append(f"create volume {inputs['name']}")
        return inputs["name"]

    # --- containers ------------------------------------------------------------------------------------
    def _container(self, logical: str, inputs: dict, image: str) -> str:
        extra = set(inputs) - APPLIED
        if extra:
            raise NotApplied(f"{logical}: inputs {sorted(extra)} are not applied by the harness")
        name = inputs["name"]
        config = self._create_config(logical, inputs, image)
        created = self.api.create_container(name=name, **config)
        cid = created["Id"]
        self.log.append(f"create container {name}")
        try:
            networks = inputs.get("networksAdvanced") or []
            if networks:
                try:
                    self.api.disconnect_container_from_network(cid, "bridge")
                except Exception as error:  # noqa: BLE001 - as the provider: only "not connected" is fine
                    if "is not connected to the network bridge" not in str(error):
                        raise
                for network in networks:
                    if set(network) - {"name", "aliases"}:
                        raise NotApplied(f"{logical}: networksAdvanced {sorted(set(network) - {'name', 'aliases'})}")
                    self.api.connect_container_to_network(cid, network["name"], aliases=network.get("aliases") or None)
            for upload in inputs.get("uploads") or []:
                unknown = set(upload) - {"file", "content", "executable", "permissions"}
                if unknown:  # contentBase64, source: not declared by the program
                    raise NotApplied(f"{logical}: upload fields {sorted(unknown)}")
                body = upload_tar(upload["file"], upload["content"].encode(), bool(upload.get("executable")),
                                  upload.get("permissions"))
                try:
                    self.api.put_archive(cid, "/", body)
                except Exception as error:  # noqa: BLE001
                    raise DeployFailed(f"{logical}: Unable to upload volume content: {error}") from error
            if inputs.get("start", True):
                self.api.start(cid)
                self.log.append(f"start container {name}")
                if inputs.get("wait"):
                    self._wait_healthy(logical, cid, float(inputs.get("waitTimeout", 60)))
                if inputs.get("mustRun", True):
                    self._must_run(logical, cid)
        except Exception:
            self.created[f"container:{logical}"] = Created("container", logical, name, inputs)
            raise
        return name

    def _create_config(self, logical: str, inputs: dict, image: str) -> dict:
        ports = inputs.get("ports") or []
        for port in ports:
            if set(port) - {"internal", "external", "ip", "protocol"}:
                raise NotApplied(f"{logical}: ports fields {sorted(set(port) - {'internal', 'external', 'ip', 'protocol'})}")
        port_keys = [(int(p["internal"]), p.get("protocol", "tcp")) for p in ports]  # ExposedPorts "8080/tcp"
        bindings = {f"{int(p['internal'])}/{p.get('protocol', 'tcp')}":
                    [(p.get("ip", "0.0.0.0"), str(int(p.get("external", 0))))] for p in ports}
        mounts = []
        from docker.types import Mount

        for mount in inputs.get("mounts") or []:
            unknown = set(mount) - {"target", "type", "source", "readOnly"}
            if unknown:  # volumeOptions fails on API 1.41 in the provider too; bindOptions/tmpfsOptions: not here
                raise NotApplied(f"{logical}: mount fields {sorted(unknown)}")
            mounts.append(Mount(target=mount["target"], source=mount.get("source"), type=mount["type"],
                                read_only=bool(mount.get("readOnly"))))
        capabilities = inputs.get("capabilities") or {}
        log_config = None
        if inputs.get("logDriver") or inputs.get("logOpts"):
            log_config = {"Type": inputs.get("logDriver") or "", "Config": inputs.get("logOpts") or {}}
        cpus = inputs.get("cpus")
        host_config = self.api.create_host_config(
            port_bindings=bindings or None,
            restart_policy={"Name": inputs.get("restart", "no"), "MaximumRetryCount": int(inputs.get("maxRetryCount", 0))},
            cap_add=capabilities.get("adds") or None,
            cap_drop=capabilities.get("drops") or None,
            security_opt=inputs.get("securityOpts") or None,
            read_only=bool(inputs.get("readOnly")),
            tmpfs=inputs.get("tmpfs") or None,
            mounts=mounts or None,
            mem_limit=int(inputs["memory"]) * 1024 * 1024 if inputs.get("memory") else None,
            nano_cpus=int(round(float(cpus) * 1e9)) if cpus else None,
            log_config=log_config,
            init=bool(inputs.get("init", False)),
            network_mode="bridge",
        )
        healthcheck = None
        if inputs.get("healthcheck"):
            check = inputs["healthcheck"]
            unknown = set(check) - {"tests", "interval", "timeout", "startPeriod", "retries"}
            if unknown:  # startInterval: API 1.44+, not applied on this engine
                raise NotApplied(f"{logical}: healthcheck fields {sorted(unknown)}")
            healthcheck = {"test": check["tests"], "interval": go_duration_ns(check.get("interval")),
                           "timeout": go_duration_ns(check.get("timeout")),
                           "start_period": go_duration_ns(check.get("startPeriod")),
                           "retries": int(check.get("retries", 0))}
        config: dict[str, Any] = {
            "image": image,
            "command": inputs.get("command") or None,
            "entrypoint": inputs.get("entrypoints") or None,
            "environment": inputs.get("envs") or None,
            "user": inputs.get("user") or None,
            "labels": {item["label"]: item["value"] for item in inputs.get("labels", [])} or None,
            "healthcheck": healthcheck,
            "stop_signal": inputs.get("stopSignal") or None,
            "ports": port_keys or None,
            "host_config": host_config,
        }
        if inputs.get("stopTimeout"):
            config["stop_timeout"] = int(inputs["stopTimeout"])
        return config

    def _logs(self, cid: str) -> str:
        try:
            return self.api.logs(cid, tail=60).decode(errors="replace")
        except Exception:  # noqa: BLE001
            return "(no log)"

    def _wait_healthy(self, logical: str, cid: str, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while True:
            state = self.api.inspect_container(cid)["State"]
            health = state.get("Health")
            if health is None:
                raise DeployFailed(f"{logical}: you have supplied a 'wait' argument, but the container does not "
                                   "have a healthcheck defined")
            if health.get("Status") == "healthy":
                self.log.append(f"healthy container {self.api.inspect_container(cid)['Name'].lstrip('/')}")
                return
            if time.monotonic() > deadline:
                probes = "\n".join(f"  {p.get('ExitCode')}: {p.get('Output', '').strip()[:300]}"
                                   for p in (health.get("Log") or [])[-3:])
                raise DeployFailed(f"{logical}: container failed to be in healthy state within {timeout:.0f} s "
                                   f"(status {health.get('Status')}, running {state.get('Running')})\n"
                                   f"last probes:\n{probes}\nlog:\n{self._logs(cid)}")
            time.sleep(1)

    def _must_run(self, logical: str, cid: str) -> None:
        state = self.api.inspect_container(cid)["State"]
        if not state.get("Running"):  # the v4 provider records mustRun: false; the tests assert running
            self.log.append(f"not running container {logical} (exit {state.get('ExitCode')})")

    def _delete(self, item: Created) -> None:
        if item.kind in ("command", "dynamic"):
            return  # nothing on the engine to remove (the containers they act on go with their own delete)
        if item.kind == "container":
            try:
                grace = int(item.inputs.get("destroyGraceSeconds") or 0)
                self.api.stop(item.name, timeout=grace)
                self.log.append(f"stop container {item.name}")
                self.api.remove_container(item.name, v=True, force=True)
                self.log.append(f"remove container {item.name}")
            except Exception as error:  # noqa: BLE001
                if "No such container" not in str(error) and "404" not in str(error):
                    raise
        elif item.kind == "network":  # the provider retries "has active endpoints"
            self._remove_retrying(lambda: self.api.remove_network(item.name), f"network {item.name}",
                                  gone=("No such network", "not found"), busy="active endpoints")
        elif item.kind == "volume":  # and "volume is in use"
            self._remove_retrying(lambda: self.api.remove_volume(item.name, force=True), f"volume {item.name}",
                                  gone=("no such volume",), busy="in use")

    def _remove_retrying(self, remove: Callable[[], Any], what: str, gone: tuple[str, ...], busy: str) -> None:
        for _ in range(15):
            try:
                remove()
                break
            except Exception as error:  # noqa: BLE001
                text = str(error)
                if any(marker.lower() in text.lower() for marker in gone):
                    break
                if busy not in text:
                    raise
                time.sleep(2)
        else:
            raise DeployFailed(f"{what} is still {busy!r} after 30 s")
        self.log.append(f"remove {what}")

    # --- commands and Vault --------------------------------------------------------------------------
    def _command(self, logical: str, inputs: dict) -> str:
        unknown = set(inputs) - {"create", "environment", "stdin", "triggers", "interpreter", "dir", "logging",
                                 "update", "delete"}
        if unknown:
            raise NotApplied(f"{logical}: command inputs {sorted(unknown)}")
        import os

        env = {**os.environ, **(inputs.get("environment") or {})}
        interpreter = inputs.get("interpreter") or ["/bin/sh", "-c"]
        done = subprocess.run([*interpreter, inputs["create"]], input=inputs.get("stdin"), env=env,
                              cwd=inputs.get("dir"), capture_output=True, text=True, timeout=600)
        self.log.append(f"command {logical} exit {done.returncode}")
        if done.returncode != 0:
            raise DeployFailed(f"{logical}: exit {done.returncode}\n{done.stdout[-2000:]}\n{done.stderr[-2000:]}")
        self.outputs = getattr(self, "outputs", {})
        self.outputs[logical] = done.stdout
        return logical

    def _dynamic(self, logical: str, inputs: dict) -> str:
        """A dynamic resource's create, as Pulumi's dynamic-provider host runs it: the provider unpickled
        (dill) from its `__provider` input, given the other inputs (access objects, observed models)."""
        import base64

        import dill

        provider = dill.loads(base64.b64decode(inputs["__provider"]))
        props = {k: v for k, v in inputs.items() if k != "__provider"}
        result = provider.create(props)
        self.outputs = getattr(self, "outputs", {})
        self.outputs[logical] = result.outs
        self.log.append(f"dynamic {logical}")
        return logical

    def _vault_write(self, run: StackRun, typ: str, logical: str, inputs: dict) -> None:
        """Write a declared Vault object through the Vault API, as the Vault provider would."""
        vault = getattr(self, "vault", None)
        if vault is None:
            return  # no Vault on the engine for this deployment (the loopback tests cover it)
        import httpx

        if typ == VAULT_POLICY:
            response = httpx.put(f"{vault['address']}/v1/sys/policies/acl/{inputs['name']}",
                                 headers={"X-Vault-Token": vault["token"]}, json={"policy": inputs["policy"]},
                                 timeout=10)
        else:
            response = httpx.post(f"{vault['address']}/v1/{inputs['mount']}/data/{inputs['name']}",
                                  headers={"X-Vault-Token": vault["token"]},
                                  json={"data": json.loads(inputs["dataJson"])}, timeout=10)
        if response.status_code >= 300:
            raise DeployFailed(f"{logical}: Vault answered {response.status_code}: {response.text[:300]}")
        self.log.append(f"vault {logical}")


def vault_container_declared(run: StackRun) -> bool:
    """Whether the stack runs its own dev Vault container (then the harness writes Vault objects to it)."""
    return any(r.type == CONTAINER and r.name.startswith("vault-") for r in run.resources)
