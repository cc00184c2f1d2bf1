"""scripts/up: argument handling and its messages when a prerequisite is missing.

The Pulumi CLI cannot be installed here, so these tests see the real "missing" path; nothing is
faked to look present.
"""

import os
import shutil
import subprocess

import pytest

from harness import ROOT

SCRIPT = ROOT / "scripts" / "up"


def run(*args, **env):
    base = {"PATH": "/usr/local/bin:/usr/bin:/bin", "HOME": os.environ.get("HOME", "/root")}
    base.update(env)
    return subprocess.run([str(SCRIPT), *args], capture_output=True, text=True, env=base, timeout=60)


@pytest.fixture(autouse=True)
def no_pulumi_here():
    assert shutil.which("pulumi", path="/usr/local/bin:/usr/bin:/bin") is None, "these tests expect no Pulumi CLI"


def test_no_stack_prints_usage():
    result = run()
    assert result.returncode == 2
    assert "usage:" in result.stderr and "dev" in result.stderr and "prod" in result.stderr


def test_unknown_stack_is_named():
    result = run("staging")
    assert result.returncode == 2
    assert "no stack config Pulumi.staging.yaml" in result.stderr


def test_missing_pulumi_cli_and_passphrase_are_reported_together():
    result = run("dev")
    assert result.returncode == 1
    assert "cannot deploy stack 'dev'" in result.stderr
    assert "Pulumi CLI is not installed" in result.stderr
    assert "PULUMI_CONFIG_PASSPHRASE is not set" in result.stderr


def test_local_docker_engine_is_checked_for_dev():
    result = run("dev", PULUMI_CONFIG_PASSPHRASE="x")
    assert "PULUMI_CONFIG_PASSPHRASE" not in result.stderr
    docker = shutil.which("docker", path="/usr/local/bin:/usr/bin:/bin")
    engine_up = docker and subprocess.run([docker, "info"], capture_output=True).returncode == 0
    if engine_up:
        assert "Docker" not in result.stderr
    elif docker:
        assert "the Docker engine is not reachable" in result.stderr
    else:
        assert "Docker is not installed" in result.stderr


def test_prod_needs_a_vault_token_but_not_a_local_docker_engine(tmp_path):
    result = run("prod", PULUMI_CONFIG_PASSPHRASE="x", HOME=str(tmp_path))
    assert result.returncode == 1
    assert "VAULT_TOKEN is not set" in result.stderr
    assert "Docker" not in result.stderr, "prod's Docker host is remote (ssh://): no local engine needed"


def test_pulumi_cloud_backend_needs_no_passphrase():
    result = run("dev", PULUMI_BACKEND_URL="https://api.pulumi.com")
    assert "PULUMI_CONFIG_PASSPHRASE" not in result.stderr
