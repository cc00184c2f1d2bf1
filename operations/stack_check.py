"""Check a stack's configuration without deploying anything: `scripts/stack check <stack>`.

Reads Pulumi.<stack>.yaml, validates it exactly as `pulumi up` would (config.parse, read by config.stack_file), then runs
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
from typing import Optional, TextIO

from config.checks.access import models_no_key_can_call
from config.errors import SettingsError
from config.images import untested_litellm_warning
from config.secret_keys import GENERATED
from config.stack import StackSettings
from config.stack_file import ROOT, StackFileError, read_stack_file


def _containers(resources, out: TextIO) -> None:
    from operations.offline import unwrap_all

    print("\ncontainers (image):", file=out)
    images = {r.name: unwrap_all(r.inputs.get("name")) for r in resources if r.type == "docker:index/remoteImage:RemoteImage"}
    for container in sorted((r for r in resources if r.type == "docker:index/container:Container"),
                            key=lambda r: r.name):
        name = unwrap_all(container.inputs.get("name")) or container.name
        ports = [f"{p.get('ip', '0.0.0.0')}:{int(p['external'])}->{int(p.get('internal', 0))}"
                 for p in unwrap_all(container.inputs.get("ports") or []) if p.get("external")]
        published = f"  published {', '.join(ports)}" if ports else ""
        image = next((img for res, img in images.items() if container.name.startswith(res.rsplit("-image", 1)[0])), "")
        print(f"  {name}{f'  ({image})' if image else ''}{published}", file=out)


def _kubernetes_objects(resources, out: TextIO) -> None:
    """Every Kubernetes object by kind and name, with the images of the workloads."""
    from operations.offline import unwrap_all

    print("\nkubernetes objects (kind name  (images)):", file=out)
    for resource in sorted((r for r in resources if r.type.startswith("kubernetes:") and "providers" not in r.type),
                           key=lambda r: (r.type.rsplit(":", 1)[-1], r.name)):
        inputs = unwrap_all(resource.inputs)
        name = (inputs.get("metadata") or {}).get("name") or resource.name
        spec = inputs.get("spec") or {}
        template = (spec.get("jobTemplate") or {}).get("spec", spec).get("template") or {}
        images = sorted({c.get("image") for c in (template.get("spec") or {}).get("containers", []) if c.get("image")})
        shown = f"  ({', '.join(images)})" if images else ""
        print(f"  {resource.type.rsplit(':', 1)[-1]} {name}{shown}", file=out)


def _summary(stack: str, settings: StackSettings, run, encrypted: frozenset[str], out: TextIO) -> None:
    from operations.offline import unwrap_all

    def section(title: str) -> None:
        print(f"\n{title}", file=out)

    resources = run.resources
    print(f"stack {stack}: configuration valid; {len(resources)} resources would be declared", file=out)
    if settings.on_kubernetes:
        kube = settings.kubernetes
        print(f"  kubernetes: context {kube.context or '(the kubeconfig current one)'}, namespace {settings.namespace}",
              file=out)
    else:
        print(f"  docker engine: {settings.docker.host}", file=out)
    vault_where = "a dev-mode Vault container" if settings.vault.mode == "dev-container" else (
        settings.vault.address or "VAULT_ADDR")
    print(f"  vault: {vault_where}", file=out)
    gateway_url = run.outputs.get("gatewayUrl")
    if gateway_url:
        print(f"  gatewayUrl: {gateway_url}", file=out)

    if settings.on_kubernetes:
        _kubernetes_objects(resources, out)
    else:
        _containers(resources, out)

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
    # Sorted: the order resources register in follows when their inputs resolve, not the config.
    for path in sorted(f"{unwrap_all(r.inputs.get('mount'))}/{unwrap_all(r.inputs.get('name'))}"
                       for r in resources if r.type == "vault:kv/secretV2:SecretV2"):
        print(f"  secret {path}", file=out)
    for name in sorted(unwrap_all(r.inputs.get("name")) for r in resources if r.type == "vault:index/policy:Policy"):
        print(f"  policy {name}", file=out)

    access = settings.access
    section("access:")
    print(f"  teams {len(access.teams)}, users {len(access.users)}, keys {len(access.keys)}", file=out)

    section("resources by type:")
    for kind, count in sorted(Counter(r.type for r in resources).items()):
        print(f"  {count:5d}  {kind}", file=out)
    if encrypted:
        print(f"\nencrypted, not checked offline (set as secrets: yes): {', '.join(sorted(encrypted))}", file=out)
    unset = [k for k in GENERATED if k not in encrypted]
    if unset:
        print(f"generated by the stack (pulumi-random, kept in Vault): {', '.join(unset)}", file=out)
    warnings = [untested_litellm_warning(settings.gateway.image)] + [
        f"no declared key may call model '{model}': add it to the `models` of the teams or keys that should use it "
        "(access.teams[].models, access.keys[].models)"
        for model in models_no_key_can_call(access, [m.name for m in settings.models])]
    for warning in filter(None, warnings):
        print(f"warning: {warning}", file=out)


def check(stack: str, root: Path = ROOT, out: TextIO = sys.stdout, err: TextIO = sys.stderr) -> int:
    try:
        stack_file = read_stack_file(stack, root)
    except StackFileError as error:
        print(f"error: {error}", file=err)
        return 2
    try:
        settings = stack_file.settings()
    except SettingsError as error:
        print(f"stack {stack}: {error}", file=err)
        return 1
    raw, secret_keys = stack_file.offline_config()

    from operations.offline import run_program
    try:
        run = run_program(stack_file.plain, {k: raw[k] for k in secret_keys}, stack=stack, preview=True)
    except Exception as error:  # a program error, not a config problem: say so plainly
        print(f"error: the program failed while evaluating stack {stack} offline: {type(error).__name__}: {error}",
              file=err)
        return 2
    _summary(stack, settings, run, stack_file.encrypted, out)
    return 0


def main(argv: Optional[list[str]] = None) -> int:
    parser = argparse.ArgumentParser(prog="scripts/stack check", description=__doc__.split("\n\n")[0])
    parser.add_argument("stack", help="the stack to check (Pulumi.<stack>.yaml)")
    parser.add_argument("--vault-policy", action="store_true",
                        help="print the Vault policy the token that deploys the stack needs, instead of the summary")
    args = parser.parse_args(argv)
    if args.vault_policy:
        return print_vault_policy(args.stack)
    return check(args.stack)


def print_vault_policy(stack: str, root: Path = ROOT, out: TextIO = sys.stdout, err: TextIO = sys.stderr) -> int:
    from renderers.vault_policy import render_deployer_policy

    try:
        settings = read_stack_file(stack, root).settings()
    except (StackFileError, SettingsError) as error:
        print(f"stack {stack}: {error}", file=err)
        return 1
    out.write(render_deployer_policy(settings))
    return 0


if __name__ == "__main__":
    sys.exit(main())
