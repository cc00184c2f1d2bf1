"""The deploying token's Vault policy (`./scripts/stack vault-policy <stack>`) grants every path the
program writes and reads in Vault, for every stack file: derived from what the program declares and
invokes under mocks, matched the way Vault matches policy paths (a trailing `*` is a prefix, `+` one
segment)."""

from __future__ import annotations

import re

import pytest

from config.parse import parse_settings
from harness import EXAMPLE_STACKS, example_config, run_stack, stack_file_config
from renderers.vault_policy import deployer_rules, render_deployer_policy


def vault_grants(rules, path: str, capability: str) -> bool:
    for pattern, capabilities, _ in rules:
        regex = "".join("[^/]+" if part == "+" else re.escape(part) for part in re.split(r"(\+)", pattern.rstrip("*")))
        prefix = pattern.endswith("*")
        if re.fullmatch(regex + (".*" if prefix else ""), path) and capability in capabilities:
            return True
    return False


def needed(run) -> list[tuple[str, str]]:
    """(path, capability) the program's Vault resources and reads need, from what it declared."""
    wants = []
    for r in run.resources:
        if r.type == "vault:kv/secretV2:SecretV2":
            mount, name = r.plain("mount"), r.plain("name")
            wants += [(f"{mount}/data/{name}", c) for c in ("create", "read", "update", "delete")]
            wants += [(f"{mount}/metadata/{name}", c) for c in ("read", "delete")]
        elif r.type == "vault:index/policy:Policy":
            wants += [(f"sys/policies/acl/{r.plain('name')}", c) for c in ("create", "read", "update", "delete")]
    for token, args in run.mocks.calls:
        if token == "vault:kv/getSecretV2:getSecretV2":
            wants.append((f"{args['mount']}/data/{args['name']}", "read"))
    return wants


def tls_variant(config: dict) -> dict:
    return {**config, "gateway": {**config["gateway"], "loadBalancer": {"tls": {
        "enabled": True, "serverName": "gw.example.com", "vault": {"mount": "pki-kv", "path": "ops/gateway-tls"}}}}}


CASES = [("example", s) for s in EXAMPLE_STACKS] + [("fixture", "dev"), ("fixture", "prod"), ("tls", "prod")]


@pytest.mark.parametrize("kind, stack", CASES)
def test_the_deployer_policy_grants_everything_the_program_does_in_vault(kind, stack):
    config = {"example": example_config, "fixture": stack_file_config}.get(kind, stack_file_config)(stack)
    if kind == "tls":
        config = tls_variant(config)
    run = run_stack(config, stack=stack)
    rules = deployer_rules(parse_settings(config, stack=stack))
    wants = needed(run)
    assert wants, "the stack declares something in Vault"
    missing = [w for w in wants if not vault_grants(rules, *w)]
    assert missing == [], missing
    if kind == "tls":
        assert ("pki-kv/data/ops/gateway-tls", "read") in wants


def test_the_deployer_policy_grants_nothing_of_another_stack():
    prod = deployer_rules(parse_settings(stack_file_config("prod"), stack="prod"))
    staging = {**stack_file_config("prod"), "environment": "staging"}
    for section, key in (("vault", "path"), ("vault", "policyName"), ("postgres", "volumeName"), ("backups", "volumeName")):
        staging[section] = {k: v for k, v in (staging.get(section) or {}).items() if k != key}  # prod's own names
    staging_run = run_stack(staging, stack="staging")
    owned = [w for w in needed(staging_run) if "staging" in w[0]]
    assert owned and not any(vault_grants(prod, *w) for w in owned)


def test_the_policy_text_is_valid_hcl_shape_and_names_the_stack():
    text = render_deployer_policy(parse_settings(stack_file_config("prod"), stack="prod"))
    assert text.count("path \"") == len(deployer_rules(parse_settings(stack_file_config("prod"), stack="prod")))
    assert all(line.startswith(("#", "path ", "  capabilities", "}", "")) for line in text.splitlines())
