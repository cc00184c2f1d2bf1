"""Every invalid configuration fails before any resource is declared, naming each key and problem."""

import copy

import pulumi
import pytest

from config.errors import SettingsError
from config.images import image_problem, litellm_version_of
from config.parse import parse_settings
from harness import run_stack, stack_file_config

GOOD_MASTER_KEY = "sk-" + "A1b2C3d4" * 5


def dev():
    return copy.deepcopy(stack_file_config("dev"))


def prod():
    return copy.deepcopy(stack_file_config("prod"))


def problems_of(raw, secret_keys=frozenset()):
    with pytest.raises(SettingsError) as caught:
        parse_settings(raw, secret_keys)
    return caught.value.problems


def keys_of(problems):
    return [key for key, _ in problems]


@pytest.mark.parametrize("stack", ["dev", "prod"])
def test_shipped_stacks_are_valid(stack):
    settings = parse_settings(stack_file_config(stack))
    assert settings.environment == stack
    assert settings.routes(), "every shipped stack routes at least one model"


def test_prod_is_a_remote_docker_host_with_external_vault_and_several_gpu_hosts():
    settings = parse_settings(prod())
    assert settings.docker.host.startswith("ssh://")
    assert settings.vault.mode == "external"
    assert len(settings.gpu_hosts) >= 2
    assert settings.secrets.protect_salt_key


def test_missing_required_keys_are_each_named():
    problems = problems_of({})
    assert set(keys_of(problems)) == {"environment", "gateway", "models", "gpuHosts"}


def test_missing_nested_key_names_its_path():
    raw = dev()
    del raw["models"][0]["ollamaTag"]
    assert ("models[0].ollamaTag", "required key is missing") in problems_of(raw)


@pytest.mark.parametrize(
    "mutate, key",
    [
        (lambda r: r["gateway"].update(port="four thousand"), "gateway.port"),
        (lambda r: r["gateway"].update(replicas=1.5), "gateway.replicas"),
        (lambda r: r["cache"].update(enabled="sometimes"), "cache.enabled"),
        (lambda r: r["models"][0].update(hosts="ollama-dev"), "models[0].hosts"),
        (lambda r: r.update(models={"name": "x"}), "models"),
        (lambda r: r["gpuHosts"][0].update(ollamaPort=[11434]), "gpuHosts[0].ollamaPort"),
    ],
)
def test_wrong_types_name_the_key(mutate, key):
    raw = dev()
    mutate(raw)
    assert key in keys_of(problems_of(raw))


@pytest.mark.parametrize(
    "mutate, key",
    [
        (lambda r: r["gateway"].update(port=0), "gateway.port"),
        (lambda r: r["gateway"].update(port=70000), "gateway.port"),
        (lambda r: r["gpuHosts"][0].update(ollamaPort=65536), "gpuHosts[0].ollamaPort"),
        (lambda r: r["vault"].update(devPort=-1), "vault.devPort"),
        (lambda r: r["gateway"].update(replicas=9), "gateway.loadBalancer.maxReplicas"),
    ],
)
def test_ports_out_of_range(mutate, key):
    raw = dev()
    mutate(raw)
    assert key in keys_of(problems_of(raw))


def test_unknown_keys_are_reported_not_ignored():
    raw = dev()
    raw["gateway"]["replica"] = 2
    raw["alerting"] = {}
    keys = keys_of(problems_of(raw))
    assert "gateway.replica" in keys
    assert "alerting" in keys


def test_unknown_host_on_a_model():
    raw = dev()
    raw["models"][0]["hosts"] = ["ollama-dev", "gpu-99"]
    problems = problems_of(raw)
    assert any(k == "models[0].hosts" and "gpu-99" in m for k, m in problems)


def test_unknown_model_on_a_host():
    raw = prod()
    raw["gpuHosts"][2]["models"] = ["qwen-coder", "no-such-model"]
    problems = problems_of(raw)
    assert any(k == "gpuHosts[2].models" and "no-such-model" in m for k, m in problems)


