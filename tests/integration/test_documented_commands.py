"""Every `pulumi ...`, `./scripts/stack ...` and `./scripts/up ...` command in the README and docs/,
run as written from a copy of the project, reaches one state backend: the project's ./.pulumi-state
(Pulumi.yaml's backend), or PULUMI_BACKEND_URL when a team sets one.

The Pulumi CLI cannot be installed here: the commands run against its test double
(pulumi_cli_double.py), which records each call and resolves the backend the way the CLI does
(environment, then Pulumi.yaml, then the login in ~/.pulumi). The Docker CLI is a test double too
(`docker info` answers)."""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from docker_cli_double import __file__ as DOCKER_DOUBLE
from harness import ROOT
from interpreter import write_python_launcher
from pulumi_cli_double import install as install_pulumi_double

DOCS = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
PLACEHOLDERS = {"<stack>": "prod", "<N>": "3", "<n>": "3"}


def documented_commands() -> list[tuple[str, str]]:
    """(file, command) for each pulumi or scripts/stack line in a ```bash block, with the file edits
    (`cp`, `sed -i`) between them that the next commands rely on."""
    found = []
    for doc in DOCS:
        for block in re.findall(r"```bash\n(.*?)```", doc.read_text(), re.S):
            for line in block.splitlines():
                line = line.split("  #")[0].strip()
                if line.startswith(("pulumi ", "./scripts/stack ", "./scripts/up ", "cp ", "sed -i ",
                                    "python3 -m operations.state_history ")):
                    for placeholder, value in PLACEHOLDERS.items():
                        line = line.replace(placeholder, value)
                    line = re.sub(r"<[^<>\s][^<>]*>", "x", line)  # any other placeholder
                    found.append((doc.name, line))
    return found


def test_the_docs_have_the_commands_users_type():
    commands = [c for _, c in documented_commands()]
    for expected in ("pulumi stack output gatewayUrl", "pulumi config set --path gateway.masterKeyRotation",
                     "./scripts/stack check", "./scripts/stack drift", "./scripts/up dev",
                     "pulumi stack history", "pulumi stack export", "pulumi stack import"):
        assert any(c.startswith(expected) for c in commands), expected
    assert len(commands) >= 20


@pytest.fixture
def project(tmp_path):
    """A copy of the project as a user has it after the README's install step, with test doubles for
    the Pulumi and Docker CLIs first on PATH."""
    copy = tmp_path / "litellm-gateway"
    shutil.copytree(ROOT, copy, ignore=shutil.ignore_patterns(".git", "venv", "__pycache__", ".pytest_cache",
                                                              ".pulumi", "*.pyc"))
    for state in (copy / ".pulumi-state").iterdir():
        if state.name != "README.md":
            shutil.rmtree(state) if state.is_dir() else state.unlink()
    # The prod stack after three updates, as the file backend keeps them (test_state_rollback.py).
    history = copy / ".pulumi-state" / ".pulumi" / "history" / "litellm-gateway" / "prod"
    history.mkdir(parents=True)
    for n in range(1, 4):
        (history / f"prod-17645832000000000{n:02d}.checkpoint.json").write_text(json.dumps(
            {"version": 3, "checkpoint": {"stack": "organization/litellm-gateway/prod", "latest": {"resources": []}}}))
        (history / f"prod-17645832000000000{n:02d}.history.json").write_text(json.dumps({"kind": "update", "result": "succeeded"}))
    # ./venv and ./policy/venv as `pulumi install` and scripts/stack leave them: their python runs this
    # test run's interpreter, packages included (a symlink would run the base interpreter).
    for venv, requirements in ((copy / "venv", copy / "requirements.txt"),
                               (copy / "policy" / "venv", copy / "policy" / "requirements.txt")):
        write_python_launcher(venv / "bin" / "python")
        digest = subprocess.run(["sha256sum", str(requirements)], capture_output=True, text=True, check=True).stdout
        (venv / ".requirements.sha256").write_text(digest)
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    state_file = tmp_path / "pulumi-double.json"
    install_pulumi_double(bin_dir, state_file)
    docker_state = tmp_path / "docker-double.json"
    docker_state.write_text(json.dumps({"daemon": "unix:///var/run/docker.sock", "containers": {}}))
    (bin_dir / "docker").write_text(f"#!/bin/sh\nexec '{sys.executable}' '{DOCKER_DOUBLE}' \"$@\"\n")
    (bin_dir / "docker").chmod(0o755)
    home = tmp_path / "home"
    (home / ".ssh").mkdir(parents=True)
    (home / ".ssh" / "id_ed25519").write_text("-----BEGIN OPENSSH PRIVATE KEY-----\nx\n-----END OPENSSH PRIVATE KEY-----\n")
    for pem in ("key.pem", "fullchain.pem"):
        (copy / pem).write_text("-----BEGIN X-----\nx\n-----END X-----\n")
    env = {"PATH": f"{bin_dir}:{os.path.dirname(sys.executable)}:/usr/bin:/bin", "HOME": str(home),
           "PULUMI_CONFIG_PASSPHRASE": "test-passphrase", "VAULT_TOKEN": "test-token",
           "DOCKER_DOUBLE_STATE": str(docker_state), "LANG": "C.UTF-8"}

    class Project:
        root = copy

        def run(self, command: str, stdin: str = "", **more_env):
            return subprocess.run(["bash", "-c", command], cwd=copy, env={**env, **more_env}, input=stdin,
                                  capture_output=True, text=True, timeout=300)

        def calls(self):
            return json.loads(state_file.read_text())["calls"]

    return Project()


