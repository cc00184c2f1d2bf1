"""Making the stack's config (and the database role) agree with its Vault secret: after a restore
of the secret, or a `vault kv rollback`.

Container environments come from Pulumi's config and state, not from Vault: without this, a
restored or rolled-back Vault secret would never reach the containers, and the next `pulumi up`
would write the state's values back over it."""

from __future__ import annotations

from typing import Optional

from config.secret_keys import GENERATED_ONLY, VAULT_FIELDS

from .database import Database
from .errors import Refused, StepFailed
from .pulumi_cli import StackConfig
from .stack import StackFacts


def secret_problem(secret: dict) -> Optional[str]:
    """Why `secret` is not one this stack wrote (a field it writes is missing), or None."""
    missing = sorted({field for key, field in VAULT_FIELDS.items() if key not in GENERATED_ONLY} - set(secret))
    return f"the Vault secret lacks {', '.join(missing)}; it is not a secret this stack wrote" if missing else None


def not_adopted(facts: StackFacts) -> set[str]:
    """Secret config keys the stack's Vault secret holds but the stack must not take back: an external database's
    (its password is in postgresUrl, its role is not the stack's) and a Redis password read from elsewhere."""
    settings, keys = facts.settings, set()
    if settings.postgres.mode == "external":
        keys.add("postgresPassword")
    if settings.redis.mode == "external" and settings.redis.external.password_vault is not None:
        keys.add("redisPassword")
    return keys


def adopt_vault_secret(facts: StackFacts, secret: dict, database: Optional[Database], config: StackConfig,
                       say=print) -> list[str]:
    """Set the stack's secret config (and the role's password) from the Vault secret `secret`.

    Returns the config keys set. Refused when the secret lacks a field the stack writes; StepFailed
    when a change fails (the role's password, a `pulumi config set`)."""
    # Generated-only fields (Prometheus's password) stay what the stack generated; Vault gets them
    # back from the state at the next `up`.
    by_field = {field: key for key, field in VAULT_FIELDS.items() if key not in GENERATED_ONLY}
    unknown = sorted(set(secret) - set(by_field) - {VAULT_FIELDS[k] for k in GENERATED_ONLY})
    problem = secret_problem(secret)
    if problem:
        raise Refused(problem)
    if unknown:
        say(f"note: fields not used by the stack are left in Vault only: {', '.join(unknown)}")
    # What the stack does not own is left alone: an external database's role and password (in its URL), an
    # external Redis' password kept in Vault elsewhere (redis.external.passwordVault).
    settings = facts.settings
    for key in not_adopted(facts):
        by_field.pop(VAULT_FIELDS[key], None)
    password_field = VAULT_FIELDS["postgresPassword"]
    if database is not None and settings.postgres.mode == "container":
        # The role's password lives in the database cluster, not in the dump: set it to Vault's.
        database.set_role_password(facts.settings.postgres.user, secret[password_field])
        say(f"set the password of database role {facts.settings.postgres.user} to Vault's {password_field}")
    done: list[str] = []
    for field, key in sorted(by_field.items()):
        try:
            config.set_secret(key, secret[field])
        except StepFailed as error:
            left = [k for f, k in sorted(by_field.items()) if k not in done]
            raise StepFailed(f"{error}; the stack's secret config was set for {', '.join(done) or 'none'} and NOT for "
                             f"{', '.join(left)}") from None
        done.append(key)
    say(f"set the stack's secret config {', '.join(done)} from Vault (`pulumi config --stack {facts.stack}`)")
    return done
