"""Each component on its own, under mocks."""

import copy
import json
import re

import pulumi
import pulumi_docker as docker
import pulumi_vault as vault
import yaml
from pulumi.runtime.sync_await import _sync_await

from components.gateway import Gateway, GatewayArgs, GatewaySecretValues, private_network
from components.secrets import GatewaySecrets, GatewaySecretsArgs
from components.vault_access import VaultAccess, VaultAccessArgs
from config.names import POSTGRES_PORT
from config.parse import parse_settings
from config.values import postgres_url
from harness import ROOT, SECRET_MARKER, run_under_mocks, stack_file_config, walk_plain


def settings_for(stack="dev", **changes):
    raw = copy.deepcopy(stack_file_config(stack))
    for section, values in changes.items():
        raw[section].update(values)
    return parse_settings(raw)


def declare_secrets(settings):
    provider = vault.Provider("vault-provider", address="http://127.0.0.1:8200", token="test")
    return GatewaySecrets("secrets", GatewaySecretsArgs(settings, provider))


# The fields docs/operations.md promises in the stack's Vault secret (runbooks and consumers read them).
DOCUMENTED_VAULT_FIELDS = ("LITELLM_MASTER_KEY", "LITELLM_SALT_KEY", "UI_PASSWORD", "POSTGRES_PASSWORD",
                           "REDIS_PASSWORD", "GRAFANA_ADMIN_PASSWORD", "PROMETHEUS_PASSWORD")


def test_the_docs_list_the_same_vault_fields():
    secrets_section = (ROOT / "docs" / "operations.md").read_text().split("## Secrets", 1)[1].split("\n## ", 1)[0]
    listed = re.search(r"seven fields: (.*?)\. ", " ".join(secrets_section.split())).group(1)
    assert re.findall(r"`([A-Z_]+)`", listed) == list(DOCUMENTED_VAULT_FIELDS)


# --- GatewaySecrets ------------------------------------------------------------------------------

def test_secrets_are_generated_and_stored_in_one_kv_v2_secret():
    captured = {}

    def body():
        secrets = declare_secrets(settings_for("dev"))
        pulumi.export("master", secrets.master_key)
        pulumi.export("version", secrets.secret_version)
        captured["path"] = secrets.secret_path

    run = run_under_mocks(body)
    passwords = {r.name: r for r in run.mocks.of_type("randomPassword:RandomPassword")}
    # Written from docs/operations.md ("Secrets"), not from the code's VAULT_FIELDS: dropping or renaming
    # a documented field must fail here.
    assert set(passwords) == {"secrets-masterKey", "secrets-saltKey", "secrets-uiPassword", "secrets-postgresPassword",
                              "secrets-redisPassword", "secrets-grafanaAdminPassword", "secrets-prometheusPassword"}
    assert all(p.plain("special") is False for p in passwords.values())
    assert passwords["secrets-masterKey"].plain("length") >= 32
    kv = run.mocks.named("secrets-kv")
    assert (kv.plain("mount"), kv.plain("name")) == ("secret", "litellm-gateway/dev")
    assert kv.is_secret("dataJson")
    data = json.loads(kv.plain("dataJson"))
    assert sorted(data) == sorted(DOCUMENTED_VAULT_FIELDS)
    assert data["LITELLM_MASTER_KEY"].startswith("sk-" + SECRET_MARKER)
    assert run.outputs["master"] == data["LITELLM_MASTER_KEY"]
    assert "master" in run.secret_outputs, "the master key Output must be secret even under mocks"
    assert run.outputs["version"] == 1
    assert captured["path"] == "secret/litellm-gateway/dev"


def test_master_key_rotates_only_when_the_rotation_setting_changes():
    def keepers(rotation):
        run = run_under_mocks(lambda: declare_secrets(settings_for("dev", gateway={"masterKeyRotation": rotation})))
        return {r.name: r.plain("keepers") for r in run.mocks.of_type("randomPassword:RandomPassword")}

    first, same, bumped = keepers(0), keepers(0), keepers(1)
    assert first == same
    assert first["secrets-masterKey"] != bumped["secrets-masterKey"]
    # Nothing else is replaced by a master key rotation, above all not the salt key.
    for name in first:
        if name != "secrets-masterKey":
            assert first[name] == bumped[name], name


