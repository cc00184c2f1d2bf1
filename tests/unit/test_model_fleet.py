"""BACKLOG-002 under mocks: which pulls are declared, how they are ordered, what stays secret."""

import copy

import pulumi

import pytest

from harness import SECRET_MARKER, run_stack, stack_file_config

SSH_KEY = f"-----BEGIN OPENSSH PRIVATE KEY-----\n{SECRET_MARKER}-config-key\n-----END OPENSSH PRIVATE KEY-----\n"


@pytest.fixture(scope="module")
def prod_run():
    return run_stack(stack_file_config("prod"), stack="prod")


def pulls(run):
    return {r.name: r for r in run.resources if r.type.startswith("command:") and "-pull-" in r.name}


# Pulumi.prod.yaml, read by hand: llama3.1-8b routes to gpu-01 and gpu-02, mistral-7b to gpu-01,
# qwen-coder to gpu-03, and gpu-03 also lists mistral-7b in its `models` (pulled, not routed).
PROD_ROUTES = {("llama3.1-8b", "gpu-01"), ("llama3.1-8b", "gpu-02"), ("mistral-7b", "gpu-01"), ("qwen-coder", "gpu-03")}
PROD_PULLS = {"models-pull-gpu-01-llama3-1-8b", "models-pull-gpu-01-mistral-7b", "models-pull-gpu-02-llama3-1-8b",
              "models-pull-gpu-03-qwen-coder", "models-pull-gpu-03-mistral-7b"}


def test_one_pull_per_host_and_model_it_pulls_and_no_other(prod_run):
    expected = PROD_PULLS
    assert set(pulls(prod_run)) == expected
    # gpu-03 pulls mistral-7b without serving it; gpu-02 neither pulls nor serves it.
    assert "models-pull-gpu-03-mistral-7b" in expected
    assert "models-pull-gpu-02-mistral-7b" not in expected


def test_pull_runs_the_installed_script_with_the_tag_and_pinned_digest(prod_run):
    pull = prod_run.mocks.named("models-pull-gpu-01-llama3-1-8b")
    create = pull.plain("create")
    assert create.endswith('bash "$HOME/.litellm-gateway/prod/ollama-models.sh" pull llama3.1:8b 46e0c10c039e')
    assert "cause=script-missing" in create and "models-install-gpu-01" in create
    assert pull.plain("stdin") is None and pull.plain("delete") is None
    assert pull.plain("triggers") == ["llama3.1:8b", "46e0c10c039e"]
    unpinned = prod_run.mocks.named("models-pull-gpu-03-qwen-coder")
    assert unpinned.plain("triggers") == ["qwen2.5-coder:32b", ""]


def test_each_host_gets_the_script_once_with_the_operator_key_and_authorizes_the_pull_key(prod_run):
    install = prod_run.mocks.named("models-install-gpu-01")
    assert install.type == "command:remote:Command"
    assert install.plain("stdin").startswith("#!/usr/bin/env bash") and "HOST_NAME=gpu-01" in install.plain("stdin")
    create = install.plain("create")
    assert 'mv -f "$HOME/.litellm-gateway/prod/ollama-models.sh.new" "$HOME/.litellm-gateway/prod/ollama-models.sh"' in create
    public = prod_run.mocks.named("models-pull-key")
    assert public.plain("algorithm") == "ED25519"
    assert "restrict ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAA" in create and "litellm-gateway-prod-pulls" in create
    operator = install.plain("connection")
    assert operator["dialErrorLimit"] == stack_file_config("prod")["gpuSsh"].get("dialErrorLimit", 3)
    assert SECRET_MARKER in operator["privateKey"] and "vault-ssh-key" in operator["privateKey"]
    pull = prod_run.mocks.named("models-pull-gpu-01-llama3-1-8b").plain("connection")
    assert pull.get("dialErrorLimit") == 10, "pulls keep pulumi-command's default; gpuSsh.dialErrorLimit tunes the install"
    assert pull["privateKey"] != operator["privateKey"], "pulls use the stack's own key"
    assert prod_run.mocks.depends_on_names("models-pull-gpu-01-llama3-1-8b") == {"models-install-gpu-01"}


