"""`access`: teams, users and API keys with their limits, kept in the stack (BACKLOG-005).

The cross-checks that need the models and other sections are in config.checks.access.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal, Optional

from pydantic import Field

from ..types import AccessId, Budget, Count, Duration, Email, HttpUrl, Ref
from .base import Section

USER_ROLES = ("internal_user", "internal_user_viewer", "proxy_admin", "proxy_admin_viewer")
# The stack's own key for Prometheus (components/litellm_access.py declares it).
METRICS_KEY_ALIAS = "prometheus-metrics"
# LiteLLM's built-in admin user (the master key's user): the stack never adopts or deletes it.
RESERVED_USER_IDS = frozenset({"default_user_id"})



@dataclass(frozen=True)
class LimitField:
    """One limit as the settings, the config file and LiteLLM's management API name it."""

    field: str      # attribute of the settings models
    key: str        # config key
    litellm: str    # LiteLLM's parameter (/key/generate, /team/new, /user/new, general_settings defaults)


# The one table of limit names: the checks, the access objects and the rendered defaults use it.
LIMIT_FIELDS = (
    LimitField("rpm", "rpm", "rpm_limit"),
    LimitField("tpm", "tpm", "tpm_limit"),
    LimitField("max_parallel_requests", "maxParallelRequests", "max_parallel_requests"),
    LimitField("max_budget", "maxBudget", "max_budget"),
)
BUDGET_DURATION = LimitField("budget_duration", "budgetDuration", "budget_duration")
KEY_DURATION = LimitField("duration", "duration", "duration")

def litellm_limits(entry: object) -> dict:
    """The limits `entry` sets (a team, user, key or key defaults), under LiteLLM's parameter names."""
    return {limit.litellm: getattr(entry, limit.field) for limit in (*LIMIT_FIELDS, BUDGET_DURATION, KEY_DURATION)
            if getattr(entry, limit.field, None) is not None}


class AccessLimits(Section):
    rpm: Optional[Count] = None
    """Requests per minute."""
    tpm: Optional[Count] = None
    """Tokens per minute."""
    max_parallel_requests: Optional[Count] = None
    """Requests in flight at once."""
    max_budget: Optional[Budget] = None
    """Spend limit (USD) per budget period."""
    budget_duration: Optional[Duration] = None
    """Budget period (`30d`, `1mo`); the spend resets after it."""


class KeyDefaults(AccessLimits):
    duration: Optional[Duration] = None
    """How long a key lives (`90d`)."""


class UserDefaults(Section):
    max_budget: Optional[Budget] = None
    """Spend limit (USD) per budget period."""
    budget_duration: Optional[Duration] = None
    """Budget period (`30d`, `1mo`)."""
    models: tuple[Ref, ...] = ()
    """Models a user may use (none: all)."""


class AccessDefaults(Section):
    key_generate: KeyDefaults = KeyDefaults()
    """LiteLLM's defaults for keys made outside the stack (admin UI, API)."""
    internal_user: UserDefaults = UserDefaults()
    """LiteLLM's defaults for users made outside the stack."""
    upper_bound: KeyDefaults = KeyDefaults()
    """The ceiling no key may exceed: LiteLLM refuses `/key/generate` above it, and the stack's own keys
    must name a value within it."""


class Team(AccessLimits):
    name: AccessId
    """Team name; LiteLLM team id `<environment>-<name>`."""
    models: tuple[Ref, ...] = ()
    """Models the team may use (none: all)."""
    model_rpm: dict[Ref, Count] = Field(default_factory=dict)
    """Per-model requests per minute (`{model: n}`)."""
    model_tpm: dict[Ref, Count] = Field(default_factory=dict)
    """Per-model tokens per minute (`{model: n}`)."""
    members: tuple[Ref, ...] = ()
    """User ids (from `access.users`) in the team."""


class User(AccessLimits):
    id: AccessId
    """User id."""
    email: Optional[Email] = None
    """E-mail address."""
    role: Literal[USER_ROLES] = "internal_user"  # type: ignore[valid-type]
    """`internal_user`, `internal_user_viewer`, `proxy_admin` or `proxy_admin_viewer`."""
    teams: tuple[Ref, ...] = ()
    """Teams (from `access.teams`) the user belongs to."""
    models: tuple[Ref, ...] = ()
    """Models the user may use (none: all)."""


class Key(AccessLimits):
    alias: AccessId
    """Key alias; its value is kept in Vault at `<vault.path>/keys/<alias>`."""
    user: Optional[Ref] = None
    """Owner user id (from `access.users`)."""
    team: Optional[Ref] = None
    """Owner team (from `access.teams`)."""
    models: tuple[Ref, ...] = ()
    """Models the key may use (none: all its owner's)."""
    expires_after: Optional[Duration] = None
    """How long the key lives from its creation (`90d`); unset: it does not expire."""
    rotation: int = Field(default=0, ge=0)
    """Bump to give the key a new value: the old one is deleted from LiteLLM and Vault holds the new one
    (docs/operations.md, "Access control: teams, users, keys and their limits (BACKLOG-005)"). A key revoked in
    the admin UI comes back with a new value by itself."""


class AccessSettings(Section):
    management_url: Optional[HttpUrl] = None
    """Where `pulumi up` reaches the gateway's management API to keep teams, users and keys in line.
    Unset: `gatewayUrl` (the load balancer) as seen from the machine running Pulumi."""
    key_cache_ttl_seconds: int = Field(default=3, ge=1, le=600)
    """How long a replica trusts its cached copy of a key, user or team (LiteLLM's
    `user_api_key_cache_ttl`): a deleted or changed key is refused by every replica within this time."""
    defaults: AccessDefaults = AccessDefaults()
    """Defaults and ceilings for keys and users made outside the stack."""
    teams: tuple[Team, ...] = ()
    """Teams and their limits."""
    users: tuple[User, ...] = ()
    """Users and their limits."""
    keys: tuple[Key, ...] = ()
    """API keys and their limits; each names a user, a team or both."""
