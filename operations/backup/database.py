"""The LiteLLM database, reached with the PostgreSQL client tools: locally by URL, or inside the
stack's Postgres container with `docker exec`."""

from __future__ import annotations

import os
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Optional
from urllib.parse import unquote, urlsplit, urlunsplit

from .errors import Refused, StepFailed

CLIENT_TOOLS = "apt-get install postgresql-client"


def require_docker() -> None:
    if shutil.which("docker") is None:
        raise Refused("the docker CLI is not installed; run this on the Docker host or set DOCKER_HOST")


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
            raise Refused(f"{program} is not installed ({CLIENT_TOOLS})")
        if self.container:
            require_docker()
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
            raise StepFailed(f"cannot set the password of role {role}: {done.stderr.strip()}")

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


def pg_restore_list(dump: Path) -> subprocess.CompletedProcess:
    """`pg_restore --list` of an archive: its table of contents, or its error when it cannot read it."""
    if shutil.which("pg_restore") is None:
        raise Refused(f"pg_restore is not installed ({CLIENT_TOOLS})")
    return subprocess.run(["pg_restore", "--list", str(dump)], capture_output=True, text=True)


def dump_problem(dump: Path) -> Optional[str]:
    """None when pg_restore can read the archive, else its error."""
    done = pg_restore_list(dump)
    return None if done.returncode == 0 else (done.stderr.strip() or f"exit {done.returncode}")
