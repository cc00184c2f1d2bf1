"""BACKLOG-002 under mocks: which pulls are declared, how they are ordered, what stays secret."""

import copy

import pulumi

import pytest

from config.settings import parse_settings
from harness import SECRET_MARKER, run_stack, stack_file_config

SSH_KEY = f"-----BEGIN OPENSSH PRIVATE KEY-----\n{SECRET_MARKER}-config-key\n-----END OPENSSH PRIVATE KEY-----\n"


@pytest.fixture(scope="module")
def prod_run():
    return run_stack(stack_file_config("prod"), stack="prod")


def pulls(run):
    return {r.name: r for r in run.resources if r.type.startswith("command:") and "-pull-" in r.name}


def test_one_pull_per_host_and_model_it_pulls_and_no_other(prod_run):
    settings = parse_settings(stack_file_config("prod"))
    expected = {
        f"models-pull-{h.name}-{m.replace('.', '-')}" for h in settings.gpu_hosts for m in settings.models_pulled_by(h)
    }
    assert set(pulls(prod_run)) == expected
    # gpu-03 pulls mistral-7b without serving it; gpu-02 neither pulls nor serves it.
    assert "models-pull-gpu-03-mistral-7b" in expected
    assert "models-pull-gpu-02-mistral-7b" not in expected


def test_pull_runs_the_rendered_script_with_the_tag_and_pinned_digest(prod_run):
    pull = prod_run.mocks.named("models-pull-gpu-01-llama3-1-8b")
    assert pull.plain("create") == "bash -s -- pull llama3.1:8b 46e0c10c039e"
    assert pull.plain("stdin").startswith("#!/usr/bin/env bash")
    assert "HOST_NAME=gpu-01" in pull.plain("stdin")
    assert pull.plain("triggers") == ["llama3.1:8b", "46e0c10c039e"]
    unpinned = prod_run.mocks.named("models-pull-gpu-03-qwen-coder")
    assert unpinned.plain("triggers") == ["qwen2.5-coder:32b", ""]


def test_triggers_change_with_the_tag_and_the_digest_only():
    def triggers(mutate):
        raw = copy.deepcopy(stack_file_config("prod"))
        mutate(raw)
        run = run_stack(raw, stack="prod")
        return run.mocks.named("models-pull-gpu-01-llama3-1-8b").plain("triggers")

    base = triggers(lambda r: None)
    assert triggers(lambda r: r["models"][0].update(ollamaTag="llama3.1:8b-instruct-q8_0")) != base
    assert triggers(lambda r: r["models"][0].update(digest="0123456789ab")) != base
    assert triggers(lambda r: r["models"][0].update(rpm=1)) == base


def test_hosts_pull_in_parallel_and_one_model_at_a_time_per_host(prod_run):
    settings = parse_settings(stack_file_config("prod"))
    host_of = {
        f"models-pull-{h.name}-{m.replace('.', '-')}": h.name for h in settings.gpu_hosts
        for m in settings.models_pulled_by(h)
    }
    for name in pulls(prod_run):
        for dep in prod_run.mocks.depends_on_names(name):
            assert host_of.get(dep) == host_of[name], f"{name} waits for {dep}, which is not a pull on its host"
    assert prod_run.mocks.depends_on_names("models-pull-gpu-01-mistral-7b") == {"models-pull-gpu-01-llama3-1-8b"}
    assert prod_run.mocks.depends_on_names("models-pull-gpu-02-llama3-1-8b") == set()


def test_gateway_waits_for_the_pulls_of_the_routes_it_serves(prod_run):
    settings = parse_settings(stack_file_config("prod"))
    for replica in range(settings.gateway.replicas):
        deps = prod_run.mocks.depends_on_names(f"gateway-litellm-{replica}")
        for model, host in settings.routes():
            assert f"models-pull-{host.name}-{model.name.replace('.', '-')}" in deps
        assert {"models-observed-gpu-01", "models-observed-gpu-02", "models-observed-gpu-03"} <= deps


def test_each_host_has_a_reader_that_waits_for_its_pulls(prod_run):
    reader = prod_run.mocks.named("models-observed-gpu-03")
    assert reader.type == "pulumi-python:dynamic:Resource"
    assert reader.plain("expected") == {
        "qwen-coder": {"tag": "qwen2.5-coder:32b", "digest": ""},
        "mistral-7b": {"tag": "mistral:7b", "digest": ""},
    }
    assert prod_run.mocks.depends_on_names("models-observed-gpu-03") == {"models-pull-gpu-03-mistral-7b"}
    assert prod_run.mocks.options_of("models-observed-gpu-03").additional_secret_outputs == ["transport"]


