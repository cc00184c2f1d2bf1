"""The command lines: scripts/backup, scripts/restore, scripts/adopt-vault-secret and
scripts/fetch-backup, each `python -m operations.backup <backup|restore|adopt|fetch> ...`.

Exit codes: 0 done, 1 a change failed, 2 usage, 3 refused (nothing was changed; also the scripts'
code when Python cannot run this), 4 a restore left half done (the message says how to finish)."""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path
from typing import Callable, Optional

from config.stack import is_dev_environment

from .adopt import adopt_vault_secret
from .backup import backup
from .database import Database
from .errors import BackupError, Refused
from .fetch import fetch_scheduled_dump
from .pulumi_cli import StackConfig
from .restore_apply import restore
from .restore_check import RestorePlan
from .stack import StackFacts, load_stack
from .vault import Vault


def database_from(args, facts: StackFacts) -> Database:
    pg = facts.settings.postgres
    if args.docker_container and pg.mode == "external":
        raise Refused(f"{facts.stack} has no database container (postgres.mode: external): give --database-url, "
                      "the external database's URL")
    if args.docker_container:
        return Database(container=args.docker_container, user=pg.user, name=pg.database)
    url = args.database_url or os.environ.get("DATABASE_URL")
    if not url and pg.mode == "external":
        raise Refused("give --database-url (or DATABASE_URL): the external database's URL with its TLS, for example "
                      "postgresql://user@host:5432/db?sslmode=verify-full&sslrootcert=ca.pem (the password in "
                      "PGPASSWORD or ~/.pgpass)")
    if not url:
        raise Refused(f"give --database-url (or DATABASE_URL; the password in PGPASSWORD or ~/.pgpass), or "
                      f"--docker-container {facts.postgres_container}")
    return Database(url=url, user=pg.user, name=pg.database)


def vault_from(facts: StackFacts) -> Optional[Vault]:
    # The stack's own address wins: VAULT_ADDR (a shell left pointing at another Vault) only fills in an
    # unset one, and outside dev stacks never with plain http (the token would travel in clear text).
    address = facts.settings.vault.address or os.environ.get("VAULT_ADDR")
    if address and address.startswith("http://") and not is_dev_environment(facts.settings.environment):
        raise Refused(f"VAULT_ADDR is {address}: {facts.stack}'s Vault token may not travel over plain http; "
                      "use the https:// address (or set vault.address in the stack file)")
    token = os.environ.get("VAULT_TOKEN")
    if not token:
        token_file = Path.home() / ".vault-token"
        token = token_file.read_text().strip() if token_file.is_file() else None
    if not address or not token:
        return None
    return Vault(address, token, facts.vault_mount, facts.vault_path)


def _database_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--database-url", help="postgresql://user@host:port/db, the password in PGPASSWORD or "
                                               "~/.pgpass (default: DATABASE_URL); a password in the URL is moved "
                                               "to PGPASSWORD so it is never on a command line")
    parser.add_argument("--docker-container", help="run the PostgreSQL tools inside this container instead "
                                                   "(litellm-gateway-<stack>-postgres); user and database come "
                                                   "from Pulumi.<stack>.yaml")


def _reported(command: str, run: Callable[[], int]) -> int:
    """`run()`'s exit code, or this package's error as a message and its exit code (no traceback)."""
    try:
        return run()
    except BackupError as error:
        print(f"{command} {error.outcome}: {error}", file=sys.stderr)
        return error.exit_code


def backup_main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="scripts/backup", description="Back up one stack into a dated folder.")
    parser.add_argument("stack", help="stack name (dev, prod, ...)")
    parser.add_argument("--out", required=True, type=Path, help="folder that receives the dated backup folder")
    parser.add_argument("--vault-export", choices=["encrypted", "metadata"], default="encrypted",
                        help="encrypted: the secret's values, AES-256 with BACKUP_PASSPHRASE (default); "
                             "metadata: only mount, path, version and field names")
    parser.add_argument("--no-vault", action="store_true",
                        help="back up without the Vault secret (and so without the salt key): such a backup "
                             "cannot restore credentials stored encrypted in the database")
    parser.add_argument("--no-pulumi-export", action="store_true", help="skip `pulumi stack export`")
    _database_options(parser)
    args = parser.parse_args(argv)

    def run() -> int:
        facts = load_stack(args.stack)
        vault = None if args.no_vault else vault_from(facts)
        if vault is None and not args.no_vault:
            raise Refused("VAULT_ADDR and VAULT_TOKEN are needed to back up the stack's Vault secret, which holds "
                          "the salt key (without it, credentials stored in the database cannot be decrypted after "
                          "a restore). Set them, or pass --no-vault to back up the database alone")
        database = database_from(args, facts)
        args.out.mkdir(parents=True, exist_ok=True)
        folder = backup(facts, args.out, database, vault, args.vault_export, not args.no_pulumi_export)
        print(f"backup written to {folder}")
        if args.no_vault:
            print("WARNING: --no-vault: this backup holds NO copy of the Vault secret and its salt key. Restored "
                  "alone, it cannot decrypt the credentials LiteLLM stored in the database; keep a Vault backup "
                  "of the salt key (docs/RUNBOOK.md section 5).", file=sys.stderr)
        return 0

    return _reported("backup", run)


