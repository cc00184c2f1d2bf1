"""BACKLOG-005: teams, users and API keys declared in the stack, kept in line with the running gateway
(the resources themselves: components/litellm_objects.py). Each key's value lives in Vault at
<vault.path>/keys/<alias>, readable with a policy of its own.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any, Optional, Sequence

import pulumi
import pulumi_random as random
import pulumi_vault as vault

from config.secret_keys import VAULT_FIELDS
from config.sections.access import METRICS_KEY_ALIAS, litellm_limits
from config.stack import StackSettings
from renderers.haproxy import published_url
from renderers.vault_policy import render_read_policy
from .litellm_objects import LiteLLMObject

KEY_VAULT_FIELD = "api_key"


# --- the component ---------------------------------------------------------------------------------

def team_id(settings: StackSettings, name: str) -> str:
    return f"{settings.environment}-{name}"


def team_spec(team: Any) -> dict:
    spec = {"team_alias": team.name, "models": sorted(team.models), **litellm_limits(team)}
    if team.model_rpm:
        spec["model_rpm_limit"] = dict(team.model_rpm)
    if team.model_tpm:
        spec["model_tpm_limit"] = dict(team.model_tpm)
    return spec


def user_spec(settings: StackSettings, user: Any) -> dict:
    teams = set(user.teams) | {t.name for t in settings.access.teams if user.id in t.members}
    spec = {"user_role": user.role, "models": sorted(user.models), "teams": sorted(team_id(settings, t) for t in teams),
            **litellm_limits(user)}
    if user.email:
        spec["user_email"] = user.email
    return spec


def key_spec(settings: StackSettings, key: Any) -> dict:
    spec = {"key_alias": key.alias, "models": sorted(key.models), **litellm_limits(key)}
    if key.user:
        spec["user_id"] = key.user
    if key.team:
        spec["team_id"] = team_id(settings, key.team)
    if key.expires_after:
        spec["duration"] = key.expires_after
    return spec


def metrics_key_spec(settings: Optional[StackSettings] = None) -> dict:
    """May read /metrics and nothing else: no model, no management route. Its lifetime is explicit (LiteLLM
    would give it access.defaults.keyGenerate.duration, meant for keys made in the admin UI): the longest
    upperBound allows, else 100 years; the provider renews it on `up` once it is within a week of expiry."""
    spec = {"key_alias": METRICS_KEY_ALIAS, "allowed_routes": ["/metrics", "/metrics/"], "models": ["no-default-models"]}
    if settings is not None:
        defaults = settings.access.defaults
        spec["duration"] = defaults.upper_bound.duration or "36500d"
        spec.update(litellm_limits(defaults.upper_bound))  # a ceiling, never the UI keys' defaults
        spec.pop("budget_duration", None)
    spec["renew"] = True
    return spec


@dataclass
class AccessArgs:
    settings: StackSettings
    master_key: pulumi.Input[str]
    vault_provider: vault.Provider
    gateway_ready: Sequence[pulumi.Resource]  # the LiteLLM replicas, healthy when created
    # Where the provider finds the current master key after a rotation: the stack's Vault address
    # (empty: VAULT_ADDR) and, for the dev-mode Vault only, its root token (else VAULT_TOKEN).
    vault_address: pulumi.Input[str] = ""
    vault_dev_token: Optional[pulumi.Input[str]] = None


class Access(pulumi.ComponentResource):
    """Teams, users and keys; each key's value in Vault at <stack path>/keys/<alias> with a read policy."""

    key_paths: dict[str, str]
    key_policies: dict[str, pulumi.Output[str]]
    metrics_key: pulumi.Output[str]
    management_url: str

    def __init__(self, name: str, args: AccessArgs, opts: Optional[pulumi.ResourceOptions] = None):
        super().__init__("litellm-gateway:access:Access", name, None, opts)
        settings = args.settings
        access = settings.access
        # Through the load balancer (gatewayUrl) unless told otherwise.
        self.management_url = access.management_url or published_url(settings)
        after_gateway = pulumi.ResourceOptions(parent=self, depends_on=list(args.gateway_ready))
        vault_child = pulumi.ResourceOptions(parent=self, provider=args.vault_provider)
        vault_ref = pulumi.Output.all(args.vault_address, args.vault_dev_token).apply(lambda v: {
            "address": v[0] or None, "token": v[1], "mount": settings.vault.mount, "path": settings.vault_path,
            "field": VAULT_FIELDS["masterKey"], "skip_tls_verify": settings.vault.skip_tls_verify})

        def declare(resource_name, kind, display, ident, spec, depends_on=()):
            return LiteLLMObject(resource_name, kind, display, self.management_url, args.master_key, ident, spec,
                                 vault_ref, opts=pulumi.ResourceOptions.merge(after_gateway, pulumi.ResourceOptions(
                                     depends_on=[*args.gateway_ready, *depends_on])))

        self.teams = {t.name: declare(f"{name}-team-{t.name}", "team", t.name, team_id(settings, t.name),
                                      team_spec(t)) for t in access.teams}
        self.users = {u.id: declare(f"{name}-user-{u.id}", "user", u.id, u.id, user_spec(settings, u),
                                    depends_on=list(self.teams.values())) for u in access.users}
        self.keys: dict[str, LiteLLMObject] = {}
        self.key_paths, self.key_policies = {}, {}
        for key in access.keys:
            value = self._key_value(name, key.alias, key.rotation)
            owners = [self.users[key.user]] if key.user else []
            owners += [self.teams[key.team]] if key.team else []
            self.keys[key.alias] = declare(f"{name}-key-{key.alias}", "key", key.alias, value,
                                           key_spec(settings, key), depends_on=owners)
            path = f"{settings.vault_path}/keys/{key.alias}"
            vault.kv.SecretV2(
                f"{name}-key-{key.alias}-vault", mount=settings.vault.mount, name=path,
                # The value in use: after a revocation the provider's new one, not the generated one.
                data_json=pulumi.Output.secret(self.keys[key.alias].value.apply(lambda v: json.dumps({KEY_VAULT_FIELD: v}))),
                opts=vault_child,
            )
            policy = vault.Policy(
                f"{name}-key-{key.alias}-policy", name=settings.names.key_policy(key.alias),
                policy=render_read_policy(settings.vault.mount, path), opts=vault_child,
            )
            self.key_paths[key.alias] = f"{settings.vault.mount}/{path}"
            self.key_policies[key.alias] = policy.name

        # Prometheus's own key: /metrics only (not the master key).
        self.metrics = declare(f"{name}-key-{METRICS_KEY_ALIAS}", "key", METRICS_KEY_ALIAS,
                               self._key_value(name, METRICS_KEY_ALIAS), metrics_key_spec(settings))
        self.metrics_key = pulumi.Output.secret(self.metrics.value)
        self.register_outputs({"management_url": self.management_url})

    def key_outputs(self) -> dict:
        """The `accessKeys` output: where each key's value is kept, and the policy that reads it."""
        return {alias: {"vaultPath": path, "readPolicy": self.key_policies[alias]}
                for alias, path in self.key_paths.items()}

    def _key_value(self, name: str, alias: str, rotation: int = 0) -> pulumi.Output[str]:
        # A new rotation draws a new value (keepers), which replaces the key object (its ident).
        generated = random.RandomPassword(f"{name}-key-{alias}-value", length=48, special=False,
                                          keepers={"rotation": str(rotation)} if rotation else None,
                                          opts=pulumi.ResourceOptions(parent=self))
        return pulumi.Output.secret(generated.result.apply(lambda v: "sk-" + v))

