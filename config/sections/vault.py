"""`vault`, and references to Vault secrets other sections hold (`{mount, path, field}`)."""

from __future__ import annotations

from typing import Literal, Optional

from pydantic import Field

from ..types import FieldName, VaultAddress, VaultMount, VaultPath, VaultPolicyName
from .base import Section


class VaultSettings(Section):
    mode: Literal["dev-container", "external"] = "external"
    """`external`: an existing Vault (`vault.address` or `VAULT_ADDR`, token from `VAULT_TOKEN`).
    `dev-container`: the stack runs Vault in dev mode on the local engine (dev stacks only; needs a
    `unix://` Docker host)."""
    address: Optional[VaultAddress] = None
    """Vault URL; `https://` outside dev stacks; not allowed with `dev-container`. Unset: `VAULT_ADDR`."""
    dev_image: str = "hashicorp/vault:1.20.4"
    """Image of the dev-mode Vault (pinned)."""
    dev_port: int = Field(default=8200, ge=1, le=65535)
    """Loopback port the dev-mode Vault is published on."""
    mount: VaultMount = "secret"
    """KV **v2** mount (must exist; dev mode creates `secret/`)."""
    path: Optional[VaultPath] = None
    """Secret path inside the mount. Unset: `litellm-gateway/<environment>`."""
    policy_name: Optional[VaultPolicyName] = None
    """Name of the read-only policy the stack declares for that path (never Vault's built-in `default` or
    `root`). Unset: `litellm-gateway-<environment>-read`."""
    skip_tls_verify: bool = False
    """dev stacks only: for a Vault with a self-signed certificate you cannot install."""


class TlsVaultRef(Section):
    mount: VaultMount = "secret"
    """KV v2 mount of the certificate secret."""
    path: VaultPath
    """Path of the secret holding the certificate chain and key."""
    certificate_field: FieldName = "certificate"
    """Field with the PEM certificate chain."""
    key_field: FieldName = "private_key"
    """Field with the PEM private key."""


class VaultFieldRef(Section):
    mount: VaultMount = "secret"
    """KV v2 mount of the secret."""
    path: VaultPath
    """Path of the secret."""
    field: FieldName = "private_key"
    """Field holding the value."""
