"""Copying a scheduled dump (and its checksum) out of the stack's backup container, verified."""

from __future__ import annotations

import subprocess
from pathlib import Path
from typing import Optional

from .database import require_docker
from .errors import Refused
from .manifest import SCHEDULED_DUMP, verify_scheduled_dump
from .stack import StackFacts


def fetch_scheduled_dump(facts: StackFacts, out: Path, name: Optional[str] = None) -> Path:
    """The dump `name` (default: the newest) copied into `out` with its .sha256, checksum verified."""
    container = facts.names.backup
    require_docker()
    listing = subprocess.run(["docker", "exec", container, "ls", "-1", "/backups"], capture_output=True, text=True)
    if listing.returncode != 0:
        raise Refused(f"cannot list /backups in {container}: {listing.stderr.strip()}")
    named = [(SCHEDULED_DUMP.fullmatch(n), n) for n in listing.stdout.split()]
    dumps = [n for _, n in sorted((m["stamp"], n) for m, n in named if m)]
    if not dumps:
        raise Refused(f"{container} holds no dump yet (see `docker logs {container}`)")
    name = name or dumps[-1]
    if name not in dumps:
        raise Refused(f"{name} is not in {container}:/backups (there: {', '.join(dumps[-5:])})")
    out.mkdir(parents=True, exist_ok=True)
    for file in (name, f"{name}.sha256"):
        copied = subprocess.run(["docker", "cp", f"{container}:/backups/{file}", str(out / file)],
                                capture_output=True, text=True)
        if copied.returncode != 0:
            raise Refused(f"docker cp of {file} failed: {copied.stderr.strip()}")
    verify_scheduled_dump(out / name)
    return out / name
