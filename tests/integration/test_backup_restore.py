"""Backups with a real PostgreSQL (Debian's, started on loopback): the container's rendered backup
script, and the operator's scripts/backup and scripts/restore, end to end. Vault is a test double."""

from __future__ import annotations

import contextlib
import json
import os
import queue
import subprocess
import sys
import threading
import time
import uuid
from pathlib import Path

import pytest

from harness import ROOT, run_stack, stack_file_config
from pulumi_cli_double import install as install_pulumi_double
from renderers.backup_scripts import render_backup_script, render_scheduler_script
from renderers.vault_policy import render_read_policy
from servers import postgres_cluster, require_root
from vault_double import VaultDouble

LITELLM_SHAPED_SCHEMA = """
CREATE TABLE "LiteLLM_TeamTable" (team_id text PRIMARY KEY, team_alias text, spend double precision DEFAULT 0,
  rpm_limit bigint, tpm_limit bigint, models text[] DEFAULT '{}', created_at timestamptz DEFAULT now());
CREATE TABLE "LiteLLM_UserTable" (user_id text PRIMARY KEY, user_email text, team_id text REFERENCES "LiteLLM_TeamTable",
  spend double precision DEFAULT 0, max_budget double precision, metadata jsonb DEFAULT '{}');
CREATE TABLE "LiteLLM_VerificationToken" (token text PRIMARY KEY, key_name text, key_alias text,
  user_id text REFERENCES "LiteLLM_UserTable", team_id text, spend double precision DEFAULT 0,
  rpm_limit bigint, tpm_limit bigint, models text[] DEFAULT '{}', expires timestamptz);
CREATE TABLE "LiteLLM_SpendLogs" (request_id text PRIMARY KEY, api_key text, model text, spend double precision,
  total_tokens integer, "startTime" timestamptz, "endTime" timestamptz, metadata jsonb DEFAULT '{}');
INSERT INTO "LiteLLM_TeamTable" (team_id, team_alias, rpm_limit, models) VALUES
  ('team-ml', 'ML platform', 600, '{llama3.1-8b,qwen-coder}'), ('team-web', 'Web', 60, '{llama3.1-8b}');
INSERT INTO "LiteLLM_UserTable" (user_id, user_email, team_id, max_budget) VALUES
  ('u-ada', 'ada@example.com', 'team-ml', 100), ('u-bob', 'bob@example.com', 'team-web', 20),
  ('u-cy', 'cy@example.com', 'team-ml', NULL);
INSERT INTO "LiteLLM_VerificationToken" (token, key_name, key_alias, user_id, team_id, rpm_limit, models) VALUES
  ('hash-1', 'sk-...a1', 'ada-laptop', 'u-ada', 'team-ml', 30, '{llama3.1-8b}'),
  ('hash-2', 'sk-...b2', 'bob-ci', 'u-bob', 'team-web', 10, '{}'),
  ('hash-3', 'sk-...c3', 'cy-notebook', 'u-cy', 'team-ml', NULL, '{qwen-coder}');
INSERT INTO "LiteLLM_SpendLogs" (request_id, api_key, model, spend, total_tokens, "startTime", "endTime")
  SELECT 'req-' || g, 'hash-' || (g % 3 + 1), CASE WHEN g % 2 = 0 THEN 'llama3.1-8b' ELSE 'qwen-coder' END,
         g * 0.0001, g * 10, now() - (g || ' minutes')::interval, now() - (g || ' minutes')::interval + interval '2 seconds'
  FROM generate_series(1, 500) AS g;
"""
TABLES = ['"LiteLLM_TeamTable"', '"LiteLLM_UserTable"', '"LiteLLM_VerificationToken"', '"LiteLLM_SpendLogs"']


