"""A restore's checks, all run before its first change: the backup's integrity, that it is this
stack's, that pg_restore can read the dump, that the target server is not older than the one
dumped, that the Vault export decrypts and the token may write the secret, that the Pulumi CLI
reaches the stack's config, and that the operator said --yes."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Optional

from .adopt import secret_problem
from .crypto import decrypt
from .database import Database, dump_problem
from .errors import Refused
from .manifest import inside, verify, verify_scheduled_dump
from .pulumi_cli import StackConfig
from .stack import StackFacts
from .vault import Vault


@dataclass
class RestorePlan:
    target: StackFacts
    database: Optional[Database]             # what is restored; None with --vault-only
    vault: Optional[Vault]
    restore_vault: bool
    config: Optional[StackConfig]            # None with --no-pulumi-config
    force_other_stack: bool = False
    confirmed: bool = False
    role_database: Optional[Database] = None  # where the role's password is set (also with --vault-only)


@dataclass(frozen=True)
class CheckedRestore:
    """What the checks found: everything the changes need, so they read nothing unchecked."""

    source: Path
    manifest: dict
    dump: Path
    secret: Optional[dict]  # the decrypted Vault secret, with --restore-vault


def check_restore(source: Path, plan: RestorePlan, say=print) -> CheckedRestore:
    """Every check, in order; Refused (nothing was changed) at the first that fails."""
    if source.is_file():
        manifest = verify_scheduled_dump(source)
        folder = source.parent
    elif source.is_dir():
        manifest = verify(source)
        folder = source
    else:
        raise Refused(f"{source} does not exist")
    say(f"checked: {len(manifest['files'])} files match their SHA-256 checksums")
    _check_stack(manifest, plan)

    dump = folder / manifest["database"]["file"]
    if plan.database is not None:
        _check_database(dump, manifest, plan.database, say)

    secret = None
    if plan.restore_vault:
        secret = _check_vault(folder, manifest, plan, say)
    if not plan.confirmed:
        raise Refused("add --yes to replace the database's contents (all checks passed; nothing was changed)")
    return CheckedRestore(source, manifest, dump, secret)


def _check_stack(manifest: dict, plan: RestorePlan) -> None:
    source = manifest.get("stack")
    target = plan.target.stack
    if source == target:
        return
    what = f"a backup of the '{source}' stack" if source else "a dump whose name does not say which stack it is from"
    if not plan.force_other_stack:
        raise Refused(f"this is {what}, the target is the '{target}' stack: restoring it would replace "
                      f"{target}'s data{' and Vault secret' if plan.restore_vault else ''} with another stack's. "
                      "Pass --force-other-stack if that is what you mean; nothing was changed")


def _check_database(dump: Path, manifest: dict, database: Database, say) -> None:
    problem = dump_problem(dump)
    if problem:
        raise Refused(f"{dump.name} is not a readable pg_dump archive ({problem}); nothing was changed")
    dumped_major = manifest["database"]["server_major"]
    target_major = database.server_version_num() // 10000
    if target_major < dumped_major:
        raise Refused(f"the dump comes from PostgreSQL {dumped_major}, the target runs {target_major}: restore into "
                      "the same or a newer major version; nothing was changed")
    say(f"checked: dump readable, PostgreSQL {dumped_major} -> {target_major}")


def _check_vault(folder: Path, manifest: dict, plan: RestorePlan, say) -> dict:
    """The backed-up secret, decrypted, once the token may write it back and the config can be set."""
    if plan.vault is None:
        raise Refused("--restore-vault needs VAULT_ADDR and VAULT_TOKEN; nothing was changed")
    export = manifest["vault"].get("export")
    if not export:
        raise Refused("this backup holds no Vault export (it was taken with --vault-export metadata or "
                      "--no-vault); nothing was changed")
    secret = json.loads(decrypt(inside(folder, export).read_bytes()))
    problem = secret_problem(secret)
    if problem:  # found before the database or Vault is touched, not by the last step
        raise Refused(f"{problem}; nothing was changed")
    role_database = plan.role_database or plan.database
    if plan.config is not None and role_database is not None:
        role_database.server_version_num()  # the role's password is set there after the Vault write: reachable first
        say("checked: the database whose role password follows the secret is reachable")
    plan.vault.check_can_write()
    say(f"checked: the Vault token may write {plan.vault.data_path}")
    if plan.config is not None:
        plan.config.check()
        say(f"checked: the Pulumi CLI reaches the {plan.target.stack} stack's config")
    return secret