OTHER_HOST_KEY = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIHSFUFB5Nwm1tqlDzcD0Qr9hKTIZJ2IMRDPCSnDyK8HM"


def test_ssh_connection_per_host_with_overrides_and_pinned_key():
    raw = copy.deepcopy(stack_file_config("prod"))
    raw["gpuHosts"][0]["ssh"] = {"hostKey": OTHER_HOST_KEY}
    run = run_stack(raw, stack="prod")
    first = run.mocks.named("models-pull-gpu-01-llama3-1-8b")
    assert first.is_secret("connection"), "the connection carries the private key"
    connection = first.plain("connection")
    assert (connection["host"], connection["port"], connection["user"]) == ("10.20.1.11", 22, "ollama-admin")
    assert connection["hostKey"] == OTHER_HOST_KEY
    assert connection["privateKey"].startswith("-----BEGIN OPENSSH PRIVATE KEY-----")
    third = run.mocks.named("models-pull-gpu-03-qwen-coder").plain("connection")
    assert third["port"] == 2222
    assert third["hostKey"] == raw["gpuHosts"][2]["ssh"]["hostKey"]


def test_unpinned_host_keys_need_a_named_waiver_which_reaches_the_drift_reader():
    raw = copy.deepcopy(stack_file_config("prod"))
    del raw["gpuHosts"][0]["ssh"]
    with pytest.raises(pulumi.RunError, match=r"gpuHosts\[0\]\.ssh\.hostKey: required"):
        run_stack(raw, stack="prod")
    raw["gpuSsh"]["allowUnpinnedHostKeys"] = "lab hosts are reinstalled nightly"
    run = run_stack(raw, stack="prod")
    assert not run.mocks.named("models-pull-gpu-01-llama3-1-8b").plain("connection").get("hostKey")
    transport = run.mocks.named("models-observed-gpu-01").plain("transport")
    assert transport["unpinned_host_key_waiver"] == "lab hosts are reinstalled nightly"


def test_key_from_secret_config_instead_of_vault():
    raw = copy.deepcopy(stack_file_config("prod"))
    del raw["gpuSsh"]["privateKeyVault"]
    run = run_stack(raw, secrets={"gpuSshPrivateKey": SSH_KEY}, stack="prod")
    connection = run.mocks.named("models-pull-gpu-02-llama3-1-8b").plain("connection")
    assert connection["privateKey"] == SSH_KEY


def test_pruning_only_when_enabled(prod_run):
    assert all(not p.plain("delete") for p in pulls(prod_run).values()), "prod ships with prune: false"
    raw = copy.deepcopy(stack_file_config("prod"))
    raw["modelPulls"]["prune"] = True
    run = run_stack(raw, stack="prod")
    assert run.mocks.named("models-pull-gpu-03-mistral-7b").plain("delete") == "bash -s -- prune mistral:7b"


def test_dev_pulls_with_docker_exec_into_the_local_ollama_container():
    run = run_stack(stack_file_config("dev"), stack="dev")
    pull = run.mocks.named("models-pull-ollama-dev-qwen-small")
    assert pull.type == "command:local:Command"
    assert pull.plain("create") == "docker exec -i litellm-gateway-dev-ollama-ollama-dev bash -s -- pull qwen2.5:0.5b"
    assert pull.plain("delete") == "docker exec -i litellm-gateway-dev-ollama-ollama-dev bash -s -- prune qwen2.5:0.5b"
    assert pull.plain("environment") == {"DOCKER_HOST": "unix:///var/run/docker.sock"}
    assert run.mocks.depends_on_names(pull.name) == {"models-ollama-ollama-dev"}
    assert not run.mocks.of_type("getSecretV2"), "dev needs no SSH key"


@pytest.mark.parametrize("stack", ["dev", "prod"])
def test_private_keys_stay_secret(stack):
    run = run_stack(stack_file_config(stack), stack=stack)
    from test_program import _leaks

    assert _leaks(run, [SECRET_MARKER]) == []


def test_missing_ssh_key_is_a_config_error():
    raw = copy.deepcopy(stack_file_config("prod"))
    del raw["gpuSsh"]["privateKeyVault"]
    import pulumi

    with pytest.raises(pulumi.RunError, match="gpuSshPrivateKey: required"):
        run_stack(raw, stack="prod")