def psql(url: str, sql: str) -> str:
    done = subprocess.run(["psql", url, "-X", "-A", "-t", "-v", "ON_ERROR_STOP=1", "-c", sql],
                          capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    return done.stdout.strip()


def fingerprint(url: str) -> dict[str, tuple[int, str]]:
    """Row count and an md5 over every row, in key order, per table."""
    return {t: (int(psql(url, f"SELECT count(*) FROM {t}")),
                psql(url, f"SELECT md5(coalesce(string_agg(x::text, '|' ORDER BY x::text), '')) FROM {t} AS x"))
            for t in TABLES}


@pytest.fixture
def database():
    with postgres_cluster() as url:
        psql(url, LITELLM_SHAPED_SCHEMA)
        yield url


def pg_env(url: str) -> dict[str, str]:
    from urllib.parse import urlparse

    parts = urlparse(url)
    return {**os.environ, "PGHOST": parts.hostname, "PGPORT": str(parts.port), "PGUSER": parts.username,
            "PGPASSWORD": parts.password, "PGDATABASE": parts.path.lstrip("/")}


# --- the scheduled backup (the container's script) ---------------------------------------------------

def test_the_rendered_backup_script_dumps_checksums_and_keeps_the_newest_n(database, tmp_path):
    script = tmp_path / "litellm-backup"
    script.write_text(render_backup_script(retention=3, stack="dev"))
    script.chmod(0o755)
    env = dict(pg_env(database), BACKUP_DIR=str(tmp_path / "backups"))
    names = []
    for run in range(5):
        done = subprocess.run([str(script)], capture_output=True, text=True, env=env)
        assert done.returncode == 0, done.stdout + done.stderr
        log = json.loads(done.stdout.strip().splitlines()[-1])
        assert log["status"] == "ok" and log["event"] == "litellm-backup"
        names.append(log["file"])
        time.sleep(1.1)  # one dump per second: names carry the second
    kept = sorted(p.name for p in (tmp_path / "backups").iterdir())
    assert kept == sorted([n for n in names[-3:]] + [f"{n}.sha256" for n in names[-3:]]), "exactly the newest 3"
    newest = tmp_path / "backups" / names[-1]
    check = subprocess.run(["sha256sum", "-c", f"{newest.name}.sha256"], cwd=newest.parent, capture_output=True, text=True)
    assert check.returncode == 0, check.stdout
    listing = subprocess.run(["pg_restore", "--list", str(newest)], capture_output=True, text=True)
    assert "TABLE DATA public LiteLLM_SpendLogs" in listing.stdout


def test_a_failed_backup_run_is_logged_and_leaves_no_partial_file(tmp_path):
    script = tmp_path / "litellm-backup"
    script.write_text(render_backup_script(retention=3, stack="dev"))
    script.chmod(0o755)
    env = {**os.environ, "PGHOST": "127.0.0.1", "PGPORT": "1", "PGUSER": "x", "PGPASSWORD": "x", "PGDATABASE": "x",
           "BACKUP_DIR": str(tmp_path / "backups")}
    done = subprocess.run([str(script)], capture_output=True, text=True, env=env)
    assert done.returncode != 0
    log = json.loads(done.stdout.strip().splitlines()[-1])
    assert log["status"] == "failed" and "pg_dump" in log["detail"]
    assert list((tmp_path / "backups").iterdir()) == []


def test_the_scheduler_script_is_valid_bash_and_names_its_times():
    text = render_scheduler_script(("03:00", "15:30"))
    assert 'times="03:00 15:30"' in text
    assert subprocess.run(["bash", "-n"], input=text, text=True).returncode == 0


# --- the operator's scripts ---------------------------------------------------------------------------

def run_script(name: str, *args: str, env: dict | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([str(ROOT / "scripts" / name), *args], capture_output=True, text=True,
                          env={**os.environ, **(env or {})}, timeout=300)


def secret_version(master: str, postgres_password: str = "pg-test-password") -> dict[str, str]:
    """A Vault secret as the stack writes it (the seven fields of components/secrets.py)."""
    return {"LITELLM_MASTER_KEY": master, "LITELLM_SALT_KEY": "sk-salt-never-changes-" + "s" * 30,
            "UI_PASSWORD": "ui-" + master[-6:] + "u" * 16, "POSTGRES_PASSWORD": postgres_password,
            "REDIS_PASSWORD": "redis-" + master[-6:] + "r" * 16, "GRAFANA_ADMIN_PASSWORD": "graf-" + "g" * 16,
            "PROMETHEUS_PASSWORD": "prom-" + master[-6:] + "p" * 16}


V1 = secret_version("sk-v1" + "a" * 40)
V2 = secret_version("sk-v2" + "b" * 40)


@pytest.fixture
def vault(openbao):
    """The dev stack's secret in a real Vault API (OpenBao), at versions 1 and 2; `read_only_token` has
    only the stack's rendered read policy, as a consumer of the secret would."""
    openbao.reset()
    openbao.put("litellm-gateway/dev", V1)
    openbao.put("litellm-gateway/dev", V2)
    openbao.read_only_token = openbao.token_with_policy("litellm-gateway-dev-read",
                                                        render_read_policy("secret", "litellm-gateway/dev"))
    return openbao


@pytest.fixture
def sealing_vault():
    """The Vault double, for the one thing a real server cannot be made to do on time: seal between the
    restore's checks and its write (tests/integration/vault_double.py)."""
    double = VaultDouble(token="test-root-token")
    double.put("litellm-gateway/dev", V1)
    double.put("litellm-gateway/dev", V2)
    yield double
    double.stop()


@pytest.fixture
def pulumi_cli(tmp_path, monkeypatch):
    """The Pulumi CLI test double first on PATH; yields a reader of its recorded state."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    state = tmp_path / "pulumi-double.json"
    install_pulumi_double(bin_dir, state)
    monkeypatch.setenv("PATH", f"{bin_dir}:{os.environ['PATH']}")
    # As an operator has it: the stack's secrets (file backend, passphrase provider) open with it.
    monkeypatch.setenv("PULUMI_CONFIG_PASSPHRASE", "operator-passphrase")
    monkeypatch.delenv("PULUMI_CONFIG_PASSPHRASE_FILE", raising=False)
    return lambda: json.loads(state.read_text())


VAULT_ENV = {"BACKUP_PASSPHRASE": "correct horse battery staple"}


def vault_env(vault):
    return dict(VAULT_ENV, VAULT_ADDR=vault.address, VAULT_TOKEN=vault.token)


def take_backup(database, tmp_path, vault) -> Path:
    done = run_script("backup", "dev", "--out", str(tmp_path / "out"), "--database-url", database,
                      "--no-pulumi-export", env=vault_env(vault))
    assert done.returncode == 0, done.stderr
    (folder,) = (tmp_path / "out").iterdir()
    return folder


def restore(*args: str, env=None) -> subprocess.CompletedProcess:
    return run_script("restore", *args, env=env)


def test_backup_change_restore_loses_nothing(database, tmp_path, vault, pulumi_cli):
    original = fingerprint(database)
    folder = take_backup(database, tmp_path, vault)
    manifest = json.loads((folder / "manifest.json").read_text())
    assert manifest["database"]["row_counts"]["LiteLLM_SpendLogs"] == 500
    assert manifest["vault"]["version"] == 2 and manifest["vault"]["export"] == "vault-secret.json.enc"
    assert b"salt-never-changes" not in (folder / "vault-secret.json.enc").read_bytes(), "the export is encrypted"
    assert (folder / "rendered" / "litellm-config.yaml").is_file()
    assert subprocess.run(["sha256sum", "-c", "SHA256SUMS"], cwd=folder, capture_output=True).returncode == 0

    psql(database, 'DELETE FROM "LiteLLM_SpendLogs" WHERE spend > 0.02; '
                   'UPDATE "LiteLLM_VerificationToken" SET rpm_limit = 999; DELETE FROM "LiteLLM_VerificationToken" WHERE token = \'hash-3\'')
    vault.put("litellm-gateway/dev", secret_version("sk-broken" + "x" * 40))
    assert fingerprint(database) != original

    done = restore(str(folder), "--stack", "dev", "--database-url", database, "--restore-vault", "--yes",
                   env=vault_env(vault))
    assert done.returncode == 0, done.stderr
    assert fingerprint(database) == original
    assert vault.versions["litellm-gateway/dev"][-1] == V2
    assert "restored the database" in done.stdout and "as version 4 (the content of version 2)" in done.stdout


def test_restore_into_an_empty_database_on_another_server(database, tmp_path, vault):
    original = fingerprint(database)
    folder = take_backup(database, tmp_path, vault)
    with postgres_cluster() as new_host:
        done = restore(str(folder), "--stack", "dev", "--database-url", new_host, "--yes")
        assert done.returncode == 0, done.stderr
        assert fingerprint(new_host) == original


def test_a_truncated_dump_is_refused_and_the_database_untouched(database, tmp_path, vault):
    folder = take_backup(database, tmp_path, vault)
    psql(database, 'DELETE FROM "LiteLLM_SpendLogs" WHERE spend > 0.01')
    changed = fingerprint(database)
    dump = folder / "database.dump"
    dump.write_bytes(dump.read_bytes()[: dump.stat().st_size // 2])
    done = restore(str(folder), "--stack", "dev", "--database-url", database, "--yes")
    assert done.returncode == 3
    assert "checksum mismatch for database.dump" in done.stderr and "nothing was changed" in done.stderr
    assert fingerprint(database) == changed


def test_a_dump_truncated_before_its_checksum_was_taken_is_refused(database, tmp_path, vault):
    """Checksums that match a broken dump: pg_restore's own check refuses it."""
    folder = take_backup(database, tmp_path, vault)
    changed = fingerprint(database)
    dump = folder / "database.dump"
    dump.write_bytes(dump.read_bytes()[:200])
    manifest = json.loads((folder / "manifest.json").read_text())
    from operations.backup.manifest import sha256

    manifest["files"]["database.dump"] = sha256(dump)
    (folder / "manifest.json").write_text(json.dumps(manifest, indent=2, sort_keys=True))
    sums = dict(manifest["files"], **{"manifest.json": sha256(folder / "manifest.json")})
    (folder / "SHA256SUMS").write_text("".join(f"{d}  {n}\n" for n, d in sorted(sums.items())))
    done = restore(str(folder), "--stack", "dev", "--database-url", database, "--yes")
    assert done.returncode == 3
    assert "not a readable pg_dump archive" in done.stderr
    assert fingerprint(database) == changed


def test_a_flipped_byte_is_a_checksum_mismatch(database, tmp_path, vault):
    folder = take_backup(database, tmp_path, vault)
    dump = folder / "database.dump"
    data = bytearray(dump.read_bytes())
    data[len(data) // 2] ^= 0xFF
    dump.write_bytes(bytes(data))
    done = restore(str(folder), "--stack", "dev", "--database-url", database, "--yes")
    assert done.returncode == 3 and "checksum mismatch for database.dump" in done.stderr


def test_restore_asks_for_yes_and_checks_first(database, tmp_path, vault):
    folder = take_backup(database, tmp_path, vault)
    psql(database, 'DELETE FROM "LiteLLM_SpendLogs"')
    changed = fingerprint(database)
    done = restore(str(folder), "--stack", "dev", "--database-url", database)
    assert done.returncode == 3 and "add --yes" in done.stderr and "all checks passed" in done.stderr
    assert fingerprint(database) == changed


def test_wrong_passphrase_refuses_the_vault_restore_before_touching_anything(database, tmp_path, vault):
    folder = take_backup(database, tmp_path, vault)
    psql(database, 'DELETE FROM "LiteLLM_SpendLogs"')
    changed = fingerprint(database)
    env = dict(vault_env(vault), BACKUP_PASSPHRASE="wrong")
    done = restore(str(folder), "--stack", "dev", "--database-url", database, "--restore-vault", "--yes", env=env)
    assert done.returncode == 3 and "wrong BACKUP_PASSPHRASE" in done.stderr
    assert fingerprint(database) == changed
    assert len(vault.versions["litellm-gateway/dev"]) == 2


def without_pulumi_path() -> str:
    """PATH without any directory holding a `pulumi` (the scripts' python3 stays first)."""
    import sys

    dirs = [os.path.dirname(sys.executable)] + os.environ["PATH"].split(":")
    return ":".join(dict.fromkeys(d for d in dirs if d and not os.path.exists(os.path.join(d, "pulumi"))))


def test_backup_without_the_pulumi_cli_says_so(database, tmp_path, vault):
    done = run_script("backup", "dev", "--out", str(tmp_path / "out"), "--database-url", database,
                      env={**vault_env(vault), "PATH": without_pulumi_path()})
    assert done.returncode == 3
    assert "Pulumi CLI is not installed" in done.stderr and "--no-pulumi-export" in done.stderr
    assert not any((tmp_path / "out").iterdir()), "no half-written backup folder is left"


def test_backup_needs_a_database(tmp_path):
    done = run_script("backup", "dev", "--out", str(tmp_path / "out"), "--no-pulumi-export", "--no-vault",
                      env={"DATABASE_URL": ""})
    assert done.returncode == 3 and "--database-url" in done.stderr


def test_restore_from_a_scheduled_dump(database, tmp_path):
    original = fingerprint(database)
    script = tmp_path / "litellm-backup"
    script.write_text(render_backup_script(retention=3, stack="dev"))
    script.chmod(0o755)
    done = subprocess.run([str(script)], capture_output=True, text=True,
                          env=dict(pg_env(database), BACKUP_DIR=str(tmp_path / "backups")))
    dump = tmp_path / "backups" / json.loads(done.stdout.strip().splitlines()[-1])["file"]
    psql(database, 'DROP TABLE "LiteLLM_SpendLogs"')
    done = restore(str(dump), "--stack", "dev", "--database-url", database, "--yes")
    assert done.returncode == 0, done.stderr
    assert fingerprint(database) == original
    dump.write_bytes(dump.read_bytes()[:-10])
    refused = restore(str(dump), "--stack", "dev", "--database-url", database, "--yes")
    assert refused.returncode == 3 and f"checksum mismatch for {dump.name}" in refused.stderr


# --- restore safety: the right stack, every check before the first change ------------------------------

def test_a_backup_of_another_stack_is_refused_unless_forced(database, tmp_path, vault, pulumi_cli):
    vault.put("litellm-gateway/prod", V1)
    # prod's Vault is the one its stack file names (vault.address wins over VAULT_ADDR): not reachable
    # here, so prod's database alone (the other-stack refusal comes before anything Vault does).
    done = run_script("backup", "prod", "--out", str(tmp_path / "out"), "--database-url", database,
                      "--no-pulumi-export", "--no-vault", env=vault_env(vault))
    assert done.returncode == 0, done.stderr
    (folder,) = (tmp_path / "out").iterdir()
    psql(database, 'DELETE FROM "LiteLLM_SpendLogs"')
    changed = fingerprint(database)
    dev_versions = len(vault.versions["litellm-gateway/dev"])

    refused = restore(str(folder), "--stack", "dev", "--database-url", database, "--restore-vault", "--yes",
                      env=vault_env(vault))
    assert refused.returncode == 3, refused.stderr
    assert "a backup of the 'prod' stack, the target is the 'dev' stack" in refused.stderr
    assert "--force-other-stack" in refused.stderr and "nothing was changed" in refused.stderr
    assert fingerprint(database) == changed
    assert len(vault.versions["litellm-gateway/dev"]) == dev_versions
    assert len(vault.versions["litellm-gateway/prod"]) == 1, "nothing is written to the backup's own path"

    forced = restore(str(folder), "--stack", "dev", "--database-url", database, "--force-other-stack", "--yes")
    assert forced.returncode == 0, forced.stderr
    assert fingerprint(database) != changed


def test_restore_needs_the_target_stack(database, tmp_path, vault):
    folder = take_backup(database, tmp_path, vault)
    done = run_script("restore", str(folder), "--database-url", database, "--yes")
    assert done.returncode == 2 and "--stack" in done.stderr


def scheduled_dump(database, tmp_path, stack="dev", into: Path | None = None) -> Path:
    """A dump as the backup container's script writes it (the rendered script, run here), in `into`
    (default tmp_path/backups)."""
    into = into or tmp_path / "backups"
    script = tmp_path / "litellm-backup"
    script.write_text(render_backup_script(retention=3, stack=stack))
    script.chmod(0o755)
    done = subprocess.run([str(script)], capture_output=True, text=True,
                          env=dict(pg_env(database), BACKUP_DIR=str(into)))
    assert done.returncode == 0, done.stdout + done.stderr
    return into / json.loads(done.stdout.strip().splitlines()[-1])["file"]


def test_a_scheduled_dump_names_its_stack_and_another_stacks_dump_is_refused(database, tmp_path):
    dump = scheduled_dump(database, tmp_path, stack="prod")
    assert dump.name.startswith("litellm-prod-")
    done = restore(str(dump), "--stack", "dev", "--database-url", database, "--yes")
    assert done.returncode == 3 and "a backup of the 'prod' stack" in done.stderr
    legacy = dump.with_name(dump.name.replace("litellm-prod-", "litellm-"))
    dump.rename(legacy)
    (legacy.parent / (legacy.name + ".sha256")).write_text(f"{sha256_of(legacy)}  {legacy.name}\n")
    done = restore(str(legacy), "--stack", "dev", "--database-url", database, "--yes")
    assert done.returncode == 3 and "does not say which stack" in done.stderr
    done = restore(str(legacy), "--stack", "dev", "--database-url", database, "--yes", "--force-other-stack")
    assert done.returncode == 0, done.stderr


def sha256_of(path: Path) -> str:
    from operations.backup.manifest import sha256

    return sha256(path)


@pytest.mark.parametrize("token, reason", [("wrong-token", "HTTP 403"), ("read-only-token", "may not write")])
def test_a_vault_token_that_cannot_write_is_refused_before_the_database_is_touched(
        database, tmp_path, vault, pulumi_cli, token, reason):
    folder = take_backup(database, tmp_path, vault)
    psql(database, 'DELETE FROM "LiteLLM_SpendLogs"')
    changed = fingerprint(database)
    env = dict(vault_env(vault), VAULT_TOKEN=vault.read_only_token if token == "read-only-token" else token)
    done = restore(str(folder), "--stack", "dev", "--database-url", database, "--restore-vault", "--yes", env=env)
    assert done.returncode == 3 and reason in done.stderr, done.stderr
    assert "restore refused" in done.stderr
    assert fingerprint(database) == changed, "a refused restore changes nothing"
    assert len(vault.versions["litellm-gateway/dev"]) == 2
    assert not pulumi_cli()["config"], "nor the stack's config"


def test_without_the_pulumi_cli_a_vault_restore_is_refused_before_any_change(database, tmp_path, vault):
    folder = take_backup(database, tmp_path, vault)
    psql(database, 'DELETE FROM "LiteLLM_SpendLogs"')
    changed = fingerprint(database)
    done = restore(str(folder), "--stack", "dev", "--database-url", database, "--restore-vault", "--yes",
                   env={**vault_env(vault), "PATH": without_pulumi_path()})
    assert done.returncode == 3 and "Pulumi CLI is not installed" in done.stderr and "--no-pulumi-config" in done.stderr
    assert fingerprint(database) == changed and len(vault.versions["litellm-gateway/dev"]) == 2


def test_a_failure_after_the_database_step_is_reported_as_partial_with_how_to_finish(
        database, tmp_path, vault, pulumi_cli, monkeypatch):
    from operations.backup.database import Database
    from operations.backup.errors import PartialRestore, Refused
    from operations.backup.pulumi_cli import StackConfig
    from operations.backup.restore_apply import restore as restore_from
    from operations.backup.restore_check import RestorePlan
    from operations.backup.stack import load_stack
    from operations.backup.vault import Vault

    folder = take_backup(database, tmp_path, vault)
    original = fingerprint(database)
    psql(database, 'DELETE FROM "LiteLLM_SpendLogs"')

    class VaultThatFailsOnWrite(Vault):
        def write(self, data):
            raise Refused("Vault POST secret/data/litellm-gateway/dev: HTTP 503 Vault is sealed")

    for key, value in vault_env(vault).items():
        monkeypatch.setenv(key, value)
    facts = load_stack("dev")
    plan = RestorePlan(target=facts, database=Database(url=database), restore_vault=True,
                       vault=VaultThatFailsOnWrite(vault.address, vault.token, facts.vault_mount, facts.vault_path),
                       config=StackConfig("dev"), confirmed=True)
    with pytest.raises(PartialRestore) as caught:
        restore_from(folder, plan, say=lambda _: None)
    message = str(caught.value)
    assert message.startswith("PARTIAL RESTORE: the database was restored from")
    assert "the Vault secret was NOT written: Vault POST" in message and "HTTP 503" in message
    assert f"./scripts/restore {folder} --stack dev --restore-vault --vault-only --yes" in message
    assert fingerprint(database) == original
    assert len(vault.versions["litellm-gateway/dev"]) == 2

    psql(database, 'DELETE FROM "LiteLLM_TeamTable" WHERE false')  # the finishing run must not restore again
    psql(database, "CREATE TABLE untouched_marker (x int)")
    finish = restore(str(folder), "--stack", "dev", "--database-url", database, "--restore-vault", "--vault-only",
                     "--yes", env=vault_env(vault))
    assert finish.returncode == 0, finish.stderr
    assert psql(database, "SELECT count(*) FROM pg_tables WHERE tablename = 'untouched_marker'") == "1"
    assert vault.versions["litellm-gateway/dev"][-1] == V2


# --- the restored Vault secret reaches the containers ------------------------------------------------

def test_restored_vault_values_become_the_stacks_config_and_the_containers_values(database, tmp_path, vault, pulumi_cli):
    """The runbook's sequence as far as it runs here: restore -> (config set by the script) -> `up`,
    the last under mocks with the config the Pulumi CLI double recorded."""
    vault.put("litellm-gateway/dev", secret_version("sk-v3" + "c" * 40, postgres_password="pg-v3-pass#/@word"))
    folder = take_backup(database, tmp_path, vault)  # holds version 3
    vault.put("litellm-gateway/dev", secret_version("sk-rotated" + "d" * 40))  # a later, bad change
    wanted = vault.versions["litellm-gateway/dev"][2]

    done = restore(str(folder), "--stack", "dev", "--database-url", database, "--restore-vault", "--yes",
                   env=vault_env(vault))
    assert done.returncode == 0, done.stderr
    assert vault.versions["litellm-gateway/dev"][-1] == wanted
    state = pulumi_cli()
    config = state["config"]["dev"]
    assert {k: v["value"] for k, v in config.items()} == {
        "masterKey": wanted["LITELLM_MASTER_KEY"], "saltKey": wanted["LITELLM_SALT_KEY"],
        "uiPassword": wanted["UI_PASSWORD"], "postgresPassword": wanted["POSTGRES_PASSWORD"],
        "redisPassword": wanted["REDIS_PASSWORD"], "grafanaAdminPassword": wanted["GRAFANA_ADMIN_PASSWORD"]}
    assert all(v["secret"] for v in config.values())
    sets = [c for c in state["calls"] if c["args"][:2] == ["config", "set"]]
    assert all(c["value_on_stdin"] for c in sets), "a secret value never goes on a command line"
    assert all(c["backend"] == f"file://{ROOT / '.pulumi-state'}" and c["cwd"] == str(ROOT) for c in sets)
    # The database role now has Vault's password (it is not in the dump): the old one is refused.
    from urllib.parse import quote

    new_url = database.replace(":pg-test-password@", f":{quote(wanted['POSTGRES_PASSWORD'], safe='')}@")
    assert psql(new_url, "SELECT 1") == "1"
    assert subprocess.run(["psql", database, "-X", "-c", "SELECT 1"], capture_output=True).returncode != 0

    run = run_stack(stack_file_config("dev"), secrets={k: v["value"] for k, v in config.items()})
    env = dict(e.split("=", 1) for e in run.mocks.named("gateway-litellm-0").plain("envs"))
    assert env["LITELLM_MASTER_KEY"] == wanted["LITELLM_MASTER_KEY"]
    assert env["LITELLM_SALT_KEY"] == wanted["LITELLM_SALT_KEY"]
    assert env["DATABASE_URL"].split("@")[0].endswith(":" + quote(wanted["POSTGRES_PASSWORD"], safe=""))
    stored = json.loads(run.mocks.named("secrets-kv").plain("dataJson"))
    # Prometheus's password is generated only (its bcrypt hash lives in state): `up` writes the state's.
    assert {k: v for k, v in stored.items() if k != "PROMETHEUS_PASSWORD"} == \
        {k: v for k, v in wanted.items() if k != "PROMETHEUS_PASSWORD"}, "`up` writes Vault's values back unchanged"
    assert "prometheusPassword" not in config


def test_adopt_after_a_vault_kv_rollback(database, tmp_path, vault, pulumi_cli):
    # `vault kv rollback -version=1` writes version 1's content as a new version.
    vault.put("litellm-gateway/dev", dict(vault.versions["litellm-gateway/dev"][0]))
    refused = run_script("adopt-vault-secret", "dev", "--database-url", database, env=vault_env(vault))
    assert refused.returncode == 3 and "add --yes" in refused.stderr and not pulumi_cli()["config"]
    done = run_script("adopt-vault-secret", "dev", "--database-url", database, "--yes", env=vault_env(vault))
    assert done.returncode == 0, done.stderr
    config = pulumi_cli()["config"]["dev"]
    assert config["masterKey"]["value"] == V1["LITELLM_MASTER_KEY"] and config["masterKey"]["secret"]
    assert "values of version 3" in done.stdout


# --- backups that can be trusted ---------------------------------------------------------------------

def test_a_backup_without_vault_is_refused_unless_explicitly_waived(database, tmp_path):
    done = run_script("backup", "dev", "--out", str(tmp_path / "out"), "--database-url", database,
                      "--no-pulumi-export", env={"VAULT_ADDR": "", "VAULT_TOKEN": "", "HOME": str(tmp_path)})
    assert done.returncode == 3 and "salt key" in done.stderr and "--no-vault" in done.stderr
    assert not (tmp_path / "out").exists() or not any((tmp_path / "out").iterdir())
    done = run_script("backup", "dev", "--out", str(tmp_path / "out"), "--database-url", database,
                      "--no-pulumi-export", "--no-vault", env={"VAULT_ADDR": "", "VAULT_TOKEN": "", "HOME": str(tmp_path)})
    assert done.returncode == 0, done.stderr
    assert "WARNING: --no-vault" in done.stderr and "cannot decrypt" in done.stderr
    (folder,) = (tmp_path / "out").iterdir()
    assert "skipped" in json.loads((folder / "manifest.json").read_text())["vault"]


def rewrite_sums(folder: Path, manifest: dict | None = None, text: str | None = None) -> None:
    """Forge a consistent SHA256SUMS (as a damaged or tampered backup could carry)."""
    from operations.backup.manifest import sha256

    if manifest is not None:
        (folder / "manifest.json").write_text(json.dumps(manifest, indent=2, sort_keys=True))
    if text is not None:
        (folder / "manifest.json").write_text(text)
    files = json.loads((folder / "manifest.json").read_text()).get("files", {}) if manifest or text is None else {}
    sums = dict(files, **{"manifest.json": sha256(folder / "manifest.json")})
    (folder / "SHA256SUMS").write_text("".join(f"{d}  {n}\n" for n, d in sorted(sums.items())))


@pytest.mark.parametrize("damage, message", [
    (lambda f: rewrite_sums(f, text="{not json"), "manifest.json is not readable JSON"),
    (lambda f: rewrite_sums(f, text="[1, 2]"), "manifest.json is not a backup manifest"),
    (lambda f: (f / "SHA256SUMS").write_text("deadbeef database.dump\n"), "SHA256SUMS line 1 is not"),
    (lambda f: (f / "SHA256SUMS").write_text(""), "SHA256SUMS is empty"),
    (lambda f: (f / "manifest.json").write_bytes(b"\xff\xfe"), "checksum mismatch for manifest.json"),
])
def test_a_damaged_backup_is_refused_with_a_message_not_a_traceback(database, tmp_path, vault, damage, message):
    folder = take_backup(database, tmp_path, vault)
    damage(folder)
    done = restore(str(folder), "--stack", "dev", "--database-url", database, "--yes")
    assert done.returncode == 3 and message in done.stderr, done.stderr
    assert "Traceback" not in done.stderr


def test_a_dump_left_out_of_the_checksums_is_refused(database, tmp_path, vault):
    folder = take_backup(database, tmp_path, vault)
    manifest = json.loads((folder / "manifest.json").read_text())
    del manifest["files"]["database.dump"]
    (folder / "database.dump").write_bytes(b"PGDMP anything at all")
    rewrite_sums(folder, manifest=manifest)
    done = restore(str(folder), "--stack", "dev", "--database-url", database, "--yes")
    assert done.returncode == 3 and "is not among the checksummed files" in done.stderr, done.stderr


def test_a_scheduled_dump_with_an_empty_or_foreign_checksum_file_is_refused(database, tmp_path):
    dump = scheduled_dump(database, tmp_path)
    sums = dump.with_name(dump.name + ".sha256")
    sums.write_text("")
    done = restore(str(dump), "--stack", "dev", "--database-url", database, "--yes")
    assert done.returncode == 3 and ".sha256 is empty" in done.stderr and "Traceback" not in done.stderr
    sums.write_text(f"{sha256_of(dump)}  litellm-dev-20990101T000000Z.dump\n")
    done = restore(str(dump), "--stack", "dev", "--database-url", database, "--yes")
    assert done.returncode == 3 and "is not the checksum of" in done.stderr


def test_two_backups_in_the_same_second_both_land(database, tmp_path, vault, monkeypatch):
    import datetime as dt

    from operations.backup.backup import backup
    from operations.backup.database import Database
    from operations.backup.manifest import verify
    from operations.backup.stack import load_stack
    from operations.backup.vault import Vault

    monkeypatch.setenv("BACKUP_PASSPHRASE", "pass")
    facts = load_stack("dev")
    now = dt.datetime(2026, 11, 26, 3, 0, 0, tzinfo=dt.timezone.utc)
    v = Vault(vault.address, vault.token, facts.vault_mount, facts.vault_path)
    first = backup(facts, tmp_path, Database(url=database), v, "encrypted", False, now=now)
    second = backup(facts, tmp_path, Database(url=database), v, "encrypted", False, now=now)
    assert first.name == "litellm-gateway-dev-20261126T030000Z"
    assert second.name == "litellm-gateway-dev-20261126T030000Z-2"
    assert verify(first) and verify(second)


def test_an_invalid_stack_file_stops_the_backup_before_the_dump(tmp_path, monkeypatch, capsys):
    from operations.backup import stack
    from operations.backup.cli import backup_main

    repo = tmp_path / "repo"
    repo.mkdir()
    (repo / "Pulumi.broken.yaml").write_text("config:\n  litellm-gateway:environment: broken\n"
                                             "  litellm-gateway:gateway: {port: 0}\n")
    monkeypatch.setattr(stack, "ROOT", repo)  # load_stack reads it when called
    # An unreachable database: if the dump ran first, the error would be pg_dump's.
    code = backup_main(["broken", "--out", str(tmp_path / "out"), "--no-vault", "--no-pulumi-export",
                            "--database-url", "postgresql://u:p@127.0.0.1:1/db"])
    err = capsys.readouterr().err
    assert code == 3 and "Pulumi.broken.yaml: invalid configuration" in err and "gateway" in err
    assert "pg_dump" not in err


def stack_file_with(tmp_path: Path, stack: str, extra: dict, appended: str = "") -> Path:
    """A repository holding the fixture Pulumi.<stack>.yaml with `extra` config keys (full names) added."""
    import yaml

    from harness import FIXTURES

    config = yaml.safe_load((FIXTURES / f"Pulumi.{stack}.yaml").read_text())["config"]
    repo = tmp_path / "repo"
    repo.mkdir(parents=True, exist_ok=True)
    (repo / f"Pulumi.{stack}.yaml").write_text(yaml.safe_dump({"config": {**config, **extra}}) + appended)
    return repo


def test_a_tls_stack_with_encrypted_certificate_and_key_is_read_as_the_check_reads_it(tmp_path):
    import yaml

    from harness import FIXTURES
    from operations.backup.stack import load_stack

    gateway = yaml.safe_load((FIXTURES / "Pulumi.prod.yaml").read_text())["config"]["litellm-gateway:gateway"]
    load_balancer = {**gateway.get("loadBalancer", {}), "tls": {"enabled": True}}
    repo = stack_file_with(tmp_path, "prod", {
        "litellm-gateway:gateway": {**gateway, "loadBalancer": load_balancer},
        "litellm-gateway:gatewayTlsCertificate": {"secure": "v1:AAAA"},
        "litellm-gateway:gatewayTlsKey": {"secure": "v1:BBBB"},
    })
    facts = load_stack("prod", repo)
    assert facts.settings.gateway.load_balancer.tls.enabled
    assert facts.stack_file == repo / "Pulumi.prod.yaml"


def test_the_stack_files_own_problems_are_refused_naming_each_key(tmp_path):
    from operations.backup.errors import Refused
    from operations.backup.stack import load_stack

    repo = stack_file_with(tmp_path, "dev", {"litelm-gateway:redis": {"enabled": True}},
                           appended="  litellm-gateway:environment: dev\n")
    with pytest.raises(Refused) as caught:
        load_stack("dev", repo)
    message = str(caught.value)
    assert message.startswith("Pulumi.dev.yaml: invalid configuration")
    assert "litelm-gateway:redis" in message and "did you mean litellm-gateway:redis" in message
    assert "litellm-gateway:environment" in message and "is given twice" in message
    with pytest.raises(Refused, match="no stack config Pulumi.qa.yaml"):
        load_stack("qa", repo)


def test_a_backup_folder_name_is_claimed_atomically_and_nothing_is_replaced(tmp_path, monkeypatch):
    """Whatever has a name already (an empty folder, a file, another backup) keeps it; the backup
    moves in under the first free one, and the name it claimed is never free in between."""
    from operations.backup import backup as backup_module

    def finished(name: str) -> Path:
        partial = tmp_path / name
        partial.mkdir()
        (partial / "manifest.json").write_text(name)
        return partial

    folder = tmp_path / "litellm-gateway-dev-20261126T030000Z"
    (tmp_path / f"{folder.name}-2").mkdir()  # empty, but someone's
    (tmp_path / f"{folder.name}-4").write_text("a file")
    assert backup_module.claim_folder(finished(".one"), folder) == folder
    assert backup_module.claim_folder(finished(".two"), folder).name.endswith("-3")

    seen_at_rename = []
    real_rename = os.rename

    def rename(source, target):
        seen_at_rename.append(os.path.isdir(target) and not os.listdir(target))
        real_rename(source, target)

    monkeypatch.setattr(os, "rename", rename)
    claimed = backup_module.claim_folder(finished(".three"), folder)
    assert claimed.name.endswith("-5") and (claimed / "manifest.json").read_text() == ".three"
    assert seen_at_rename == [True], "the name was held by the claim (an empty folder) up to the move"
    assert (folder / "manifest.json").read_text() == ".one" and (tmp_path / f"{folder.name}-4").read_text() == "a file"
    assert not any((tmp_path / f"{folder.name}-2").iterdir()) and not (tmp_path / ".three").exists()


def test_the_docker_container_mode_uses_the_stacks_user_and_database():
    from operations.backup.cli import database_from
    from operations.backup.stack import load_stack

    facts = load_stack("prod")
    args = type("Args", (), {"docker_container": facts.postgres_container, "database_url": None})()
    command = database_from(args, facts).command("psql", "-c", "SELECT 1")
    pg = facts.settings.postgres
    assert command[:5] == ["docker", "exec", "-i", "litellm-gateway-prod-postgres", "psql"]
    assert command[5:9] == ["-U", pg.user, "-d", pg.database]


def test_the_database_password_never_reaches_a_command_line(database, tmp_path, vault, pulumi_cli):
    """Every PostgreSQL tool the scripts start is recorded (a pass-through shim on PATH)."""
    shims = tmp_path / "shims"
    shims.mkdir()
    log = tmp_path / "argv.log"
    for tool in ("psql", "pg_dump", "pg_restore"):
        real = subprocess.run(["which", tool], capture_output=True, text=True).stdout.strip()
        (shims / tool).write_text(f'#!/bin/sh\nprintf "%s\\n" "{tool} $*" >>"{log}"\nexec "{real}" "$@"\n')
        (shims / tool).chmod(0o755)
    env = {**vault_env(vault), "PATH": f"{shims}:{os.environ['PATH']}"}
    done = run_script("backup", "dev", "--out", str(tmp_path / "out"), "--database-url", database,
                      "--no-pulumi-export", env=env)
    assert done.returncode == 0, done.stderr
    (folder,) = (tmp_path / "out").iterdir()
    done = restore(str(folder), "--stack", "dev", "--database-url", database, "--restore-vault", "--yes", env=env)
    assert done.returncode == 0, done.stderr
    recorded = log.read_text()
    assert "pg_dump --dbname=" in recorded and "--clean" in recorded and "psql --dbname=" in recorded
    assert "pg-test-password" not in recorded


def test_scheduled_dumps_are_private_to_the_postgres_user(database, tmp_path):
    dump = scheduled_dump(database, tmp_path)
    assert oct(dump.stat().st_mode & 0o777) == "0o600"
    assert oct(dump.with_name(dump.name + ".sha256").stat().st_mode & 0o777) == "0o600"
    assert oct(dump.parent.stat().st_mode & 0o777) == "0o700"


def test_the_scheduler_hands_the_directory_to_postgres_and_drops_root(tmp_path):
    import pwd

    require_root("this test starts the scheduler as root, as the container does")
    import shutil
    import tempfile

    # The image keeps the script in /usr/local/bin: readable by postgres after the drop.
    where = Path(tempfile.mkdtemp(prefix="scheduler-test-", dir="/tmp"))
    os.chmod(where, 0o755)
    script = where / "scheduler"
    script.write_text(render_scheduler_script(("03:00",)))
    script.chmod(0o755)
    backups = where / "backups"
    process = subprocess.Popen(["bash", str(script)], env={**os.environ, "BACKUP_DIR": str(backups)},
                               stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        postgres_uid = pwd.getpwnam("postgres").pw_uid
        deadline = time.monotonic() + 20
        uid = None
        while time.monotonic() < deadline and process.poll() is None:
            status = Path(f"/proc/{process.pid}/status").read_text()
            uid = int(next(line for line in status.splitlines() if line.startswith("Uid:")).split()[1])
            if uid == postgres_uid:
                break
            time.sleep(0.2)
        assert uid == postgres_uid, f"the scheduler still runs as uid {uid}: {process.poll()}"
        assert backups.stat().st_uid == postgres_uid and oct(backups.stat().st_mode & 0o777) == "0o700"
    finally:
        process.kill()
        process.wait()
        shutil.rmtree(where, ignore_errors=True)


def _run_scheduler(directory: Path, seconds: float = 4) -> tuple[int | None, str]:
    """The rendered scheduler as the container runs it (as root, then gosu postgres), stopped after `seconds`."""
    script = directory.parent / "scheduler.sh"
    script.write_text(render_scheduler_script(("03:00",)))
    script.chmod(0o755)  # gosu postgres runs it again as postgres
    process = subprocess.Popen(["bash", str(script)], env={"PATH": os.environ["PATH"], "BACKUP_DIR": str(directory)},
                               stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, start_new_session=True)
    try:
        out, _ = process.communicate(timeout=seconds)
        return process.returncode, out
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, 9)  # the scheduler and its sleep
        out, _ = process.communicate()
        return None, out


def test_the_scheduler_never_takes_over_a_directory_that_is_not_the_stacks():
    import pwd
    import tempfile

    require_root("the scheduler hands the directory over as root, as in its container")

    tmp_path = Path(tempfile.mkdtemp(prefix="scheduler-"))  # a folder postgres may enter, as / is in the container
    tmp_path.chmod(0o755)
    try:
        _check_the_scheduler_claims(tmp_path, pwd.getpwnam("postgres").pw_uid)
    finally:
        import shutil

        shutil.rmtree(tmp_path, ignore_errors=True)


def _check_the_scheduler_claims(tmp_path: Path, postgres_uid: int) -> None:
    foreign = tmp_path / "home-deploy"
    foreign.mkdir()
    (foreign / ".bashrc").write_text("mine\n")
    owner = foreign.stat().st_uid
    code, out = _run_scheduler(foreign)
    assert code == 1 and "holds files this stack did not write (for example .bashrc)" in out, out
    assert foreign.stat().st_uid == owner, "not chowned"
    own = tmp_path / "backups"
    own.mkdir()
    (own / "litellm-dev-20261101T030000Z.dump").write_text("x")  # dumps of an earlier version, no marker yet
    code, out = _run_scheduler(own)
    assert code is None and '"status":"started"' in out, out   # running: taken over, marked
    assert own.stat().st_uid == postgres_uid and (own / ".litellm-gateway-backups").exists()


def test_the_stacks_own_vault_address_wins_over_vault_addr_and_prod_never_uses_plain_http(tmp_path, monkeypatch):
    """A shell left pointing at another Vault (VAULT_ADDR) must not decide where prod's secret is read or
    written, nor send prod's token over plain http."""
    import yaml

    from harness import FIXTURES
    from operations.backup.cli import vault_from
    from operations.backup.errors import Refused
    from operations.backup.stack import load_stack

    monkeypatch.setenv("VAULT_TOKEN", "t")
    monkeypatch.setenv("VAULT_ADDR", "http://127.0.0.1:8200")
    named = load_stack("prod", stack_file_with(tmp_path / "named", "prod", {}))
    assert vault_from(named).address == named.settings.vault.address and named.settings.vault.address.startswith("https://")
    vault = yaml.safe_load((FIXTURES / "Pulumi.prod.yaml").read_text())["config"]["litellm-gateway:vault"]
    unnamed = load_stack("prod", stack_file_with(tmp_path / "unnamed", "prod", {
        "litellm-gateway:vault": {k: v for k, v in vault.items() if k != "address"}}))
    with pytest.raises(Refused, match="may not travel over plain http"):
        vault_from(unnamed)
    monkeypatch.setenv("VAULT_ADDR", "https://vault.example:8200")
    assert vault_from(unnamed).address == "https://vault.example:8200"


def test_a_backup_whose_secret_lacks_a_field_is_refused_before_anything_changes(database, tmp_path, vault, pulumi_cli):
    incomplete = {k: v for k, v in V2.items() if k != "GRAFANA_ADMIN_PASSWORD"}
    vault.put("litellm-gateway/dev", incomplete)
    folder = take_backup(database, tmp_path, vault)
    vault.put("litellm-gateway/dev", V2)
    psql(database, 'DELETE FROM "LiteLLM_SpendLogs"')
    changed, versions = fingerprint(database), len(vault.versions["litellm-gateway/dev"])
    refused = restore(str(folder), "--stack", "dev", "--database-url", database, "--restore-vault", "--yes",
                      env=vault_env(vault))
    assert refused.returncode == 3, refused.stderr
    assert "lacks GRAFANA_ADMIN_PASSWORD" in refused.stderr and "nothing was changed" in refused.stderr
    assert fingerprint(database) == changed, "the database was not overwritten"
    assert len(vault.versions["litellm-gateway/dev"]) == versions, "Vault was not written"


def test_a_vault_only_restore_checks_the_database_container_before_writing_vault(database, tmp_path, vault, pulumi_cli):
    folder = take_backup(database, tmp_path, vault)
    versions = len(vault.versions["litellm-gateway/dev"])
    refused = restore(str(folder), "--stack", "dev", "--restore-vault", "--vault-only", "--docker-container",
                      "litellm-gateway-dev-postgress", "--yes", env=vault_env(vault))
    assert refused.returncode == 3, refused.stderr
    assert len(vault.versions["litellm-gateway/dev"]) == versions, "Vault was not written before the check"


def test_a_config_set_that_fails_half_way_says_what_was_set(tmp_path):
    from operations.backup.adopt import adopt_vault_secret
    from operations.backup.errors import StepFailed
    from operations.backup.stack import load_stack

    class FailingThird:
        """The Pulumi CLI's `config set` failing on its third call (a lost connection to the backend)."""

        def __init__(self):
            self.set = []

        def set_secret(self, key, value):
            if len(self.set) == 2:
                raise StepFailed(f"`pulumi config set --secret {key}` failed: connection reset")
            self.set.append(key)

    config = FailingThird()
    with pytest.raises(StepFailed) as error:
        adopt_vault_secret(load_stack("dev"), V2, None, config, say=lambda *_: None)
    message = str(error.value)
    assert f"was set for {', '.join(config.set)} and NOT for" in message, message
    assert "NOT updated" not in message


# --- what the runbook says restore refuses or reports (docs/RUNBOOK.md, step 3) -----------------------

def reseal_manifest(folder: Path, change) -> None:
    """The backup folder with its manifest changed and SHA256SUMS updated to match, as a backup written
    that way would be (the files' own digests are unchanged)."""
    import hashlib

    manifest = json.loads((folder / "manifest.json").read_text())
    change(manifest)
    (folder / "manifest.json").write_text(json.dumps(manifest, indent=2, sort_keys=True))
    digest = hashlib.sha256((folder / "manifest.json").read_bytes()).hexdigest()
    sums = [line for line in (folder / "SHA256SUMS").read_text().splitlines() if not line.endswith("  manifest.json")]
    (folder / "SHA256SUMS").write_text("\n".join(sorted([*sums, f"{digest}  manifest.json"],
                                                        key=lambda line: line.split("  ", 1)[1])) + "\n")
    assert subprocess.run(["sha256sum", "-c", "--quiet", "SHA256SUMS"], cwd=folder).returncode == 0


def test_a_dump_from_a_newer_postgres_is_refused_before_anything_changes(database, tmp_path, vault):
    """Only PostgreSQL 15 runs here: the backup is made to say it came from PostgreSQL 16."""
    folder = take_backup(database, tmp_path, vault)
    reseal_manifest(folder, lambda m: m["database"].update(server_major=16, server_version_num=160004))
    psql(database, 'DELETE FROM "LiteLLM_SpendLogs"')
    changed = fingerprint(database)
    refused = restore(str(folder), "--stack", "dev", "--database-url", database, "--yes")
    assert refused.returncode == 3, refused.stderr
    assert "restore refused: the dump comes from PostgreSQL 16, the target runs 15" in refused.stderr
    assert "nothing was changed" in refused.stderr
    assert fingerprint(database) == changed


def test_row_counts_that_differ_from_the_manifest_fail_the_restore_loudly(database, tmp_path, vault):
    folder = take_backup(database, tmp_path, vault)
    reseal_manifest(folder, lambda m: m["database"]["row_counts"].update({"LiteLLM_SpendLogs": 501}))
    done = restore(str(folder), "--stack", "dev", "--database-url", database, "--yes")
    assert done.returncode == 1, done.stderr
    assert "restore failed: restored, but row counts differ from the backup" in done.stderr
    assert "'LiteLLM_SpendLogs': (501, 500)" in done.stderr


def test_vault_sealed_after_the_database_step_is_exit_4_with_the_command_that_finishes(
        database, tmp_path, sealing_vault, pulumi_cli):
    """The command line's PARTIAL RESTORE (exit 4): the checks pass, the database is restored, then the
    Vault write gets 503 (Vault sealed); the message names the command that finishes the job."""
    folder = take_backup(database, tmp_path, sealing_vault)
    original = fingerprint(database)
    psql(database, 'DELETE FROM "LiteLLM_SpendLogs"')
    sealing_vault.seal_on_write = True
    done = restore(str(folder), "--stack", "dev", "--database-url", database, "--restore-vault", "--yes",
                   env=vault_env(sealing_vault))
    assert done.returncode == 4, done.stdout + done.stderr
    assert "PARTIAL RESTORE: the database was restored from" in done.stderr
    assert "Vault is sealed" in done.stderr
    assert f"./scripts/restore {folder} --stack dev --restore-vault --vault-only --yes" in done.stderr
    assert fingerprint(database) == original
    assert len(sealing_vault.versions["litellm-gateway/dev"]) == 2, "nothing was written to Vault"
    sealing_vault.seal_on_write = sealing_vault.sealed = False  # unsealed: the named command finishes
    finish = restore(str(folder), "--stack", "dev", "--database-url", database, "--restore-vault", "--vault-only",
                     "--yes", env=vault_env(sealing_vault))
    assert finish.returncode == 0, finish.stderr
    assert sealing_vault.versions["litellm-gateway/dev"][-1] == V2


def test_without_the_stacks_passphrase_a_vault_restore_is_refused_before_any_change(
        database, tmp_path, vault, pulumi_cli, monkeypatch):
    """`config set --secret` after the Vault write needs the passphrase: the check asks for it first, also
    on a first restore, when the stack's config holds no secret yet (listing it would not need one)."""
    assert not pulumi_cli()["config"], "a stack whose config holds no secret"
    folder = take_backup(database, tmp_path, vault)
    psql(database, 'DELETE FROM "LiteLLM_SpendLogs"')
    changed = fingerprint(database)
    monkeypatch.delenv("PULUMI_CONFIG_PASSPHRASE")
    refused = restore(str(folder), "--stack", "dev", "--database-url", database, "--restore-vault", "--yes",
                      env=vault_env(vault))
    assert refused.returncode == 3, refused.stderr
    assert refused.stderr.startswith("restore refused: the Pulumi CLI cannot open the dev stack's secrets")
    assert "PULUMI_CONFIG_PASSPHRASE" in refused.stderr and refused.stderr.strip().endswith("nothing was changed")
    assert fingerprint(database) == changed
    assert len(vault.versions["litellm-gateway/dev"]) == 2
    assert not any(c["args"][:3] == ["config", "set", "--secret"] for c in pulumi_cli()["calls"])


# --- through the stack's containers: --docker-container and fetch-backup (the docker CLI test double) ---

@pytest.fixture
def dev_database():
    """Like `database`, with the role and database the dev stack file names: what --docker-container
    passes to the tools as -U and -d (so an edited Pulumi.dev.yaml is what the test uses)."""
    from operations.backup.stack import load_stack

    pg = load_stack("dev").settings.postgres
    with postgres_cluster(user=pg.user, database=pg.database) as url:
        psql(url, LITELLM_SHAPED_SCHEMA)
        yield url


@pytest.fixture
def docker_cli(tmp_path, monkeypatch, dev_database):
    """The docker CLI test double first on PATH, with the dev stack's postgres container (its tools reach
    the test's PostgreSQL: in the real container they connect over its local socket) and its backup
    container (its /backups volume: a directory here). Yields the double's state and a writer for it."""
    from urllib.parse import urlparse

    from docker_cli_double import __file__ as double

    parts = urlparse(dev_database)
    bin_dir = tmp_path / "docker-bin"
    bin_dir.mkdir()
    (bin_dir / "docker").write_text(f"#!/bin/sh\nexec '{sys.executable}' '{double}' \"$@\"\n")
    (bin_dir / "docker").chmod(0o755)
    volume = tmp_path / "backup-volume"
    volume.mkdir()
    state = {"daemon": "unix:///var/run/docker.sock", "containers": {
        "litellm-gateway-dev-postgres": {"id": "5c1e0a7d9b21", "running": True, "env": {
            "PATH": "/usr/bin:/bin", "PGHOST": parts.hostname, "PGPORT": str(parts.port), "PGPASSWORD": parts.password}},
        "litellm-gateway-dev-pgbackup": {"id": "7a2f31c0e4d8", "running": True, "env": {"PATH": "/usr/bin:/bin"},
                                       "mounts": {"/backups": str(volume)}},
    }}
    state_file = tmp_path / "docker-double.json"

    def write(**changes):
        state.update(changes)
        state_file.write_text(json.dumps(state))

    write()
    monkeypatch.setenv("DOCKER_DOUBLE_STATE", str(state_file))
    monkeypatch.setenv("PATH", f"{bin_dir}:{os.environ['PATH']}")
    monkeypatch.delenv("DOCKER_HOST", raising=False)
    return type("DockerCli", (), {"state": state, "write": staticmethod(write), "volume": volume})


def test_backup_and_restore_through_the_postgres_container(dev_database, tmp_path, vault, docker_cli):
    """The runbook's commands with --docker-container: the dump leaves the container on stdout and goes back
    in on stdin; what the database held comes back."""
    original = fingerprint(dev_database)
    done = run_script("backup", "dev", "--out", str(tmp_path / "out"), "--docker-container",
                      "litellm-gateway-dev-postgres", "--no-pulumi-export", env=vault_env(vault))
    assert done.returncode == 0, done.stderr
    (folder,) = (tmp_path / "out").iterdir()
    assert json.loads((folder / "manifest.json").read_text())["database"]["row_counts"]["LiteLLM_SpendLogs"] == 500
    psql(dev_database, 'DELETE FROM "LiteLLM_SpendLogs"; DELETE FROM "LiteLLM_VerificationToken" WHERE token = \'hash-2\'')
    done = restore(str(folder), "--stack", "dev", "--docker-container", "litellm-gateway-dev-postgres", "--yes",
                   env=vault_env(vault))
    assert done.returncode == 0, done.stderr
    assert "row counts match the backup" in done.stdout
    assert fingerprint(dev_database) == original


def test_a_stopped_postgres_container_is_named_and_nothing_is_written(dev_database, tmp_path, vault, docker_cli):
    docker_cli.state["containers"]["litellm-gateway-dev-postgres"]["running"] = False
    docker_cli.write()
    done = run_script("backup", "dev", "--out", str(tmp_path / "out"), "--docker-container",
                      "litellm-gateway-dev-postgres", "--no-pulumi-export", env=vault_env(vault))
    assert done.returncode != 0
    assert "container 5c1e0a7d9b21 is not running" in done.stderr
    assert not (tmp_path / "out").exists() or not any((tmp_path / "out").iterdir())


def test_adopt_through_the_postgres_container_sets_the_roles_password_from_vault(dev_database, tmp_path, vault,
                                                                              pulumi_cli, docker_cli):
    """adopt-vault-secret --docker-container: the role's password becomes the secret's POSTGRES_PASSWORD, so
    the replicas (which get it from the stack's config) can still log in."""
    from urllib.parse import urlparse

    new_password = "pg-adopted-" + uuid.uuid4().hex
    vault.put("litellm-gateway/dev", dict(V2, POSTGRES_PASSWORD=new_password))
    done = run_script("adopt-vault-secret", "dev", "--docker-container", "litellm-gateway-dev-postgres", "--yes",
                      env=vault_env(vault))
    assert done.returncode == 0, done.stderr
    parts = urlparse(dev_database)
    with_new = dev_database.replace(f":{parts.password}@", f":{new_password}@")
    assert psql(with_new, "SELECT current_user") == parts.username
    assert pulumi_cli()["config"]["dev"]["postgresPassword"] == {"value": new_password, "secret": True}


def dump_in_volume(dev_database: str, into: Path, stamp: str) -> str:
    """A scheduled dump in the backup container's volume, named as if taken at `stamp`."""
    dump = scheduled_dump(dev_database, into.parent, into=into)
    renamed = f"litellm-dev-{stamp}.dump"
    dump.rename(into / renamed)
    digest = Path(f"{dump}.sha256").read_text().replace(dump.name, renamed)
    Path(f"{dump}.sha256").unlink()
    (into / f"{renamed}.sha256").write_text(digest)
    return renamed


def test_fetch_backup_copies_the_newest_dump_out_verified_and_restore_takes_it(dev_database, tmp_path, vault, docker_cli):
    older = dump_in_volume(dev_database, docker_cli.volume, "20261201T030000Z")
    newest = dump_in_volume(dev_database, docker_cli.volume, "20261202T030000Z")
    out = tmp_path / "fetched"
    done = run_script("fetch-backup", "dev", "--out", str(out))
    assert done.returncode == 0, done.stderr
    assert sorted(p.name for p in out.iterdir()) == [newest, f"{newest}.sha256"]
    assert (out / newest).read_bytes() == (docker_cli.volume / newest).read_bytes()
    done = run_script("fetch-backup", "dev", "--out", str(out), "--file", older)
    assert done.returncode == 0 and (out / older).is_file(), done.stderr
    psql(dev_database, 'DELETE FROM "LiteLLM_SpendLogs"')
    restored = restore(str(out / newest), "--stack", "dev", "--database-url", dev_database, "--yes")
    assert restored.returncode == 0, restored.stderr
    assert psql(dev_database, 'SELECT count(*) FROM "LiteLLM_SpendLogs"') == "500"


def test_fetch_backup_refuses_a_dump_whose_checksum_does_not_match_or_that_is_not_there(dev_database, tmp_path, docker_cli):
    name = dump_in_volume(dev_database, docker_cli.volume, "20261202T030000Z")
    with open(docker_cli.volume / name, "r+b") as dump:
        dump.seek(100)
        byte = dump.read(1)
        dump.seek(100)
        dump.write(bytes([byte[0] ^ 0xFF]))
    done = run_script("fetch-backup", "dev", "--out", str(tmp_path / "fetched"))
    assert done.returncode == 3 and "checksum" in done.stderr, done.stderr
    done = run_script("fetch-backup", "dev", "--out", str(tmp_path / "fetched"), "--file", "litellm-dev-20250101T000000Z.dump")
    assert done.returncode == 3 and "is not in litellm-gateway-dev-pgbackup:/backups" in done.stderr, done.stderr


# --- the backup container's scheduler, as the dev stack declares it -----------------------------------

@contextlib.contextmanager
def declared_backup_container(database: str, fake_now: str, **env_changes):
    """The dev stack's backup container as declared (its two uploaded scripts, its environment, its
    healthcheck), run as its entrypoint runs: as root, under its own mount namespace where the uploads
    sit at their container paths (/usr/local/bin) and /tmp is its own. The clock is moved with
    libfaketime (Debian's `faketime`) so that `fake_now` is the time when it starts; the database
    variables point at the test's PostgreSQL. Yields (process, backup directory, healthcheck runner)."""
    import shutil
    import tempfile
    from datetime import datetime, timezone
    from urllib.parse import urlparse

    require_root("the backup container starts as root (then gosu postgres)")
    declared = run_stack(stack_file_config("dev"), stack="dev").mocks.named("backups-scheduler")
    uploads = {u["file"]: u["content"] for u in declared.plain("uploads")}
    entrypoint = declared.plain("entrypoints")
    assert entrypoint == ["bash", "/usr/local/bin/litellm-backup-scheduler"], entrypoint
    health = declared.plain("healthcheck")["tests"]
    assert health[0] == "CMD-SHELL"
    parts = urlparse(database)
    env = dict(e.split("=", 1) for e in declared.plain("envs"))
    where = Path(tempfile.mkdtemp(prefix="backup-container-", dir="/var/tmp"))  # not under /tmp: that is replaced
    where.chmod(0o755)
    (where / "bin").mkdir(mode=0o755)
    (where / "tmp").mkdir()
    (where / "tmp").chmod(0o1777)
    for path, content in uploads.items():
        target = where / "bin" / Path(path).name
        target.write_text(content)
        target.chmod(0o755)
    env.update(PGHOST=parts.hostname, PGPORT=str(parts.port), PGPASSWORD=parts.password,
               BACKUP_DIR=str(where / "backups"), PATH="/usr/local/bin:/usr/bin:/bin:/usr/sbin:/sbin")
    env.update(env_changes)
    started_at = time.time()
    offset = int(datetime.fromisoformat(fake_now).replace(tzinfo=timezone.utc).timestamp() - started_at)
    inside = ('mount --bind "$0/bin" /usr/local/bin && mount --bind "$0/tmp" /tmp && '
              'exec faketime -f "$1" "$2" "$3"')
    process = subprocess.Popen(["unshare", "--mount", "--propagation", "private", "sh", "-c", inside, str(where),
                                f"{offset:+d}s", *entrypoint], env=env, stdout=subprocess.PIPE,
                               stderr=subprocess.STDOUT, text=True, start_new_session=True)

    def healthcheck() -> int:  # as Docker runs it: inside the container (its mount namespace and its clock)
        return subprocess.run(["nsenter", "--mount", "--target", str(process.pid), "faketime", "-f", f"{offset:+d}s",
                               "sh", "-c", health[1]], capture_output=True).returncode

    # The container's log, read on a thread: a test waits for lines with a deadline, never blocked.
    lines: queue.Queue = queue.Queue()
    threading.Thread(target=lambda: [lines.put(line) for line in process.stdout], daemon=True).start()
    process.log_lines = lines
    try:
        yield process, where / "backups", healthcheck
    finally:
        os.killpg(process.pid, 9)
        process.wait()
        shutil.rmtree(where, ignore_errors=True)
        # libfaketime keeps a semaphore and shared memory per process tree under /dev/shm, named with a
        # process id, and removes them only when that process exits by itself: killed, they stay. Remove
        # those this container made (since it started, their process gone).
        mine = [f for f in Path("/dev/shm").glob("*faketime_*_*") if f.stat().st_mtime >= started_at - 1]
        deadline = time.monotonic() + 10  # the killed group's last processes are still being reaped
        while mine and time.monotonic() < deadline:
            for leftover in list(mine):
                if not Path(f"/proc/{leftover.name.rsplit('_', 1)[1]}").exists():
                    with contextlib.suppress(FileNotFoundError):
                        leftover.unlink()
                    mine.remove(leftover)
            time.sleep(0.1)


def wait_for_log(process, status: str, timeout: float = 40) -> dict:
    """The container's next backup-run log line (with `status`), within `timeout` seconds."""
    deadline = time.monotonic() + timeout
    seen = []
    while time.monotonic() < deadline:
        try:
            line = process.log_lines.get(timeout=max(0.1, deadline - time.monotonic()))
        except queue.Empty:
            break
        seen.append(line)
        if line.startswith("{") and json.loads(line).get("event") == "litellm-backup":
            event = json.loads(line)
            assert event["status"] == status, seen
            return event
    raise AssertionError(f"no backup run logged within {timeout} s: {seen}")


def test_the_scheduler_runs_the_backup_at_its_utc_time_and_stays_healthy(database, tmp_path):
    """dev's backups.timesUtc is 03:00; the container starts at 02:59:55 UTC (faked): the dump is taken at
    03:00 (its name carries the time), as the postgres user, and the declared healthcheck passes."""
    import pwd

    assert stack_file_config("dev")["backups"]["timesUtc"] == ["03:00"]
    with declared_backup_container(database, "2026-12-02T02:59:55") as (process, backups, healthcheck):
        event = wait_for_log(process, "ok")
        assert event["file"].startswith("litellm-dev-20261202T0300"), event
        assert event["time"].startswith("2026-12-02T03:00:"), event
        dump = backups / event["file"]
        assert dump.stat().st_uid == pwd.getpwnam("postgres").pw_uid and oct(dump.stat().st_mode & 0o777) == "0o600"
        listing = subprocess.run(["pg_restore", "--list", str(dump)], capture_output=True, text=True)
        assert "TABLE DATA public LiteLLM_SpendLogs" in listing.stdout
        assert healthcheck() == 0
        with pytest.raises(AssertionError, match="no backup run logged"):
            wait_for_log(process, "ok", timeout=5)  # one run at 03:00, not one per loop
        assert sorted(p.name for p in backups.iterdir() if not p.name.startswith(".")) == [
            event["file"], event["file"] + ".sha256"]


def test_a_failed_scheduled_run_makes_the_container_unhealthy(database, tmp_path):
    with declared_backup_container(database, "2026-12-02T02:59:48", PGPORT="1") as (process, backups, healthcheck):
        # Within the declared start period (30 s) Docker does not count failures: healthy once it beats.
        deadline = time.monotonic() + 8
        while healthcheck() != 0 and time.monotonic() < deadline:
            time.sleep(0.1)
        assert healthcheck() == 0, "healthy while it waits for its time"
        event = wait_for_log(process, "failed")
        assert "pg_dump" in event["detail"]
        deadline = time.monotonic() + 10
        while healthcheck() == 0 and time.monotonic() < deadline:
            time.sleep(0.2)
        assert healthcheck() == 1, "the failed run must show in the container's health"
        assert not [p for p in backups.iterdir() if p.name.endswith(".dump")]
