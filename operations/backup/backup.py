"""Taking a backup: everything is written into a hidden partial folder next to the destination,
checksummed, and only then moved into place under its dated name, so a backup folder that exists
is complete."""

from __future__ import annotations

import datetime as dt
import json
import os
import shutil
import tempfile
from pathlib import Path
from typing import Optional

from config.names import StackNames
from renderers.litellm_config import render_litellm_config
from renderers.monitoring import render_alert_rules, render_prometheus_config

from .crypto import check_passphrase, encrypt
from .database import Database, dump_problem
from .errors import Refused
from .manifest import seal
from .pulumi_cli import export_stack, require_cli
from .stack import StackFacts
from .vault import Vault


def claim_folder(partial: Path, folder: Path) -> Path:
    """Move the finished backup into place under `folder`'s name, or the next free `<name>-N`.

    `mkdir` is the claim: it fails when anything has the name, so of two backups finishing in the
    same second each gets its own. The rename then replaces the empty folder just made with the
    backup in one step (rename(2) may replace an empty directory): the name is never released
    between the claim and the move, and nothing that existed before is ever replaced."""
    for attempt in range(100):
        target = folder if attempt == 0 else folder.with_name(f"{folder.name}-{attempt + 1}")
        try:
            target.mkdir()
        except FileExistsError:
            continue
        os.rename(partial, target)
        return target
    raise Refused(f"cannot find a free folder name next to {folder}")


def backup(facts: StackFacts, out: Path, database: Database, vault: Optional[Vault], vault_export: str,
           pulumi_export: bool, now: Optional[dt.datetime] = None, say=print) -> Path:
    now = now or dt.datetime.now(dt.timezone.utc)
    stack = facts.stack
    folder = out / f"{StackNames(stack).prefix}-{now:%Y%m%dT%H%M%SZ}"
    if pulumi_export:
        require_cli("; install it or pass --no-pulumi-export")
    if vault_export == "encrypted" and vault is not None:
        check_passphrase()
    partial = Path(tempfile.mkdtemp(prefix=f".{folder.name}.", dir=out))
    try:
        manifest: dict = {"format": 1, "stack": stack, "created_utc": now.isoformat(timespec="seconds")}

        if vault is not None:  # read first: a token problem stops the backup before the long dump
            data, kv_version = vault.read()
            meta = {"mount": vault.mount, "path": vault.path, "version": kv_version, "fields": sorted(data)}
            manifest["vault"] = dict(meta, export=None)
        else:
            manifest["vault"] = {"skipped": "--no-vault: the salt key is not in this backup"}

        dump = partial / "database.dump"
        with open(dump, "wb") as handle:
            done = database.run("pg_dump", "--format=custom", "--no-owner", "--no-privileges", stdout=handle)
        if done.returncode != 0:
            raise Refused(f"pg_dump failed: {done.stderr.decode(errors='replace').strip()}")
        problem = dump_problem(dump)
        if problem:
            raise Refused(f"the dump just written is not readable: {problem}")
        version = database.server_version_num()
        manifest["database"] = {"file": "database.dump", "format": "custom", "server_version_num": version,
                                "server_major": version // 10000, "row_counts": database.row_counts()}

        if vault is not None:
            (partial / "vault-secret.meta.json").write_text(json.dumps(meta, indent=2))
            if vault_export == "encrypted":
                (partial / "vault-secret.json.enc").write_bytes(encrypt(json.dumps(data).encode()))
                manifest["vault"]["export"] = "vault-secret.json.enc"

        if pulumi_export:
            export_stack(stack, partial / "pulumi-stack.json")
            manifest["pulumi"] = {"file": "pulumi-stack.json"}
        else:
            manifest["pulumi"] = {"skipped": "--no-pulumi-export"}

        manifest["rendered"] = _render_config(facts, partial / "rendered")
        seal(partial, manifest)
        return claim_folder(partial, folder)
    finally:
        shutil.rmtree(partial, ignore_errors=True)


def _render_config(facts: StackFacts, into: Path) -> list[str]:
    """The stack's rendered configuration, from Pulumi.<stack>.yaml (no secrets in it)."""
    settings = facts.settings
    into.mkdir(parents=True)
    files = {
        "litellm-config.yaml": render_litellm_config(settings),
        "prometheus.yml": render_prometheus_config(settings),
        "litellm-gateway.rules.yml": render_alert_rules(settings),
        "Pulumi.yaml.stack-config": facts.stack_file.read_text(),
    }
    for name, text in files.items():
        (into / name).write_text(text)
    return [f"rendered/{name}" for name in files]
