"""A backup's manifest and checksums: written last by a backup, verified first by a restore.

SHA256SUMS is in `sha256sum` format (`sha256sum -c SHA256SUMS` checks every file, manifest.json
included); manifest.json lists every other file's digest. A scheduled dump (the backup container's
`litellm-<stack>-<stamp>.dump`) has its own `.sha256` beside it and gets a manifest made up here."""

from __future__ import annotations

import hashlib
import json
import re
from pathlib import Path

from .database import pg_restore_list
from .errors import Refused

MANIFEST, SUMS = "manifest.json", "SHA256SUMS"
_SUM_LINE = re.compile(r"(?P<digest>[0-9a-f]{64}) [ *](?P<name>[^\n]+)")
SCHEDULED_DUMP = re.compile(r"litellm-(?:(?P<stack>[a-z][a-z0-9-]*)-)?(?P<stamp>[0-9]{8}T[0-9]{6}Z)\.dump")


def sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def file_digests(folder: Path) -> dict[str, str]:
    """The SHA-256 of every file below `folder` (by path relative to it) but manifest.json and SHA256SUMS."""
    files = sorted(p for p in folder.rglob("*") if p.is_file() and p.name not in (SUMS, MANIFEST))
    return {str(p.relative_to(folder)): sha256(p) for p in files}


def seal(folder: Path, manifest: dict) -> None:
    """Write manifest.json (with every file's digest) and SHA256SUMS (those and the manifest's)."""
    manifest["files"] = file_digests(folder)
    (folder / MANIFEST).write_text(json.dumps(manifest, indent=2, sort_keys=True))
    sums = dict(manifest["files"], **{MANIFEST: sha256(folder / MANIFEST)})
    (folder / SUMS).write_text("".join(f"{d}  {n}\n" for n, d in sorted(sums.items())))


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


def inside(folder: Path, name: str) -> Path:
    """`folder / name`, Refused when the name leads outside the folder."""
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
    manifest_path, sums_path = folder / MANIFEST, folder / SUMS
    if not manifest_path.is_file() or not sums_path.is_file():
        raise Refused(f"{folder} is not a backup folder (manifest.json or SHA256SUMS missing)")
    listed = _read_sums(sums_path)
    if sha256(manifest_path) != listed.get(MANIFEST):
        raise Refused("checksum mismatch for manifest.json; nothing was changed")
    manifest = _load_manifest(manifest_path)
    unlisted = sorted(set(listed) - set(manifest["files"]) - {MANIFEST})
    if unlisted:
        raise Refused(f"SHA256SUMS lists files the manifest does not ({', '.join(unlisted)}); nothing was changed")
    for name, digest in manifest["files"].items():
        path = inside(folder, name)
        if not path.is_file():
            raise Refused(f"{name} is missing from the backup; nothing was changed")
        actual = sha256(path)
        if actual != digest or listed.get(name) != digest:
            raise Refused(f"checksum mismatch for {name} (expected {digest[:16]}..., got {actual[:16]}...): "
                          "the file is truncated or altered; nothing was changed")
    return manifest


def verify_scheduled_dump(dump: Path) -> dict:
    """A manifest for a dump written by the backup container (checksum file beside it); else Refused."""
    name = SCHEDULED_DUMP.fullmatch(dump.name)
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
    done = pg_restore_list(dump)
    if done.returncode != 0:
        raise Refused(f"{dump.name} is not a readable pg_dump archive ({done.stderr.strip()}); nothing was changed")
    major = next((int(line.split(":", 1)[1].strip().split(".")[0]) for line in done.stdout.splitlines()
                  if line.startswith(";     Dumped from database version:")), 0)
    return {"stack": name["stack"], "files": {dump.name: expected}, "vault": {},
            "database": {"file": dump.name, "server_major": major, "row_counts": None}}
