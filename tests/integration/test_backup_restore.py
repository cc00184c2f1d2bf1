"""Backups with a real PostgreSQL (Debian's, started on loopback): the container's rendered backup
script, and the operator's scripts/backup and scripts/restore, end to end. Vault is a test double."""

from __future__ import annotations

import json
import os
import subprocess
import time
from pathlib import Path

import pytest

from harness import ROOT
from renderers.backup_scripts import render_backup_script, render_scheduler_script
from servers import postgres_cluster
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
    script.write_text(render_backup_script(retention=3))
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
    script.write_text(render_backup_script(retention=3))
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


@pytest.fixture
def vault():
    double = VaultDouble(token="test-root-token")
    double.put("litellm-gateway/dev", {"LITELLM_MASTER_KEY": "sk-v1", "LITELLM_SALT_KEY": "salt-never-changes"})
    double.put("litellm-gateway/dev", {"LITELLM_MASTER_KEY": "sk-v2", "LITELLM_SALT_KEY": "salt-never-changes"})
    yield double
    double.stop()


VAULT_ENV = {"BACKUP_PASSPHRASE": "correct horse battery staple"}


def vault_env(vault):
    return dict(VAULT_ENV, VAULT_ADDR=vault.address, VAULT_TOKEN=vault.token)


def take_backup(database, tmp_path, vault) -> Path:
    done = run_script("backup", "dev", "--out", str(tmp_path / "out"), "--database-url", database,
                      "--no-pulumi-export", env=vault_env(vault))
    assert done.returncode == 0, done.stderr
    (folder,) = (tmp_path / "out").iterdir()
    return folder


def test_backup_change_restore_loses_nothing(database, tmp_path, vault):
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
    vault.put("litellm-gateway/dev", {"LITELLM_MASTER_KEY": "sk-broken", "LITELLM_SALT_KEY": "oops"})
    assert fingerprint(database) != original

    done = run_script("restore", str(folder), "--database-url", database, "--restore-vault", "--yes", env=vault_env(vault))
    assert done.returncode == 0, done.stderr
    assert fingerprint(database) == original
    assert vault.versions["litellm-gateway/dev"][-1] == {"LITELLM_MASTER_KEY": "sk-v2", "LITELLM_SALT_KEY": "salt-never-changes"}
    assert "restored the database" in done.stdout and "as version 4 (the content of version 2)" in done.stdout


def test_restore_into_an_empty_database_on_another_server(database, tmp_path, vault):
    original = fingerprint(database)
    folder = take_backup(database, tmp_path, vault)
    with postgres_cluster() as new_host:
        done = run_script("restore", str(folder), "--database-url", new_host, "--yes")
        assert done.returncode == 0, done.stderr
        assert fingerprint(new_host) == original


def test_a_truncated_dump_is_refused_and_the_database_untouched(database, tmp_path, vault):
    folder = take_backup(database, tmp_path, vault)
    psql(database, 'DELETE FROM "LiteLLM_SpendLogs" WHERE spend > 0.01')
    changed = fingerprint(database)
    dump = folder / "database.dump"
    dump.write_bytes(dump.read_bytes()[: dump.stat().st_size // 2])
    done = run_script("restore", str(folder), "--database-url", database, "--yes")
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
    from operations.backup_restore import sha256

    manifest["files"]["database.dump"] = sha256(dump)
    (folder / "manifest.json").write_text(json.dumps(manifest, indent=2, sort_keys=True))
    sums = dict(manifest["files"], **{"manifest.json": sha256(folder / "manifest.json")})
    (folder / "SHA256SUMS").write_text("".join(f"{d}  {n}\n" for n, d in sorted(sums.items())))
    done = run_script("restore", str(folder), "--database-url", database, "--yes")
    assert done.returncode == 3
    assert "not a readable pg_dump archive" in done.stderr
    assert fingerprint(database) == changed


def test_a_flipped_byte_is_a_checksum_mismatch(database, tmp_path, vault):
    folder = take_backup(database, tmp_path, vault)
    dump = folder / "database.dump"
    data = bytearray(dump.read_bytes())
    data[len(data) // 2] ^= 0xFF
    dump.write_bytes(bytes(data))
    done = run_script("restore", str(folder), "--database-url", database, "--yes")
    assert done.returncode == 3 and "checksum mismatch for database.dump" in done.stderr


def test_restore_asks_for_yes_and_checks_first(database, tmp_path, vault):
    folder = take_backup(database, tmp_path, vault)
    psql(database, 'DELETE FROM "LiteLLM_SpendLogs"')
    changed = fingerprint(database)
    done = run_script("restore", str(folder), "--database-url", database)
    assert done.returncode == 3 and "add --yes" in done.stderr and "all checks passed" in done.stderr
    assert fingerprint(database) == changed


def test_wrong_passphrase_refuses_the_vault_restore_before_touching_anything(database, tmp_path, vault):
    folder = take_backup(database, tmp_path, vault)
    psql(database, 'DELETE FROM "LiteLLM_SpendLogs"')
    changed = fingerprint(database)
    env = dict(vault_env(vault), BACKUP_PASSPHRASE="wrong")
    done = run_script("restore", str(folder), "--database-url", database, "--restore-vault", "--yes", env=env)
    assert done.returncode == 3 and "wrong BACKUP_PASSPHRASE" in done.stderr
    assert fingerprint(database) == changed
    assert len(vault.versions["litellm-gateway/dev"]) == 2


def test_backup_without_the_pulumi_cli_says_so(database, tmp_path, vault):
    done = run_script("backup", "dev", "--out", str(tmp_path / "out"), "--database-url", database,
                      env={**vault_env(vault), "PATH": "/usr/bin:/bin"})
    assert done.returncode == 3
    assert "Pulumi CLI is not installed" in done.stderr and "--no-pulumi-export" in done.stderr
    assert not any((tmp_path / "out").iterdir()), "no half-written backup folder is left"


def test_backup_needs_a_database(tmp_path):
    done = run_script("backup", "dev", "--out", str(tmp_path / "out"), "--no-pulumi-export",
                      env={"DATABASE_URL": ""})
    assert done.returncode == 3 and "--database-url" in done.stderr


def test_restore_from_a_scheduled_dump(database, tmp_path):
    original = fingerprint(database)
    script = tmp_path / "litellm-backup"
    script.write_text(render_backup_script(retention=3))
    script.chmod(0o755)
    done = subprocess.run([str(script)], capture_output=True, text=True,
                          env=dict(pg_env(database), BACKUP_DIR=str(tmp_path / "backups")))
    dump = tmp_path / "backups" / json.loads(done.stdout.strip().splitlines()[-1])["file"]
    psql(database, 'DROP TABLE "LiteLLM_SpendLogs"')
    done = run_script("restore", str(dump), "--database-url", database, "--yes")
    assert done.returncode == 0, done.stderr
    assert fingerprint(database) == original
    dump.write_bytes(dump.read_bytes()[:-10])
    refused = run_script("restore", str(dump), "--database-url", database, "--yes")
    assert refused.returncode == 3 and f"checksum mismatch for {dump.name}" in refused.stderr
