"""Mangled and hostile configuration: every class of bad value is refused with its key path.

The classes (control characters in any value, non-finite numbers, addresses that are not hosts,
names that collide once slugged, ports that clash, dev-only features outside dev, ...) are tested
over every key of both shipped stack files, so a key added later is covered without a new test.
"""

from __future__ import annotations

import copy
import math
from typing import Any, Iterator

import pulumi
import pytest

from config.errors import SettingsError
from config.parse import parse_settings
from config.secret_keys import NOT_GENERATED, SECRET_KEYS
from config.values import full_ollama_tag, host_key_problem, local_url, postgres_url, split_host_port
from harness import EXAMPLE_STACKS, example_config, run_stack, stack_file_config

SSH_KEY = "-----BEGIN OPENSSH PRIVATE KEY-----\nb3BlbnNzaC1rZXktdjEAAAAA\n-----END OPENSSH PRIVATE KEY-----\n"
HOST_KEY = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIHSFUFB5Nwm1tqlDzcD0Qr9hKTIZJ2IMRDPCSnDyK8HM"


def config(stack: str) -> dict[str, Any]:
    return copy.deepcopy(stack_file_config(stack))


def problems_of(raw, secret_keys=frozenset(), stack=None) -> list[tuple[str, str]]:
    with pytest.raises(SettingsError) as caught:
        parse_settings(raw, secret_keys, stack=stack)
    return caught.value.problems


def leaves(value: Any, path: str = "") -> Iterator[tuple[str, list | dict, Any, Any]]:
    """(key path, container, index, value) of every scalar in a raw config."""
    items = value.items() if isinstance(value, dict) else enumerate(value)
    for key, child in items:
        child_path = f"{path}[{key}]" if isinstance(key, int) else (f"{path}.{key}" if path else key)
        if isinstance(child, (dict, list)):
            yield from leaves(child, child_path)
        else:
            yield child_path, value, key, child


def example(stack: str) -> dict[str, Any]:
    """A shipped example file: the class tests sweep every key in it, so a key added there is covered."""
    return copy.deepcopy(example_config(stack))


def string_leaves(stack: str) -> list[str]:
    return [path for path, _, _, v in leaves(example(stack)) if isinstance(v, str)]


def number_leaves(stack: str) -> list[str]:
    return [path for path, _, _, v in leaves(example(stack)) if isinstance(v, (int, float)) and not isinstance(v, bool)]


def mutate(raw: dict, path: str, change) -> dict:
    for leaf_path, container, key, value in leaves(raw):
        if leaf_path == path:
            container[key] = change(value)
            return raw
    raise AssertionError(f"{path} not found")


def test_the_classes_cover_a_real_number_of_keys():
    # Guards the parametrisation below against silently testing nothing.
    assert sum(len(string_leaves(s)) for s in EXAMPLE_STACKS) >= 30
    assert sum(len(number_leaves(s)) for s in EXAMPLE_STACKS) >= 20


@pytest.mark.parametrize("stack", EXAMPLE_STACKS)
@pytest.mark.parametrize("bad", ["\n", "\x00", "\r", "\t", "\x1b[2J"])
def test_a_control_character_in_any_value_is_refused_at_its_key(stack, bad):
    for path in string_leaves(stack):
        raw = mutate(example(stack), path, lambda v: v + bad)
        keys = {key for key, _ in problems_of(raw)}
        assert path in keys, f"{path} + {bad!r} was not reported at its key: {keys}"


@pytest.mark.parametrize("stack", EXAMPLE_STACKS)
def test_a_trailing_newline_is_never_accepted(stack):
    # re.match(...$) accepts "03:00\n"; every key is held to a full match.
    for path in string_leaves(stack):
        raw = mutate(example(stack), path, lambda v: v + "\n")
        with pytest.raises(SettingsError):
            parse_settings(raw)


@pytest.mark.parametrize("stack", EXAMPLE_STACKS)
@pytest.mark.parametrize("bad", [math.inf, -math.inf, math.nan])
def test_non_finite_numbers_are_refused_at_their_key(stack, bad):
    for path in number_leaves(stack):
        raw = mutate(example(stack), path, lambda v: bad)
        keys = {key for key, _ in problems_of(raw)}
        assert path in keys, f"{path} = {bad} was not reported at its key: {keys}"


