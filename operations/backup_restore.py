"""Operator backup and restore of one stack (scripts/backup, scripts/restore).

A backup is one dated folder:
    litellm-gateway-<stack>-<UTC stamp>/
      database.dump            pg_dump, custom format
      vault-secret.json.enc    the stack's Vault secret (AES-256, key from BACKUP_PASSPHRASE), if asked
      vault-secret.meta.json   mount, path and KV version of that secret (no values)
      pulumi-stack.json        `pulumi stack export` (its secrets stay encrypted by Pulumi)
      rendered/                the rendered LiteLLM and Prometheus configuration (no secrets)
      manifest.json            what is in the folder, versions, row counts, checksums
      SHA256SUMS               `sha256sum -c SHA256SUMS` checks every file

Restore checks everything first (checksums, that pg_restore can read the dump, that the target
server is not older than the one dumped) and changes nothing if a check fails.
"""

from __future__ import annotations

import argparse
import datetime as dt
import hashlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Optional

ROOT = Path(__file__).resolve().parents[1]


class Refused(Exception):
    """A check failed; nothing was changed."""


# --- database access -----------------------------------------------------------------------------

@dataclass
class Database:
    """Where the LiteLLM database is: a URL for local client tools, or a container to `docker exec`."""

    url: Optional[str] = None
    container: Optional[str] = None
    user: str = "litellm"
    name: str = "litellm"

    def _tool(self, program: str, *args: str) -> list[str]:
        if self.container:
            return ["docker", "exec", "-i", self.container, program, "-U", self.user, "-d", self.name, *args]
        return [program, f"--dbname={self.url}", *args]

    def run(self, program: str, *args: str, stdin=None, stdout=None) -> subprocess.CompletedProcess:
        if not self.container and shutil.which(program) is None:
            raise Refused(f"{program} is not installed (apt-get install postgresql-client)")
        return subprocess.run(self._tool(program, *args), stdin=stdin, stdout=stdout or subprocess.PIPE,
                              stderr=subprocess.PIPE, text=stdout is None and stdin is None, check=False)

    def sql(self, query: str) -> str:
        done = self.run("psql", "-X", "-A", "-t", "-v", "ON_ERROR_STOP=1", "-c", query)
        if done.returncode != 0:
            raise Refused(f"cannot query the database: {done.stderr.strip()}")
        return done.stdout.strip()

    def server_version_num(self) -> int:
        return int(self.sql("SHOW server_version_num"))

    def row_counts(self) -> dict[str, int]:
        tables = [t for t in self.sql(
            "SELECT quote_ident(tablename) FROM pg_tables WHERE schemaname = 'public' ORDER BY 1").splitlines() if t]
        if not tables:
            return {}
        union = " UNION ALL ".join(f"SELECT '{t}', count(*) FROM public.{t}" for t in tables)
        return {name.strip('"'): int(count) for name, count in
                (line.split("|") for line in self.sql(union).splitlines())}


def _pg_restore_list(dump: Path) -> Optional[str]:
    """None when pg_restore can read the archive, else its error."""
    if shutil.which("pg_restore") is None:
        raise Refused("pg_restore is not installed (apt-get install postgresql-client)")
    done = subprocess.run(["pg_restore", "--list", str(dump)], capture_output=True, text=True)
    return None if done.returncode == 0 else (done.stderr.strip() or f"exit {done.returncode}")


# --- Vault KV v2 over its HTTP API -------------------------------------------------------------------

@dataclass
class Vault:
    address: str
    token: str
    mount: str
    path: str

    def _call(self, method: str, url_path: str, body: Optional[dict] = None) -> dict:
        request = urllib.request.Request(
            f"{self.address.rstrip('/')}/v1/{url_path}", method=method,
            data=json.dumps(body).encode() if body is not None else None,
            headers={"X-Vault-Token": self.token, "Content-Type": "application/json"},
        )
        try:
            with urllib.request.urlopen(request, timeout=30) as response:
                return json.loads(response.read() or b"{}")
        except urllib.error.HTTPError as error:
            raise Refused(f"Vault {method} {url_path}: HTTP {error.code} {error.read().decode(errors='replace')[:200]}")
        except urllib.error.URLError as error:
            raise Refused(f"Vault at {self.address} is not reachable: {error.reason}")

    def read(self) -> tuple[dict, int]:
        answer = self._call("GET", f"{self.mount}/data/{self.path}")["data"]
        return answer["data"], int(answer["metadata"]["version"])

    def write(self, data: dict) -> int:
        return int(self._call("POST", f"{self.mount}/data/{self.path}", {"data": data})["data"]["version"])


