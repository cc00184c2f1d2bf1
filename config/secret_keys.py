"""The stack's secrets: which config keys a user may set as secrets, which of them the stack
generates when unset, and the field each is kept under in the stack's Vault secret (pure; the
settings, the secrets component, the offline check, backup/restore and the policy pack read it).
"""

from __future__ import annotations

# Secret config keys a user may set with `pulumi config set --secret <key>`, in the order the
# reference lists them.
SECRET_KEYS = ("masterKey", "saltKey", "uiPassword", "postgresPassword", "redisPassword", "grafanaAdminPassword",
               "gpuSshPrivateKey", "gatewayTlsCertificate", "gatewayTlsKey", "postgresUrl", "postgresReadReplicaUrl")
# Supplied material, never generated: the key, the certificates and an external database belong to the operator.
NOT_GENERATED = frozenset({"gpuSshPrivateKey", "gatewayTlsCertificate", "gatewayTlsKey", "postgresUrl",
                           "postgresReadReplicaUrl"})
# An external database's URLs (postgres.mode: external), with the key of their Vault reference.
DATABASE_URL_KEYS = {"postgresUrl": "postgres.external.urlVault",
                     "postgresReadReplicaUrl": "postgres.external.readReplicaUrlVault"}
# Generated when unset, with pulumi-random, and kept in Vault.
GENERATED = tuple(k for k in SECRET_KEYS if k not in NOT_GENERATED)
# Multi-line PEM material: the only secrets that may contain line breaks.
PEM_KEYS = frozenset({"gpuSshPrivateKey", "gatewayTlsCertificate", "gatewayTlsKey"})

# Field names inside the stack's Vault secret (consumers and the runbook read these). Every
# generated key has one; `prometheusPassword` is generated only, never supplied as config.
VAULT_FIELDS = {
    "masterKey": "LITELLM_MASTER_KEY",
    "saltKey": "LITELLM_SALT_KEY",
    "uiPassword": "UI_PASSWORD",
    "postgresPassword": "POSTGRES_PASSWORD",
    "redisPassword": "REDIS_PASSWORD",
    "grafanaAdminPassword": "GRAFANA_ADMIN_PASSWORD",
    "prometheusPassword": "PROMETHEUS_PASSWORD",
}
GENERATED_ONLY = frozenset({"prometheusPassword"})

PUBLICLY_KNOWN_MASTER_KEYS = frozenset({"sk-1234"})
MIN_MASTER_KEY_RANDOM_CHARS = 32
