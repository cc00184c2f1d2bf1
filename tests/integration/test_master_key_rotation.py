"""A master key rotation end to end, and no secret in any log.

The real LiteLLM in database mode (the program's rendered config and environment) behind the
rendered HAProxy, reached as `pulumi up` reaches it (access.managementUrl through the load balancer),
the stack's Vault secret in the Vault test double, and the access provider as Pulumi's
dynamic-provider host runs it (pickled by value). The rotation is the documented one: a new
LITELLM_MASTER_KEY version in Vault, the replica restarted with it (a rolling replacement), then
refresh, `up` and the deletion of a key removed from the config, each with the state the objects had
before the rotation.
"""

from __future__ import annotations

import contextlib
import copy
import uuid

import pytest

from components.litellm_access import key_spec, team_id, team_spec, user_spec
from config.parse import parse_settings
from config.secret_keys import VAULT_FIELDS
from database_mode import declared_gateway, litellm_in_database_mode
from dns_double import DnsDouble
from gateway_helpers import own_dev_config
from ollama_double import OllamaDouble
from renderers.haproxy import Listen, render_haproxy_config
from renderers.vault_policy import render_read_policy
from servers import free_port, haproxy_server, redis_server
from test_access_control import host_provider

ACCESS = {
    "teams": [{"name": "ml", "models": ["qwen-small"]}],
    "users": [{"id": "ada", "teams": ["ml"]}],
    "keys": [],
}
REPLICA = "127.0.0.2"


def new_master_key() -> str:
    return "sk-" + uuid.uuid4().hex + uuid.uuid4().hex


class Gateway:
    """One replica on REPLICA:port (its container address), HAProxy in front with the rendered config."""

    def __init__(self, tmp_path, litellm_database, stack: contextlib.ExitStack):
        raw = own_dev_config()
        raw["access"] = copy.deepcopy(ACCESS)
        self.settings = parse_settings(raw)
        self.declared = declared_gateway(raw)
        double = OllamaDouble("ollama-dev", ["qwen2.5:0.5b"]).start()
        stack.callback(double.stop)
        self.hosts = {"ollama-dev": f"http://127.0.0.1:{double.port}"}
        self.database = litellm_database.fresh_database()
        self.redis_port = stack.enter_context(redis_server(self.declared.env["REDIS_PASSWORD"]))
        self.port = free_port()
        dns = DnsDouble()
        stack.callback(dns.stop)
        dns.set("litellm", [REPLICA])
        http, stats = free_port(), free_port()
        listen = Listen(http=f"127.0.0.1:{http}", stats=f"127.0.0.1:{stats}", nameserver=dns.address,
                        service="litellm", replica_port=self.port)
        self.haproxy = stack.enter_context(haproxy_server(render_haproxy_config(self.settings, listen), tmp_path,
                                                          f"http://127.0.0.1:{stats}/healthz"))
        self.url = f"http://127.0.0.1:{http}"  # the management URL, as `pulumi up` uses it
        self.stats = f"http://127.0.0.1:{stats}"
        self.logs: list[str] = []

    @contextlib.contextmanager
    def replica(self, master_key: str):
        with litellm_in_database_mode(self.declared, self.database, self.redis_port, self.hosts,
                                      env_overrides={"LITELLM_MASTER_KEY": master_key},
                                      host=REPLICA, port=self.port) as proxy:
            self._wait_up()
            try:
                yield proxy
            finally:
                self.logs.append(proxy.log())  # read before the replica's folder is removed

    def _wait_up(self, timeout: float = 30) -> None:
        import time

        import httpx

        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with contextlib.suppress(httpx.HTTPError):
                if httpx.get(f"{self.url}/health/liveliness", timeout=3).status_code == 200:
                    return
            time.sleep(0.3)
        raise AssertionError(f"the replica is not UP behind HAProxy:\n{self.haproxy.log_path.read_text()[-2000:]}")


@pytest.fixture
def gateway(tmp_path, litellm_database):
    with contextlib.ExitStack() as stack:
        yield Gateway(tmp_path, litellm_database, stack)


