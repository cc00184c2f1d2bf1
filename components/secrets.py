"""BACKLOG-001: the gateway's secrets, generated once and kept in Vault KV v2 (one secret per stack)."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Optional

import pulumi
import pulumi_random as random
import pulumi_vault as vault

from config.secret_keys import VAULT_FIELDS
from config.stack import StackSettings
from renderers.vault_policy import render_read_policy


@dataclass
class GatewaySecretsArgs:
    settings: StackSettings
    vault_provider: vault.Provider


class GatewaySecrets(pulumi.ComponentResource):
    """Master key, salt key, admin UI, Postgres and Redis passwords, stored in Vault with a read policy."""

    master_key: pulumi.Output[str]
    salt_key: pulumi.Output[str]
    ui_password: pulumi.Output[str]
    postgres_password: pulumi.Output[str]
    redis_password: pulumi.Output[str]
    grafana_admin_password: pulumi.Output[str]
    prometheus_password: pulumi.Output[str]
    prometheus_password_hash: pulumi.Output[str]
    secret_path: str
    stored_fields: list[str]
    secret_version: pulumi.Output[int]
    policy_name: pulumi.Output[str]

    def __init__(self, name: str, args: GatewaySecretsArgs, opts: Optional[pulumi.ResourceOptions] = None):
        super().__init__("litellm-gateway:secrets:GatewaySecrets", name, None, opts)
        settings = args.settings
        supplied = settings.supplied_secrets

        def generated(key: str, prefix: str = "", length: int = 32, keepers=None, protect=False) -> pulumi.Output[str]:
            # Declared even when the value is supplied: setting a key (scripts/adopt-vault-secret does,
            # after a restore) must not delete the generated one, least of all the protected salt key.
            password = random.RandomPassword(
                f"{name}-{key}", length=length, special=False, keepers=keepers,
                opts=pulumi.ResourceOptions(parent=self, protect=protect),
            )
            if supplied.get(key) is not None:
                return pulumi.Output.secret(supplied.get(key))
            # The engine marks `result` secret; under mocks it does not, so wrap it here as well.
            return pulumi.Output.secret(password.result.apply(lambda value: prefix + value))

        self.master_key = generated(
            "masterKey", prefix="sk-", length=48,
            # Changing gateway.masterKeyRotation replaces the key (see docs/operations.md, "Rotating the master key").
            keepers={"rotation": str(settings.gateway.master_key_rotation)},
        )
        self.salt_key = generated(
            "saltKey", prefix="sk-", length=48,
            # Credentials in the database are encrypted with it: it must never change.
            protect=settings.secrets.protect_salt_key,
        )
        self.ui_password = generated("uiPassword")
        self.postgres_password = generated("postgresPassword")
        self.redis_password = generated("redisPassword")
        self.grafana_admin_password = generated("grafanaAdminPassword")
        prometheus = random.RandomPassword(f"{name}-prometheusPassword", length=32, special=False,
                                           opts=pulumi.ResourceOptions(parent=self))
        self.prometheus_password = pulumi.Output.secret(prometheus.result)
        # Stored in state with the password; stable across runs, unlike hashing here with a fresh salt.
        self.prometheus_password_hash = pulumi.Output.secret(prometheus.bcrypt_hash)

        values = {
            VAULT_FIELDS["masterKey"]: self.master_key,
            VAULT_FIELDS["saltKey"]: self.salt_key,
            VAULT_FIELDS["uiPassword"]: self.ui_password,
            VAULT_FIELDS["postgresPassword"]: self.postgres_password,
            VAULT_FIELDS["redisPassword"]: self.redis_password,
            VAULT_FIELDS["grafanaAdminPassword"]: self.grafana_admin_password,
            VAULT_FIELDS["prometheusPassword"]: self.prometheus_password,
        }
        self.stored_fields = sorted(values)
        vault_child = pulumi.ResourceOptions(parent=self, provider=args.vault_provider)
        secret = vault.kv.SecretV2(
            f"{name}-kv",
            mount=settings.vault.mount,
            name=settings.vault_path,
            data_json=pulumi.Output.secret(
                pulumi.Output.all(**values).apply(lambda v: json.dumps(v, sort_keys=True))
            ),
            opts=pulumi.ResourceOptions.merge(
                vault_child,
                # `pulumi destroy` leaves the secret (and with it the salt key) in Vault.
                pulumi.ResourceOptions(retain_on_delete=settings.secrets.protect_salt_key),
            ),
        )
        policy = vault.Policy(
            f"{name}-read-policy",
            name=settings.vault_policy_name,
            policy=render_read_policy(settings.vault.mount, settings.vault_path),
            opts=vault_child,
        )
        self.secret_path = f"{settings.vault.mount}/{settings.vault_path}"
        self.secret_version = secret.metadata.apply(_version_of)
        self.policy_name = policy.name
        self.register_outputs(
            {"secret_path": self.secret_path, "secret_version": self.secret_version, "policy_name": self.policy_name}
        )


def _version_of(metadata: Optional[dict]) -> Optional[int]:
    if not metadata or metadata.get("version") in (None, ""):
        return None
    return int(metadata["version"])
