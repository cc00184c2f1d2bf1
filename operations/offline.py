"""Evaluate the program without Pulumi, Docker, Vault or GPU hosts: the offline half of a preview.

`run_program` executes __main__.py the way the Pulumi CLI would, but against `RecordingMocks`, which
stand in for the engine and the providers: every resource the program declares is recorded with
its inputs (secret inputs stay wrapped, so one can see which values Pulumi would encrypt), provider
outputs are invented (placeholders, never real secrets), and the stack outputs are resolved. Used by
`scripts/stack check` (operations/stack_check.py) and by the unit tests (tests/unit/harness.py).
Nothing here is part of what a stack deploys.
"""

from __future__ import annotations

import copy
import hashlib
import json
import runpy
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Optional

import pulumi
from pulumi.runtime import settings as runtime_settings
from pulumi.runtime.rpc import is_rpc_secret, unwrap_rpc_secret, wrap_rpc_secret
from pulumi.runtime.stack import run_pulumi_func
from pulumi.runtime.sync_await import _sync_await

from config.names import PROJECT

ROOT = Path(__file__).resolve().parents[1]
MAIN = ROOT / "__main__.py"


@dataclass
class Recorded:
    type: str
    name: str
    inputs: dict[str, Any]  # secret values wrapped as Pulumi's RPC secrets
    provider: str
    options: dict[str, Any] = field(default_factory=dict)

    def plain(self, key: str, default: Any = None) -> Any:
        """An input with secret wrappers removed (for assertions on values)."""
        return unwrap_all(self.inputs.get(key, default))

    def plain_inputs(self) -> dict[str, Any]:
        """Every input with secret wrappers removed."""
        return unwrap_all(self.inputs)

    def is_secret(self, key: str) -> bool:
        return is_rpc_secret(self.inputs.get(key))


def unwrap_all(value: Any) -> Any:
    value = unwrap_rpc_secret(value)
    if isinstance(value, dict):
        return {k: unwrap_all(v) for k, v in value.items()}
    if isinstance(value, list):
        return [unwrap_all(v) for v in value]
    return value