def run_all(project, check_exit: bool = True, **env) -> list[tuple[str, str, list[dict]]]:
    results = []
    for doc, command in documented_commands():
        before = len(project.calls())
        done = project.run(command, stdin="destroy dev\n", **env)
        new = project.calls()[before:]
        results.append((f"{doc}: {command}", done.stderr, new))
        if check_exit and command.startswith(("pulumi ", "python3 ")):
            # The double refuses what the CLI refuses on this backend (`stack export --version` off
            # Pulumi Cloud, a document `stack import` cannot read): a documented step must not fail.
            assert done.returncode == 0, f"{doc}: `{command}` fails on {env or 'the default backend'}: {done.stderr[-500:]}"
        if command.startswith("python3 "):
            continue  # checked above (it reads the backend's files, not the CLI)
        if command.startswith(("cp ", "sed ", "./scripts/stack check")):
            assert done.returncode == 0, f"{doc}: `{command}` failed: {done.stderr[-500:]}"
        else:
            assert new, f"{doc}: `{command}` never reached pulumi (exit {done.returncode}): {done.stderr[-500:]}"
    return results


def test_every_documented_command_reaches_the_projects_state(project):
    expected = f"file://{project.root / '.pulumi-state'}"
    results = run_all(project)
    calls = [call for _, _, new in results for call in new]
    assert len(calls) >= 30
    wrong = [(where, call["args"], call["backend"]) for where, _, new in results for call in new
             if call["backend"] != expected]
    assert wrong == []
    assert {call["backend_source"] for call in calls} == {"project"}, "Pulumi.yaml names the backend"
    assert (project.root / ".pulumi-state").is_dir()


def test_a_teams_backend_url_overrides_it_for_every_command(project):
    shared = "s3://team-bucket/litellm-gateway"
    results = run_all(project, check_exit=False, PULUMI_BACKEND_URL=shared)  # no bucket behind it
    assert {call["backend"] for _, _, new in results for call in new} == {shared}


def test_from_a_subdirectory_the_cli_would_look_elsewhere_so_the_docs_say_where_to_run(project):
    """The file backend's path is relative to the working directory (as in the CLI): the docs tell
    users to run commands from the project directory, and scripts/stack always does."""
    (project.root / "docs" / "x").mkdir()
    project.run("cd docs/x && pulumi stack ls")
    assert project.calls()[-1]["backend"] == f"file://{project.root / 'docs' / 'x' / '.pulumi-state'}"
    project.run("cd docs/x && ../../scripts/stack preview dev")
    assert {c["backend"] for c in project.calls()[-3:]} == {f"file://{project.root / '.pulumi-state'}"}
    operations = (ROOT / "docs" / "operations.md").read_text()
    assert "Run every command from the project directory" in operations


def test_an_old_pulumi_cli_is_named_before_anything_runs(project):
    done = project.run("./scripts/stack up dev", PULUMI_DOUBLE_VERSION="v3.190.0")
    assert done.returncode == 1
    assert "the Pulumi CLI is 3.190.0; this project needs 3.272.0 or newer" in done.stderr
    assert [c["args"] for c in project.calls()] == [["version"]]
    done = project.run("./scripts/stack up dev --yes", PULUMI_DOUBLE_VERSION="v3.272.0")
    assert done.returncode == 0, done.stderr
    assert project.calls()[-1]["args"][:1] == ["up"]


def test_destroy_asks_before_it_installs_selects_or_unprotects(project):
    done = project.run("./scripts/stack destroy dev", stdin="no\n")
    assert done.returncode == 1 and "not confirmed; nothing was destroyed" in done.stderr
    assert [c["args"] for c in project.calls()] == [["version"]]
    done = project.run("./scripts/stack destroy dev", stdin="destroy dev\n")
    assert done.returncode == 0, done.stderr
    assert [c["args"][:2] for c in project.calls()[1:]] == [
        ["version"], ["stack", "select"], ["state", "unprotect"], ["destroy", "--stack"]]


