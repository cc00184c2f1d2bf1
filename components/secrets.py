"""BACKLOG-001: the gateway's secrets, generated once and kept in Vault KV v2 (one secret per stack)."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Optional

import pulumi
import pulumi_random as random
import pulumi_vault as vault

from config.names import POSTGRES_PORT
from config.secret_keys import VAULT_FIELDS
from config.stack import StackSettings
from config.values import postgres_url, postgres_url_problem, with_query
from renderers.data_stores import POSTGRES_CA_PATH
from renderers.vault_policy import render_read_policy
from .vault_access import vault_field


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
    database_url: pulumi.Output[str]                  # libpq's URL of the stack's or the external database
    read_replica_url: Optional[pulumi.Output[str]]    # an external read replica's, when there is one
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
        external_redis = settings.redis.external
        if settings.redis.mode == "external" and external_redis.password_vault is not None:
            # An external Redis' password stays where its owner keeps it; the stack's secret holds a copy.
            self.redis_password = vault_field(external_redis.password_vault, "redis.external.passwordVault",
                                              args.vault_provider)
        self.database_url, self.read_replica_url = database_urls(settings, self.postgres_password, args.vault_provider)
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


def database_urls(settings: StackSettings, postgres_password: pulumi.Input[str], vault_provider: vault.Provider
                  ) -> tuple[pulumi.Output[str], Optional[pulumi.Output[str]]]:
    """(database URL, read replica URL or None) in libpq's dialect, secrets from end to end: the stack's own
    database by its name, or an external one's URLs (secret config or Vault) with postgres.external's sslmode and
    CA certificate added (LiteLLM translates these for its Prisma engine; pg_dump and the exporter read them as
    they are)."""
    pg = settings.postgres
    if pg.mode == "container":
        url = pulumi.Output.from_input(postgres_password).apply(
            lambda password: postgres_url(pg.user, password, settings.names.postgres, POSTGRES_PORT, pg.database))
        return pulumi.Output.secret(url), None
    external = pg.external
    tls = {"sslmode": external.sslmode, **({"sslrootcert": POSTGRES_CA_PATH} if external.ca_certificate else {})}

    def url_of(key: str, vault_key: str, ref) -> Optional[pulumi.Output[str]]:
        supplied = settings.supplied_secrets.get(key)
        if supplied is not None:
            raw = pulumi.Output.secret(supplied)   # checked when the settings were read
        elif ref is not None:
            raw = vault_field(ref, f"postgres.external.{vault_key}", vault_provider, problem_of=postgres_url_problem)
        else:
            return None
        return pulumi.Output.secret(raw.apply(lambda url: with_query(url, **tls)))

    return (url_of("postgresUrl", "urlVault", external.url_vault),
            url_of("postgresReadReplicaUrl", "readReplicaUrlVault", external.read_replica_url_vault))
