"""The dev-mode Vault runs on the local engine and is its own address."""

from __future__ import annotations

from ..stack import Parsed


def check_vault(parsed: Parsed, problems) -> None:
    vault = parsed.vault
    if vault is None or vault.mode != "dev-container":
        return
    if vault.address:
        problems.append(("vault.address", "must not be set with vault.mode dev-container (the stack runs its own Vault)"))
    if parsed.docker is not None and not parsed.docker.host.startswith("unix://"):
        problems.append(("vault.mode", "dev-container needs the local Docker engine (docker.host unix://...): "
                         "the stack talks to the dev Vault on 127.0.0.1"))