def test_model_routed_to_a_host_that_does_not_pull_it():
    raw = prod()
    raw["gpuHosts"][2]["models"] = ["mistral-7b"]  # qwen-coder is routed to gpu-03
    problems = problems_of(raw)
    assert any(k == "gpuHosts[2].models" and "qwen-coder" in m and "does not pull" in m for k, m in problems)


def test_duplicate_names():
    raw = prod()
    raw["models"].append(copy.deepcopy(raw["models"][0]))
    raw["gpuHosts"].append(dict(raw["gpuHosts"][0], address="10.9.9.9"))
    raw["models"][1]["hosts"] = ["gpu-03", "gpu-03"]
    messages = [m for _, m in problems_of(raw)]
    assert any("model name 'llama3.1-8b' is declared more than once" in m for m in messages)
    assert any("host name 'gpu-01' is declared more than once" in m for m in messages)
    assert any("host 'gpu-03' is listed twice" in m for m in messages)


@pytest.mark.parametrize("first, second", [
    ("10.20.1.11", "10.20.1.11"), ("10.20.1.11", "::ffff:10.20.1.11"), ("fd00::11", "fd00:0:0::11"),
    ("gpu.example.internal", "GPU.example.internal."),
])
def test_two_hosts_on_one_ollama_endpoint(first, second):
    """One endpoint, however it is spelt: an IP address in any of its forms, a DNS name in any case."""
    raw = prod()
    raw["gpuHosts"][0]["address"], raw["gpuHosts"][1]["address"] = first, second
    raw["gpuHosts"][1]["ollamaPort"] = raw["gpuHosts"][0]["ollamaPort"]
    assert any("share the Ollama endpoint" in m for _, m in problems_of(raw))


@pytest.mark.parametrize(
    "section, key, image, reason",
    [
        ("gateway", "image", "ghcr.io/berriai/litellm-database:latest", "moving tag"),
        ("gateway", "image", "ghcr.io/berriai/litellm-database", "no tag"),
        ("gateway", "image", "ghcr.io/berriai/litellm-database:main-stable", "moving tag"),
        ("redis", "image", "redis", "no tag"),
        ("redis", "image", "redis:latest", "moving tag"),
        ("redis", "image", "redis:6.2.14", "Redis 7 or newer"),
        ("postgres", "image", "postgres:latest", "moving tag"),
        ("vault", "devImage", "hashicorp/vault", "no tag"),
    ],
)
def test_unpinned_images(section, key, image, reason):
    raw = dev()
    raw[section][key] = image
    problems = problems_of(raw)
    assert any(k == f"{section}.{key}" and reason in m for k, m in problems), problems


def test_local_ollama_image_must_be_pinned():
    raw = dev()
    raw["gpuHosts"][0]["localContainer"]["image"] = "ollama/ollama:latest"
    assert "gpuHosts[0].localContainer.image" in keys_of(problems_of(raw))


def test_image_pinned_by_digest_is_accepted():
    assert image_problem("redis@sha256:" + "a" * 64) is None
    assert image_problem("registry.example.com:5000/team/redis:7.4.6-alpine") is None
    assert litellm_version_of("ghcr.io/berriai/litellm-database:main-v1.108.7-stable") == "1.108.7"


@pytest.mark.parametrize(
    "value, reason",
    [
        ("sk-1234", "publicly known"),
        ("pk-" + "x" * 40, "must start with 'sk-'"),
        ("sk-short", "too short"),
        ("", "empty"),
    ],
)
def test_weak_supplied_master_key(value, reason):
    raw = dev()
    raw["masterKey"] = value
    problems = problems_of(raw, frozenset({"masterKey"}))
    assert any(k == "masterKey" and reason in m for k, m in problems), problems


def test_supplied_secret_in_plain_text_is_refused():
    raw = dev()
    raw["masterKey"] = GOOD_MASTER_KEY
    problems = problems_of(raw, secret_keys=frozenset())
    assert any(k == "masterKey" and "pulumi config set --secret" in m for k, m in problems)
    # ... and the message never repeats the value itself.
    assert all(GOOD_MASTER_KEY not in m for _, m in problems)