def _openssl(decrypt: bool, data: bytes) -> bytes:
    if not os.environ.get("BACKUP_PASSPHRASE"):
        raise Refused("BACKUP_PASSPHRASE is not set: it encrypts (and decrypts) the Vault secret export")
    if shutil.which("openssl") is None:
        raise Refused("openssl is not installed")
    args = ["openssl", "enc", "-aes-256-cbc", "-pbkdf2", "-iter", "600000", "-salt", "-pass", "env:BACKUP_PASSPHRASE"]
    done = subprocess.run(args + (["-d"] if decrypt else []), input=data, capture_output=True)
    if done.returncode != 0:
        raise Refused("cannot decrypt the Vault export (wrong BACKUP_PASSPHRASE?)" if decrypt
                      else f"openssl failed: {done.stderr.decode(errors='replace')}")
    return done.stdout


# --- checksums -------------------------------------------------------------------------------------

def sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _write_checksums(folder: Path) -> dict[str, str]:
    files = sorted(p for p in folder.rglob("*") if p.is_file() and p.name not in ("SHA256SUMS", "manifest.json"))
    sums = {str(p.relative_to(folder)): sha256(p) for p in files}
    return sums


def verify(folder: Path) -> dict:
    """The manifest, once every file is present and matches its checksum; else Refused."""
    manifest_path, sums_path = folder / "manifest.json", folder / "SHA256SUMS"
    if not manifest_path.is_file() or not sums_path.is_file():
        raise Refused(f"{folder} is not a backup folder (manifest.json or SHA256SUMS missing)")
    manifest = json.loads(manifest_path.read_text())
    listed = {}
    for line in sums_path.read_text().splitlines():
        digest, name = line.split(None, 1)
        listed[name.lstrip("*")] = digest
    if sha256(manifest_path) != listed.get("manifest.json"):
        raise Refused("checksum mismatch for manifest.json; nothing was changed")
    for name, digest in manifest["files"].items():
        path = folder / name
        if not path.is_file():
            raise Refused(f"{name} is missing from the backup; nothing was changed")
        actual = sha256(path)
        if actual != digest or listed.get(name) != digest:
            raise Refused(f"checksum mismatch for {name} (expected {digest[:16]}..., got {actual[:16]}...): "
                          "the file is truncated or altered; nothing was changed")
    return manifest


# --- backup ----------------------------------------------------------------------------------------

