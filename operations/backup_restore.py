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
import re
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


# --- the stack's own settings ---------------------------------------------------------------------

@dataclass(frozen=True)
class StackFacts:
    """What backup and restore take from Pulumi.<stack>.yaml (never from flags that could disagree)."""

    stack: str
    settings: object  # config.settings.StackSettings

    @property
    def postgres_container(self) -> str:
        return f"{self.settings.resource_prefix()}-postgres"

    @property
    def vault_mount(self) -> str:
        return self.settings.vault.mount

    @property
    def vault_path(self) -> str:
        return self.settings.vault_path


def load_stack(stack: str) -> StackFacts:
    """The stack's validated settings, read before anything is done; else Refused."""
    import yaml

    sys.path.insert(0, str(ROOT))
    from config.settings import PROJECT, SettingsError, parse_settings

    stack_file = ROOT / f"Pulumi.{stack}.yaml"
    if not stack_file.is_file():
        known = sorted(p.name[len("Pulumi."):-len(".yaml")] for p in ROOT.glob("Pulumi.*.yaml"))
        raise Refused(f"no stack file {stack_file.name} (stacks: {', '.join(known)})")
    try:
        document = yaml.safe_load(stack_file.read_text()) or {}
    except yaml.YAMLError as error:
        raise Refused(f"{stack_file.name} is not valid YAML: {error}") from None
    config = document.get("config") if isinstance(document, dict) else None
    raw = {k.split(":", 1)[1]: v for k, v in (config or {}).items() if k.startswith(f"{PROJECT}:")}
    # Encrypted values are not needed here; stand-ins keep the settings valid.
    encrypted = {k for k, v in raw.items() if isinstance(v, dict) and "secure" in v}
    raw = {k: v for k, v in raw.items() if k not in encrypted}
    if "gpuSshPrivateKey" in encrypted:
        raw["gpuSshPrivateKey"] = "-----BEGIN OPENSSH PRIVATE KEY-----\nstand-in\n-----END OPENSSH PRIVATE KEY-----\n"
    try:
        settings = parse_settings(raw, frozenset(encrypted), stack=stack)
    except SettingsError as error:
        raise Refused(f"{stack_file.name}: {error}") from None
    return StackFacts(stack, settings)


# --- database access -----------------------------------------------------------------------------

