"""Check a stack's configuration without deploying anything: `scripts/stack check <stack>`.

Reads Pulumi.<stack>.yaml, validates it exactly as `pulumi up` would (config/settings.py), then runs
the whole program offline (operations/offline.py: no Pulumi CLI, Docker, Vault or GPU host needed)
and prints what the stack would declare: containers and published ports, model pulls per GPU host,
routes, Vault paths and policies, teams/users/keys. Exit status: 0 valid, 1 invalid configuration
(every problem listed with its key), 2 the check itself could not run (no such stack file, a
program error).

Encrypted values (`secure:` in the stack file) cannot be read without the stack's passphrase; the
check stands a placeholder of the right shape in for each, says so, and checks only that they are
set as secrets. `pulumi preview` checks their contents.
"""

from __future__ import annotations

import argparse
import sys
from collections import Counter
from pathlib import Path
from typing import Any, Optional, TextIO

import yaml

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from config.settings import PROJECT, SECRET_KEYS, SettingsError, StackSettings, parse_settings  # noqa: E402

# Placeholders for encrypted values: shaped to pass the format checks, never a usable secret.
_PLACEHOLDERS = {
    "masterKey": "sk-" + "encrypted-value-not-checked-offline" + "x" * 8,
    "gpuSshPrivateKey": "-----BEGIN OPENSSH PRIVATE KEY-----\nencrypted\n-----END OPENSSH PRIVATE KEY-----\n",
    "gatewayTlsCertificate": "-----BEGIN CERTIFICATE-----\nencrypted\n-----END CERTIFICATE-----\n",
    "gatewayTlsKey": "-----BEGIN PRIVATE KEY-----\nencrypted\n-----END PRIVATE KEY-----\n",
}
_PLACEHOLDER = "encrypted-value-not-checked-offline"


class CheckError(Exception):
    """The check could not run (exit 2)."""


def read_stack_file(stack: str, root: Path = ROOT) -> tuple[dict[str, Any], dict[str, str], list[str]]:
    """(plain config, placeholder secrets, names of encrypted keys) of Pulumi.<stack>.yaml."""
    path = root / f"Pulumi.{stack}.yaml"
    if not path.is_file():
        known = sorted(p.name[len("Pulumi."):-len(".yaml")] for p in root.glob("Pulumi.*.yaml"))
        raise CheckError(f"no stack config {path.name} (stacks: {', '.join(known) or 'none'})")
    try:
        data = yaml.safe_load(path.read_text()) or {}
    except yaml.YAMLError as error:
        raise CheckError(f"{path.name} is not valid YAML: {error}") from None
    if not isinstance(data, dict) or not isinstance(data.get("config", {}), dict):
        raise CheckError(f"{path.name} must be a mapping with a `config:` mapping")
    plain: dict[str, Any] = {}
    secrets: dict[str, str] = {}
    encrypted: list[str] = []
    prefix = f"{PROJECT}:"
    for full_key, value in (data.get("config") or {}).items():
        if not isinstance(full_key, str) or not full_key.startswith(prefix):
            continue  # another package's namespace (docker:, vault:, ...)
        key = full_key[len(prefix):]
        if isinstance(value, dict) and set(value) == {"secure"}:
            secrets[key] = _PLACEHOLDERS.get(key, _PLACEHOLDER)
            encrypted.append(key)
        else:
            plain[key] = value
    return plain, secrets, encrypted


def _validate(stack: str, plain: dict[str, Any], secrets: dict[str, str]) -> StackSettings:
    raw = {**plain, **secrets}
    return parse_settings(raw, frozenset(secrets), stack=stack)