def backup(stack: str, out: Path, database: Database, vault: Optional[Vault], vault_export: str,
           pulumi_export: bool, now: Optional[dt.datetime] = None) -> Path:
    now = now or dt.datetime.now(dt.timezone.utc)
    folder = out / f"litellm-gateway-{stack}-{now:%Y%m%dT%H%M%SZ}"
    partial = Path(tempfile.mkdtemp(prefix=f".{folder.name}.", dir=out))
    try:
        manifest: dict = {"format": 1, "stack": stack, "created_utc": now.isoformat(timespec="seconds")}

        dump = partial / "database.dump"
        with open(dump, "wb") as handle:
            done = database.run("pg_dump", "--format=custom", "--no-owner", "--no-privileges", stdout=handle)
        if done.returncode != 0:
            raise Refused(f"pg_dump failed: {done.stderr.decode(errors='replace').strip()}")
        problem = _pg_restore_list(dump)
        if problem:
            raise Refused(f"the dump just written is not readable: {problem}")
        version = database.server_version_num()
        manifest["database"] = {"file": "database.dump", "format": "custom", "server_version_num": version,
                                "server_major": version // 10000, "row_counts": database.row_counts()}

        if vault is not None:
            data, kv_version = vault.read()
            meta = {"mount": vault.mount, "path": vault.path, "version": kv_version, "fields": sorted(data)}
            (partial / "vault-secret.meta.json").write_text(json.dumps(meta, indent=2))
            manifest["vault"] = dict(meta, export=None)
            if vault_export == "encrypted":
                (partial / "vault-secret.json.enc").write_bytes(_openssl(False, json.dumps(data).encode()))
                manifest["vault"]["export"] = "vault-secret.json.enc"
        else:
            manifest["vault"] = {"skipped": "no VAULT_ADDR/VAULT_TOKEN given"}

        if pulumi_export:
            if shutil.which("pulumi") is None:
                raise Refused("the Pulumi CLI is not installed; install it or pass --no-pulumi-export")
            done = subprocess.run(["pulumi", "stack", "export", "--stack", stack, "--file",
                                   str(partial / "pulumi-stack.json")], capture_output=True, text=True, cwd=ROOT)
            if done.returncode != 0:
                raise Refused(f"pulumi stack export failed: {done.stderr.strip()}")
            manifest["pulumi"] = {"file": "pulumi-stack.json"}
        else:
            manifest["pulumi"] = {"skipped": "--no-pulumi-export"}

        manifest["rendered"] = _render_config(stack, partial / "rendered")
        manifest["files"] = _write_checksums(partial)
        (partial / "manifest.json").write_text(json.dumps(manifest, indent=2, sort_keys=True))
        sums = dict(manifest["files"], **{"manifest.json": sha256(partial / "manifest.json")})
        (partial / "SHA256SUMS").write_text("".join(f"{d}  {n}\n" for n, d in sorted(sums.items())))
        partial.rename(folder)
        return folder
    finally:
        shutil.rmtree(partial, ignore_errors=True)


def _render_config(stack: str, into: Path) -> list[str]:
    """The stack's rendered configuration, from Pulumi.<stack>.yaml (no secrets in it)."""
    import yaml

    sys.path.insert(0, str(ROOT))
    from config.settings import PROJECT, parse_settings
    from renderers.litellm_config import render_litellm_config
    from renderers.monitoring import render_alert_rules, render_prometheus_config

    stack_file = ROOT / f"Pulumi.{stack}.yaml"
    if not stack_file.is_file():
        return []
    raw = {k.split(":", 1)[1]: v for k, v in (yaml.safe_load(stack_file.read_text())["config"] or {}).items()
           if k.startswith(f"{PROJECT}:")}
    # Encrypted values are not needed to render; stand-ins keep the settings valid.
    encrypted = {k for k, v in raw.items() if isinstance(v, dict) and "secure" in v}
    raw = {k: v for k, v in raw.items() if k not in encrypted}
    if "gpuSshPrivateKey" in encrypted:
        raw["gpuSshPrivateKey"] = "-----BEGIN OPENSSH PRIVATE KEY-----\nstand-in\n-----END OPENSSH PRIVATE KEY-----\n"
    settings = parse_settings(raw, frozenset(encrypted))
    into.mkdir(parents=True)
    files = {
        "litellm-config.yaml": render_litellm_config(settings, redis_host=f"{settings.resource_prefix()}-redis"),
        "prometheus.yml": render_prometheus_config(settings),
        "litellm-gateway.rules.yml": render_alert_rules(settings),
        "Pulumi.yaml.stack-config": stack_file.read_text(),
    }
    for name, text in files.items():
        (into / name).write_text(text)
    return [f"rendered/{name}" for name in files]


# --- restore ---------------------------------------------------------------------------------------

def verify_scheduled_dump(dump: Path) -> dict:
    """A manifest for a dump written by the backup container (checksum file beside it); else Refused."""
    sums = dump.with_name(dump.name + ".sha256")
    if not sums.is_file():
        raise Refused(f"{sums.name} is missing beside {dump.name}; nothing was changed")
    expected = sums.read_text().split()[0]
    if sha256(dump) != expected:
        raise Refused(f"checksum mismatch for {dump.name}: the file is truncated or altered; nothing was changed")
    done = subprocess.run(["pg_restore", "--list", str(dump)], capture_output=True, text=True)
    if done.returncode != 0:
        raise Refused(f"{dump.name} is not a readable pg_dump archive ({done.stderr.strip()}); nothing was changed")
    major = next((int(line.split(":", 1)[1].strip().split(".")[0]) for line in done.stdout.splitlines()
                  if line.startswith(";     Dumped from database version:")), 0)
    return {"files": {dump.name: expected}, "vault": {},
            "database": {"file": dump.name, "server_major": major, "row_counts": None}}


def restore(folder: Path, database: Database, vault: Optional[Vault], restore_vault: bool,
            confirmed: bool, say=print) -> None:
    """Restore from a backup folder (scripts/backup) or a scheduled dump file (the backup container)."""
    if folder.is_file():
        manifest = verify_scheduled_dump(folder)
        folder = folder.parent
    else:
        manifest = verify(folder)
    say(f"checked: {len(manifest['files'])} files match their SHA-256 checksums")
    dump = folder / manifest["database"]["file"]
    problem = _pg_restore_list(dump)
    if problem:
        raise Refused(f"{dump.name} is not a readable pg_dump archive ({problem}); nothing was changed")
    target = database.server_version_num()
    if target // 10000 < manifest["database"]["server_major"]:
        raise Refused(f"the dump comes from PostgreSQL {manifest['database']['server_major']}, the target runs "
                      f"{target // 10000}: restore into the same or a newer major version; nothing was changed")
    say(f"checked: dump readable, PostgreSQL {manifest['database']['server_major']} -> {target // 10000}")
    if restore_vault:
        if vault is None:
            raise Refused("--restore-vault needs VAULT_ADDR and VAULT_TOKEN; nothing was changed")
        if not manifest["vault"].get("export"):
            raise Refused("this backup holds no Vault export (it was taken with --vault-export metadata); nothing was changed")
        secret = json.loads(_openssl(True, (folder / manifest["vault"]["export"]).read_bytes()))
    if not confirmed:
        raise Refused("add --yes to replace the database's contents (all checks passed; nothing was changed)")

    options = ["--clean", "--if-exists", "--no-owner", "--no-privileges", "--single-transaction", "--exit-on-error"]
    if database.container:  # the archive goes in on stdin
        with open(dump, "rb") as archive:
            done = database.run("pg_restore", *options, stdin=archive)
    else:
        done = database.run("pg_restore", *options, str(dump))
    if done.returncode != 0:
        err = done.stderr if isinstance(done.stderr, str) else done.stderr.decode(errors="replace")
        raise RuntimeError(f"pg_restore failed and rolled back its transaction: {err.strip()}")
    counts = database.row_counts()
    expected = manifest["database"]["row_counts"]
    if expected is None:  # a scheduled dump records no row counts
        say(f"restored the database from {dump.name}: {len(counts)} tables, {sum(counts.values())} rows")
        return
    differing = {t: (expected.get(t), counts.get(t)) for t in expected if counts.get(t) != expected.get(t)}
    if differing:
        raise RuntimeError(f"restored, but row counts differ from the backup: {differing}")
    say(f"restored the database from {folder.name}: {len(expected)} tables, {sum(expected.values())} rows, "
        "row counts match the backup")
    if restore_vault:
        version = vault.write(secret)
        say(f"restored the Vault secret {vault.mount}/{vault.path} as version {version} "
            f"(the content of version {manifest['vault']['version']})")


# --- command line ----------------------------------------------------------------------------------

def _database_from(args) -> Database:
    if args.docker_container:
        return Database(container=args.docker_container)
    url = args.database_url or os.environ.get("DATABASE_URL")
    if not url:
        raise Refused("give --database-url (or DATABASE_URL), or --docker-container <postgres container>")
    return Database(url=url)


def _vault_from(args, stack: str) -> Optional[Vault]:
    address, token = os.environ.get("VAULT_ADDR"), os.environ.get("VAULT_TOKEN")
    if not address or not token:
        return None
    return Vault(address, token, args.vault_mount, args.vault_path or f"litellm-gateway/{stack}")


def _common(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--database-url", help="postgresql://user:password@host:port/db (default: DATABASE_URL)")
    parser.add_argument("--docker-container", help="run the PostgreSQL tools inside this container instead")
    parser.add_argument("--vault-mount", default="secret", help="KV v2 mount (default: secret)")
    parser.add_argument("--vault-path", help="secret path (default: litellm-gateway/<stack>)")


def backup_main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="scripts/backup", description="Back up one stack into a dated folder.")
    parser.add_argument("stack", help="stack name (dev, prod, ...)")
    parser.add_argument("--out", required=True, type=Path, help="folder that receives the dated backup folder")
    parser.add_argument("--vault-export", choices=["encrypted", "metadata"], default="encrypted",
                        help="encrypted: the secret's values, AES-256 with BACKUP_PASSPHRASE (default); "
                             "metadata: only mount, path, version and field names")
    parser.add_argument("--no-pulumi-export", action="store_true", help="skip `pulumi stack export`")
    _common(parser)
    args = parser.parse_args(argv)
    try:
        args.out.mkdir(parents=True, exist_ok=True)
        folder = backup(args.stack, args.out, _database_from(args), _vault_from(args, args.stack),
                        args.vault_export, not args.no_pulumi_export)
    except Refused as error:
        print(f"backup refused: {error}", file=sys.stderr)
        return 3
    print(f"backup written to {folder}")
    return 0


def restore_main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="scripts/restore", description="Restore a stack's database (and Vault secret).")
    parser.add_argument("folder", type=Path,
                        help="a folder written by scripts/backup, or a scheduled dump (litellm-<stamp>.dump, "
                             "with its .sha256 beside it) copied out of the backup volume")
    parser.add_argument("--restore-vault", action="store_true", help="also write the backed-up Vault secret back")
    parser.add_argument("--yes", action="store_true", help="replace the database's contents without asking")
    _common(parser)
    args = parser.parse_args(argv)
    try:
        manifest_file = args.folder / "manifest.json"
        stack = json.loads(manifest_file.read_text())["stack"] if manifest_file.is_file() else "unknown"
        restore(args.folder, _database_from(args), _vault_from(args, stack), args.restore_vault, args.yes)
    except Refused as error:
        print(f"restore refused: {error}", file=sys.stderr)
        return 3
    except RuntimeError as error:
        print(f"restore failed: {error}", file=sys.stderr)
        return 1
    return 0