@dataclass
class Database:
    """Where the LiteLLM database is: a URL for local client tools, or a container to `docker exec`.

    A password in the URL is taken out of it and handed to libpq as PGPASSWORD, so it never appears
    on a command line (`ps` shows every process's arguments to every user)."""

    url: Optional[str] = None
    container: Optional[str] = None
    user: str = "litellm"
    name: str = "litellm"

    def __post_init__(self):
        self._password: Optional[str] = None
        if self.url:
            from urllib.parse import unquote, urlsplit, urlunsplit

            parts = urlsplit(self.url)
            if parts.scheme not in ("postgresql", "postgres"):
                raise Refused("the database URL must start with postgresql://")
            if parts.password is not None:
                self._password = unquote(parts.password)
                netloc = parts.netloc.rsplit("@", 1)[1]
                user = parts.netloc.rsplit("@", 1)[0].split(":", 1)[0]
                self.url = urlunsplit((parts.scheme, f"{user}@{netloc}", parts.path, parts.query, parts.fragment))

    def command(self, program: str, *args: str) -> list[str]:
        if self.container:
            return ["docker", "exec", "-i", self.container, program, "-U", self.user, "-d", self.name, *args]
        return [program, f"--dbname={self.url}", *args]

    def environment(self) -> dict[str, str]:
        env = dict(os.environ)
        if self._password is not None:
            env["PGPASSWORD"] = self._password
        return env

    def run(self, program: str, *args: str, stdin=None, stdout=None, input_text=None) -> subprocess.CompletedProcess:
        if not self.container and shutil.which(program) is None:
            raise Refused(f"{program} is not installed (apt-get install postgresql-client)")
        if self.container and shutil.which("docker") is None:
            raise Refused("the docker CLI is not installed; run this on the Docker host or set DOCKER_HOST")
        text = stdout is None and stdin is None
        return subprocess.run(self.command(program, *args), stdin=stdin, stdout=stdout or subprocess.PIPE,
                              stderr=subprocess.PIPE, text=text, input=input_text, env=self.environment(),
                              check=False)

    def sql(self, query: str) -> str:
        done = self.run("psql", "-X", "-A", "-t", "-v", "ON_ERROR_STOP=1", "-c", query)
        if done.returncode != 0:
            raise Refused(f"cannot query the database: {done.stderr.strip()}")
        return done.stdout.strip()

    def set_role_password(self, role: str, password: str) -> None:
        """ALTER ROLE ... PASSWORD, the statement on stdin (never on a command line)."""
        literal = password.replace("'", "''")
        identifier = role.replace('"', '""')
        done = self.run("psql", "-X", "-q", "-v", "ON_ERROR_STOP=1",
                        input_text=f'ALTER ROLE "{identifier}" PASSWORD \'{literal}\';\n')
        if done.returncode != 0:
            raise RuntimeError(f"cannot set the password of role {role}: {done.stderr.strip()}")

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
            detail = error.read().decode(errors="replace")[:200].replace("\\n", " ").replace("\\t", "")
            raise Refused(f"Vault {method} {url_path}: HTTP {error.code} {detail}") from None
        except urllib.error.URLError as error:
            raise Refused(f"Vault at {self.address} is not reachable: {error.reason}") from None
        except (ValueError, OSError) as error:
            raise Refused(f"Vault at {self.address} gave no usable answer: {error}") from None

    @property
    def data_path(self) -> str:
        return f"{self.mount}/data/{self.path}"

    def read(self) -> tuple[dict, int]:
        answer = self._call("GET", self.data_path)["data"]
        return answer["data"], int(answer["metadata"]["version"])

    def check_can_write(self) -> None:
        """Refused unless the token is valid and may write the secret (checked before any change)."""
        self._call("GET", "auth/token/lookup-self")
        answer = self._call("POST", "sys/capabilities-self", {"paths": [self.data_path]})
        capabilities = set(answer.get(self.data_path) or answer.get("capabilities") or [])
        if not capabilities & {"root", "sudo", "update", "create"} or "deny" in capabilities:
            raise Refused(f"the Vault token may not write {self.data_path} (its capabilities there: "
                          f"{', '.join(sorted(capabilities)) or 'none'})")

    def write(self, data: dict) -> int:
        return int(self._call("POST", self.data_path, {"data": data})["data"]["version"])


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


# --- Pulumi stack config (the values the containers get) --------------------------------------------

def pulumi_environment() -> dict[str, str]:
    """The environment `scripts/stack` gives pulumi: the same state backend unless one is set."""
    env = dict(os.environ)
    if not env.get("PULUMI_BACKEND_URL"):
        env["PULUMI_BACKEND_URL"] = f"file://{ROOT / '.pulumi-state'}"
    return env


class StackConfig:
    """Sets the stack's secret config keys with the Pulumi CLI (values on stdin, never on argv)."""

    def __init__(self, stack: str):
        self.stack = stack

    def check(self) -> None:
        if shutil.which("pulumi") is None:
            raise Refused("the Pulumi CLI is not installed: it is needed to give the containers the restored "
                          "values (or pass --no-pulumi-config and run scripts/adopt-vault-secret later)")
        done = subprocess.run(["pulumi", "config", "--stack", self.stack, "--json"], capture_output=True,
                              text=True, cwd=ROOT, env=pulumi_environment())
        if done.returncode != 0:
            raise Refused(f"`pulumi config --stack {self.stack}` failed: {done.stderr.strip()[:300]}")

    def set_secret(self, key: str, value: str) -> None:
        done = subprocess.run(["pulumi", "config", "set", "--secret", "--stack", self.stack, key], input=value,
                              capture_output=True, text=True, cwd=ROOT, env=pulumi_environment())
        if done.returncode != 0:
            raise RuntimeError(f"`pulumi config set --secret {key}` failed: {done.stderr.strip()[:300]}")


