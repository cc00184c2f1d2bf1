"""The Pulumi CLI, run the way `scripts/stack` runs it: from the project directory, with the same
state backend unless PULUMI_BACKEND_URL names another. Secret values go on stdin, never on argv."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path
from typing import Optional

from .errors import Refused, StepFailed
from .stack import ROOT


def pulumi_environment() -> dict[str, str]:
    """The environment `scripts/stack` gives pulumi: the same state backend unless one is set."""
    env = dict(os.environ)
    if not env.get("PULUMI_BACKEND_URL"):
        env["PULUMI_BACKEND_URL"] = f"file://{ROOT / '.pulumi-state'}"
    return env


def require_cli(remedy: str) -> None:
    """Refused, naming `remedy`, when the Pulumi CLI is not on PATH."""
    if shutil.which("pulumi") is None:
        raise Refused(f"the Pulumi CLI is not installed{remedy}")


def _pulumi(*args: str, stdin: Optional[str] = None) -> subprocess.CompletedProcess:
    return subprocess.run(["pulumi", *args], input=stdin, capture_output=True, text=True, cwd=ROOT,
                          env=pulumi_environment())


def export_stack(stack: str, into: Path) -> None:
    """`pulumi stack export` (its secrets stay encrypted by Pulumi) into the file `into`."""
    done = _pulumi("stack", "export", "--stack", stack, "--file", str(into))
    if done.returncode != 0:
        raise Refused(f"pulumi stack export failed: {done.stderr.strip()}")


class StackConfig:
    """Sets the stack's secret config keys with the Pulumi CLI (values on stdin, never on argv)."""

    def __init__(self, stack: str):
        self.stack = stack

    def check(self) -> None:
        require_cli(": it is needed to give the containers the restored values (or pass --no-pulumi-config "
                    "and run scripts/adopt-vault-secret later)")
        done = _pulumi("config", "--stack", self.stack, "--json")
        if done.returncode != 0:
            raise Refused(f"`pulumi config --stack {self.stack}` failed: {done.stderr.strip()[:300]}")
        # `config set --secret` after the Vault write needs the stack's secrets manager (on a self-managed
        # backend, the passphrase). `config --show-secrets` opens it only when the config already holds a
        # secret, which a first restore's does not; exporting the state with its secrets always does (the
        # state holds the generated passwords). The output stays in this process's memory and is dropped;
        # only stderr is reported.
        opened = _pulumi("stack", "export", "--stack", self.stack, "--show-secrets")
        if opened.returncode != 0:
            raise Refused(f"the Pulumi CLI cannot open the {self.stack} stack's secrets: "
                          f"{opened.stderr.strip()[:300]}; nothing was changed")

    def set_secret(self, key: str, value: str) -> None:
        done = _pulumi("config", "set", "--secret", "--stack", self.stack, key, stdin=value)
        if done.returncode != 0:
            raise StepFailed(f"`pulumi config set --secret {key}` failed: {done.stderr.strip()[:300]}")
