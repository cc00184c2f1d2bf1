"""`secrets`: how the generated secrets are kept (the secret config keys: config.secret_keys)."""

from __future__ import annotations

from .base import Section


class SecretsSettings(Section):
    protect_salt_key: bool = True
    """Protect the salt key and keep the Vault secret on destroy (a policy requires it outside dev). The salt
    key encrypts credentials stored in the database; it must never change."""