def restore_main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="scripts/restore", description="Restore a stack's database (and Vault secret).")
    parser.add_argument("folder", type=Path,
                        help="a folder written by scripts/backup, or a scheduled dump (litellm-<stack>-<stamp>.dump, "
                             "with its .sha256 beside it) copied out of the backup volume")
    parser.add_argument("--stack", required=True, help="the stack restored into; a backup of another stack is refused")
    parser.add_argument("--restore-vault", action="store_true",
                        help="also write the backed-up Vault secret back, and set the stack's secret config from it "
                             "so the next `scripts/stack up` gives the containers those values")
    parser.add_argument("--vault-only", action="store_true",
                        help="with --restore-vault: leave the database alone (finishes a partial restore)")
    parser.add_argument("--no-pulumi-config", action="store_true",
                        help="with --restore-vault: do not set the stack's secret config (run "
                             "scripts/adopt-vault-secret later)")
    parser.add_argument("--force-other-stack", action="store_true",
                        help="restore a backup taken from another stack (or an unnamed scheduled dump)")
    parser.add_argument("--yes", action="store_true", help="replace the database's contents without asking")
    _database_options(parser)
    args = parser.parse_args(argv)

    def run() -> int:
        if not args.folder.exists():
            raise Refused(f"{args.folder} does not exist; nothing was changed")
        if args.vault_only and not args.restore_vault:
            raise Refused("--vault-only goes with --restore-vault")
        facts = load_stack(args.stack)
        # The role's password is set only in the stack's own database (an external one's role is not the stack's).
        sets_role = args.restore_vault and not args.no_pulumi_config and facts.settings.postgres.mode == "container"
        needs_database = not args.vault_only or sets_role
        database = database_from(args, facts) if needs_database else None
        plan = RestorePlan(
            target=facts, database=None if args.vault_only else database,
            vault=vault_from(facts) if args.restore_vault else None, restore_vault=args.restore_vault,
            config=None if args.no_pulumi_config else StackConfig(args.stack),
            force_other_stack=args.force_other_stack, confirmed=args.yes, role_database=database,
        )
        restore(args.folder, plan)
        return 0

    return _reported("restore", run)


def adopt_main(argv=None) -> int:
    """After `vault kv rollback` (or any change of the Vault secret): give the stack Vault's values."""
    parser = argparse.ArgumentParser(
        prog="scripts/adopt-vault-secret",
        description="Set the stack's secret config (and the database role's password) from the stack's current "
                    "Vault secret, so the next `scripts/stack up` gives the containers Vault's values instead of "
                    "writing the old ones back over it.")
    parser.add_argument("stack", help="stack name (dev, prod, ...)")
    parser.add_argument("--yes", action="store_true", help="change the config and the role password without asking")
    _database_options(parser)
    args = parser.parse_args(argv)

    def run() -> int:
        facts = load_stack(args.stack)
        vault = vault_from(facts)
        if vault is None:
            raise Refused("VAULT_ADDR and VAULT_TOKEN are needed to read the stack's Vault secret")
        # An external database's role is not the stack's: nothing to set there, no database needed.
        database = database_from(args, facts) if facts.settings.postgres.mode == "container" else None
        if database is not None:
            database.server_version_num()  # reachable before anything changes
        secret, version = vault.read()
        config = StackConfig(args.stack)
        config.check()
        if not args.yes:
            raise Refused(f"add --yes to set the {args.stack} stack's secret config and the database role's password "
                          f"from version {version} of {vault.data_path} (all checks passed; nothing was changed)")
        adopt_vault_secret(facts, secret, database, config)
        print(f"next: ./scripts/stack up {args.stack} gives the containers the values of version {version}")
        return 0

    return _reported("adopt", run)


def fetch_main(argv=None) -> int:
    """Copy a scheduled dump (and its checksum) out of the stack's backup container, verified."""
    parser = argparse.ArgumentParser(prog="scripts/fetch-backup",
                                     description="Copy a scheduled dump out of the backup container.")
    parser.add_argument("stack", help="stack name (dev, prod, ...)")
    parser.add_argument("--out", required=True, type=Path, help="local folder to copy the dump into")
    parser.add_argument("--file", help="which dump (litellm-<stack>-<stamp>.dump); default: the newest")
    args = parser.parse_args(argv)

    def run() -> int:
        dump = fetch_scheduled_dump(load_stack(args.stack), args.out, args.file)
        print(f"{dump} (checksum verified); restore it with: ./scripts/restore {dump} --stack {args.stack} ...")
        return 0

    return _reported("fetch", run)


COMMANDS = {"backup": backup_main, "restore": restore_main, "adopt": adopt_main, "fetch": fetch_main}


def main(argv: Optional[list[str]] = None) -> int:
    """`python -m operations.backup <command> [options]`: the command's own options follow it."""
    argv = sys.argv[1:] if argv is None else argv
    if not argv or argv[0] not in COMMANDS:
        print(f"usage: python -m operations.backup {{{','.join(COMMANDS)}}} [options]   (scripts/backup, "
              "scripts/restore, scripts/adopt-vault-secret, scripts/fetch-backup)", file=sys.stderr)
        return 2
    return COMMANDS[argv[0]](argv[1:])
