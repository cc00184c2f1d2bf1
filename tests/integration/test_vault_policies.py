"""The Vault policies the program renders, enforced by a real Vault API (OpenBao, tests/integration/
openbao.py): each declared read policy lets a token read its own secret and nothing else, and the
deployer policy the docs give is enough for what the stack does in Vault and no more."""

from __future__ import annotations

import pytest

from harness import run_stack, stack_file_config
from openbao import openbao_server
from renderers.vault_policy import render_deployer_policy
from config.parse import parse_settings


@pytest.fixture(scope="module")
def bao():
    with openbao_server() as server:
        yield server


@pytest.fixture(scope="module")
def prod():
    """The prod stack as declared: its policies and the KV secrets they are for (read off the mocks)."""
    run = run_stack(stack_file_config("prod"), stack="prod")
    policies = {r.name.removesuffix("-policy"): (r.plain("name"), r.plain("policy"))
                for r in run.resources if r.type == "vault:index/policy:Policy"}
    secrets = {r.name.removesuffix("-kv").removesuffix("-vault"): f'{r.plain("mount")}/{r.plain("name")}'
               for r in run.resources if r.type == "vault:kv/secretV2:SecretV2"}
    # The stack's own read policy belongs to its secret (secrets-read-policy / secrets-kv); each key's
    # (access-key-<alias>-policy) to that key's secret (access-key-<alias>-vault).
    policies["secrets"] = policies.pop("secrets-read")
    assert set(policies) == set(secrets) and len(secrets) >= 3, (policies, secrets)
    return policies, secrets


def kv(path: str, part: str) -> str:
    mount, rest = path.split("/", 1)
    return f"/v1/{mount}/{part}/{rest}"


def test_each_declared_read_policy_reads_its_own_secret_and_nothing_else(bao, prod):
    policies, secrets = prod
    bao.reset()
    for path in secrets.values():
        for version in (1, 2):
            bao.put(path.split("/", 1)[1], {"value": f"{path} v{version}"})
    for owner, (name, hcl) in policies.items():
        token = bao.token_with_policy(name, hcl)
        own = secrets[owner]
        read = bao.api("GET", kv(own, "data"), token=token)
        assert read.status_code == 200 and read.json()["data"]["data"] == {"value": f"{own} v2"}, (owner, read.text)
        older = bao.api("GET", kv(own, "data"), token=token, params={"version": 1})
        assert older.status_code == 200 and older.json()["data"]["data"] == {"value": f"{own} v1"}
        assert bao.api("GET", kv(own, "metadata"), token=token).json()["data"]["current_version"] == 2
        write = bao.api("POST", kv(own, "data"), token=token, json={"data": {"value": "overwritten"}})
        assert write.status_code == 403, f"{owner}'s read policy let its token write"
        for other, path in secrets.items():
            if other != owner:
                assert bao.api("GET", kv(path, "data"), token=token).status_code == 403, f"{owner} read {other}"
        caps = bao.api("POST", "/v1/sys/capabilities-self", token=token,
                       json={"paths": [kv(own, "data")[4:], "secret/data/litellm-gateway/dev"]}).json()
        assert caps[kv(own, "data")[4:]] == ["read"] and caps["secret/data/litellm-gateway/dev"] == ["deny"]
    assert bao.versions["litellm-gateway/prod"][-1] == {"value": "secret/litellm-gateway/prod v2"}


def test_the_deployer_policy_does_what_the_stack_does_in_vault_and_no_more(bao, prod):
    """docs: `vault policy write litellm-gateway-prod-deployer`; the token that runs `up` for prod."""
    _, secrets = prod
    bao.reset()
    settings = parse_settings(stack_file_config("prod"))
    token = bao.token_with_policy("litellm-gateway-prod-deployer", render_deployer_policy(settings))
    policies, _ = prod
    for path in secrets.values():  # create, read, update, versions: what up and refresh do
        assert bao.api("POST", kv(path, "data"), token=token, json={"data": {"k": "1"}}).status_code == 200, path
        assert bao.api("POST", kv(path, "data"), token=token, json={"data": {"k": "2"}}).status_code == 200, path
        assert bao.api("GET", kv(path, "data"), token=token).status_code == 200
        assert bao.api("GET", kv(path, "metadata"), token=token).status_code == 200
    for name, hcl in policies.values():  # the read policies it declares
        assert bao.api("PUT", f"/v1/sys/policies/acl/{name}", token=token, json={"policy": hcl}).status_code == 204, name
    child = bao.api("POST", "/v1/auth/token/create", token=token, json={"ttl": "20m"})
    assert child.status_code == 200, "the Vault provider's child token"
    assert bao.api("GET", "/v1/auth/token/lookup-self", token=token).status_code == 200
    assert bao.api("POST", "/v1/sys/capabilities-self", token=token, json={"paths": ["secret/data/x"]}).status_code == 200
    # ... and nothing beyond the stack's own paths and names.
    bao.put("litellm-gateway/dev", {"other": "stack"})
    assert bao.api("GET", "/v1/secret/data/litellm-gateway/dev", token=token).status_code == 403
    assert bao.api("POST", "/v1/secret/data/teams/billing", token=token, json={"data": {"x": "1"}}).status_code == 403
    assert bao.api("PUT", "/v1/sys/policies/acl/admin", token=token, json={"policy": 'path "*" {capabilities=["sudo"]}'}).status_code == 403
    assert bao.api("DELETE", "/v1/secret/metadata/litellm-gateway/dev", token=token).status_code == 403
