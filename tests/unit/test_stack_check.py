"""`scripts/stack check <stack>`: the stack's config validated and the whole program evaluated offline
(operations/stack_check.py), with no Pulumi CLI, Docker, Vault or GPU host."""

import io
import os
import shutil
import subprocess
import sys

import pytest
import yaml

from harness import EXAMPLE_STACKS, ROOT, example_config, stack_file_config

from operations.stack_check import check

PROJECT = "litellm-gateway"


def run_check(stack, root=ROOT):
    out, err = io.StringIO(), io.StringIO()
    code = check(stack, root=root, out=out, err=err)
    return code, out.getvalue(), err.getvalue()


def write_stack(tmp_path, stack, config, extra=None):
    data = {"config": {f"{PROJECT}:{k}": v for k, v in config.items()}}
    data["config"].update(extra or {})
    (tmp_path / f"Pulumi.{stack}.yaml").write_text(yaml.safe_dump(data))
    return tmp_path


@pytest.mark.parametrize("stack", EXAMPLE_STACKS)
def test_the_example_stacks_check_and_the_summary_follows_the_file(stack):
    code, out, err = run_check(stack)
    assert code == 0, err
    config = example_config(stack)
    assert f"stack {stack}: configuration valid" in out
    for model in config["models"]:
        for host in model["hosts"]:
            assert f"  {model['name']} -> {host} (" in out
    for host in config["gpuHosts"]:
        pulled = host.get("models") or [m["name"] for m in config["models"] if host["name"] in m["hosts"]]
        assert f"  {host['name']} [" in out and f"]: {len(pulled)} model(s): " in out
    assert f"policy litellm-gateway-{stack}-read" in out
    assert f"litellm-gateway-{stack}-postgres  (" in out or f"StatefulSet litellm-gateway-{stack}-postgres  (" in out


def test_an_invalid_config_lists_every_problem_and_exits_1(tmp_path):
    config = stack_file_config("dev")
    config["models"][0]["hosts"] = ["gpu-99"]
    config["gateway"]["replicas"] = 0
    code, out, err = run_check("dev", write_stack(tmp_path, "dev", config))
    assert code == 1 and out == ""
    assert f"{PROJECT}:models[0].hosts" in err and "gpu-99" in err
    assert f"{PROJECT}:gateway.replicas" in err
    assert "nothing was deployed" in err


def test_a_copied_stack_file_is_refused(tmp_path):
    code, _, err = run_check("staging", write_stack(tmp_path, "staging", stack_file_config("dev")))
    assert code == 1 and "environment: is 'dev' but the stack is 'staging'" in err


def test_encrypted_values_are_named_not_checked_and_plain_text_secrets_are_refused(tmp_path):
    config = stack_file_config("dev")
    root = write_stack(tmp_path, "dev", config, {f"{PROJECT}:masterKey": {"secure": "v1:AAAA"}})
    code, out, _ = run_check("dev", root)
    assert code == 0 and "encrypted, not checked offline (set as secrets: yes): masterKey" in out
    assert "v1:AAAA" not in out
    root = write_stack(tmp_path, "dev", config, {f"{PROJECT}:masterKey": "sk-" + "a" * 40})
    code, _, err = run_check("dev", root)
    assert code == 1 and "masterKey: is stored in plain text" in err
    assert "a" * 40 not in err


def test_other_namespaces_are_ignored_and_a_broken_file_is_an_error_not_a_crash(tmp_path):
    root = write_stack(tmp_path, "dev", stack_file_config("dev"), {"docker:host": "unix:///x"})
    assert run_check("dev", root)[0] == 0
    (tmp_path / "Pulumi.dev.yaml").write_text("config: [not, a, mapping]\n")
    code, _, err = run_check("dev", tmp_path)
    assert code == 2 and "must be a mapping" in err
    (tmp_path / "Pulumi.dev.yaml").write_text("config: {a: [\n")
    assert run_check("dev", tmp_path)[0] == 2
    code, _, err = run_check("qa", tmp_path)
    assert code == 2 and "no stack config Pulumi.qa.yaml" in err


def test_scripts_stack_check_needs_no_pulumi_cli(tmp_path):
    # The Python with the program's dependencies first (what ./venv is for a user), no pulumi anywhere.
    env = {"PATH": f"{os.path.dirname(sys.executable)}:/usr/bin:/bin", "HOME": os.environ.get("HOME", "/root")}
    result = subprocess.run([str(ROOT / "scripts" / "stack"), "check", "dev"], capture_output=True, text=True,
                            env=env, timeout=300)
    assert result.returncode == 0, result.stderr
    assert "stack dev: configuration valid" in result.stdout
    result = subprocess.run([str(ROOT / "scripts" / "stack"), "check", "qa"], capture_output=True, text=True,
                            env=env, timeout=60)
    assert result.returncode == 2 and "no stack config Pulumi.qa.yaml" in result.stderr


