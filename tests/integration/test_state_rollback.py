"""The runbook's state rollback on the file backend (the project's default): the Pulumi CLI refuses
`stack export --version` there (its test double does as the CLI's stack_export.go does), so
operations/state_history.py reads the checkpoints the backend keeps after every update, in the layout
the CLI writes them (pulumi/pulumi pkg/backend/diy: addToHistory), and writes the one asked for as
`pulumi stack import` reads it; the double's import refuses a raw checkpoint, as the CLI cannot read it."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from harness import ROOT
from pulumi_cli_double import install as install_pulumi_double

STACK = "prod"


def checkpoint(resources: list[str]) -> dict:
    """A stack file as the file backend writes it (apitype.VersionedCheckpoint)."""
    return {"version": 3, "checkpoint": {"stack": f"organization/litellm-gateway/{STACK}", "latest": {
        "manifest": {"time": "2026-12-01T10:00:00Z", "magic": "m", "version": "v3.272.0"},
        "resources": [{"urn": f"urn:pulumi:{STACK}::litellm-gateway::{r}", "type": "x:y:Z"} for r in resources]}}}


@pytest.fixture
def backend(tmp_path):
    state = tmp_path / ".pulumi-state"
    history = state / ".pulumi" / "history" / "litellm-gateway" / STACK
    history.mkdir(parents=True)
    for stamp, resources, message in ((1764583200000000000, ["a"], "first"),
                                      (1764586800000000000, ["a", "b"], "second")):
        (history / f"{STACK}-{stamp}.checkpoint.json").write_text(json.dumps(checkpoint(resources)))
        (history / f"{STACK}-{stamp}.history.json").write_text(json.dumps(
            {"kind": "update", "result": "succeeded", "message": message, "resourceChanges": {"create": len(resources)}}))
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    double_state = tmp_path / "double.json"
    install_pulumi_double(bin_dir, double_state)
    env = {**os.environ, "PATH": f"{bin_dir}:{os.environ['PATH']}", "PULUMI_BACKEND_URL": f"file://{state}",
           "PULUMI_CONFIG_PASSPHRASE": "test-passphrase"}

    def run(*args, **more):
        return subprocess.run(list(args), cwd=ROOT, env={**env, **more}, capture_output=True, text=True, timeout=60)

    run.calls = lambda: json.loads(double_state.read_text())["calls"]
    run.tmp = tmp_path
    return run


def test_the_file_backend_refuses_an_earlier_version_and_the_cloud_exports_it(backend):
    refused = backend("pulumi", "stack", "export", "--stack", STACK, "--version", "2", "--file", str(backend.tmp / "s.json"))
    assert refused.returncode == 1
    assert "does not provide the ability to export previous deployments" in refused.stderr
    cloud = backend("pulumi", "stack", "export", "--stack", STACK, "--version", "2", "--file", str(backend.tmp / "s.json"),
                    PULUMI_BACKEND_URL="https://api.pulumi.com")
    assert cloud.returncode == 0, cloud.stderr


def test_an_earlier_state_is_listed_extracted_and_imported(backend):
    listed = backend(sys.executable, "-m", "operations.state_history", "list", STACK)
    assert listed.returncode == 0, listed.stderr
    lines = listed.stdout.splitlines()
    assert len(lines) == 2 and lines[0].rstrip().endswith("second") and lines[1].rstrip().endswith("first"), lines
    target = backend.tmp / "state-2.json"
    extracted = backend(sys.executable, "-m", "operations.state_history", "extract", STACK, "2", "--file", str(target))
    assert extracted.returncode == 0, extracted.stderr
    document = json.loads(target.read_text())
    assert document["version"] == 3
    assert [r["urn"].rsplit("::", 1)[1] for r in document["deployment"]["resources"]] == ["a"]
    imported = backend("pulumi", "stack", "import", "--stack", STACK, "--file", str(target))
    assert imported.returncode == 0, imported.stderr
    assert backend.calls()[-1]["imported"] == document


def test_a_raw_checkpoint_is_not_importable(backend):
    raw = next((backend.tmp / ".pulumi-state" / ".pulumi" / "history").rglob("*.checkpoint.json"))
    refused = backend("pulumi", "stack", "import", "--stack", STACK, "--file", str(raw))
    assert refused.returncode == 1 and "could not read deployment" in refused.stderr


@pytest.mark.parametrize("args, message", [
    (("extract", STACK, "3", "--file", "x.json"), "state 3 does not exist: stack 'prod' has 2"),
    (("list", "staging"), "no update history of stack 'staging'"),
])
def test_bad_requests_are_named(backend, args, message):
    done = backend(sys.executable, "-m", "operations.state_history", *args)
    assert done.returncode == 1 and message in done.stderr, done.stderr


def test_on_pulumi_cloud_it_points_to_the_clis_own_export(backend):
    done = backend(sys.executable, "-m", "operations.state_history", "list", STACK, PULUMI_BACKEND_URL="https://api.pulumi.com")
    assert done.returncode == 1 and "pulumi stack export --stack <stack> --version <N>" in done.stderr


def test_on_a_bucket_backend_it_says_how_to_read_the_same_history(backend):
    done = backend(sys.executable, "-m", "operations.state_history", "list", STACK, PULUMI_BACKEND_URL="s3://team/state")
    assert done.returncode == 1 and "copy its .pulumi/history" in done.stderr, done.stderr
    refused = backend("pulumi", "stack", "export", "--stack", STACK, "--version", "2", PULUMI_BACKEND_URL="s3://team/state")
    assert refused.returncode == 1  # S3 is the same DIY backend: no earlier versions through the CLI