def _pull_inputs(run) -> dict[str, str]:
    import json

    return {name: json.dumps(r.plain_inputs(), sort_keys=True) for name, r in pulls(run).items()}


def test_a_pulls_declared_inputs_stay_under_1_kb():
    """Issue target: <= 1 KB of inputs per pull command (the script is not among them)."""
    run = run_stack(stack_file_config("prod"), stack="prod")
    sizes = {name: len(text.encode()) for name, text in _pull_inputs(run).items()}
    assert sizes and max(sizes.values()) <= 1024, sizes


@pytest.mark.parametrize("change", ["retries", "backoff", "timeouts", "dial-limit", "ssh-key", "ssh-user-default"])
def test_transport_and_retry_settings_change_no_pull(change):
    """A change of how pulls retry or how hosts are reached changes the install step of each host (at
    most one resource per host) and the inputs of no pull command."""
    base_raw = copy.deepcopy(stack_file_config("prod"))
    del base_raw["gpuSsh"]["privateKeyVault"]
    base = run_stack(base_raw, secrets={"gpuSshPrivateKey": SSH_KEY}, stack="prod")
    raw, key = copy.deepcopy(base_raw), SSH_KEY
    if change == "retries":
        raw["modelPulls"]["retries"] = raw["modelPulls"].get("retries", 4) + 3
    elif change == "backoff":
        raw["modelPulls"]["backoffSeconds"] = 42
    elif change == "timeouts":
        raw["modelPulls"]["attemptTimeoutSeconds"] = 901
    elif change == "dial-limit":
        raw["gpuSsh"]["dialErrorLimit"] = raw["gpuSsh"].get("dialErrorLimit", 3) + 4
    elif change == "ssh-key":
        key = SSH_KEY.replace("config-key", "rotated-key")
    elif change == "ssh-user-default":
        raw["gpuSsh"]["port"] = 2200  # hosts with their own ssh.port keep it
    run = run_stack(raw, secrets={"gpuSshPrivateKey": key}, stack="prod")
    before, after = _pull_inputs(base), _pull_inputs(run)
    if change == "ssh-user-default":
        # The SSH port and user are part of a pull's connection: the pulls of the hosts reached on the
        # new default port run again (a quick "present" each, and nothing is pruned). Documented.
        moved = {h["name"] for h in raw["gpuHosts"] if not (h.get("ssh") or {}).get("port")}
        changed = {n for n in after if before[n] != after[n]}
        assert moved and changed == {n for n in after if any(n.startswith(f"models-pull-{h}-") for h in moved)}
        return
    assert before == after
    installs = {r.name for r in run.resources if "-install-" in r.name}
    assert len(installs) == len(raw["gpuHosts"])


def test_adding_a_model_to_one_host_adds_one_pull_and_changes_no_other():
    base = run_stack(stack_file_config("prod"), stack="prod")
    raw = copy.deepcopy(stack_file_config("prod"))
    raw["models"].append({"name": "phi-mini", "ollamaTag": "phi3:mini", "hosts": [raw["gpuHosts"][1]["name"]]})
    run = run_stack(raw, stack="prod")
    before, after = _pull_inputs(base), _pull_inputs(run)
    assert set(after) - set(before) == {f"models-pull-{raw['gpuHosts'][1]['name']}-phi-mini"}
    assert {n for n in before if before[n] != after[n]} == set()