def adopt_vault_secret(facts: StackFacts, secret: dict, database: Optional[Database], config: StackConfig,
                       say=print) -> list[str]:
    """Make the stack's config (and the database role) agree with the Vault secret `secret`.

    Container environments come from Pulumi's config and state, not from Vault: without this, a
    restored or rolled-back Vault secret would never reach the containers, and the next `pulumi up`
    would write the state's values back over it. Returns the config keys set."""
    from components.secrets import GENERATED_ONLY, VAULT_FIELDS

    # Generated-only fields (Prometheus's password) stay what the stack generated; Vault gets them
    # back from the state at the next `up`.
    by_field = {field: key for key, field in VAULT_FIELDS.items() if key not in GENERATED_ONLY}
    unknown = sorted(set(secret) - set(by_field) - {VAULT_FIELDS[k] for k in GENERATED_ONLY})
    missing = sorted(set(by_field) - set(secret))
    if missing:
        raise Refused(f"the Vault secret lacks {', '.join(missing)}; it is not a secret this stack wrote")
    if unknown:
        say(f"note: fields not used by the stack are left in Vault only: {', '.join(unknown)}")
    password_field = VAULT_FIELDS["postgresPassword"]
    if database is not None:
        # The role's password lives in the database cluster, not in the dump: set it to Vault's.
        database.set_role_password(facts.settings.postgres.user, secret[password_field])
        say(f"set the password of database role {facts.settings.postgres.user} to Vault's {password_field}")
    done = []
    for field, key in sorted(by_field.items()):
        config.set_secret(key, secret[field])
        done.append(key)
    say(f"set the stack's secret config {', '.join(done)} from Vault (`pulumi config --stack {facts.stack}`)")
    return done


# --- checksums -------------------------------------------------------------------------------------

_SUM_LINE = re.compile(r"(?P<digest>[0-9a-f]{64}) [ *](?P<name>[^\n]+)")
_SCHEDULED_DUMP = re.compile(r"litellm-(?:(?P<stack>[a-z][a-z0-9-]*)-)?(?P<stamp>[0-9]{8}T[0-9]{6}Z)\.dump")


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


def _read_sums(path: Path) -> dict[str, str]:
    """name -> digest from a sha256sum file; Refused on any line that is not one."""
    try:
        text = path.read_text()
    except (OSError, UnicodeDecodeError) as error:
        raise Refused(f"cannot read {path.name}: {error}; nothing was changed") from None
    listed = {}
    for number, line in enumerate(text.splitlines(), 1):
        match = _SUM_LINE.fullmatch(line)
        if not match:
            raise Refused(f"{path.name} line {number} is not '<sha256>  <file name>': the file is damaged; "
                          "nothing was changed")
        listed[match["name"]] = match["digest"]
    if not listed:
        raise Refused(f"{path.name} is empty: the backup's checksums are missing; nothing was changed")
    return listed


def _inside(folder: Path, name: str) -> Path:
    path = (folder / name).resolve()
    if not isinstance(name, str) or name.startswith("/") or folder.resolve() not in path.parents:
        raise Refused(f"the backup names a file outside its folder ({name!r}); nothing was changed")
    return path


def _load_manifest(path: Path) -> dict:
    try:
        manifest = json.loads(path.read_text())
    except (OSError, UnicodeDecodeError, ValueError) as error:
        raise Refused(f"manifest.json is not readable JSON ({error}): the backup is damaged; nothing was changed") from None
    problems = []
    if not isinstance(manifest, dict):
        problems.append("it is not an object")
    else:
        if not isinstance(manifest.get("stack"), str):
            problems.append("'stack' is missing")
        files = manifest.get("files")
        if not isinstance(files, dict) or not all(isinstance(k, str) and isinstance(v, str) and re.fullmatch(
                r"[0-9a-f]{64}", v) for k, v in files.items()):
            problems.append("'files' is not a map of file names to SHA-256 digests")
        database = manifest.get("database")
        if not isinstance(database, dict) or not isinstance(database.get("file"), str) or \
                not isinstance(database.get("server_major"), int):
            problems.append("'database' does not name the dump and its server version")
        elif isinstance(files, dict) and database["file"] not in files:
            problems.append(f"the dump {database['file']!r} is not among the checksummed files")
        if not isinstance(manifest.get("vault"), dict):
            problems.append("'vault' is missing")
    if problems:
        raise Refused(f"manifest.json is not a backup manifest ({'; '.join(problems)}); nothing was changed")
    return manifest


