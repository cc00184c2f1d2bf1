"""The dev stack's GPU host, reached without SSH: the install step, the pull commands and the drift
reader exactly as the dev stack declares them (taken from a run of the program under mocks), run
for real.

pulumi-command's `local.Command` runs `create`/`delete` with `/bin/sh -c`, the declared environment
and `stdin`; the tests do the same. The drift reader is the pickled provider the stack ships (the
resource's `__provider` input). There is no Docker engine here, so `docker` is a test double of the
client (docker_cli_double.py) whose "container" runs the `ollama` client test double.
"""

from __future__ import annotations

import base64
import json
import os
import subprocess
import sys
from pathlib import Path

import dill
import pytest

from harness import run_stack, stack_file_config

HERE = Path(__file__).parent
REGISTRY = {"qwen2.5:0.5b": {"id": "a8b0c5157701", "size": "397 MB"}}


@pytest.fixture(scope="module")
def dev_run():
    return run_stack(stack_file_config("dev"), stack="dev")


class DevHost:
    """The local Ollama container stand-in: a docker client double and the container's ollama double."""

    def __init__(self, root: Path, container: str, daemon: str):
        self.bin = root / "client-bin"
        container_bin = root / "container-bin"
        for directory, program, double in [(self.bin, "docker", "docker_cli_double.py"),
                                           (container_bin, "ollama", "ollama_cli_double.py")]:
            directory.mkdir()
            (directory / program).write_text(f"#!{sys.executable}\n" + (HERE / double).read_text())
            (directory / program).chmod(0o755)
        self.ollama_state = root / "ollama-state.json"
        self.docker_state = root / "docker-state.json"
        self.set_ollama(models={}, registry=REGISTRY, fail={}, pulls=0)
        self.container = container
        self.docker = {"daemon": daemon, "containers": {container: {
            "id": "5c1e7a0d9b2f", "running": True,
            "env": {"PATH": f"{container_bin}:/usr/bin:/bin", "OLLAMA_DOUBLE_STATE": str(self.ollama_state),
                    "HOME": str(root / "container-root")},  # ollama/ollama runs as root: HOME=/root
        }}}
        self.docker_state.write_text(json.dumps(self.docker))

    def ollama(self) -> dict:
        return json.loads(self.ollama_state.read_text())

    def set_ollama(self, **state) -> None:
        current = json.loads(self.ollama_state.read_text()) if self.ollama_state.exists() else {}
        self.ollama_state.write_text(json.dumps({**current, **state}))

    def stop_container(self) -> None:
        self.docker["containers"][self.container]["running"] = False
        self.docker_state.write_text(json.dumps(self.docker))

    def client_env(self, declared: dict) -> dict:
        """The environment pulumi-command gives a local command: the CLI's own, plus `environment`."""
        return {**os.environ, "PATH": f"{self.bin}:{os.environ['PATH']}",
                "DOCKER_DOUBLE_STATE": str(self.docker_state), **declared}


@pytest.fixture
def host(dev_run, tmp_path, monkeypatch):
    observed = dev_run.mocks.named("models-observed-ollama-dev")
    transport = observed.plain("transport")
    dev_host = DevHost(tmp_path, transport["container"], transport["docker_host"])
    # The drift reader runs inside the Pulumi CLI's process: same PATH and environment rules.
    for key, value in dev_host.client_env({}).items():
        monkeypatch.setenv(key, value)
    return dev_host


def run_local_command(dev_run, host, name: str, which: str) -> subprocess.CompletedProcess:
    """What pulumi-command's local.Command does with `create` or `delete`."""
    command = dev_run.mocks.named(name)
    return subprocess.run(["/bin/sh", "-c", command.plain(which)], input=command.plain("stdin"),
                          env=host.client_env(command.plain("environment") or {}),
                          capture_output=True, text=True, timeout=120)


def drift_reader(dev_run):
    observed = dev_run.mocks.named("models-observed-ollama-dev")
    provider = dill.loads(base64.b64decode(observed.plain("__provider")))
    props = {k: observed.plain(k) for k in observed.inputs if k != "__provider"}
    return provider, props


PULL = "models-pull-ollama-dev-qwen-small"
INSTALL = "models-install-ollama-dev"


def test_the_install_step_ships_the_script_into_the_container(dev_run, host, tmp_path):
    done = run_local_command(dev_run, host, INSTALL, "create")
    assert done.returncode == 0, done.stderr
    installed = tmp_path / "container-root" / ".litellm-gateway" / "dev" / "ollama-models.sh"
    assert installed.read_text() == dev_run.mocks.named(INSTALL).plain("stdin")
    assert oct(installed.stat().st_mode & 0o777) == "0o700"