class RecordingMocks(pulumi.runtime.Mocks):
    """Stands in for the Pulumi engine and providers: records inputs, invents provider outputs.

    Every value it invents for a secret contains `marker`, so a scan can find leaks."""

    marker = "OFFLINE-PLACEHOLDER"

    def __init__(self):
        self.resources: list[Recorded] = []
        self.options: dict[tuple[str, str], pulumi.ResourceOptions] = {}
        self._names: set[tuple[str, str]] = set()
        self.calls: list[tuple[str, dict[str, Any]]] = []  # (function token, arguments) of every invoke

    def new_resource(self, args: pulumi.runtime.MockResourceArgs):
        key = (args.typ, args.name)
        # The real engine rejects two resources with one URN; the mock monitor does not.
        assert key not in self._names, f"duplicate resource {key}"
        self._names.add(key)
        self.resources.append(Recorded(args.typ, args.name, copy.deepcopy(args.inputs), args.provider or ""))
        state = dict(args.inputs)
        digest = hashlib.sha256(args.name.encode()).hexdigest()
        if args.typ == "random:index/randomPassword:RandomPassword":
            length = int(unwrap_all(args.inputs.get("length", 32)))
            value = (self.marker + digest)[:length].ljust(length, "x")
            state["result"] = wrap_rpc_secret(value)
            # The provider's bcrypt_hash output: a real hash (tests hand it to Prometheus), with a fixed
            # salt so that two runs of one config declare identical inputs, as the provider's state does.
            import bcrypt

            state["bcryptHash"] = wrap_rpc_secret(bcrypt.hashpw(value.encode(), b"$2b$04$VhE.85Y1Y7NNUOJaI78oW.").decode())
        elif args.typ == "random:index/randomId:RandomId":
            # The provider draws new bytes exactly when the keepers change (a replacement): derive them
            # from name and keepers, so the same inputs give the same id and new keepers a new one.
            drawn = hashlib.sha256((args.name + json.dumps(unwrap_all(args.inputs.get("keepers")), sort_keys=True))
                                   .encode()).hexdigest()
            state["hex"] = drawn[: 2 * int(unwrap_all(args.inputs.get("byteLength", 8)))]
        elif args.typ == "tls:index/privateKey:PrivateKey":
            # Placeholders of the provider's outputs (offline: no key is generated).
            state["privateKeyOpenssh"] = wrap_rpc_secret(
                f"-----BEGIN OPENSSH PRIVATE KEY-----\n{self.marker}{digest}\n-----END OPENSSH PRIVATE KEY-----\n")
            state["publicKeyOpenssh"] = f"ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAA{digest[:43]}\n"
        elif args.typ == "vault:kv/secretV2:SecretV2":
            state["metadata"] = {"version": "1", "created_time": "2026-11-26T00:00:00Z"}
            state["path"] = f"{unwrap_all(args.inputs['mount'])}/data/{unwrap_all(args.inputs['name'])}"
        elif args.typ == "pulumi-python:dynamic:Resource" and "expected" in args.inputs:
            # OllamaHostModels: the host has exactly what is expected (drift is tested for real over SSH).
            expected = unwrap_all(args.inputs["expected"])
            state["models"] = {name: {"tag": want["tag"], "digest": (want["digest"] or "0123456789ab")[:12],
                                      "size": "4.9GB"} for name, want in expected.items()}
            state["missing"], state["mismatched"], state["status"] = [], [], "in-sync"
        elif args.typ == "pulumi-python:dynamic:Resource" and "spec" in args.inputs:
            # LiteLLMObject: the gateway holds exactly what is declared (tested for real in database mode).
            state["observed"] = unwrap_all(args.inputs["spec"])
            state["exists"], state["status"] = True, "in-sync"
            if unwrap_all(args.inputs.get("kind")) == "key":  # the value in use: the generated one
                state["value"] = args.inputs.get("ident")
        elif args.typ == "docker:index/remoteImage:RemoteImage":
            state["imageId"] = f"sha256:{digest}"
            state["repoDigest"] = f"{unwrap_all(args.inputs['name'])}@sha256:{digest}"
        return f"{args.name}-id", state

    def call(self, args: pulumi.runtime.MockCallArgs):
        self.calls.append((args.token, dict(args.args)))
        if args.token == "vault:kv/getSecretV2:getSecretV2":
            # Test double for Vault's KV read: the secret holds every field the stack's settings name
            # for it, each a marked fake of the right shape (a secret no setting names has none).
            mount, path = args.args.get("mount"), args.args.get("name")
            return {"data": {name: self._fake_vault_value(kind) for name, kind in vault_fields_named(mount, path).items()},
                    "mount": mount, "name": path}
        return {}

    def _fake_vault_value(self, kind: str) -> str:
        if kind == "database-url":   # a marked fake of an external database's URL, of the right shape
            return f"postgresql://litellm:{self.marker}-vault-database-password@db.example.internal:5432/litellm"
        if kind == "password":
            return f"{self.marker}-vault-redis-password"
        pem, label = {"ssh": ("OPENSSH PRIVATE KEY", "vault-ssh-key"), "certificate": ("CERTIFICATE", "vault-tls-certificate"),
                      "key": ("PRIVATE KEY", "vault-tls-key")}[kind]
        return f"-----BEGIN {pem}-----\n{self.marker}-{label}\n-----END {pem}-----\n"

    def of_type(self, type_suffix: str) -> list[Recorded]:
        return [r for r in self.resources if r.type.endswith(type_suffix)]

    def options_of(self, name: str) -> pulumi.ResourceOptions:
        matches = [opts for (_, n), opts in self.options.items() if n == name]
        assert len(matches) == 1, f"expected options for one resource named {name}, found {len(matches)}"
        return matches[0]

    def depends_on_names(self, name: str) -> set[str]:
        return {dep._name for dep in (self.options_of(name).depends_on or [])}

    def named(self, name: str) -> Recorded:
        matches = [r for r in self.resources if r.name == name]
        assert len(matches) == 1, f"expected one resource named {name}, found {len(matches)}"
        return matches[0]