def verify(folder: Path) -> dict:
    """The manifest, once every file is present and matches its checksum; else Refused."""
    manifest_path, sums_path = folder / "manifest.json", folder / "SHA256SUMS"
    if not manifest_path.is_file() or not sums_path.is_file():
        raise Refused(f"{folder} is not a backup folder (manifest.json or SHA256SUMS missing)")
    listed = _read_sums(sums_path)
    if sha256(manifest_path) != listed.get("manifest.json"):
        raise Refused("checksum mismatch for manifest.json; nothing was changed")
    manifest = _load_manifest(manifest_path)
    unlisted = sorted(set(listed) - set(manifest["files"]) - {"manifest.json"})
    if unlisted:
        raise Refused(f"SHA256SUMS lists files the manifest does not ({', '.join(unlisted)}); nothing was changed")
    for name, digest in manifest["files"].items():
        path = _inside(folder, name)
        if not path.is_file():
            raise Refused(f"{name} is missing from the backup; nothing was changed")
        actual = sha256(path)
        if actual != digest or listed.get(name) != digest:
            raise Refused(f"checksum mismatch for {name} (expected {digest[:16]}..., got {actual[:16]}...): "
                          "the file is truncated or altered; nothing was changed")
    return manifest


def verify_scheduled_dump(dump: Path) -> dict:
    """A manifest for a dump written by the backup container (checksum file beside it); else Refused."""
    name = _SCHEDULED_DUMP.fullmatch(dump.name)
    if not name:
        raise Refused(f"{dump.name} is not a scheduled dump's name (litellm-<stack>-<UTC stamp>.dump); "
                      "nothing was changed")
    sums = dump.with_name(dump.name + ".sha256")
    if not sums.is_file():
        raise Refused(f"{sums.name} is missing beside {dump.name}; nothing was changed")
    listed = _read_sums(sums)
    if set(listed) != {dump.name}:
        raise Refused(f"{sums.name} is not the checksum of {dump.name} (it lists {', '.join(sorted(listed))}); "
                      "nothing was changed")
    expected = listed[dump.name]
    if sha256(dump) != expected:
        raise Refused(f"checksum mismatch for {dump.name}: the file is truncated or altered; nothing was changed")
    done = subprocess.run(["pg_restore", "--list", str(dump)], capture_output=True, text=True)
    if done.returncode != 0:
        raise Refused(f"{dump.name} is not a readable pg_dump archive ({done.stderr.strip()}); nothing was changed")
    major = next((int(line.split(":", 1)[1].strip().split(".")[0]) for line in done.stdout.splitlines()
                  if line.startswith(";     Dumped from database version:")), 0)
    return {"stack": name["stack"], "files": {dump.name: expected}, "vault": {},
            "database": {"file": dump.name, "server_major": major, "row_counts": None}}


# --- backup ----------------------------------------------------------------------------------------

def _claim_folder(partial: Path, folder: Path) -> Path:
    """Move the finished backup into place under `folder`'s name, or the next free `<name>-N`."""
    for attempt in range(100):
        target = folder if attempt == 0 else folder.with_name(f"{folder.name}-{attempt + 1}")
        if target.exists():
            continue
        try:
            target.mkdir()  # atomic claim: a second backup in the same second gets the next name
        except FileExistsError:
            continue
        target.rmdir()
        partial.rename(target)
        return target
    raise Refused(f"cannot find a free folder name next to {folder}")


