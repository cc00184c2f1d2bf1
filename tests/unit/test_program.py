"""The whole program under mocks, for the shipped dev and prod stacks."""

import copy
import json

import pytest

from config.parse import parse_settings
from harness import ROOT, SECRET_MARKER, run_stack, stack_file_config, walk_plain

SUPPLIED = {
    "masterKey": "sk-SUPPLIEDmaster" + "k" * 32,
    "saltKey": "SUPPLIEDsalt" + "s" * 32,
    "uiPassword": "SUPPLIEDui" + "u" * 20,
    "postgresPassword": "SUPPLIEDpg" + "p" * 20,
    "redisPassword": "SUPPLIEDredis" + "r" * 20,
    "grafanaAdminPassword": "SUPPLIEDgrafana" + "g" * 20,
}


@pytest.fixture(scope="module")
def dev_run():
    return run_stack(stack_file_config("dev"), stack="dev")


@pytest.fixture(scope="module")
def prod_run():
    return run_stack(stack_file_config("prod"), stack="prod")


def container(run, name):
    return run.mocks.named(name)


def containers(run):
    return {r.name: r for r in run.mocks.of_type("docker:index/container:Container")}


# --- dev -----------------------------------------------------------------------------------------

def test_dev_runs_everything_on_the_local_docker_engine(dev_run):
    provider = dev_run.mocks.named("docker")
    assert provider.plain("host") == "unix:///var/run/docker.sock"
    assert set(containers(dev_run)) == {
        "vault-dev-server", "gateway-postgres", "gateway-redis", "models-ollama-ollama-dev", "gateway-litellm-0",
        "gateway-lb", "monitoring-prometheus", "monitoring-grafana", "monitoring-redis-exporter", "monitoring-postgres-exporter",
        "backups-scheduler",
    }


def test_dev_vault_is_a_dev_mode_container_reached_on_loopback(dev_run):
    vault = container(dev_run, "vault-dev-server")
    assert vault.plain("ports") == [{"internal": 8200, "external": 8200, "ip": "127.0.0.1"}]
    assert vault.is_secret("envs"), "the dev root token is in the environment: it must be secret"
    provider = dev_run.mocks.named("vault-provider")
    assert provider.plain("address") == "http://127.0.0.1:8200"
    assert provider.is_secret("token")


def test_dev_outputs(dev_run):
    out = dev_run.outputs
    assert out["gatewayUrl"] == "http://127.0.0.1:4000"
    assert out["adminUiUrl"] == "http://127.0.0.1:4000/ui"
    assert out["vaultSecretPath"] == "secret/litellm-gateway/dev"
    assert out["vaultSecretVersion"] == 1
    assert out["models"]["qwen-small"]["served_by"] == {"ollama-dev": "http://ollama-dev:11434"}


def test_dev_ollama_container_answers_as_the_configured_host_address(dev_run):
    ollama = container(dev_run, "models-ollama-ollama-dev")
    assert ollama.plain("networksAdvanced")[0]["aliases"] == ["ollama-dev"]
    assert not ollama.plain("ports"), "the dev Ollama is reached only on the gateway network"


# --- prod ----------------------------------------------------------------------------------------

def test_prod_uses_a_remote_docker_host_and_an_existing_vault(prod_run):
    assert prod_run.mocks.named("docker").plain("host") == "ssh://deploy@gateway-01.internal"
    assert "vault-dev-server" not in containers(prod_run)
    assert prod_run.mocks.named("vault-provider").plain("address") == "https://vault.internal:8200"
    assert not any("ollama" in name for name in containers(prod_run))


def test_prod_publishes_only_the_load_balancer_and_one_url(prod_run):
    for i in range(2):
        assert not container(prod_run, f"gateway-litellm-{i}").plain("ports"), "replicas publish no port"
    settings = parse_settings(stack_file_config("prod"))
    lb = container(prod_run, "gateway-lb")
    assert [(p["ip"], p["external"]) for p in lb.plain("ports")] == [(settings.gateway.bind_address, settings.gateway.port)]
    assert prod_run.outputs["gatewayUrl"] == f"http://{settings.gateway.bind_address}:{settings.gateway.port}"
    assert "gatewayUrls" not in prod_run.outputs
    assert {"gateway-litellm-0", "gateway-litellm-1"} <= prod_run.mocks.depends_on_names("gateway-lb")