def test_salt_key_protection_follows_the_setting():
    run = run_under_mocks(lambda: declare_secrets(settings_for("prod")))
    assert run.mocks.options_of("secrets-saltKey").protect is True
    run = run_under_mocks(lambda: declare_secrets(settings_for("dev", secrets={"protectSaltKey": False})))
    assert run.mocks.options_of("secrets-saltKey").protect is False


def test_read_policy_covers_exactly_the_stack_secret():
    run = run_under_mocks(lambda: declare_secrets(settings_for("prod")))
    policy = run.mocks.named("secrets-read-policy")
    assert policy.plain("name") == "litellm-gateway-prod-read"
    text = policy.plain("policy")
    assert 'path "secret/data/litellm-gateway/prod"' in text
    assert 'path "secret/metadata/litellm-gateway/prod"' in text
    assert text.count('capabilities = ["read"]') == 2
    assert "update" not in text and "create" not in text


def test_vault_resources_use_the_explicit_provider():
    run = run_under_mocks(lambda: declare_secrets(settings_for("dev")))
    for name in ("secrets-kv", "secrets-read-policy"):
        assert "vault-provider" in run.mocks.named(name).provider


# --- VaultAccess -------------------------------------------------------------------------------

def test_external_vault_without_address_reads_vault_addr():
    raw = copy.deepcopy(stack_file_config("prod"))
    del raw["vault"]["address"]
    settings = parse_settings(raw)

    def body():
        VaultAccess("vault", VaultAccessArgs(settings, docker.Provider("docker", host=settings.docker.host)))

    run = run_under_mocks(body)
    provider = run.mocks.named("vault-provider")
    assert provider.plain("address") is None
    assert provider.plain("token") is None, "the token comes from VAULT_TOKEN, never from stack config"
    assert not run.mocks.of_type("docker:index/container:Container")


def test_dev_vault_provider_waits_for_the_dev_server():
    settings = settings_for("dev")
    captured = {}

    def body():
        access = VaultAccess("vault", VaultAccessArgs(settings, docker.Provider("docker", host=settings.docker.host)))
        captured["deps"] = {r._name for r in _sync_await(access.address.resources())}

    run = run_under_mocks(body)
    # The provider's address is derived from the container, so Vault calls wait for a healthy server.
    assert captured["deps"] == {"vault-dev-server"}
    capabilities = run.mocks.named("vault-dev-server").plain("capabilities")
    assert "IPC_LOCK" in capabilities["adds"] and capabilities["drops"] == ["ALL"]


# --- Gateway -----------------------------------------------------------------------------------

def declare_gateway(settings):
    values = {k: pulumi.Output.secret(f"{SECRET_MARKER}-{k}") for k in
              ("master_key", "salt_key", "ui_password", "postgres_password", "redis_password")}
    values["database_url"] = pulumi.Output.secret(postgres_url(
        settings.postgres.user, f"{SECRET_MARKER}-postgres_password", settings.names.postgres, POSTGRES_PORT,
        settings.postgres.database))
    provider = docker.Provider("docker", host=settings.docker.host)
    network = private_network(settings, provider)
    return Gateway("gateway", GatewayArgs(settings, GatewaySecretValues(**values), provider, network.name))


def _env(container):
    return dict(e.split("=", 1) for e in container.plain("envs"))


