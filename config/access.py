"""The `access` section: teams, users, API keys and their limits, kept in the stack (BACKLOG-005).

Pure settings (pydantic models and cross-checks); `config.settings` parses the section with the rest
and calls `check_access` for the checks that need the models and other sections.
"""

from __future__ import annotations

import re
from typing import Annotated, Any, Literal, Optional

from pydantic import AfterValidator, Field

from .values import duplicates as _duplicates

# LiteLLM's duration strings: seconds, minutes, hours, days, months ("30d", "1mo").
_DURATION = re.compile(r"[1-9][0-9]{0,5}(s|m|h|d|mo)")
_ID = re.compile(r"[a-z0-9]([a-z0-9._-]{0,62}[a-z0-9])?")
USER_ROLES = ("internal_user", "internal_user_viewer", "proxy_admin", "proxy_admin_viewer")


def _full(pattern: re.Pattern, message: str):
    def validate(value: str) -> str:
        if not pattern.fullmatch(value):
            raise ValueError(message.format(value=value))
        return value
    return AfterValidator(validate)


Duration = Annotated[str, _full(_DURATION, "{value!r} is not a duration like 30s, 15m, 12h, 30d or 1mo")]
AccessId = Annotated[str, _full(_ID, "{value!r} must be lowercase letters, digits and . _ -, 1-64 characters, "
                                     "starting and ending with a letter or digit")]
Email = Annotated[str, _full(re.compile(r"[^@\s]{1,64}@[A-Za-z0-9.-]{1,253}\.[A-Za-z]{2,63}"),
                             "{value!r} is not an e-mail address")]
def _no_control(value: str) -> str:
    from .values import control_character_problem

    problem = control_character_problem(value)
    if problem:
        raise ValueError(problem)
    return value


Ref = Annotated[str, AfterValidator(_no_control)]  # a name that must match a declared model, team or user
Count = Annotated[int, Field(ge=1, le=10_000_000)]
Budget = Annotated[float, Field(gt=0, le=1_000_000_000)]


def build_models(base):
    """The access models on `base` (settings' _Section: camelCase keys, unknown keys refused)."""

    class Limits(base):
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

    class KeyDefaults(Limits):
        duration: Optional[Duration] = None
        """How long a key lives (`90d`)."""

    class UserDefaults(base):
        max_budget: Optional[Budget] = None
        """Spend limit (USD) per budget period."""
        budget_duration: Optional[Duration] = None
        """Budget period (`30d`, `1mo`)."""
        models: tuple[Ref, ...] = ()
        """Models a user may use (none: all)."""

    class AccessDefaults(base):
        key_generate: KeyDefaults = KeyDefaults()
        """LiteLLM's defaults for keys made outside the stack (admin UI, API)."""
        internal_user: UserDefaults = UserDefaults()
        """LiteLLM's defaults for users made outside the stack."""
        upper_bound: KeyDefaults = KeyDefaults()
        """The ceiling no key may exceed: LiteLLM refuses `/key/generate` above it, and the stack's own keys
        must name a value within it."""

    class Team(Limits):
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

    class User(Limits):
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

    class Key(Limits):
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

    class AccessSettings(base):
        management_url: Optional[Annotated[str, _full(re.compile(r"https?://[^\s/]+(/[^\s]*)?"),
                                                      "{value!r} must be an http:// or https:// URL")]] = None
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

    return AccessSettings


LIMIT_FIELDS = ("rpm", "tpm", "max_parallel_requests", "max_budget")
_CAMEL = {"rpm": "rpm", "tpm": "tpm", "max_parallel_requests": "maxParallelRequests", "max_budget": "maxBudget"}


_UNIT_SECONDS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "mo": 30 * 86400}


def duration_seconds(duration: str) -> int:
    """LiteLLM's duration string in seconds (a month counts 30 days)."""
    unit = "mo" if duration.endswith("mo") else duration[-1]
    return int(duration[: -len(unit)]) * _UNIT_SECONDS[unit]


