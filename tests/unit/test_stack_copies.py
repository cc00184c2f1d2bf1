"""A copied stack file can never take over another environment's data.

The README's "Add a stack" recipe copies an example and changes `environment`. Every name an
environment owns (Vault secret and policy, key paths and policies, volumes, containers, network,
backup location) must then be the copy's own, or the copy is refused before anything is declared.
Checked for copies of every shipped example under several new names, with expectations derived
from what each stack declares under mocks, not from the code's naming rules."""

from __future__ import annotations

import copy

import pytest

from config.checks.platform import option_platform
from config.errors import SettingsError
from config.names import StackNames
from config.parse import parse_settings
from harness import EXAMPLE_STACKS, example_config, run_stack

COPY_NAMES = ["staging", "qa-2", "dev-alice", "prod-eu"]


def copy_of(stack: str, new: str) -> dict:
    config = copy.deepcopy(example_config(stack))
    config["environment"] = new
    if not new.startswith("dev"):  # what only dev stacks may do (the copy would be refused for that)
        config = without_dev_only(config)
    return config


def without_dev_only(config: dict) -> dict:
    gateway = config["gateway"]
    load_balancer = gateway.get("loadBalancer") or {}
    on_docker = config.get("platform", "docker") == "docker"   # a kubernetes example's TLS is its Ingress's
    if on_docker and not (load_balancer.get("tls") or {}).get("enabled") and not load_balancer.get("allowPlainHttp"):
        config["gateway"] = {**gateway, "loadBalancer": {**load_balancer, "tls": {
            "enabled": True, "serverName": "gateway.example", "vault": {"path": "ops/gateway-tls"}}}}
    vault = config.get("vault") or {}
    if vault.get("mode") == "dev-container":
        config["vault"] = {"mode": "external", "address": "https://vault.example:8200"}
    for host in config["gpuHosts"]:
        if host.pop("localContainer", None) is not None:
            host.setdefault("ssh", {})["hostKey"] = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOMqqnkVzrm0SdG6UOoqKLsabgH5C9okWi0dh2l9GKJl"
            config.setdefault("gpuSsh", {}).setdefault("privateKeyVault", {"path": "ops/ssh"})
    return config


def owned_names(run) -> set[tuple[str, str]]:
    """(kind, name) of everything a stack declares that must be its own."""
    names = set()
    for r in run.resources:
        if r.type == "docker:index/container:Container":
            names.add(("container", r.plain("name")))
            for mount in r.plain("mounts") or []:
                names.add((f"mount:{mount.get('type')}", mount.get("source")))
        elif r.type in ("docker:index/volume:Volume", "docker:index/network:Network"):
            names.add((r.type.rsplit(":", 1)[-1], r.plain("name")))
        elif r.type == "vault:kv/secretV2:SecretV2":
            names.add(("vault-secret", f"{r.plain('mount')}/{r.plain('name')}"))
        elif r.type == "vault:index/policy:Policy":
            names.add(("vault-policy", r.plain("name")))
        elif r.type.startswith("kubernetes:") and "providers" not in r.type:
            meta = r.plain("metadata") or {}
            names.add((f"k8s:{r.type.rsplit(':', 1)[-1]}", f"{meta.get('namespace', '')}/{meta.get('name')}"))
            for claim in (r.plain("spec") or {}).get("volumeClaimTemplates", []):
                names.add(("k8s:claim-template", f"{meta.get('namespace', '')}/{meta.get('name')}/{claim['metadata']['name']}"))
    return {n for n in names if n[1]}


@pytest.mark.parametrize("stack", EXAMPLE_STACKS)
@pytest.mark.parametrize("new", COPY_NAMES)
def test_a_copy_of_an_example_declares_nothing_the_original_owns(stack, new):
    new = new if new != stack else f"{new}-2"  # an example a user added under one of these names
    original = owned_names(run_stack(example_config(stack), stack=stack))
    copied = owned_names(run_stack(copy_of(stack, new), stack=new))
    assert original and copied
    assert original & copied == set(), sorted(original & copied)