def vault_fields_named(mount: str, path: str) -> dict[str, str]:
    """{field: kind} of every field the stack's config (as set in the runtime) reads from the Vault
    secret `mount`/`path`: the GPU hosts' SSH key, the load balancer's certificate and key, an external
    database's URLs and an external Redis' password."""
    from pydantic import ValidationError

    from config.sections.data import VaultPasswordRef, VaultUrlRef
    from config.sections.vault import TlsVaultRef, VaultFieldRef
    from pulumi.runtime import config as runtime_config

    def section(key: str) -> dict:
        value = runtime_config.CONFIG.get().get(f"{PROJECT}:{key}")
        try:
            value = json.loads(value) if isinstance(value, str) else value
        except json.JSONDecodeError:
            return {}
        return value if isinstance(value, dict) else {}

    refs: list[tuple[Any, dict[str, str]]] = []
    ssh_ref = section("gpuSsh").get("privateKeyVault")
    # The load balancer's certificate (Docker platform) and the Ingress's (Kubernetes platform).
    tls_sources = ((section("gateway").get("loadBalancer") or {}).get("tls") or {},
                   (section("kubernetes").get("ingress") or {}).get("tls") or {})
    try:
        if isinstance(ssh_ref, dict):
            ref = VaultFieldRef.model_validate(ssh_ref)
            refs.append((ref, {ref.field: "ssh"}))
        for tls in tls_sources:
            if isinstance(tls, dict) and isinstance(tls.get("vault"), dict):
                ref = TlsVaultRef.model_validate(tls["vault"])
                refs.append((ref, {ref.certificate_field: "certificate", ref.key_field: "key"}))
        external_pg = section("postgres").get("external") or {}
        for key in ("urlVault", "readReplicaUrlVault"):
            if isinstance(external_pg, dict) and isinstance(external_pg.get(key), dict):
                ref = VaultUrlRef.model_validate(external_pg[key])
                refs.append((ref, {ref.field: "database-url"}))
        external_redis = section("redis").get("external") or {}
        if isinstance(external_redis, dict) and isinstance(external_redis.get("passwordVault"), dict):
            ref = VaultPasswordRef.model_validate(external_redis["passwordVault"])
            refs.append((ref, {ref.field: "password"}))
    except ValidationError:
        return {}  # the settings report it; the program stops before any read
    fields: dict[str, str] = {}
    for ref, named in refs:
        if (ref.mount, ref.path) == (mount, path):
            fields.update(named)
    return fields


@dataclass
class StackRun:
    mocks: RecordingMocks
    outputs: dict[str, Any]
    secret_outputs: set[str]

    @property
    def resources(self) -> list[Recorded]:
        return self.mocks.resources




def run_under_mocks(
    body: Callable[[], Any], config: Optional[dict[str, Any]] = None, secrets: Optional[dict[str, str]] = None,
    stack: str = "test", preview: bool = False, mocks_class: type = RecordingMocks,
) -> StackRun:
    """Run `body` (which declares resources, and may export outputs) to completion under fresh mocks."""
    mocks = mocks_class()
    runtime_settings.ROOT.set(None)  # a fresh root Stack resource for each run
    pulumi.runtime.set_mocks(mocks, project=PROJECT, stack=stack, preview=preview)
    flat = {f"{PROJECT}:{k}": (v if isinstance(v, str) else json.dumps(v)) for k, v in (config or {}).items()}
    flat.update({f"{PROJECT}:{k}": v for k, v in (secrets or {}).items()})
    pulumi.runtime.set_all_config(flat, [f"{PROJECT}:{k}" for k in (secrets or {})])

    resolved: dict[str, Any] = {}
    secret_outputs: set[str] = set()

    def record_options(args: pulumi.ResourceTransformationArgs):
        # In-process hook that sees each resource's options (protect, depends_on, ...), which the
        # mock monitor does not receive.
        mocks.options[(args.type_, args.name)] = args.opts
        return None

    def program():
        pulumi.runtime.register_stack_transformation(record_options)
        body()
        outputs = dict(runtime_settings.get_root_resource().outputs)

        async def resolve():
            for name, value in outputs.items():
                output = pulumi.Output.from_input(value)
                resolved[name] = await output.future()
                if await output.is_secret():
                    secret_outputs.add(name)

        _sync_await(resolve())

    _sync_await(run_pulumi_func(program))
    return StackRun(mocks, resolved, secret_outputs)


def run_program(config: dict[str, Any], secrets: Optional[dict[str, str]] = None, stack: str = "test",
                preview: bool = False, mocks_class: type = RecordingMocks) -> StackRun:
    """Run __main__.py under mocks with `config` (plain keys) and `secrets` (set as secret config)."""
    return run_under_mocks(lambda: runpy.run_path(str(MAIN), run_name="__pulumi_program__"),
                           config, secrets, stack, preview, mocks_class)