def test_prod_only_the_first_replica_migrates_the_schema(prod_run):
    first, second = (container(prod_run, f"gateway-litellm-{i}").plain("envs") for i in range(2))
    assert not any(e.startswith("DISABLE_SCHEMA_UPDATE=") for e in first)
    assert "DISABLE_SCHEMA_UPDATE=true" in second
    assert "gateway-litellm-0" in prod_run.mocks.depends_on_names("gateway-litellm-1")


def test_prod_salt_key_is_protected_and_the_vault_secret_survives_destroy(prod_run):
    assert prod_run.mocks.options_of("secrets-saltKey").protect is True
    assert prod_run.mocks.options_of("secrets-kv").retain_on_delete is True
    assert prod_run.mocks.options_of("gateway-postgres-volume").retain_on_delete is True


def test_prod_models_and_where_they_are_served(prod_run):
    models = prod_run.outputs["models"]
    assert models["llama3.1-8b"]["served_by"] == {
        "gpu-01": "http://10.20.1.11:11434", "gpu-02": "http://10.20.1.12:11434",
    }
    assert models["qwen-coder"]["served_by"] == {"gpu-03": "http://10.20.1.13:11434"}


# --- both ----------------------------------------------------------------------------------------

@pytest.mark.parametrize("stack", ["dev", "prod"])
def test_postgres_and_redis_are_never_published(stack):
    run = run_stack(stack_file_config(stack), stack=stack)
    for name in ("gateway-postgres", "gateway-redis"):
        assert not container(run, name).plain("ports"), f"{name} must not publish a host port"


@pytest.mark.parametrize("stack", ["dev", "prod"])
def test_every_container_has_healthcheck_restart_policy_and_waits(stack):
    run = run_stack(stack_file_config(stack), stack=stack)
    for name, c in containers(run).items():
        assert c.plain("healthcheck", {}).get("tests"), f"{name} has no healthcheck"
        assert c.plain("restart") == "unless-stopped", name
        assert c.plain("wait") is True, name


@pytest.mark.parametrize("stack", ["dev", "prod"])
def test_replicas_roll_and_fixed_name_containers_are_removed_before_their_replacement_starts(stack):
    run = run_stack(stack_file_config(stack), stack=stack)
    replicas = {name for name in containers(run) if name.startswith("gateway-litellm-")}
    assert replicas
    for name in containers(run):
        if name in replicas:
            # Create before delete: the successor starts beside it under a new name.
            assert not run.mocks.options_of(name).delete_before_replace, name
        else:
            assert run.mocks.options_of(name).delete_before_replace is True, name


@pytest.mark.parametrize("stack", ["dev", "prod"])
def test_every_image_is_pinned(stack):
    run = run_stack(stack_file_config(stack), stack=stack)
    for image in run.mocks.of_type("docker:index/remoteImage:RemoteImage"):
        reference = image.plain("name")
        assert ":" in reference.rsplit("/", 1)[-1] and not reference.endswith(":latest"), reference


@pytest.mark.parametrize("stack", ["dev", "prod"])
def test_litellm_waits_for_postgres_and_redis(stack):
    run = run_stack(stack_file_config(stack), stack=stack)
    deps = run.mocks.depends_on_names("gateway-litellm-0")
    assert {"gateway-postgres", "gateway-redis"} <= deps


@pytest.mark.parametrize("stack", ["dev", "prod"])
def test_backlog_has_every_seed_item_with_computed_status(stack):
    run = run_stack(stack_file_config(stack), stack=stack)
    backlog = run.outputs["backlog"]
    assert sorted(backlog) == [f"BACKLOG-00{i}" for i in range(1, 9)]
    for item in backlog.values():
        assert item["status"] in {"done", "partial", "not started"}
        assert item["title"] and item["priority"].startswith("P")
    assert backlog["BACKLOG-001"]["status"] == "done"
    assert backlog["BACKLOG-001"]["evidence"]["vault_secret"] == f"secret/litellm-gateway/{stack}"
    assert backlog["BACKLOG-001"]["evidence"]["kv_version"] == 1
    assert backlog["BACKLOG-008"]["status"] == "done"
    assert backlog["BACKLOG-008"]["evidence"]["cache"]["ttl_seconds"] == stack_file_config(stack)["cache"]["ttlSeconds"]
    backups = backlog["BACKLOG-004"]
    assert backups["status"] == "done"
    assert backups["evidence"]["backup_schedule"] == "daily at 03:00 UTC"
    assert (ROOT / backups["evidence"]["runbook"]).is_file()
    pulls = backlog["BACKLOG-002"]["evidence"]["pulls"]
    settings_raw = stack_file_config(stack)
    routed = {(m["name"], h) for m in settings_raw["models"] for h in m["hosts"]}
    assert routed <= {(p["model"], p["host"]) for p in pulls if p["status"] == "verified"}
    assert all(p["digest"] for p in pulls)
    assert backlog["BACKLOG-002"]["status"] == "done"