OVERRIDES = {
    "vault.path": lambda names: names.vault_path,
    "vault.policyName": lambda names: names.vault_policy,
    "postgres.volumeName": lambda names: names.postgres_volume,
    "backups.volumeName": lambda names: names.backup_volume,
    "kubernetes.namespace": lambda names: names.prefix,
}


def _example_for(key: str, docker_example: str) -> str:
    """An example of the platform that reads `key`."""
    if option_platform(key) == "kubernetes":
        return next(s for s in EXAMPLE_STACKS if example_config(s).get("platform") == "kubernetes")
    return docker_example


def _applies(stack: str, key: str) -> bool:
    """Whether the example's platform reads `key` (the other platform's keys are refused for that)."""
    platform = example_config(stack).get("platform", "docker")
    return option_platform(key) in (None, platform)


def with_key(config: dict, dotted: str, value) -> dict:
    section, key = dotted.split(".")
    config = copy.deepcopy(config)
    config[section] = {**(config.get(section) or {}), key: value}
    if section == "backups":  # one of the two (the settings refuse both)
        config["backups"].pop("volumeName" if key == "hostPath" else "hostPath", None)
    return config


@pytest.mark.parametrize("stack, key", [(s, k) for s in EXAMPLE_STACKS for k in sorted(OVERRIDES) if _applies(s, k)])
def test_a_copy_that_spells_the_originals_name_is_refused_naming_the_key(stack, key):
    """As the examples once did: `path: litellm-gateway/prod` in a copy would write prod's secret."""
    theirs = OVERRIDES[key](StackNames(stack))
    config = with_key(copy_of(stack, "staging"), key, theirs)
    # Refused whether or not the original's stack file is beside the copy.
    for others in ((), EXAMPLE_STACKS):
        with pytest.raises(SettingsError) as error:
            parse_settings(config, stack="staging", other_stacks=others)
        messages = [m for k, m in error.value.problems if k == key]
        assert messages and f"names environment '{stack}'" in messages[0], error.value.problems


@pytest.mark.parametrize("key", sorted(OVERRIDES) + ["backups.hostPath"])
def test_an_override_naming_another_stack_of_the_project_is_refused(key):
    value = {"backups.hostPath": "/srv/backups/prod"}.get(key, f"team-prod-{key.split('.')[1].lower()}")
    if key == "vault.path":
        value = "teams/prod/gateway"
    config = with_key(copy_of(_example_for(key, "prod"), "staging"), key, value)
    with pytest.raises(SettingsError) as error:
        parse_settings(config, stack="staging", other_stacks=["dev", "prod", "staging"])
    assert any(k == key and "names environment 'prod'" in m for k, m in error.value.problems), error.value.problems
    # The same value is the stack's own when no other stack has that name.
    parse_settings(config, stack="staging", other_stacks=["dev", "staging"])


@pytest.mark.parametrize("key", sorted(OVERRIDES) + ["backups.hostPath"])
def test_a_stack_may_spell_its_own_names_even_when_they_contain_another_stacks_name(key):
    """`dev-alice` contains `dev`; its own names are not dev's."""
    own = {"backups.hostPath": "/srv/backups/litellm-gateway/dev-alice"}.get(key) or OVERRIDES[key](StackNames("dev-alice"))
    config = with_key(copy_of(_example_for(key, "dev"), "dev-alice"), key, own)
    parse_settings(config, stack="dev-alice", other_stacks=["dev", "dev-alice", "prod"])


def test_the_examples_spell_no_name_a_copy_would_inherit():
    for stack in EXAMPLE_STACKS:
        config = example_config(stack)
        for key in OVERRIDES:
            section, name = key.split(".")
            assert name not in (config.get(section) or {}), f"Pulumi.{stack}.yaml spells {key}"