@pytest.mark.parametrize("key", [k for k in SECRET_KEYS if k not in NOT_GENERATED])
@pytest.mark.parametrize("bad", ["\n", "\x00", "\x7f"])
def test_control_characters_in_supplied_secrets_are_refused_without_echoing_them(key, bad):
    value = "sk-" + "Ab3dE" * 8 + bad + "tail"
    problems = problems_of(dict(config("dev"), **{key: value}), frozenset({key}))
    messages = [m for k, m in problems if k == key]
    assert messages and "control characters" in messages[0]
    assert all("Ab3dE" not in m for _, m in problems), "the message must not repeat the secret"


def test_a_private_key_keeps_its_line_breaks_but_not_other_control_characters():
    raw = config("prod")
    del raw["gpuSsh"]["privateKeyVault"]
    parse_settings(dict(raw, gpuSshPrivateKey=SSH_KEY), frozenset({"gpuSshPrivateKey"}))
    problems = problems_of(dict(raw, gpuSshPrivateKey=SSH_KEY.replace("b3Bl", "b3\x00Bl")), frozenset({"gpuSshPrivateKey"}))
    assert [k for k, _ in problems] == ["gpuSshPrivateKey"]


def test_every_problem_of_one_host_is_listed_not_only_the_type_error():
    raw = config("prod")
    raw["gpuHosts"][0].update(name="GPU 01!", ollamaPort="eleven", address="10.20.1.11@attacker.example")
    keys = {key for key, _ in problems_of(raw)}
    assert {"gpuHosts[0].name", "gpuHosts[0].ollamaPort", "gpuHosts[0].address"} <= keys


def test_cross_checks_still_run_when_a_sibling_key_has_the_wrong_type():
    raw = config("prod")
    raw["gateway"].update(bindAddress="0.0.0.0", memoryMb="lots")
    keys = {key for key, _ in problems_of(raw)}
    assert {"gateway.bindAddress", "gateway.memoryMb"} <= keys


@pytest.mark.parametrize("address", ["::ffff:0.0.0.0", "::ffff:93.184.216.34", "0.0.0.0", "::", "8.8.8.8"])
@pytest.mark.parametrize("section", ["gateway", "monitoring"])
def test_public_binds_are_caught_in_every_spelling(section, address):
    raw = config("prod")
    raw[section]["bindAddress"] = address
    assert f"{section}.bindAddress" in {k for k, _ in problems_of(raw)}
    raw[section]["allowPublicBind"] = True
    parse_settings(raw)


@pytest.mark.parametrize("address", [
    "10.20.1.11@attacker.example", "10.20.1.11/evil", "gpu 01", "http://gpu-01", "gpu-01:11434", "-gpu",
    "a" * 64 + ".example", "10.20.1.256", "",
])
def test_gpu_host_addresses_must_be_an_ip_or_a_host_name(address):
    raw = config("prod")
    raw["gpuHosts"][0]["address"] = address
    assert "gpuHosts[0].address" in {k for k, _ in problems_of(raw)}


def test_ipv6_addresses_are_bracketed_wherever_a_port_follows():
    raw = config("prod")
    raw["gpuHosts"][0]["address"] = "fd00:20::11"
    raw["gateway"]["bindAddress"] = "fd00::10"
    raw["monitoring"]["bindAddress"] = "fd00::10"
    run = run_stack(raw)
    models = run.outputs["models"]
    assert models["llama3.1-8b"]["served_by"]["gpu-01"] == "http://[fd00:20::11]:11434"
    assert run.outputs["gatewayUrl"] == "http://[fd00::10]:4000"
    assert run.outputs["prometheusUrl"].startswith("http://[fd00::10]:")
    # The GPU dispatcher in the load balancer reaches the host; the replicas reach the dispatcher.
    haproxy_cfg = run.mocks.named("gateway-lb").plain("uploads")[0]["content"]
    assert "server gpu-01 [fd00:20::11]:11434 " in haproxy_cfg
    prometheus_yml = run.mocks.named("monitoring-prometheus").plain("uploads")[0]["content"]
    assert "[fd00:20::11]:9100" in prometheus_yml


def test_urls_and_host_port_helpers():
    assert local_url("0.0.0.0", 4000) == "http://127.0.0.1:4000"
    assert local_url("::", 4000) == "http://127.0.0.1:4000"
    assert local_url("::1", 4000) == "http://[::1]:4000"
    assert split_host_port("[fd00::1]:9093") == ("fd00::1", 9093)
    assert split_host_port("alertmanager.internal:9093") == ("alertmanager.internal", 9093)
    for bad in ("fd00::1:9093", "[am.internal]:9093", "am:0", "am:70000", "am", "a b:1"):
        assert split_host_port(bad) is None, bad


