"""A restore's changes, once every check has passed (restore_check): the database, then the Vault
secret, then the stack's config from it. A failure after the first change is a PartialRestore
that names what was done and the command that finishes the restore."""

from __future__ import annotations

from pathlib import Path

from .adopt import adopt_vault_secret
from .database import Database
from .errors import PartialRestore, Refused, StepFailed
from .restore_check import CheckedRestore, RestorePlan, check_restore


def restore(source: Path, plan: RestorePlan, say=print) -> None:
    """Restore from a backup folder (scripts/backup) or a scheduled dump file (the backup container).

    Every check runs before the first change (backup integrity, stack, dump readable, server
    version, Vault token and permission, Pulumi CLI). After a change, a failure is reported as a
    PartialRestore naming what was done and how to finish."""
    apply_restore(check_restore(source, plan, say), plan, say)


def apply_restore(checked: CheckedRestore, plan: RestorePlan, say=print) -> None:
    done: list[str] = []
    if plan.database is not None:
        _restore_database(checked.dump, checked.manifest, plan.database, say)
        done.append(f"the database was restored from {checked.source.name}")
    if checked.secret is None:
        return
    target = plan.target
    finish = f"./scripts/restore {checked.source} --stack {target.stack} --restore-vault --vault-only --yes"
    try:
        version = plan.vault.write(checked.secret)
    except Refused as error:
        raise PartialRestore(_partial_message(done, f"the Vault secret was NOT written: {error}", finish)) from None
    done.append(f"the Vault secret {plan.vault.data_path} was written as version {version} (the content of "
                f"version {checked.manifest['vault'].get('version')})")
    say(done[-1])
    adopt = (f"./scripts/adopt-vault-secret {target.stack} --docker-container {target.postgres_container}"
             if target.settings.postgres.mode == "container" else
             f"./scripts/adopt-vault-secret {target.stack} --database-url <the external database's URL>")
    if plan.config is None:
        say(f"the containers still use the old values: run {adopt}, then ./scripts/stack up {target.stack}")
        return
    try:
        adopt_vault_secret(target, checked.secret, plan.role_database or plan.database, plan.config, say)
    except (Refused, StepFailed) as error:
        raise PartialRestore(_partial_message(done, f"updating the stack's config from it failed: {error}", adopt))
    say(f"next: ./scripts/stack up {target.stack} gives the containers the restored values")


def _partial_message(done: list[str], failed: str, finish: str) -> str:
    steps = "; ".join(done) if done else "nothing"
    return (f"PARTIAL RESTORE: {steps}; then {failed}. Finish with: {finish} "
            "(or undo by restoring the backup you took before this restore, docs/RUNBOOK.md section 2)")


def _restore_database(dump: Path, manifest: dict, database: Database, say) -> None:
    options = ["--clean", "--if-exists", "--no-owner", "--no-privileges", "--single-transaction", "--exit-on-error"]
    if database.container:  # the archive goes in on stdin
        with open(dump, "rb") as archive:
            done = database.run("pg_restore", *options, stdin=archive)
    else:
        done = database.run("pg_restore", *options, str(dump))
    if done.returncode != 0:
        err = done.stderr if isinstance(done.stderr, str) else done.stderr.decode(errors="replace")
        raise StepFailed(f"pg_restore failed and rolled back its transaction (nothing was changed): {err.strip()}")
    counts = database.row_counts()
    expected = manifest["database"]["row_counts"]
    if expected is None:  # a scheduled dump records no row counts
        say(f"restored the database from {dump.name}: {len(counts)} tables, {sum(counts.values())} rows")
        return
    differing = {t: (expected.get(t), counts.get(t)) for t in expected if counts.get(t) != expected.get(t)}
    if differing:
        raise StepFailed(f"restored, but row counts differ from the backup: {differing}")
    say(f"restored the database from {dump.parent.name}: {len(expected)} tables, {sum(expected.values())} rows, "
        "row counts match the backup")