def _summary(stack: str, settings: StackSettings, run, encrypted: list[str], out: TextIO) -> None:
    from operations.offline import unwrap_all

    def section(title: str) -> None:
        print(f"\n{title}", file=out)

    resources = run.resources
    print(f"stack {stack}: configuration valid; {len(resources)} resources would be declared", file=out)
    print(f"  docker engine: {settings.docker.host}", file=out)
    vault_where = "a dev-mode Vault container" if settings.vault.mode == "dev-container" else (
        settings.vault.address or "VAULT_ADDR")
    print(f"  vault: {vault_where}", file=out)
    gateway_url = run.outputs.get("gatewayUrl")
    if gateway_url:
        print(f"  gatewayUrl: {gateway_url}", file=out)

    section("containers (image):")
    images = {r.name: unwrap_all(r.inputs.get("name")) for r in resources if r.type == "docker:index/remoteImage:RemoteImage"}
    for container in sorted((r for r in resources if r.type == "docker:index/container:Container"),
                            key=lambda r: r.name):
        name = unwrap_all(container.inputs.get("name")) or container.name
        ports = [f"{p.get('ip', '0.0.0.0')}:{int(p['external'])}->{int(p.get('internal', 0))}"
                 for p in unwrap_all(container.inputs.get("ports") or []) if p.get("external")]
        published = f"  published {', '.join(ports)}" if ports else ""
        image = next((img for res, img in images.items() if container.name.startswith(res.rsplit("-image", 1)[0])), "")
        print(f"  {name}{f'  ({image})' if image else ''}{published}", file=out)

    section("model pulls per GPU host:")
    for host in settings.gpu_hosts:
        pulled = settings.models_pulled_by(host)
        where = "local Ollama container" if host.local_container else f"ssh {settings.ssh_user(host)}@{host.address}:{settings.ssh_port(host)}"
        tags = ", ".join(f"{name} ({settings.model(name).ollama_tag})" for name in pulled) or "none"
        print(f"  {host.name} [{where}]: {len(pulled)} model(s): {tags}", file=out)

    section("routes (model -> GPU host):")
    for model, host in settings.routes():
        limits = ", ".join(f"{k} {v}" for k, v in (("rpm", model.rpm), ("tpm", model.tpm)) if v)
        print(f"  {model.name} -> {host.name} ({host.address}:{host.ollama_port}){f'  [{limits}]' if limits else ''}",
              file=out)

    section("vault:")
    for secret in (r for r in resources if r.type == "vault:kv/secretV2:SecretV2"):
        print(f"  secret {unwrap_all(secret.inputs.get('mount'))}/{unwrap_all(secret.inputs.get('name'))}", file=out)
    for policy in (r for r in resources if r.type == "vault:index/policy:Policy"):
        print(f"  policy {unwrap_all(policy.inputs.get('name'))}", file=out)

    access = settings.access
    section("access:")
    print(f"  teams {len(access.teams)}, users {len(access.users)}, keys {len(access.keys)}", file=out)

    section("resources by type:")
    for kind, count in sorted(Counter(r.type for r in resources).items()):
        print(f"  {count:5d}  {kind}", file=out)
    if encrypted:
        print(f"\nencrypted, not checked offline (set as secrets: yes): {', '.join(sorted(encrypted))}", file=out)
    unset = [k for k in SECRET_KEYS if k not in encrypted and k not in ("gpuSshPrivateKey", "gatewayTlsCertificate",
                                                                          "gatewayTlsKey")]
    if unset:
        print(f"generated by the stack (pulumi-random, kept in Vault): {', '.join(unset)}", file=out)


def check(stack: str, root: Path = ROOT, out: TextIO = sys.stdout, err: TextIO = sys.stderr) -> int:
    try:
        plain, secrets, encrypted = read_stack_file(stack, root)
    except CheckError as error:
        print(f"error: {error}", file=err)
        return 2
    try:
        settings = _validate(stack, plain, secrets)
    except SettingsError as error:
        print(f"stack {stack}: {error}", file=err)
        return 1

    from operations.offline import run_program
    try:
        run = run_program(plain, secrets, stack=stack, preview=True)
    except Exception as error:  # a program error, not a config problem: say so plainly
        print(f"error: the program failed while evaluating stack {stack} offline: {type(error).__name__}: {error}",
              file=err)
        return 2
    _summary(stack, settings, run, encrypted, out)
    return 0


def main(argv: Optional[list[str]] = None) -> int:
    parser = argparse.ArgumentParser(prog="scripts/stack check", description=__doc__.split("\n\n")[0])
    parser.add_argument("stack", help="the stack to check (Pulumi.<stack>.yaml)")
    args = parser.parse_args(argv)
    return check(args.stack)


if __name__ == "__main__":
    sys.exit(main())
