"""Scheduled backups under mocks: the container, its schedule and storage, and secrets."""

import copy

import pytest

from config.errors import SettingsError
from config.parse import parse_settings
from harness import run_stack, stack_file_config


@pytest.fixture(scope="module")
def prod_run():
    return run_stack(stack_file_config("prod"), stack="prod")


def test_backup_container_uses_the_database_image_and_runs_the_scheduler(prod_run):
    backup = prod_run.mocks.named("backups-scheduler")
    assert prod_run.mocks.named("backups-image").plain("name") == stack_file_config("prod")["postgres"]["image"]
    assert backup.plain("entrypoints") == ["bash", "/usr/local/bin/litellm-backup-scheduler"]
    scripts = {u["file"]: u for u in backup.plain("uploads")}
    # The scheduler runs the backup script as postgres: both must be executable by others, which
    # pulumi-docker's `executable` (mode 0744) is not (tests/engine runs it on a real engine).
    for path in ("/usr/local/bin/litellm-backup-scheduler", "/usr/local/bin/litellm-backup"):
        assert scripts[path]["permissions"] == "0755" and "executable" not in scripts[path]
    assert 'times="03:00"' in scripts["/usr/local/bin/litellm-backup-scheduler"]["content"]
    assert "pg_dump --format=custom" in scripts["/usr/local/bin/litellm-backup"]["content"]
    assert "gateway-postgres" in prod_run.mocks.depends_on_names("backups-scheduler")
    assert "litellm-backup-failed" in " ".join(backup.plain("healthcheck")["tests"])
    assert backup.plain("restart") == "unless-stopped" and not backup.plain("ports")


def test_backups_never_share_the_database_volume(prod_run):
    backup = prod_run.mocks.named("backups-scheduler")
    (mount,) = backup.plain("mounts")
    assert (mount["target"], mount["type"], mount["source"]) == ("/backups", "volume", "litellm-gateway-prod-pgbackups")
    assert mount["source"] != prod_run.mocks.named("gateway-postgres").plain("mounts")[0]["source"]
    assert prod_run.mocks.options_of("backups-volume").retain_on_delete is True


def test_the_database_password_reaches_the_backup_only_as_a_secret(prod_run):
    backup = prod_run.mocks.named("backups-scheduler")
    assert backup.is_secret("envs")
    env = dict(e.split("=", 1) for e in backup.plain("envs"))
    assert env["PGHOST"] == "litellm-gateway-prod-postgres" and env["BACKUP_RETENTION"] == "14"
    assert env["PGPASSWORD"] and env["PGPASSWORD"] not in str(backup.plain("uploads"))


def test_host_path_and_schedule_from_settings():
    raw = copy.deepcopy(stack_file_config("prod"))
    raw["backups"].pop("volumeName")
    raw["backups"].update(hostPath="/srv/backups/litellm", timesUtc=["01:15", "13:15"])
    run = run_stack(raw, stack="prod")
    (mount,) = run.mocks.named("backups-scheduler").plain("mounts")
    assert (mount["type"], mount["source"]) == ("bind", "/srv/backups/litellm")
    evidence = run.outputs["backlog"]["BACKLOG-004"]["evidence"]
    assert evidence["backup_schedule"] == "daily at 01:15, 13:15 UTC"
    assert evidence["location"] == "host path /srv/backups/litellm"
    assert evidence["retention"] == 14 and evidence["runbook"] == "docs/RUNBOOK.md"


def test_backups_can_be_turned_off():
    raw = copy.deepcopy(stack_file_config("dev"))
    raw["backups"]["enabled"] = False
    run = run_stack(raw, stack="dev")
    assert not [r for r in run.resources if r.name.startswith("backups-")]
    assert run.outputs["backlog"]["BACKLOG-004"]["status"] == "not started"


@pytest.mark.parametrize("change, key", [
    ({"timesUtc": ["3am"]}, "backups.timesUtc[0]"),
    ({"timesUtc": ["24:00"]}, "backups.timesUtc[0]"),
    ({"hostPath": "backups"}, "backups.hostPath"),
    ({"volumeName": "litellm-gateway-prod-pgdata"}, "backups.volumeName"),
    ({"retention": 0}, "backups.retention"),
])
def test_bad_backup_settings_are_named(change, key):
    raw = copy.deepcopy(stack_file_config("prod"))
    raw["backups"].update(change)
    with pytest.raises(SettingsError) as caught:
        parse_settings(raw)
    assert key in {k for k, _ in caught.value.problems}
