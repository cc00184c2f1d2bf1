"""The access section's cross-checks: references to models, teams and users, duplicates, the upper bound."""

from __future__ import annotations

from typing import Optional

from ..sections.access import BUDGET_DURATION, LIMIT_FIELDS, METRICS_KEY_ALIAS, RESERVED_USER_IDS, AccessSettings
from ..types import duration_seconds
from ..stack import Parsed
from ..values import duplicates as _duplicates


def check_access_section(parsed: Parsed, problems) -> None:
    if parsed.access is not None:
        models = parsed.models
        check_access(parsed.access, {m.name for m in models} if models is not None else None, problems)


def check_access(access: AccessSettings, model_names: Optional[set[str]], problems: list[tuple[str, str]]) -> None:
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
        team_models = next((set(t.models) for t in access.teams if t.name == key.team), set())
        outside = sorted(m for m in set(key.models) - team_models
                         if model_names is None or m in model_names) if team_models else []  # unknown: reported above
        if outside:
            problems.append((f"access.keys[{i}].models", (
                f"{', '.join(repr(m) for m in outside)} {'is' if len(outside) == 1 else 'are'} not among the models of "
                f"team '{key.team}' ({sorted(team_models)}); the key could not call {'it' if len(outside) == 1 else 'them'}: "
                "add it to the team's models or remove it from the key's")))
        if key.team is not None and key.user is not None and key.team in teams:
            member = any(key.team in u.teams for u in access.users if u.id == key.user) or any(
                key.user in t.members for t in access.teams if t.name == key.team)
            if not member:
                problems.append((f"access.keys[{i}]", f"user '{key.user}' is not a member of team '{key.team}'"))
        for limit in LIMIT_FIELDS:
            ceiling, value = getattr(bound, limit.field), getattr(key, limit.field)
            if ceiling is not None and value is not None and value > ceiling:
                problems.append((f"access.keys[{i}].{limit.key}",
                                 f"{value:g} is above access.defaults.upperBound.{limit.key} ({ceiling:g})"))
            if ceiling is not None and value is None:
                problems.append((f"access.keys[{i}].{limit.key}",
                                 f"required: access.defaults.upperBound.{limit.key} is {ceiling:g}, and a key "
                                 "without a limit would be unlimited"))
    if bound.duration is not None:
        for i, key in enumerate(access.keys):
            if key.expires_after is None:
                problems.append((f"access.keys[{i}].expiresAfter",
                                 f"required: access.defaults.upperBound.duration is {bound.duration}"))
            elif duration_seconds(key.expires_after) > duration_seconds(bound.duration):
                problems.append((f"access.keys[{i}].expiresAfter",
                                 f"{key.expires_after} is longer than access.defaults.upperBound.duration ({bound.duration})"))
    for i, key in enumerate(access.keys):
        if key.alias == METRICS_KEY_ALIAS:
            problems.append((f"access.keys[{i}].alias", f"'{METRICS_KEY_ALIAS}' is the stack's own key for Prometheus; "
                             "choose another alias"))
        longer = _longer(key.budget_duration, bound.budget_duration)
        if longer:
            problems.append((f"access.keys[{i}].budgetDuration", f"{longer} access.defaults.upperBound.budgetDuration"))
    generated = access.defaults.key_generate
    for field, key in (("duration", "duration"), ("budget_duration", "budgetDuration")):
        longer = _longer(getattr(generated, field), getattr(bound, field))
        if longer:
            problems.append((f"access.defaults.keyGenerate.{key}", f"{longer} access.defaults.upperBound.{key}"))
    # LiteLLM fills what a request leaves unset from the defaults meant for objects made outside the
    # stack (keyGenerate, internalUser): a stack key or user must say each such value itself.
    for i, key in enumerate(access.keys):
        for limit in (*LIMIT_FIELDS, BUDGET_DURATION):
            default = getattr(generated, limit.field)
            if default is not None and getattr(key, limit.field) is None:
                problems.append((f"access.keys[{i}].{limit.key}", (
                    f"required: LiteLLM would give this key access.defaults.keyGenerate.{limit.key} ({default}), "
                    "which is meant for keys made outside the stack; set the key's own value")))
        if generated.duration is not None and key.expires_after is None:
            problems.append((f"access.keys[{i}].expiresAfter", (
                f"required: LiteLLM would give this key access.defaults.keyGenerate.duration ({generated.duration}) "
                "as its lifetime; set the key's own (expiresAfter)")))
    internal = access.defaults.internal_user
    for i, user in enumerate(access.users):
        for field, key in (("max_budget", "maxBudget"), ("budget_duration", "budgetDuration")):
            default = getattr(internal, field)
            if default is not None and getattr(user, field) is None and user.role not in ("proxy_admin",):
                problems.append((f"access.users[{i}].{key}", (
                    f"required: LiteLLM would give this user access.defaults.internalUser.{key} ({default}), which is "
                    "meant for users made outside the stack; set the user's own value")))
        if internal.models and not user.models and user.role not in ("proxy_admin",):
            problems.append((f"access.users[{i}].models", (
                f"required: LiteLLM would give this user access.defaults.internalUser.models ({list(internal.models)}); "
                "list the user's own")))
    seen_emails: dict[str, str] = {}
    for i, user in enumerate(access.users):
        if user.id in RESERVED_USER_IDS:
            problems.append((f"access.users[{i}].id", f"'{user.id}' is LiteLLM's built-in admin user (the master "
                             "key's); the stack may not manage it"))
        if user.email:
            other = seen_emails.setdefault(user.email.lower(), user.id)
            if other != user.id:
                problems.append((f"access.users[{i}].email", f"'{user.email}' is user '{other}''s e-mail too "
                                 "(e-mail addresses do not differ by case)"))
    for limit in LIMIT_FIELDS:
        default, ceiling = getattr(access.defaults.key_generate, limit.field), getattr(bound, limit.field)
        if default is not None and ceiling is not None and default > ceiling:
            problems.append((f"access.defaults.keyGenerate.{limit.key}",
                             f"{default:g} is above access.defaults.upperBound.{limit.key} ({ceiling:g})"))


def models_a_key_can_call(access: AccessSettings, key, all_models: set[str]) -> set[str]:
    """What LiteLLM lets `key` call: its own list, else its team's, else its user's, else every model."""
    for names in (key.models,
                  next((t.models for t in access.teams if t.name == key.team), ()),
                  next((u.models for u in access.users if u.id == key.user), ())):
        if names:
            return set(names) & all_models
    return set(all_models)


def models_no_key_can_call(access: AccessSettings, model_names: list[str]) -> list[str]:
    """Declared models that none of the declared keys may call (empty when the stack declares no keys:
    then only the master key and keys made in the admin UI reach the models)."""
    if not access.keys:
        return []
    callable_models = set().union(*(models_a_key_can_call(access, key, set(model_names)) for key in access.keys))
    return [name for name in model_names if name not in callable_models]


def _longer(value, ceiling) -> str:
    """'90d is longer than' when duration `value` exceeds `ceiling` (both set), else ''."""
    if value is None or ceiling is None or duration_seconds(value) <= duration_seconds(ceiling):
        return ""
    return f"{value} is longer than {ceiling}, the ceiling in"
