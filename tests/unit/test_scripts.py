"""scripts/stack and scripts/up: argument handling and their messages when a prerequisite is
missing. The Pulumi CLI cannot be installed here, so these tests see the real "missing" path;
nothing is faked to look present."""

import os
import shutil
import subprocess

import pytest

from harness import ROOT
from interpreter import write_python_launcher

# The system's directories without any that holds a Pulumi CLI: these tests are about a machine that
# has none yet (a developer's may have one in /usr/local/bin).
PATH = ":".join(d for d in ("/usr/local/bin", "/usr/bin", "/bin") if not os.path.exists(os.path.join(d, "pulumi")))


def run(script, *args, **env):
    base = {"PATH": PATH, "HOME": os.environ.get("HOME", "/root")}
    base.update(env)
    return subprocess.run([str(ROOT / "scripts" / script), *args], capture_output=True, text=True, env=base,
                          timeout=60, stdin=subprocess.DEVNULL)


@pytest.fixture(autouse=True)
def no_pulumi_here():
    assert shutil.which("pulumi", path=PATH) is None, "these tests expect no Pulumi CLI"


@pytest.mark.parametrize("args", [(), ("up",), ("--help", "dev")])
def test_usage(args):
    result = run("stack", *args)
    assert result.returncode == 2
    assert "usage:" in result.stderr and "dev" in result.stderr and "prod" in result.stderr


def test_unknown_command_and_stack_are_named():
    assert "unknown command 'deploy'" in run("stack", "deploy", "dev").stderr
    result = run("stack", "up", "staging")
    assert result.returncode == 2 and "no stack config Pulumi.staging.yaml" in result.stderr


def test_destroy_is_for_dev_only():
    result = run("stack", "destroy", "prod")
    assert result.returncode == 2 and "dev stack only" in result.stderr


@pytest.mark.parametrize("command", ["preview", "up", "refresh", "drift", "destroy"])
def test_missing_pulumi_cli_and_passphrase_are_reported_together(command):
    result = run("stack", command, "dev")
    assert result.returncode == 1
    assert f"cannot run '{command}' on stack 'dev'" in result.stderr
    assert "Pulumi CLI is not installed" in result.stderr
    assert "PULUMI_CONFIG_PASSPHRASE is not set" in result.stderr


def test_up_script_is_stack_up():
    assert run("up").returncode == 2
    result = run("up", "dev")
    assert result.returncode == 1 and "cannot run 'up' on stack 'dev'" in result.stderr


def test_local_docker_engine_is_checked_for_dev():
    result = run("stack", "up", "dev", PULUMI_CONFIG_PASSPHRASE="x")
    assert "PULUMI_CONFIG_PASSPHRASE" not in result.stderr
    docker = shutil.which("docker", path=PATH)
    engine_up = docker and subprocess.run([docker, "info"], capture_output=True).returncode == 0
    if engine_up:
        assert "Docker" not in result.stderr
    elif docker:
        assert "the Docker engine is not reachable" in result.stderr
    else:
        assert "Docker is not installed" in result.stderr


def test_prod_needs_a_vault_token_but_not_a_local_docker_engine(tmp_path):
    result = run("stack", "preview", "prod", PULUMI_CONFIG_PASSPHRASE="x", HOME=str(tmp_path))
    assert result.returncode == 1
    assert "VAULT_TOKEN is not set" in result.stderr
    assert "Docker" not in result.stderr, "prod's Docker host is remote (ssh://): no local engine needed"


def test_a_kubernetes_stack_needs_a_kubeconfig_but_no_docker_engine(tmp_path):
    result = run("stack", "preview", "k8s", PULUMI_CONFIG_PASSPHRASE="x", HOME=str(tmp_path), VAULT_TOKEN="t")
    assert result.returncode == 1
    assert f"no kubeconfig at {tmp_path}/.kube/config" in result.stderr
    assert "Docker" not in result.stderr, "a kubernetes stack runs no container on a Docker engine"
    (tmp_path / "cluster.yaml").write_text("apiVersion: v1\nkind: Config\n")
    result = run("stack", "preview", "k8s", PULUMI_CONFIG_PASSPHRASE="x", HOME=str(tmp_path), VAULT_TOKEN="t",
                 KUBECONFIG=f"{tmp_path}/missing:{tmp_path}/cluster.yaml")
    assert "kubeconfig" not in result.stderr and "Pulumi CLI is not installed" in result.stderr