def test_a_pull_replaced_or_removed_never_prunes_pruning_is_the_readers_job(prod_run):
    assert all(p.plain("delete") is None for p in pulls(prod_run).values())
    raw = copy.deepcopy(stack_file_config("prod"))
    raw["modelPulls"]["prune"] = True
    run = run_stack(raw, stack="prod")
    assert all(p.plain("delete") is None for p in pulls(run).values())
    assert all(r.plain("prune") is True for r in run.resources if r.name.startswith("models-observed-"))
    assert all(r.plain("prune") is False for r in prod_run.resources if r.name.startswith("models-observed-"))


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
    host_of = {name: name.split("-pull-", 1)[1][:6] for name in PROD_PULLS}  # models-pull-gpu-0N-...
    host_of.update({f"models-install-gpu-0{n}": f"gpu-0{n}" for n in (1, 2, 3)})
    for name in pulls(prod_run):
        for dep in prod_run.mocks.depends_on_names(name):
            assert host_of.get(dep) == host_of[name], f"{name} waits for {dep}, which is not a pull on its host"
    assert prod_run.mocks.depends_on_names("models-pull-gpu-01-mistral-7b") == {"models-pull-gpu-01-llama3-1-8b"}
    assert prod_run.mocks.depends_on_names("models-pull-gpu-02-llama3-1-8b") == {"models-install-gpu-02"}


def waits_for(run, name: str) -> set[str]:
    """Every resource `name` waits for, directly or through what it waits for."""
    seen, todo = set(), [name]
    while todo:
        for dep in run.mocks.depends_on_names(todo.pop()):
            if dep not in seen:
                seen.add(dep)
                todo.append(dep)
    return seen


def test_gateway_waits_for_the_pulls_of_the_routes_it_serves(prod_run):
    replicas = stack_file_config("prod")["gateway"]["replicas"]
    assert [r.name for r in prod_run.resources if r.name.startswith("gateway-litellm-")
            and r.type == "docker:index/container:Container"] == [f"gateway-litellm-{n}" for n in range(replicas)]
    for replica in range(replicas):
        direct = prod_run.mocks.depends_on_names(f"gateway-litellm-{replica}")
        assert {"models-observed-gpu-01", "models-observed-gpu-02", "models-observed-gpu-03"} <= direct
        assert not any(d.startswith("models-pull-") for d in direct), "one dependency per host, not per route"
        everything = waits_for(prod_run, f"gateway-litellm-{replica}")
        for model, host in PROD_ROUTES:
            assert f"models-pull-{host}-{model.replace('.', '-')}" in everything


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
    assert first.is_secret("connection"), "the connection carries the stack's pull key"
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
    connection = run.mocks.named("models-install-gpu-02").plain("connection")
    assert connection["privateKey"] == SSH_KEY
    assert run.mocks.named("models-observed-gpu-02").plain("transport")["private_key"] == SSH_KEY


def test_dev_pulls_with_docker_exec_into_the_local_ollama_container():
    run = run_stack(stack_file_config("dev"), stack="dev")
    install = run.mocks.named("models-install-ollama-dev")
    assert install.type == "command:local:Command"
    assert install.plain("create").startswith("docker exec -i litellm-gateway-dev-ollama-ollama-dev sh -c ")
    assert install.plain("stdin").startswith("#!/usr/bin/env bash")
    assert "authorized_keys" not in install.plain("create"), "no SSH in dev"
    pull = run.mocks.named("models-pull-ollama-dev-qwen-small")
    assert pull.type == "command:local:Command"
    assert pull.plain("create").startswith("docker exec litellm-gateway-dev-ollama-ollama-dev sh -c ")
    assert "pull qwen2.5:0.5b" in pull.plain("create")
    assert pull.plain("delete") is None and pull.plain("stdin") is None
    assert pull.plain("environment") == {"DOCKER_HOST": "unix:///var/run/docker.sock"}
    assert run.mocks.depends_on_names(pull.name) == {"models-install-ollama-dev"}
    assert run.mocks.depends_on_names(install.name) == {"models-ollama-ollama-dev"}
    assert not run.mocks.of_type("getSecretV2"), "dev needs no SSH key"
    assert not run.mocks.of_type("privateKey:PrivateKey"), "nor a pull key"


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
