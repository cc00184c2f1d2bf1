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
    assert f"litellm-gateway-{stack}-postgres  (" in out


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