def check_access(access: Any, model_names: Optional[set[str]], problems: list[tuple[str, str]]) -> None:
    """Cross-checks of the access section: references, duplicates, the upper bound."""
    teams = {t.name for t in access.teams}
    users = {u.id for u in access.users}
    for dup in _duplicates([t.name for t in access.teams]):
        problems.append(("access.teams", f"team '{dup}' is declared more than once"))
    for dup in _duplicates([u.id for u in access.users]):
        problems.append(("access.users", f"user '{dup}' is declared more than once"))
    for dup in _duplicates([k.alias for k in access.keys]):
        problems.append(("access.keys", f"key alias '{dup}' is declared more than once"))

    def check_models(key: str, names) -> None:
        if model_names is None:
            return
        for name in names:
            if name not in model_names:
                problems.append((key, f"unknown model '{name}' (declared: {sorted(model_names)})"))

    check_models("access.defaults.internalUser.models", access.defaults.internal_user.models)
    for i, team in enumerate(access.teams):
        check_models(f"access.teams[{i}].models", team.models)
        check_models(f"access.teams[{i}].modelRpm", team.model_rpm)
        check_models(f"access.teams[{i}].modelTpm", team.model_tpm)
        for member in team.members:
            if member not in users:
                problems.append((f"access.teams[{i}].members", f"unknown user '{member}' (declared: {sorted(users)})"))
        if team.models:
            for name in list(team.model_rpm) + list(team.model_tpm):
                if name not in team.models:
                    problems.append((f"access.teams[{i}]", f"a per-model limit names '{name}', which the team may not use"))
    for i, user in enumerate(access.users):
        check_models(f"access.users[{i}].models", user.models)
        for team in user.teams:
            if team not in teams:
                problems.append((f"access.users[{i}].teams", f"unknown team '{team}' (declared: {sorted(teams)})"))
    bound = access.defaults.upper_bound
    for i, key in enumerate(access.keys):
        check_models(f"access.keys[{i}].models", key.models)
        if key.user is None and key.team is None:
            problems.append((f"access.keys[{i}]", "name its owner: a declared user, a declared team, or both"))
        if key.user is not None and key.user not in users:
            problems.append((f"access.keys[{i}].user", f"unknown user '{key.user}' (declared: {sorted(users)})"))
        if key.team is not None and key.team not in teams:
            problems.append((f"access.keys[{i}].team", f"unknown team '{key.team}' (declared: {sorted(teams)})"))
        if key.team is not None and key.user is not None and key.team in teams:
            member = any(key.team in u.teams for u in access.users if u.id == key.user) or any(
                key.user in t.members for t in access.teams if t.name == key.team)
            if not member:
                problems.append((f"access.keys[{i}]", f"user '{key.user}' is not a member of team '{key.team}'"))
        for field in LIMIT_FIELDS:
            ceiling, value = getattr(bound, field), getattr(key, field)
            if ceiling is not None and value is not None and value > ceiling:
                problems.append((f"access.keys[{i}].{_CAMEL[field]}",
                                 f"{value:g} is above access.defaults.upperBound.{_CAMEL[field]} ({ceiling:g})"))
            if ceiling is not None and value is None:
                problems.append((f"access.keys[{i}].{_CAMEL[field]}",
                                 f"required: access.defaults.upperBound.{_CAMEL[field]} is {ceiling:g}, and a key "
                                 "without a limit would be unlimited"))
    if bound.duration is not None:
        for i, key in enumerate(access.keys):
            if key.expires_after is None:
                problems.append((f"access.keys[{i}].expiresAfter",
                                 f"required: access.defaults.upperBound.duration is {bound.duration}"))
            elif duration_seconds(key.expires_after) > duration_seconds(bound.duration):
                problems.append((f"access.keys[{i}].expiresAfter",
                                 f"{key.expires_after} is longer than access.defaults.upperBound.duration ({bound.duration})"))
    for field in LIMIT_FIELDS:
        default, ceiling = getattr(access.defaults.key_generate, field), getattr(bound, field)
        if default is not None and ceiling is not None and default > ceiling:
            problems.append((f"access.defaults.keyGenerate.{_CAMEL[field]}",
                             f"{default:g} is above access.defaults.upperBound.{_CAMEL[field]} ({ceiling:g})"))