def objects(gateway, master_key, vault_ref):
    settings = gateway.settings
    team = settings.access.teams[0]
    user = settings.access.users[0]
    key = type("Key", (), {"alias": "ada-cli", "user": "ada", "team": "ml", "models": ("qwen-small",), "rpm": None,
                           "tpm": None, "max_parallel_requests": None, "max_budget": None, "budget_duration": None,
                           "expires_after": None})
    gone = type("Key", (), {**vars(key), "alias": "leaked-ci"})

    def props(kind, ident, spec, name):
        return {"kind": kind, "name": name, "api_base": gateway.url, "master_key": master_key, "ident": ident,
                "spec": spec, "vault": vault_ref}

    return [props("team", team_id(settings, team.name), team_spec(team), team.name),
            props("user", user.id, user_spec(settings, user), user.id),
            props("key", new_master_key(), key_spec(settings, key), "ada-cli"),
            props("key", new_master_key(), key_spec(settings, gone), "leaked-ci")]


def test_a_rotated_master_key_reaches_every_object_without_replacing_it_and_no_secret_is_logged(gateway, openbao):
    provider = host_provider()
    vault = openbao  # a real Vault API
    vault.reset()
    path = f"litellm-gateway/{gateway.settings.environment}"
    old_key, new_key = new_master_key(), new_master_key()
    vault.put(path, {VAULT_FIELDS["masterKey"]: old_key})
    # The provider reads the current key with no more than the stack's rendered read policy allows.
    reader = vault.token_with_policy(gateway.settings.vault_policy_name, render_read_policy("secret", path))
    vault_ref = {"address": vault.address, "token": reader, "mount": "secret", "path": path,
                 "field": VAULT_FIELDS["masterKey"], "skip_tls_verify": False}
    declared = objects(gateway, old_key, vault_ref)
    with gateway.replica(old_key):
        state = {p["name"]: provider.create(dict(p)).outs for p in declared}
        assert all(s["status"] == "in-sync" for s in state.values()), state

    # The rotation: a new Vault version, the replica replaced with the new key.
    vault.put(path, {VAULT_FIELDS["masterKey"]: new_key})
    with gateway.replica(new_key) as replica:
        # refresh (and the nightly drift check) with the state of before: read finds every object
        # with the current key from Vault, and the state it returns holds that key.
        refreshed = {name: provider.read("id", s).outs for name, s in state.items()}
        assert all(r["status"] == "in-sync" for r in refreshed.values()), refreshed
        assert {r["master_key"] for r in refreshed.values()} == {new_key}
        # Without a way to the current key the stale state is refused (what stranded the objects).
        with pytest.raises(PermissionError, match="refused the master key"):
            provider.read("id", dict(state["ml"], vault=None))

        # `up` with the rotation: every object kept (an update, never a replacement), new key stored.
        news = {p["name"]: dict(p, master_key=new_key) for p in declared}
        for name in ("ml", "ada", "ada-cli"):
            diff = provider.diff("id", state[name], news[name])
            assert diff.changes and diff.replaces == [], (name, diff.replaces)
            updated = provider.update("id", state[name], news[name]).outs
            assert updated["status"] == "in-sync" and updated["master_key"] == new_key
            assert updated["ident"] == state[name]["ident"]
        # The key removed from the config in the same `up`: deleted with its stale state.
        provider.delete("id", state["leaked-ci"])
        assert replica.chat("qwen-small", "gone?", key=state["leaked-ci"]["ident"]).status_code == 401
        assert replica.chat("qwen-small", "still here", key=state["ada-cli"]["ident"]).status_code == 200
        assert replica.call("GET", "/key/info", key=old_key,
                            params={"key": state["ada-cli"]["ident"]}).status_code == 401, "the old key is refused"

    # No secret value in the load balancer's access log or the replicas' logs.
    logs = gateway.haproxy.log_path.read_text() + "\n".join(gateway.logs)
    assert "/key/info" in logs, "the access log records the management calls"
    secrets = [old_key, new_key, *(s["ident"] for s in state.values() if s["kind"] == "key"),
               gateway.declared.env["LITELLM_SALT_KEY"], gateway.declared.env["REDIS_PASSWORD"]]
    leaked = [s[:12] + "..." for s in secrets if s in logs]
    assert leaked == [], f"secret values in the logs: {leaked}"