@pytest.mark.parametrize("names", [("Mistral-7b", "mistral-7b"), ("qwen.small", "qwen-small"), ("a_b", "a-b")])
def test_model_names_that_collide_once_slugged_are_refused_before_any_resource(names):
    raw = config("prod")
    raw["models"] = [dict(raw["models"][0], name=names[0], ollamaTag="llama3.1:8b"),
                     dict(raw["models"][0], name=names[1], ollamaTag="mistral:7b", hosts=["gpu-02"])]
    del raw["gpuHosts"][2]["models"]
    problems = problems_of(raw)
    assert any(k == "models[1].name" and "differ only in case or punctuation" in m for k, m in problems), problems
    with pytest.raises(pulumi.RunError, match="differ only in case"):
        run_stack(raw)


def test_host_and_model_pairs_that_slug_to_one_resource_name_are_refused():
    raw = config("prod")
    raw["gpuHosts"] = [dict(raw["gpuHosts"][0], name="gpu-a"), dict(raw["gpuHosts"][1], name="gpu")]
    raw["models"] = [dict(raw["models"][0], name="b", hosts=["gpu-a"]), dict(raw["models"][0], name="a-b",
                                                                              ollamaTag="mistral:7b", hosts=["gpu"])]
    problems = problems_of(raw)
    assert any("would both declare the pull resource 'gpu-a-b'" in m for _, m in problems), problems


@pytest.mark.parametrize("tags", [("mistral:7b", "mistral:7b"), ("mistral", "mistral:latest"), ("Mistral:7B", "mistral:7b")])
def test_two_models_pulling_one_tag_on_one_host_are_refused(tags):
    # Pruning removes a model's tag when the model leaves the config: with two models on one tag,
    # removing one would delete the weights the other serves.
    raw = config("dev")
    raw["models"] = [dict(raw["models"][0], name="one", ollamaTag=tags[0]),
                     dict(raw["models"][0], name="two", ollamaTag=tags[1])]
    problems = problems_of(raw)
    assert any(k == "gpuHosts[0]" and "both pull" in m and "'one'" in m and "'two'" in m for k, m in problems), problems


def test_one_tag_on_two_different_hosts_is_fine():
    raw = config("prod")
    raw["models"][2]["ollamaTag"] = raw["models"][1]["ollamaTag"]  # same tag, gpu-01 vs gpu-03
    raw["gpuHosts"][2]["models"] = [raw["models"][1]["name"]]
    settings = parse_settings(raw)
    # Both models keep their hosts: the shared tag is pulled once on each host.
    assert settings.models[2].ollama_tag == settings.models[1].ollama_tag
    assert [m.hosts for m in settings.models[1:]] == [tuple(raw["models"][1]["hosts"]), tuple(raw["models"][2]["hosts"])]


def test_full_ollama_tag():
    assert full_ollama_tag("qwen2.5") == "qwen2.5:latest"
    assert full_ollama_tag("registry.local:5000/team/qwen2.5") == "registry.local:5000/team/qwen2.5:latest"
    assert full_ollama_tag("Team/Qwen:7B") == "team/qwen:7b"


@pytest.mark.parametrize("key, reason", [
    ("ssh-dss AAAAB3NzaC1kc3MAAACBAP8=", "not supported"),
    ("ssh-ed25519 not-base64!", "not valid base64"),
    ("ssh-rsa AAAAC3NzaC1lZDI1NTE5AAAAIHSFUFB5Nwm1tqlDzcD0Qr9hKTIZJ2IMRDPCSnDyK8HM", "says 'ssh-ed25519'"),
    ("AAAAC3NzaC1lZDI1NTE5AAAAIHSFUFB5Nwm1tqlDzcD0Qr9hKTIZJ2IMRDPCSnDyK8HM", "expected"),
])
def test_host_keys_paramiko_cannot_use_are_refused(key, reason):
    assert reason in host_key_problem(key)
    raw = config("prod")
    raw["gpuHosts"][0]["ssh"] = {"hostKey": key}
    assert "gpuHosts[0].ssh.hostKey" in {k for k, _ in problems_of(raw)}
    assert host_key_problem(HOST_KEY + " comment@host") is None