def test_missing_environments_are_installed_and_the_installs_are_shown(project):
    shutil.rmtree(project.root / "venv")
    # The policy pack's venv stays; the program's is made by `pulumi install` (recorded by the double).
    done = project.run("./scripts/stack preview dev")
    assert done.returncode == 0, done.stderr
    assert "installing the program's Python dependencies into ./venv" in done.stderr
    assert ["install"] in [c["args"] for c in project.calls()]


@pytest.mark.parametrize("preview, code, message", [
    ("", 0, "no drift: stack 'prod' matches its resources"),
    ("changes", 7, "DRIFT: stack 'prod' differs from what is running"),
    ("fails", 1, "failed with exit 1 (an error, not a drift verdict)"),
])
def test_the_drift_check_maps_the_clis_exit_codes(project, preview, code, message):
    """`./scripts/stack drift` as docs/operations.md promises: 0 no drift, 7 drift (the CLI's ExitNoChanges
    for --expect-no-changes), anything else an error and never a drift verdict."""
    done = project.run("./scripts/stack drift prod", PULUMI_DOUBLE_PREVIEW=preview)
    assert done.returncode == code, done.stderr
    assert message in done.stdout + done.stderr
    assert "--expect-no-changes" in project.calls()[-1]["args"]


def test_without_a_passphrase_the_cli_cannot_open_a_self_managed_stacks_secrets(project):
    """The double refuses what the CLI's passphrase secrets manager refuses when non-interactive."""
    refused = project.run("unset PULUMI_CONFIG_PASSPHRASE; pulumi preview --stack prod")
    assert refused.returncode == 1
    assert "passphrase must be set with PULUMI_CONFIG_PASSPHRASE or PULUMI_CONFIG_PASSPHRASE_FILE" in refused.stderr
    unreadable = project.run("unset PULUMI_CONFIG_PASSPHRASE; PULUMI_CONFIG_PASSPHRASE_FILE=./no-such-file pulumi up --stack prod")
    assert unreadable.returncode == 1 and "unable to read PULUMI_CONFIG_PASSPHRASE_FILE" in unreadable.stderr
    (project.root / "phrase.txt").write_text("from a file\n")
    for allowed in ("PULUMI_CONFIG_PASSPHRASE= pulumi preview --stack prod",  # set, even empty
                    "unset PULUMI_CONFIG_PASSPHRASE; PULUMI_CONFIG_PASSPHRASE_FILE=phrase.txt pulumi refresh --stack prod",
                    "unset PULUMI_CONFIG_PASSPHRASE; PULUMI_BACKEND_URL=https://api.pulumi.com pulumi preview --stack prod",
                    "unset PULUMI_CONFIG_PASSPHRASE; pulumi stack ls",  # opens no secrets
                    "unset PULUMI_CONFIG_PASSPHRASE; pulumi config --stack prod --json",  # secrets blinded
                    # no secret in the config yet: the CLI does not open the secrets manager to list it
                    "unset PULUMI_CONFIG_PASSPHRASE; pulumi config --stack prod --show-secrets --json",
                    "unset PULUMI_CONFIG_PASSPHRASE; pulumi config set --stack prod gateway.replicas 2"):
        done = project.run(allowed)
        assert done.returncode == 0, f"{allowed}: {done.stderr}"
    for refused in ("pulumi config set --secret --stack prod k v", "pulumi stack export --stack prod --show-secrets"):
        assert project.run(f"unset PULUMI_CONFIG_PASSPHRASE; {refused}").returncode == 1, refused
    assert project.run("pulumi config set --secret --stack prod k v").returncode == 0  # with the passphrase
    shown = project.run("unset PULUMI_CONFIG_PASSPHRASE; pulumi config --stack prod --show-secrets --json")
    assert shown.returncode == 1 and "passphrase must be set" in shown.stderr, "a secret in the config needs it"


def test_a_passphrase_the_cli_cannot_read_is_an_error_to_the_drift_check_not_drift(project):
    """scripts/stack sees PULUMI_CONFIG_PASSPHRASE_FILE set and lets the CLI read it; the CLI's failure
    must come out as an error, never as drift or no drift."""
    done = project.run("unset PULUMI_CONFIG_PASSPHRASE; PULUMI_CONFIG_PASSPHRASE_FILE=/nonexistent ./scripts/stack drift prod")
    assert done.returncode == 1, done.stderr
    assert "unable to read PULUMI_CONFIG_PASSPHRASE_FILE" in done.stderr
    assert "failed with exit 1 (an error, not a drift verdict)" in done.stderr
    assert "no drift" not in done.stdout + done.stderr and "DRIFT" not in done.stdout + done.stderr