def test_backlog_follows_the_config_not_a_fixed_answer():
    raw = copy.deepcopy(stack_file_config("dev"))
    raw["cache"]["enabled"] = False
    run = run_stack(raw, stack="dev")
    assert run.outputs["backlog"]["BACKLOG-008"]["status"] == "not started"
    assert run.outputs["backlog"]["BACKLOG-008"]["evidence"]["cache"] is None
    uploaded = container(run, "gateway-litellm-0").plain("uploads")[0]["content"]
    assert "cache_params" not in uploaded


# --- secrets, end to end ---------------------------------------------------------------------------

def _leaks(run, needles):
    found = []
    for resource in run.resources:
        for path, value in walk_plain(resource.inputs):
            if isinstance(value, str) and any(n in value for n in needles):
                found.append(f"{resource.type} {resource.name}{path}")
    return found


@pytest.mark.parametrize("stack", ["dev", "prod"])
def test_generated_secrets_appear_only_inside_secrets(stack):
    run = run_stack(stack_file_config(stack), stack=stack)
    # The scan must have something to find: the generated values do reach resource inputs.
    secret_inputs = [r for r in run.resources if any(r.is_secret(k) for k in r.inputs)]
    assert len(secret_inputs) >= 4
    assert _leaks(run, [SECRET_MARKER]) == []
    assert SECRET_MARKER not in json.dumps(run.outputs)
    assert run.secret_outputs == set(), "no output should need to be secret: none holds a secret"


@pytest.mark.parametrize("stack", ["dev", "prod"])
def test_supplied_secrets_appear_only_inside_secrets(stack):
    run = run_stack(stack_file_config(stack), secrets=SUPPLIED, stack=stack)
    # The generated ones stay declared (a supplied value must not delete them, least of all the
    # protected salt key), but no supplied key's container input comes from them.
    generated = {r.name for r in run.mocks.of_type("random:index/randomPassword:RandomPassword")}
    assert {f"secrets-{key}" for key in SUPPLIED if key != "gpuSshPrivateKey"} <= generated
    assert run.mocks.options_of("secrets-saltKey").protect
    assert _leaks(run, list(SUPPLIED.values())) == []
    assert not any(v in json.dumps(run.outputs) for v in SUPPLIED.values())
    kv = run.mocks.named("secrets-kv")
    assert kv.is_secret("dataJson")
    stored = json.loads(kv.plain("dataJson"))
    assert stored["LITELLM_MASTER_KEY"] == SUPPLIED["masterKey"]
    assert stored["LITELLM_SALT_KEY"] == SUPPLIED["saltKey"]


def test_the_scan_catches_a_leak():
    """Guard for the scan itself: a secret placed in a plain input must be reported."""
    run = run_stack(stack_file_config("dev"), stack="dev")
    run.resources[0].inputs["leak"] = f"oops-{SECRET_MARKER}"
    assert _leaks(run, [SECRET_MARKER]) == [f"{run.resources[0].type} {run.resources[0].name}.leak"]


@pytest.mark.parametrize("stack", ["dev", "prod"])
def test_same_config_gives_identical_inputs(stack):
    first = run_stack(stack_file_config(stack), stack=stack)
    second = run_stack(stack_file_config(stack), stack=stack)
    as_map = lambda run: {(r.type, r.name): r.inputs for r in run.resources}  # noqa: E731
    assert as_map(first) == as_map(second)
    assert first.outputs == second.outputs


@pytest.mark.parametrize("level", [None, "INFO", "ERROR"])
def test_litellm_log_level_follows_the_setting_and_is_quiet_by_default(level):
    raw = copy.deepcopy(stack_file_config("dev"))
    if level:
        raw["gateway"]["logLevel"] = level
    run = run_stack(raw, stack="dev")
    env = dict(e.split("=", 1) for e in run.mocks.named("gateway-litellm-0").plain("envs"))
    assert env["LITELLM_LOG"] == (level or "WARNING")