def backup(facts: StackFacts, out: Path, database: Database, vault: Optional[Vault], vault_export: str,
           pulumi_export: bool, now: Optional[dt.datetime] = None, say=print) -> Path:
    now = now or dt.datetime.now(dt.timezone.utc)
    stack = facts.stack
    folder = out / f"litellm-gateway-{stack}-{now:%Y%m%dT%H%M%SZ}"
    if pulumi_export and shutil.which("pulumi") is None:
        raise Refused("the Pulumi CLI is not installed; install it or pass --no-pulumi-export")
    if vault_export == "encrypted" and vault is not None and not os.environ.get("BACKUP_PASSPHRASE"):
        raise Refused("BACKUP_PASSPHRASE is not set: it encrypts (and decrypts) the Vault secret export")
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
        problem = _pg_restore_list(dump)
        if problem:
            raise Refused(f"the dump just written is not readable: {problem}")
        version = database.server_version_num()
        manifest["database"] = {"file": "database.dump", "format": "custom", "server_version_num": version,
                                "server_major": version // 10000, "row_counts": database.row_counts()}

        if vault is not None:
            (partial / "vault-secret.meta.json").write_text(json.dumps(meta, indent=2))
            if vault_export == "encrypted":
                (partial / "vault-secret.json.enc").write_bytes(_openssl(False, json.dumps(data).encode()))
                manifest["vault"]["export"] = "vault-secret.json.enc"

        if pulumi_export:
            done = subprocess.run(["pulumi", "stack", "export", "--stack", stack, "--file",
                                   str(partial / "pulumi-stack.json")], capture_output=True, text=True, cwd=ROOT,
                                  env=pulumi_environment())
            if done.returncode != 0:
                raise Refused(f"pulumi stack export failed: {done.stderr.strip()}")
            manifest["pulumi"] = {"file": "pulumi-stack.json"}
        else:
            manifest["pulumi"] = {"skipped": "--no-pulumi-export"}

        manifest["rendered"] = _render_config(facts, partial / "rendered")
        manifest["files"] = _write_checksums(partial)
        (partial / "manifest.json").write_text(json.dumps(manifest, indent=2, sort_keys=True))
        sums = dict(manifest["files"], **{"manifest.json": sha256(partial / "manifest.json")})
        (partial / "SHA256SUMS").write_text("".join(f"{d}  {n}\n" for n, d in sorted(sums.items())))
        return _claim_folder(partial, folder)
    finally:
        shutil.rmtree(partial, ignore_errors=True)


def _render_config(facts: StackFacts, into: Path) -> list[str]:
    """The stack's rendered configuration, from Pulumi.<stack>.yaml (no secrets in it)."""
    from renderers.litellm_config import render_litellm_config
    from renderers.monitoring import render_alert_rules, render_prometheus_config

    settings = facts.settings
    into.mkdir(parents=True)
    files = {
        "litellm-config.yaml": render_litellm_config(settings, redis_host=f"{settings.resource_prefix()}-redis"),
        "prometheus.yml": render_prometheus_config(settings),
        "litellm-gateway.rules.yml": render_alert_rules(settings),
        "Pulumi.yaml.stack-config": (ROOT / f"Pulumi.{facts.stack}.yaml").read_text(),
    }
    for name, text in files.items():
        (into / name).write_text(text)
    return [f"rendered/{name}" for name in files]


# --- restore ---------------------------------------------------------------------------------------

class PartialRestore(Exception):
    """A step ran and a later one failed: what was done, and how to finish or undo it."""


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


def restore(source: Path, plan: RestorePlan, say=print) -> None:
    """Restore from a backup folder (scripts/backup) or a scheduled dump file (the backup container).

    Every check runs before the first change (backup integrity, stack, dump readable, server
    version, Vault token and permission, Pulumi CLI). After a change, a failure is reported as a
    PartialRestore naming what was done and how to finish."""
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
        problem = _pg_restore_list(dump)
        if problem:
            raise Refused(f"{dump.name} is not a readable pg_dump archive ({problem}); nothing was changed")
        target_version = plan.database.server_version_num()
        if target_version // 10000 < manifest["database"]["server_major"]:
            raise Refused(f"the dump comes from PostgreSQL {manifest['database']['server_major']}, the target runs "
                          f"{target_version // 10000}: restore into the same or a newer major version; nothing was changed")
        say(f"checked: dump readable, PostgreSQL {manifest['database']['server_major']} -> {target_version // 10000}")

    secret = None
    if plan.restore_vault:
        if plan.vault is None:
            raise Refused("--restore-vault needs VAULT_ADDR and VAULT_TOKEN; nothing was changed")
        export = manifest["vault"].get("export")
        if not export:
            raise Refused("this backup holds no Vault export (it was taken with --vault-export metadata or "
                          "--no-vault); nothing was changed")
        secret = json.loads(_openssl(True, _inside(folder, export).read_bytes()))
        plan.vault.check_can_write()
        say(f"checked: the Vault token may write {plan.vault.data_path}")
        if plan.config is not None:
            plan.config.check()
            say(f"checked: the Pulumi CLI reaches the {plan.target.stack} stack's config")
    if not plan.confirmed:
        raise Refused("add --yes to replace the database's contents (all checks passed; nothing was changed)")

    done: list[str] = []
    if plan.database is not None:
        _restore_database(dump, manifest, plan.database, say)
        done.append(f"the database was restored from {source.name}")
    if secret is None:
        return
    finish = f"./scripts/restore {source} --stack {plan.target.stack} --restore-vault --vault-only --yes"
    try:
        version = plan.vault.write(secret)
    except Refused as error:
        raise PartialRestore(_partial_message(done, f"the Vault secret was NOT written: {error}", finish)) from None
    done.append(f"the Vault secret {plan.vault.data_path} was written as version {version} (the content of "
                f"version {manifest['vault'].get('version')})")
    say(done[-1])
    if plan.config is None:
        say("the containers still use the old values: run ./scripts/adopt-vault-secret "
            f"{plan.target.stack} --docker-container {plan.target.postgres_container}, then ./scripts/stack up "
            f"{plan.target.stack}")
        return
    try:
        adopt_vault_secret(plan.target, secret, plan.role_database or plan.database, plan.config, say)
    except (RuntimeError, Refused) as error:
        raise PartialRestore(_partial_message(
            done, f"the stack's config was NOT updated from it: {error}",
            f"./scripts/adopt-vault-secret {plan.target.stack} --docker-container {plan.target.postgres_container}"))
    say(f"next: ./scripts/stack up {plan.target.stack} gives the containers the restored values")


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
        raise RuntimeError(f"pg_restore failed and rolled back its transaction (nothing was changed): {err.strip()}")
    counts = database.row_counts()
    expected = manifest["database"]["row_counts"]
    if expected is None:  # a scheduled dump records no row counts
        say(f"restored the database from {dump.name}: {len(counts)} tables, {sum(counts.values())} rows")
        return
    differing = {t: (expected.get(t), counts.get(t)) for t in expected if counts.get(t) != expected.get(t)}
    if differing:
        raise RuntimeError(f"restored, but row counts differ from the backup: {differing}")
    say(f"restored the database from {dump.parent.name}: {len(expected)} tables, {sum(expected.values())} rows, "
        "row counts match the backup")


# --- command line ----------------------------------------------------------------------------------

def _database_from(args, facts: StackFacts) -> Database:
    pg = facts.settings.postgres
    if args.docker_container:
        return Database(container=args.docker_container, user=pg.user, name=pg.database)
    url = args.database_url or os.environ.get("DATABASE_URL")
    if not url:
        raise Refused(f"give --database-url (or DATABASE_URL; the password in PGPASSWORD or ~/.pgpass), or "
                      f"--docker-container {facts.postgres_container}")
    return Database(url=url, user=pg.user, name=pg.database)


def _vault_from(facts: StackFacts) -> Optional[Vault]:
    address = os.environ.get("VAULT_ADDR") or facts.settings.vault.address
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


def _fail(kind: str, error: Exception, code: int) -> int:
    print(f"{kind}: {error}", file=sys.stderr)
    return code


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
    try:
        facts = load_stack(args.stack)
        vault = None if args.no_vault else _vault_from(facts)
        if vault is None and not args.no_vault:
            raise Refused("VAULT_ADDR and VAULT_TOKEN are needed to back up the stack's Vault secret, which holds "
                          "the salt key (without it, credentials stored in the database cannot be decrypted after "
                          "a restore). Set them, or pass --no-vault to back up the database alone")
        database = _database_from(args, facts)
        args.out.mkdir(parents=True, exist_ok=True)
        folder = backup(facts, args.out, database, vault, args.vault_export, not args.no_pulumi_export)
    except Refused as error:
        return _fail("backup refused", error, 3)
    print(f"backup written to {folder}")
    if args.no_vault:
        print("WARNING: --no-vault: this backup holds NO copy of the Vault secret and its salt key. Restored "
              "alone, it cannot decrypt the credentials LiteLLM stored in the database; keep a Vault backup "
              "of the salt key (docs/RUNBOOK.md section 5).", file=sys.stderr)
    return 0


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
    try:
        if not args.folder.exists():
            raise Refused(f"{args.folder} does not exist; nothing was changed")
        if args.vault_only and not args.restore_vault:
            raise Refused("--vault-only goes with --restore-vault")
        facts = load_stack(args.stack)
        needs_database = not args.vault_only or (args.restore_vault and not args.no_pulumi_config)
        database = _database_from(args, facts) if needs_database else None
        plan = RestorePlan(
            target=facts, database=None if args.vault_only else database,
            vault=_vault_from(facts) if args.restore_vault else None, restore_vault=args.restore_vault,
            config=None if args.no_pulumi_config else StackConfig(args.stack),
            force_other_stack=args.force_other_stack, confirmed=args.yes,
        )
        plan.role_database = database
        restore(args.folder, plan)
    except Refused as error:
        return _fail("restore refused", error, 3)
    except PartialRestore as error:
        return _fail("restore incomplete", error, 4)
    except RuntimeError as error:
        return _fail("restore failed", error, 1)
    return 0


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
    try:
        facts = load_stack(args.stack)
        vault = _vault_from(facts)
        if vault is None:
            raise Refused("VAULT_ADDR and VAULT_TOKEN are needed to read the stack's Vault secret")
        database = _database_from(args, facts)
        database.server_version_num()  # reachable before anything changes
        secret, version = vault.read()
        config = StackConfig(args.stack)
        config.check()
        if not args.yes:
            raise Refused(f"add --yes to set the {args.stack} stack's secret config and the database role's password "
                          f"from version {version} of {vault.data_path} (all checks passed; nothing was changed)")
        adopt_vault_secret(facts, secret, database, config)
    except Refused as error:
        return _fail("adopt refused", error, 3)
    except RuntimeError as error:
        return _fail("adopt failed", error, 1)
    print(f"next: ./scripts/stack up {args.stack} gives the containers the values of version {version}")
    return 0


def fetch_main(argv=None) -> int:
    """Copy a scheduled dump (and its checksum) out of the stack's backup container, verified."""
    parser = argparse.ArgumentParser(prog="scripts/fetch-backup",
                                     description="Copy a scheduled dump out of the backup container.")
    parser.add_argument("stack", help="stack name (dev, prod, ...)")
    parser.add_argument("--out", required=True, type=Path, help="local folder to copy the dump into")
    parser.add_argument("--file", help="which dump (litellm-<stack>-<stamp>.dump); default: the newest")
    args = parser.parse_args(argv)
    try:
        container = f"{load_stack(args.stack).settings.resource_prefix()}-pgbackup"
        if shutil.which("docker") is None:
            raise Refused("the docker CLI is not installed; run this on the Docker host or set DOCKER_HOST")
        listing = subprocess.run(["docker", "exec", container, "ls", "-1", "/backups"], capture_output=True, text=True)
        if listing.returncode != 0:
            raise Refused(f"cannot list /backups in {container}: {listing.stderr.strip()}")
        named = [(_SCHEDULED_DUMP.fullmatch(n), n) for n in listing.stdout.split()]
        dumps = [n for _, n in sorted((m["stamp"], n) for m, n in named if m)]
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
    print(f"{args.out / name} (checksum verified); restore it with: ./scripts/restore {args.out / name} "
          f"--stack {args.stack} ...")
    return 0