def test_scripts_stack_check_says_how_to_install_missing_dependencies(tmp_path):
    # A copy of the script in a checkout without ./venv, and a Python without the program's packages.
    (tmp_path / "scripts").mkdir()
    shutil.copy(ROOT / "scripts" / "stack", tmp_path / "scripts" / "stack")
    shutil.copy(ROOT / "Pulumi.dev.yaml", tmp_path / "Pulumi.dev.yaml")
    bare = tmp_path / "bin"
    bare.mkdir()
    (bare / "python3").write_text("#!/bin/sh\nexit 1\n")
    (bare / "python3").chmod(0o755)
    env = {"PATH": f"{bare}:/usr/bin:/bin", "HOME": str(tmp_path)}
    result = subprocess.run([str(tmp_path / "scripts" / "stack"), "check", "dev"], capture_output=True, text=True,
                            env=env, timeout=60)
    assert result.returncode == 2
    assert "python3 -m venv venv && venv/bin/pip install -r requirements.txt" in result.stderr


def test_the_check_warns_about_a_model_no_declared_key_may_call(tmp_path):
    raw = stack_file_config("prod")
    raw["models"] = raw["models"] + [{"name": "gemma3-12b", "ollamaTag": "gemma3:12b", "hosts": [raw["gpuHosts"][0]["name"]]}]
    write_stack(tmp_path, "prod", raw)
    out, err = io.StringIO(), io.StringIO()
    assert check("prod", tmp_path, out, err) == 0, err.getvalue()
    assert "warning: no declared key may call model 'gemma3-12b'" in out.getvalue()
    for model in raw["models"][:-1]:
        assert f"model '{model['name']}'" not in out.getvalue()


@pytest.mark.parametrize("typo, named", [
    ("litelm-gateway:redis", "did you mean litellm-gateway:redis?"),
    ("litellm_gateway:cache", "did you mean litellm-gateway:cache?"),
    ("monitoring:enabled", "no part of this program reads"),
])
def test_a_key_in_a_namespace_no_part_of_the_program_reads_is_refused(tmp_path, typo, named):
    write_stack(tmp_path, "prod", stack_file_config("prod"), extra={typo: {"maxMemoryMb": 512}})
    code, out, err = run_check("prod", tmp_path)
    assert code == 1
    line = next(line for line in err.splitlines() if typo in line)
    assert line.strip().startswith(f"- {typo}:") and named in line, err


def test_a_key_without_namespace_is_refused_with_the_spelling_to_use(tmp_path):
    write_stack(tmp_path, "prod", stack_file_config("prod"), extra={"cache": {"ttlSeconds": 5}})
    code, out, err = run_check("prod", tmp_path)
    assert code == 1 and "- cache: has no namespace" in err and "write litellm-gateway:cache" in err, err


def test_provider_namespaces_the_program_uses_are_accepted(tmp_path):
    write_stack(tmp_path, "prod", stack_file_config("prod"),
                extra={"docker:host": "ssh://x", "vault:address": "https://v", "pulumi:tags": {"team": "ml"}})
    code, out, err = run_check("prod", tmp_path)
    assert code == 0, err


@pytest.mark.parametrize("where", ["top", "nested"])
def test_a_key_given_twice_is_refused_with_both_lines(tmp_path, where):
    text = yaml.safe_dump({"config": {f"{PROJECT}:{k}": v for k, v in stack_file_config("prod").items()}})
    if where == "top":
        text += f"  {PROJECT}:environment: prod\n"   # the last one would win silently
        key = f"config.{PROJECT}:environment"
    else:
        text = text.replace("    replicas:", "    replicas: 9\n    replicas:", 1)
        key = f"config.{PROJECT}:gateway.replicas"
    (tmp_path / "Pulumi.prod.yaml").write_text(text)
    code, out, err = run_check("prod", tmp_path)
    assert code == 1, err
    assert any(line.strip().startswith(f"- {key}: is given twice (lines ") for line in err.splitlines()), err


@pytest.mark.parametrize("field", ["private_key", "id_ed25519"])
def test_an_ssh_key_in_vault_under_any_field_passes_the_check(tmp_path, field):
    raw = stack_file_config("prod")
    raw["gpuSsh"] = {**raw.get("gpuSsh", {}), "privateKeyVault": {"path": "ops/gpu-ssh", "field": field}}
    write_stack(tmp_path, "prod", raw)
    code, out, err = run_check("prod", tmp_path)
    assert code == 0, err


@pytest.mark.parametrize("fields", [{}, {"certificateField": "fullchain", "keyField": "privkey"}])
def test_tls_from_vault_as_documented_passes_the_check(tmp_path, fields):
    raw = stack_file_config("prod")
    raw["gateway"] = {**raw["gateway"], "loadBalancer": {"tls": {
        "enabled": True, "serverName": "gateway.example.com", "vault": {"path": "ops/gateway-tls", **fields}}}}
    write_stack(tmp_path, "prod", raw)
    code, out, err = run_check("prod", tmp_path)
    assert code == 0, err
    assert "gatewayUrl: https://gateway.example.com" in out


def test_tls_from_secret_config_passes_the_check_and_backup_reads_it_too(tmp_path):
    from operations.backup.stack import load_stack

    raw = stack_file_config("prod")
    raw["gateway"] = {**raw["gateway"], "loadBalancer": {"tls": {"enabled": True}}}
    write_stack(tmp_path, "prod", raw, extra={f"{PROJECT}:gatewayTlsCertificate": {"secure": "v1:abc"},
                                              f"{PROJECT}:gatewayTlsKey": {"secure": "v1:def"}})
    code, out, err = run_check("prod", tmp_path)
    assert code == 0, err
    assert load_stack("prod", tmp_path).settings.gateway.load_balancer.tls.enabled