def test_good_supplied_master_key_is_accepted():
    raw = dev()
    raw["masterKey"] = GOOD_MASTER_KEY
    settings = parse_settings(raw, frozenset({"masterKey"}))
    assert settings.supplied_secrets.get("masterKey") == GOOD_MASTER_KEY
    assert GOOD_MASTER_KEY not in repr(settings.supplied_secrets)


@pytest.mark.parametrize("address", ["0.0.0.0", "93.184.216.34", "::"])
def test_public_bind_address_needs_explicit_permission(address):
    raw = prod()
    raw["gateway"]["bindAddress"] = address
    assert "gateway.bindAddress" in keys_of(problems_of(raw))
    raw["gateway"]["allowPublicBind"] = True
    parse_settings(raw)


def test_bind_address_must_be_an_ip():
    raw = prod()
    raw["gateway"]["bindAddress"] = "gateway.internal"
    assert "gateway.bindAddress" in keys_of(problems_of(raw))


def test_vault_dev_container_is_refused_in_prod_and_on_remote_docker():
    raw = prod()
    raw["vault"] = {"mode": "dev-container"}
    messages = dict(problems_of(raw))
    assert "vault.mode" in messages


def test_environment_name_is_checked():
    raw = dev()
    raw["environment"] = "Dev Stack"
    assert "environment" in keys_of(problems_of(raw))


def test_every_problem_is_reported_at_once():
    raw = dev()
    raw["gateway"]["image"] = "litellm:latest"
    raw["gateway"]["port"] = 0
    raw["redis"]["image"] = "redis"
    raw["models"][0]["hosts"] = ["nowhere"]
    raw["environment"] = "BAD"
    keys = set(keys_of(problems_of(raw)))
    assert {"gateway.image", "gateway.port", "redis.image", "models[0].hosts", "environment"} <= keys


def test_error_message_lists_each_problem_with_its_full_key():
    raw = dev()
    raw["gateway"]["port"] = 0
    raw["redis"]["image"] = "redis"
    with pytest.raises(SettingsError) as caught:
        parse_settings(raw)
    text = str(caught.value)
    assert "2 problems" in text
    assert "litellm-gateway:gateway.port" in text
    assert "litellm-gateway:redis.image" in text


def test_program_stops_with_run_error_before_declaring_anything():
    raw = dev()
    raw["gateway"]["image"] = "ghcr.io/berriai/litellm-database:latest"
    raw["models"][0]["hosts"] = ["gpu-99"]
    with pytest.raises(pulumi.RunError) as caught:
        run = run_stack(raw, stack="dev")
        pytest.fail(f"program ran and declared {len(run.resources)} resources")
    assert "gateway.image" in str(caught.value) and "models[0].hosts" in str(caught.value)


def test_program_declares_nothing_on_bad_config():
    import harness

    created = []
    original = harness.RecordingMocks.new_resource

    def spy(self, args):
        created.append(args.name)
        return original(self, args)

    harness.RecordingMocks.new_resource = spy
    try:
        raw = dev()
        raw["cache"]["ttlSeconds"] = -5
        with pytest.raises(pulumi.RunError):
            run_stack(raw, stack="dev")
    finally:
        harness.RecordingMocks.new_resource = original
    assert created == []


@pytest.mark.parametrize("grace", [13, 0, -5, "soon"])
def test_a_stop_grace_period_too_short_for_the_drain_is_refused_by_name(grace):
    raw = dev()
    raw["gateway"]["stopGraceSeconds"] = grace
    problems = dict(problems_of(raw))
    assert "gateway.stopGraceSeconds" in problems, problems
    if isinstance(grace, int):
        assert "14" in problems["gateway.stopGraceSeconds"], problems
    raw["gateway"]["stopGraceSeconds"] = 14
    assert parse_settings(raw).gateway.stop_grace_seconds == 14