def test_litellm_gets_its_secrets_from_the_environment_only():
    run = run_under_mocks(lambda: declare_gateway(settings_for("dev")))
    litellm = run.mocks.named("gateway-litellm-0")
    assert litellm.is_secret("envs")
    env = _env(litellm)
    assert env["LITELLM_MASTER_KEY"] == f"{SECRET_MARKER}-master_key"
    assert env["LITELLM_SALT_KEY"] == f"{SECRET_MARKER}-salt_key"
    assert env["UI_USERNAME"] == "admin" and env["UI_PASSWORD"] == f"{SECRET_MARKER}-ui_password"
    assert env["DATABASE_URL"] == (
        f"postgresql://litellm:{SECRET_MARKER}-postgres_password@litellm-gateway-dev-postgres:5432/litellm"
    )
    upload = litellm.plain("uploads")[0]
    assert upload["file"] == "/app/config.yaml"
    config = yaml.safe_load(upload["content"])
    assert config["general_settings"]["master_key"] == "os.environ/LITELLM_MASTER_KEY"
    assert config["general_settings"]["database_url"] == "os.environ/DATABASE_URL"
    assert SECRET_MARKER not in upload["content"]
    assert litellm.plain("command") == ["--config", "/app/config.yaml", "--port", "4000", "--num_workers", "1",
                                         "--keepalive_timeout", "300"]
    # The drain token is the master key (a secret, like every env value); the entrypoint script holds no secret.
    assert env["DRAIN_ENDPOINT_TOKEN"] == f"{SECRET_MARKER}-master_key"
    assert env["GRACEFUL_SHUTDOWN_TIMEOUT"] == "51"  # stopGraceSeconds 60 - 4 s to leave the balancer - 5 s teardown
    shell, flag, script, name = litellm.plain("entrypoints")
    assert (shell, flag, name) == ("/bin/sh", "-c", "litellm-replica") and SECRET_MARKER not in script
    assert "http://127.0.0.1:4000/health/drain" in script and 'litellm "$@" &' in script
    assert config["general_settings"]["enable_drain_endpoint"] is True


def test_a_stop_grace_period_change_replaces_the_replicas_with_a_new_drain_budget():
    def revision_and_timeout(grace: int) -> tuple[str, str]:
        settings = settings_for("dev", gateway={"stopGraceSeconds": grace})
        run = run_under_mocks(lambda: declare_gateway(settings))
        litellm = run.mocks.named("gateway-litellm-0")
        return litellm.plain("name"), _env(litellm)["GRACEFUL_SHUTDOWN_TIMEOUT"]

    (first, short), (second, long) = revision_and_timeout(30), revision_and_timeout(300)
    assert (short, long) == ("21", "291") and first != second


def test_redis_password_stays_out_of_the_command_line():
    run = run_under_mocks(lambda: declare_gateway(settings_for("dev")))
    redis = run.mocks.named("gateway-redis")
    # A bare redis-server command: the image's entrypoint then drops root.
    assert redis.plain("command") == ["redis-server", "/usr/local/etc/redis/redis.conf"]
    assert redis.is_secret("uploads"), "the config file carries the password"
    (upload,) = redis.plain("uploads")
    assert upload["content"].endswith(f'requirepass "{SECRET_MARKER}-redis_password"\n')
    assert "maxmemory 128mb" in upload["content"]
    assert redis.is_secret("envs")
    assert _env(redis) == {"REDISCLI_AUTH": f"{SECRET_MARKER}-redis_password"}


def test_postgres_keeps_its_data_on_a_named_volume():
    run = run_under_mocks(lambda: declare_gateway(settings_for("prod")))
    volume = run.mocks.named("gateway-postgres-volume")
    assert volume.plain("name") == "litellm-gateway-prod-pgdata"
    mount = run.mocks.named("gateway-postgres").plain("mounts")[0]
    assert (mount["source"], mount["target"], mount["type"]) == (
        "litellm-gateway-prod-pgdata", "/var/lib/postgresql/data", "volume")
    assert run.mocks.named("gateway-postgres").plain("healthcheck")["tests"][:2] == ["CMD", "pg_isready"]


def test_gateway_containers_share_one_private_network():
    run = run_under_mocks(lambda: declare_gateway(settings_for("prod")))
    network = run.mocks.named("network")
    assert network.plain("name") == "litellm-gateway-prod-net"
    for c in run.mocks.of_type("docker:index/container:Container"):
        assert [n["name"] for n in c.plain("networksAdvanced")] == ["litellm-gateway-prod-net"]


def test_resource_limits_and_healthcheck_of_litellm():
    run = run_under_mocks(lambda: declare_gateway(settings_for("prod")))
    litellm = run.mocks.named("gateway-litellm-0")
    assert litellm.plain("memory") == 4096
    assert litellm.plain("cpus") == "4"
    assert "/health/liveliness" in " ".join(litellm.plain("healthcheck")["tests"])


def test_nothing_secret_outside_secret_inputs_in_the_gateway():
    run = run_under_mocks(lambda: declare_gateway(settings_for("prod")))
    leaks = [
        f"{r.name}{path}" for r in run.resources for path, value in walk_plain(r.inputs)
        if isinstance(value, str) and SECRET_MARKER in value
    ]
    assert leaks == []
