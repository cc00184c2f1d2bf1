"""The Vault test double refuses what Vault refuses: a read-only token reads only the paths its policy
names (403 elsewhere and on writes; capabilities-self says "deny"), and a version that never existed is
a 404 (https://developer.hashicorp.com/vault/api-docs/secret/kv/kv-v2)."""

from __future__ import annotations

import httpx

from vault_double import VaultDouble


def test_a_read_only_token_reads_its_own_path_only_and_old_versions_exist_or_404():
    vault = VaultDouble(token="root", read_only_tokens={"reader": ("litellm-gateway/prod",)})
    try:
        for path in ("litellm-gateway/prod", "litellm-gateway/dev"):
            vault.put(path, {"K": "1"})
            vault.put(path, {"K": "2"})

        def get(path, token="reader", query=""):
            return httpx.get(f"{vault.address}/v1/secret/data/{path}{query}", headers={"X-Vault-Token": token}, timeout=5)

        assert get("litellm-gateway/prod").json()["data"]["data"] == {"K": "2"}
        assert get("litellm-gateway/prod", query="?version=1").json()["data"]["data"] == {"K": "1"}
        assert get("litellm-gateway/prod", query="?version=3").status_code == 404
        assert get("litellm-gateway/dev").status_code == 403
        assert get("litellm-gateway/dev", token="root").status_code == 200
        write = httpx.post(f"{vault.address}/v1/secret/data/litellm-gateway/prod", json={"data": {"K": "3"}},
                           headers={"X-Vault-Token": "reader"}, timeout=5)
        assert write.status_code == 403
        caps = httpx.post(f"{vault.address}/v1/sys/capabilities-self", headers={"X-Vault-Token": "reader"}, timeout=5,
                          json={"paths": ["secret/data/litellm-gateway/prod", "secret/data/litellm-gateway/dev"]}).json()
        assert caps["secret/data/litellm-gateway/prod"] == ["read"] and caps["secret/data/litellm-gateway/dev"] == ["deny"]
    finally:
        vault.stop()


def test_the_sealed_double_answers_as_a_sealed_openbao_does():
    """The double is kept for one case (a Vault that seals between a client's checks and its write): what
    it answers then is checked against a real sealed server (OpenBao, sealed with sys/seal)."""
    from openbao import openbao_server

    with openbao_server() as bao:
        bao.put("litellm-gateway/dev", {"K": "1"})
        assert bao.api("PUT", "/v1/sys/seal").status_code == 204
        real_write = bao.api("POST", "/v1/secret/data/litellm-gateway/dev", json={"data": {"K": "2"}})
        real_read = bao.api("GET", "/v1/secret/data/litellm-gateway/dev")
    vault = VaultDouble(token="root")
    try:
        vault.put("litellm-gateway/dev", {"K": "1"})
        vault.seal_on_write = True
        headers = {"X-Vault-Token": "root"}
        write = httpx.post(f"{vault.address}/v1/secret/data/litellm-gateway/dev", json={"data": {"K": "2"}},
                           headers=headers, timeout=5)
        read = httpx.get(f"{vault.address}/v1/secret/data/litellm-gateway/dev", headers=headers, timeout=5)
    finally:
        vault.stop()
    for double, real in ((write, real_write), (read, real_read)):
        assert (double.status_code, double.json()["errors"]) == (real.status_code, real.json()["errors"]), real.text
    assert len(vault.versions["litellm-gateway/dev"]) == 1