def test_a_pull_before_the_install_names_the_missing_script(dev_run, host):
    done = run_local_command(dev_run, host, PULL, "create")
    assert done.returncode == 19
    assert "cause=script-missing" in done.stderr and "models-install-ollama-dev" in done.stderr


def test_the_dev_pull_runs_in_the_container_and_a_second_run_pulls_nothing(dev_run, host):
    assert run_local_command(dev_run, host, INSTALL, "create").returncode == 0
    first = run_local_command(dev_run, host, PULL, "create")
    assert first.returncode == 0, first.stderr
    assert first.stdout.strip() == ("OLLAMA_MODEL host=ollama-dev model=qwen2.5:0.5b digest=a8b0c5157701 "
                                    "size=397MB status=pulled")
    second = run_local_command(dev_run, host, PULL, "create")
    assert second.returncode == 0, second.stderr
    assert second.stdout.strip().endswith("status=present")
    assert host.ollama()["pulls"] == 1


def test_the_dev_prune_removes_a_model_that_left_the_config(dev_run, host):
    assert run_local_command(dev_run, host, INSTALL, "create").returncode == 0
    assert run_local_command(dev_run, host, PULL, "create").returncode == 0
    assert list(host.ollama()["models"]) == ["qwen2.5:0.5b"]
    provider, props = drift_reader(dev_run)
    olds = provider.create(props).outs
    without = {**props, "expected": {}}
    kept = provider.update("ollama-models-ollama-dev", olds, {**without, "prune": False}).outs
    assert kept["pruned"] == [] and list(host.ollama()["models"]) == ["qwen2.5:0.5b"], "prune is off by default"
    removed = provider.update("ollama-models-ollama-dev", olds, {**without, "prune": True}).outs
    assert removed["pruned"] == ["qwen2.5:0.5b"]
    assert host.ollama()["models"] == {}


def test_the_dev_drift_reader_sees_a_removed_model_and_pulls_it_again(dev_run, host):
    assert run_local_command(dev_run, host, INSTALL, "create").returncode == 0
    assert run_local_command(dev_run, host, PULL, "create").returncode == 0
    provider, props = drift_reader(dev_run)
    created = provider.create(props)
    assert created.outs["status"] == "in-sync"
    assert created.outs["models"]["qwen-small"]["digest"] == "a8b0c5157701"

    host.set_ollama(models={})  # someone ran `docker exec ... ollama rm qwen2.5:0.5b`
    refreshed = provider.read(created.id, created.outs).outs
    assert refreshed["status"] == "drift" and refreshed["missing"] == ["qwen-small"]
    assert provider.diff(created.id, refreshed, props).changes, "preview --refresh must show the drift"

    healed = provider.update(created.id, refreshed, props).outs
    assert healed["status"] == "in-sync"
    assert host.ollama()["pulls"] == 2


def test_a_stopped_container_fails_the_pull_and_shows_in_the_reader(dev_run, host):
    assert run_local_command(dev_run, host, INSTALL, "create").returncode == 0
    host.stop_container()
    pull = run_local_command(dev_run, host, PULL, "create")
    assert pull.returncode != 0
    assert "is not running" in pull.stderr
    provider, props = drift_reader(dev_run)
    observed = provider.read("ollama-models-ollama-dev", props).outs
    assert observed["status"] == "error: Error response from daemon: container 5c1e7a0d9b2f is not running"
    assert observed["missing"] == ["qwen-small"]


def test_the_docker_host_setting_is_where_the_commands_go(dev_run, host, monkeypatch):
    """docker.host reaches both the pull (its `environment`) and the reader (its transport)."""
    host.docker["daemon"] = "unix:///run/other-engine.sock"
    host.docker_state.write_text(json.dumps(host.docker))
    pull = run_local_command(dev_run, host, PULL, "create")
    assert pull.returncode != 0
    assert "Cannot connect to the Docker daemon at unix:///var/run/docker.sock" in pull.stderr
    provider, props = drift_reader(dev_run)
    monkeypatch.setenv("DOCKER_HOST", "unix:///run/other-engine.sock")  # the declared host still wins
    observed = provider.read("ollama-models-ollama-dev", props).outs
    assert observed["status"].startswith("error: Cannot connect to the Docker daemon at unix:///var/run/docker.sock")