@pytest.mark.parametrize("mutate_, key", [
    (lambda r: r["vault"].update(policyName="default"), "vault.policyName"),
    (lambda r: r["vault"].update(policyName="root"), "vault.policyName"),
    (lambda r: r["vault"].update(address="http://vault.internal:8200"), "vault.address"),
    (lambda r: r["vault"].update(skipTlsVerify=True), "vault.skipTlsVerify"),
    (lambda r: r["vault"].update(address="vault.internal:8200"), "vault.address"),
    (lambda r: r["gateway"].update(cpus=1e9), "gateway.cpus"),
    (lambda r: r["gateway"].update(memoryMb=10**9), "gateway.memoryMb"),
    (lambda r: r["redis"].update(maxMemoryMb=10**9), "redis.maxMemoryMb"),
    (lambda r: r["postgres"].update(user=""), "postgres.user"),
    (lambda r: r["postgres"].update(user="lite llm"), "postgres.user"),
    (lambda r: r["postgres"].update(database="litellm;drop"), "postgres.database"),
    (lambda r: r["backups"].update(hostPath="/", volumeName=None), "backups.hostPath"),
    (lambda r: r["backups"].update(hostPath="/etc", volumeName=None), "backups.hostPath"),
    (lambda r: r["backups"].update(hostPath="/srv/../etc", volumeName=None), "backups.hostPath"),
    (lambda r: r["backups"].update(hostPath="relative/dir", volumeName=None), "backups.hostPath"),
    (lambda r: r["backups"].update(timesUtc=["03:00", "03:00"]), "backups.timesUtc"),
    (lambda r: r["backups"].update(timesUtc=["3:00"]), "backups.timesUtc[0]"),
    (lambda r: r["gpuHosts"][0].update(localContainer={"image": "ollama/ollama:0.12.6"}), "gpuHosts[0].localContainer"),
    (lambda r: r["monitoring"].update(prometheusPort=4000), "monitoring.prometheusPort"),
    (lambda r: r["monitoring"].update(alertmanagers=["alertmanager.internal"]), "monitoring.alertmanagers[0]"),
    (lambda r: r["gpuSsh"].update(user="root; rm"), "gpuSsh.user"),
    (lambda r: r["models"][0].update(ollamaTag="llama3.1:8b; rm -rf /"), "models[0].ollamaTag"),
    (lambda r: r["docker"].update(host="ssh://deploy@gateway-01.internal extra"), "docker.host"),
])
def test_values_that_broke_something_at_runtime_are_refused(mutate_, key):
    raw = config("prod")
    mutate_(raw)
    assert key in {k for k, _ in problems_of(raw)}


def test_ports_clash_across_services_on_the_same_or_the_wildcard_address():
    raw = config("dev")
    raw["monitoring"]["grafanaPort"] = raw["vault"]["devPort"]
    assert "monitoring.grafanaPort" in {k for k, _ in problems_of(raw)} or \
        "vault.devPort" in {k for k, _ in problems_of(raw)}
    raw = config("prod")
    raw["monitoring"].update(bindAddress="0.0.0.0", allowPublicBind=True, prometheusPort=raw["gateway"]["port"])
    assert "monitoring.prometheusPort" in {k for k, _ in problems_of(raw)}
    raw["monitoring"]["bindAddress"] = "10.20.0.99"  # another address: no clash
    parse_settings(raw)


def test_dev_only_features_are_fine_in_dev_stacks():
    raw = config("dev")
    raw["vault"]["skipTlsVerify"] = True
    assert parse_settings(raw).vault.skip_tls_verify is True
    # (without the fixture's spelled dev names, which a dev-alice copy may not take over)
    own = {**raw, "environment": "dev-alice", "vault": {k: v for k, v in raw["vault"].items() if k != "path"},
           "postgres": {k: v for k, v in raw["postgres"].items() if k != "volumeName"},
           "backups": {k: v for k, v in raw["backups"].items() if k != "volumeName"}}
    alice = parse_settings(own, stack="dev-alice")
    assert alice.environment == "dev-alice" and alice.vault_path.endswith("dev-alice")


def test_the_environment_must_be_the_stack_name():
    raw = config("dev")
    problems = problems_of(raw, stack="staging")
    assert any(k == "environment" and "'staging'" in m and "take over" in m for k, m in problems)
    with pytest.raises(pulumi.RunError, match="environment: is 'dev' but the stack is 'staging'"):
        run_stack(raw, stack="staging")


def test_postgres_urls_encode_user_and_password():
    url = postgres_url("lite_llm", "p#a/s@s:w?rd%", "db.internal", 5432, "litellm")
    assert url == "postgresql://lite_llm:p%23a%2Fs%40s%3Aw%3Frd%25@db.internal:5432/litellm"
    assert postgres_url("u", "p", "fd00::5", 5432, "d", "sslmode=disable") == "postgresql://u:p@[fd00::5]:5432/d?sslmode=disable"