def fetch_main(argv=None) -> int:
    """Copy a scheduled dump (and its checksum) out of the stack's backup container, verified."""
    parser = argparse.ArgumentParser(prog="scripts/fetch-backup",
                                     description="Copy a scheduled dump out of the backup container.")
    parser.add_argument("stack", help="stack name (dev, prod, ...)")
    parser.add_argument("--out", required=True, type=Path, help="local folder to copy the dump into")
    parser.add_argument("--file", help="which dump (litellm-<stamp>.dump); default: the newest")
    args = parser.parse_args(argv)
    container = f"litellm-gateway-{args.stack}-pgbackup"
    try:
        if shutil.which("docker") is None:
            raise Refused("the docker CLI is not installed; run this on the Docker host or set DOCKER_HOST")
        listing = subprocess.run(["docker", "exec", container, "ls", "-1", "/backups"], capture_output=True, text=True)
        if listing.returncode != 0:
            raise Refused(f"cannot list /backups in {container}: {listing.stderr.strip()}")
        dumps = sorted(n for n in listing.stdout.split() if n.startswith("litellm-") and n.endswith(".dump"))
        if not dumps:
            raise Refused(f"{container} holds no dump yet (see `docker logs {container}`)")
        name = args.file or dumps[-1]
        if name not in dumps:
            raise Refused(f"{name} is not in {container}:/backups (there: {', '.join(dumps[-5:])})")
        args.out.mkdir(parents=True, exist_ok=True)
        for file in (name, f"{name}.sha256"):
            copied = subprocess.run(["docker", "cp", f"{container}:/backups/{file}", str(args.out / file)],
                                    capture_output=True, text=True)
            if copied.returncode != 0:
                raise Refused(f"docker cp of {file} failed: {copied.stderr.strip()}")
        verify_scheduled_dump(args.out / name)
    except Refused as error:
        print(f"fetch refused: {error}", file=sys.stderr)
        return 3
    print(f"{args.out / name} (checksum verified); restore it with: ./scripts/restore {args.out / name} ...")
    return 0