@pytest.mark.parametrize("command", ["preview", "up"])
def test_a_mandatory_policy_violation_fails_preview_and_up_through_the_scripts(project, command):
    """scripts/stack passes the policy pack to preview and up, so a violation fails them; the bare CLI
    without --policy-pack runs no policy (the double, like the CLI, only sees the packs it is given)."""
    done = project.run(f"./scripts/stack {command} prod", PULUMI_DOUBLE_POLICY_VIOLATION="pinned-images")
    assert done.returncode == 1, done.stderr
    assert "Policy Violations:" in done.stdout and "[mandatory]  policy v0.0.1  pinned-images" in done.stdout
    assert f"{command} failed" in done.stderr or "update failed" in done.stderr
    bare = project.run(f"pulumi {command} --stack prod", PULUMI_DOUBLE_POLICY_VIOLATION="pinned-images")
    assert bare.returncode == 0


def drift_step_script() -> str:
    workflow = yaml.safe_load((ROOT / ".github/workflows/drift.yml").read_text())
    [step] = [s for s in workflow["jobs"]["drift"]["steps"] if s.get("name") == "Drift check"]
    return step["run"]


@pytest.mark.parametrize("preview, unset_passphrase, code, summary", [
    ("", False, 0, "### Stack `prod`: no drift"),
    ("changes", False, 7, "### Stack `prod` drifted"),
    ("fails", False, 1, "### Drift check of `prod` failed (exit 1): an error, not drift"),
    ("", True, 1, "### Drift check of `prod` failed (exit 1): an error, not drift"),
])
def test_the_drift_workflows_step_maps_the_exit_codes_it_runs(project, tmp_path, preview, unset_passphrase, code, summary):
    """The nightly workflow's "Drift check" step, run as GitHub runs it (bash -e), through scripts/stack
    and the CLI double: its exit status and its run-summary line for no drift, drift, a failing
    preview and a secret the CLI cannot open (the passphrase file the secret names does not exist)."""
    script = tmp_path / "drift-step.sh"
    script.write_text(drift_step_script())
    summary_file = tmp_path / "summary.md"
    prefix = "unset PULUMI_CONFIG_PASSPHRASE; export PULUMI_CONFIG_PASSPHRASE_FILE=/nonexistent; " if unset_passphrase else ""
    done = project.run(f"{prefix}bash -e {script}", PULUMI_DOUBLE_PREVIEW=preview, STACK="prod",
                       GITHUB_STEP_SUMMARY=str(summary_file))
    assert done.returncode == code, done.stdout + done.stderr
    assert summary_file.read_text().splitlines()[0] == summary
    assert (project.root / "drift.log").is_file()  # the step keeps the CLI's output


def test_the_first_run_creates_the_policy_packs_venv_and_the_stack_and_later_runs_reuse_them(project):
    """scripts/stack on a fresh checkout: ./policy/venv made with the policy pack's requirements (from the
    wheels .ci/run downloads, offline, as pip would install them from the index), the stack selected with
    --create, the preview given the pack; a second run installs nothing."""
    wheels = Path(os.environ.get("LITELLM_GATEWAY_TEST_CACHE", Path.home() / ".cache" / "litellm-gateway-tests")) / "policy-wheels"
    if not any(wheels.glob("pulumi_policy-*.whl")):
        pytest.fail(f"no policy-pack wheels in {wheels}: run .ci/run's install step (pip download -r policy/requirements.txt -d {wheels})")
    shutil.rmtree(project.root / "policy" / "venv")
    pip = {"PIP_NO_INDEX": "1", "PIP_FIND_LINKS": str(wheels), "PIP_CONFIG_FILE": "/dev/null"}
    first = project.run("./scripts/stack preview dev", **pip)
    assert first.returncode == 0, first.stderr
    assert "installing the policy pack's Python dependencies into ./policy/venv" in first.stderr
    venv_python = project.root / "policy" / "venv" / "bin" / "python"
    imported = subprocess.run([str(venv_python), "-c", "import pulumi_policy, pulumi; print(pulumi_policy.__name__)"],
                              capture_output=True, text=True)
    assert imported.returncode == 0, imported.stderr
    stamp = (project.root / "policy" / "venv" / ".requirements.sha256").read_text()
    assert stamp.split()[0] == hashlib.sha256((project.root / "policy" / "requirements.txt").read_bytes()).hexdigest()
    args = [c["args"] for c in project.calls()]
    assert ["stack", "select", "dev", "--create"] in args
    preview = args[-1]
    assert preview[:3] == ["preview", "--stack", "dev"] and preview[preview.index("--policy-pack") + 1] == str(project.root / "policy")
    again = project.run("./scripts/stack preview dev", **pip)
    assert again.returncode == 0 and "installing" not in again.stderr, again.stderr