def test_the_containers_get_an_encoded_database_url():
    raw = config("dev")
    password = "pa#ss/wo@rd-" + "x" * 8
    run = run_stack(raw, secrets={"postgresPassword": password})
    env = dict(e.split("=", 1) for e in run.mocks.named("gateway-litellm-0").plain("envs"))
    assert env["DATABASE_URL"].endswith(":pa%23ss%2Fwo%40rd-xxxxxxxx@litellm-gateway-dev-postgres:5432/litellm")
    exporter = dict(e.split("=", 1) for e in run.mocks.named("monitoring-postgres-exporter").plain("envs"))
    assert "pa%23ss%2Fwo%40rd-" in exporter["DATA_SOURCE_NAME"]


@pytest.mark.parametrize("key, value, words", [
    ("path", "litellm-gateway/../prod", "'..' segment"),
    ("path", "./litellm-gateway/dev", "'.' or '..' segment"),
    ("mount", "sys", "one of Vault's own mounts"),
    ("mount", "auth/token", "one of Vault's own mounts"),
    ("mount", "..", "'..' segment"),
])
def test_vault_paths_that_resolve_elsewhere_are_refused(key, value, words):
    raw = config("dev")
    raw["vault"] = {**raw["vault"], key: value}
    found = problems_of(raw)
    assert any(k == f"vault.{key}" and words in m for k, m in found), found


@pytest.mark.parametrize("path", ["/home/deploy", "/etc/ssh", "/root/.ssh", "/var/lib/docker/volumes/x/_data",
                                  "/run/secrets", "/tmp/backups", "/usr/local/backups"])
def test_a_backup_host_path_that_belongs_to_someone_else_is_refused(path):
    raw = config("dev")
    raw["backups"] = {k: v for k, v in raw["backups"].items() if k != "volumeName"} | {"hostPath": path}
    found = problems_of(raw)
    assert any(k == "backups.hostPath" for k, _ in found), found


@pytest.mark.parametrize("path", ["/srv/backups/litellm-gateway/dev", "/home/deploy/litellm-backups", "/data/dev"])
def test_a_backup_host_path_of_its_own_is_accepted(path):
    raw = config("dev")
    raw["backups"] = {k: v for k, v in raw["backups"].items() if k != "volumeName"} | {"hostPath": path}
    assert parse_settings(raw).backups.host_path == path


def _prod_without_waiver() -> dict:
    raw = copy.deepcopy(config("prod"))
    raw["gateway"]["loadBalancer"] = {k: v for k, v in raw["gateway"].get("loadBalancer", {}).items()
                                      if k != "allowPlainHttp"}
    return raw


def test_outside_dev_the_gateway_needs_tls_or_a_named_waiver():
    raw = _prod_without_waiver()
    assert any(k == "gateway.loadBalancer.tls.enabled" and "plain HTTP" in m for k, m in problems_of(raw))
    raw["gateway"]["loadBalancer"]["allowPlainHttp"] = "TLS ends at the load balancer in front of this host"
    parse_settings(raw)
    dev = config("dev")
    assert not (dev["gateway"].get("loadBalancer") or {}).get("tls"), "dev serves plain HTTP on loopback"
    parse_settings(dev)


@pytest.mark.parametrize("url, refused", [("http://gateway.internal:4000", True), ("https://gateway.internal", False),
                                          ("http://127.0.0.1:14000", False), ("http://localhost:14000", False)])
def test_outside_dev_the_management_url_carries_the_master_key_encrypted(url, refused):
    raw = _prod_without_waiver()
    raw["gateway"]["loadBalancer"]["tls"] = {"enabled": True, "vault": {"path": "ops/tls"}}
    raw["access"] = {**raw.get("access", {}), "managementUrl": url}
    try:
        parse_settings(raw)
        found = []
    except SettingsError as error:
        found = [m for k, m in error.problems if k == "access.managementUrl"]
    assert bool(found) == refused, found


def test_outside_dev_a_tcp_docker_host_needs_a_named_waiver():
    raw = copy.deepcopy(config("prod"))
    raw["docker"] = {"host": "tcp://gateway-01.internal:2375"}
    assert any(k == "docker.host" and "unauthenticated" in m for k, m in problems_of(raw))
    raw["docker"]["allowPlainTcp"] = "a private link between the deploy runner and this engine only"
    parse_settings(raw)


def test_a_remote_engine_with_a_loopback_gateway_needs_a_management_url():
    raw = copy.deepcopy(config("prod"))
    raw["gateway"]["bindAddress"] = "127.0.0.1"
    assert any(k == "access.managementUrl" and "cannot reach as its own loopback" in m for k, m in problems_of(raw))
    raw["access"] = {**raw.get("access", {}), "managementUrl": "http://127.0.0.1:14000"}  # an SSH tunnel's end
    parse_settings(raw)