def test_pulumi_cloud_backend_needs_no_passphrase():
    result = run("stack", "up", "dev", PULUMI_BACKEND_URL="https://api.pulumi.com")
    assert "PULUMI_CONFIG_PASSPHRASE" not in result.stderr


def test_fetch_backup_names_what_is_missing(tmp_path):
    import sys

    only_python = tmp_path / "bin"
    only_python.mkdir()
    write_python_launcher(only_python / "python3")
    script = [str(ROOT / "scripts" / "fetch-backup"), "dev", "--out", str(tmp_path / "out")]
    result = subprocess.run(script, capture_output=True, text=True, env={"PATH": str(only_python)}, timeout=60)
    assert result.returncode == 3 and "the docker CLI is not installed" in result.stderr
    docker = shutil.which("docker", path=PATH)
    engine_up = docker and subprocess.run([docker, "info"], capture_output=True).returncode == 0
    if docker and not engine_up:
        with_docker = f"{only_python}:{PATH}"  # the scripts' python3 first, then the docker CLI
        result = subprocess.run(script, capture_output=True, text=True, env={"PATH": with_docker}, timeout=60)
        assert result.returncode == 3
        assert "cannot list /backups in litellm-gateway-dev-pgbackup" in result.stderr


def test_restore_names_a_missing_backup_before_asking_for_a_database(tmp_path):
    import sys

    env = {"PATH": f"{os.path.dirname(sys.executable)}:{PATH}", "HOME": str(tmp_path)}
    result = subprocess.run([str(ROOT / "scripts" / "restore"), str(tmp_path / "no-such-backup"), "--stack", "dev"],
                            capture_output=True, text=True, env=env, timeout=60)
    assert result.returncode == 3
    assert "no-such-backup does not exist; nothing was changed" in result.stderr
    assert "database-url" not in result.stderr


def test_backup_scripts_keep_the_callers_directory_and_ignore_its_modules(tmp_path):
    """A relative path means what it means where the script was started; a `config` package there
    is not the program's (the scripts' Python does not put the caller's directory on sys.path)."""
    (tmp_path / "config").mkdir()
    (tmp_path / "config" / "__init__.py").write_text("raise SystemExit('the caller directory config was imported')\n")
    (tmp_path / "not-a-backup").mkdir()
    result = subprocess.run([str(ROOT / "scripts" / "restore"), "not-a-backup", "--stack", "dev",
                             "--database-url", "postgresql://u@127.0.0.1:1/db"], cwd=tmp_path,
                            capture_output=True, text=True, env={"PATH": PATH, "HOME": str(tmp_path)}, timeout=60)
    assert result.returncode == 3, result.stderr
    assert "not-a-backup is not a backup folder (manifest.json or SHA256SUMS missing)" in result.stderr


@pytest.mark.parametrize("script", ["backup", "restore", "fetch-backup", "adopt-vault-secret"])
def test_backup_scripts_name_the_install_command_when_python_lacks_the_packages(tmp_path, script):
    """Without ./venv, the scripts run python3; one without PyYAML and pydantic gets a message, not a traceback."""
    import sys

    repo = tmp_path / "repo"
    (repo / "scripts" / "lib").mkdir(parents=True)
    for name in (script, "lib/backup-tool"):
        shutil.copy(ROOT / "scripts" / name, repo / "scripts" / name)
    bare = tmp_path / "bin" / "python3"  # the test interpreter without its site-packages
    bare.parent.mkdir()
    bare.write_text(f"#!/bin/sh\nexec '{sys.executable}' -S \"$@\"\n")
    bare.chmod(0o755)
    result = subprocess.run([str(repo / "scripts" / script), "dev"], capture_output=True, text=True,
                            env={"PATH": f"{bare.parent}:{PATH}"}, timeout=60)
    assert result.returncode == 3, result.stderr
    assert "python3 -m venv venv && venv/bin/pip install -r requirements.txt" in result.stderr
    assert f"from {repo} run" in result.stderr and "Traceback" not in result.stderr
