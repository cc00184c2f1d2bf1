"""`parse_settings`: a stack's raw config values -> one validated `StackSettings`, or a
`SettingsError` listing every problem with its key path (pure Python, no Pulumi imports).

Each section is validated by its model (config/sections/); a section with problems is salvaged
(the wrong keys left out) so the cross-checks (config/checks/) still run on the rest; a key
already reported is not reported again.
"""

from __future__ import annotations

import copy
import re
from typing import Any, Iterable, Optional

from pydantic import TypeAdapter, ValidationError

from .checks import CROSS_CHECKS, SECRET_SOURCE_CHECKS, check_images, check_supplied_secret
from .errors import SettingsError
from .messages import plain_message
from .secret_keys import SECRET_KEYS
from .sections import SCALAR_DEFAULTS, SCALARS, SECTIONS, SECTIONS_BY_KEY
from .sections.kubernetes import PLATFORMS
from .stack import Parsed, StackSettings, SuppliedSecrets

__all__ = ["SettingsError", "parse_settings"]


# List items that have a name: (list key, the item's name field, what it is).
_NAMED_ITEMS = (("models", "name", "model"), ("gpuHosts", "name", "GPU host"), ("access.teams", "name", "team"),
                ("access.users", "id", "user"), ("access.keys", "alias", "key"))


def list_item_labels(raw: dict[str, Any]) -> dict[str, str]:
    """{"models[2]": "model 'mistral-7b'", ...} for the problems' key paths."""
    labels = {}
    for path, field, what in _NAMED_ITEMS:
        items: Any = raw
        for part in path.split("."):
            items = items.get(part) if isinstance(items, dict) else None
        for i, item in enumerate(items if isinstance(items, list) else []):
            if isinstance(item, dict) and isinstance(item.get(field), str):
                labels[f"{path}[{i}]"] = f"{what} '{item[field]}'"
    return labels


def _key_path(root: str, loc: tuple[Any, ...]) -> str:
    path = root
    for part in loc:
        path += f"[{part}]" if isinstance(part, int) else f".{part}"
    return path


def _pydantic_problems(root: str, error: ValidationError) -> list[tuple[str, str]]:
    items = error.errors()
    return [(_key_path(root, item["loc"]), plain_message(item)) for item in items
            if not _counts_only_valid_items(item, items)]


def _counts_only_valid_items(item: dict, items: list[dict]) -> bool:
    """A `too_short` that is not: pydantic counts only a list's valid items against its min_length, so a list of
    enough items, some of them wrong, is not also "too short" (the items' own problems say what is wrong)."""
    if item["type"] != "too_short":
        return False
    loc = tuple(item["loc"])
    wrong = {other["loc"][len(loc)] for other in items
             if len(other["loc"]) > len(loc) and tuple(other["loc"][:len(loc)]) == loc}
    context = item.get("ctx") or {}
    return context.get("actual_length", 0) + len(wrong) >= context.get("min_length", 0)


def _without(value: Any, loc: tuple[Any, ...]) -> None:
    """Remove the value at `loc` (a pydantic error location) from nested dicts/lists, in place."""
    parent = value
    for depth, part in enumerate(loc[:-1]):
        try:
            child = parent[part]
        except (KeyError, IndexError, TypeError):
            return
        if not isinstance(child, (dict, list)):
            # The error is about a scalar inside `parent[part]`: drop that whole field.
            loc = loc[:depth + 1]
            break
        parent = child
    last = loc[-1]
    if isinstance(parent, dict) and isinstance(last, str):
        parent.pop(last, None)
    elif isinstance(parent, dict):
        for key in [k for k in parent if k == last]:
            parent.pop(key)


def _validate_section(key: str, kind: Any, value: Any) -> tuple[Any, list[tuple[str, str]]]:
    """(parsed value, problems). With problems, the value is what remains valid once the wrong keys
    are left out (defaults in their place), so the cross-checks still run on the rest; None if that
    fails too."""
    adapter = TypeAdapter(kind)
    try:
        return adapter.validate_python(value), []
    except ValidationError as error:
        problems = _pydantic_problems(key, error)
        salvaged = copy.deepcopy(value)
        for item in error.errors():
            if item["type"] not in ("missing",) and item["loc"]:
                _without(salvaged, tuple(item["loc"]))
        try:
            return adapter.validate_python(salvaged), problems
        except ValidationError:
            return None, problems


def parse_settings(raw: dict[str, Any], secret_keys: frozenset[str] = frozenset(),
                   stack: Optional[str] = None, other_stacks: Iterable[str] = (),
                   earlier_problems: Iterable[tuple[str, str]] = ()) -> StackSettings:
    """Validate a stack's raw config (keys without the project prefix) into settings.

    `raw` holds decoded values: dicts and lists for structured keys, strings for scalars.
    `secret_keys` names the keys that Pulumi holds encrypted; `stack` is the stack's name when
    known (`environment` must equal it); `other_stacks` names the project's other stacks (their
    stack files), whose names this one may not take over; `earlier_problems` are the stack file's own
    (duplicate keys, foreign namespaces), reported first with the rest. Raises SettingsError.
    """
    problems: list[tuple[str, str]] = list(earlier_problems)
    parsed = Parsed(other_environments=frozenset(other_stacks))

    known = set(SECTIONS_BY_KEY) | set(SCALARS) | set(SECRET_KEYS)
    for key in sorted(set(raw) - known):
        problems.append((key, f"unknown key (known keys: {', '.join(sorted(known))})"))

    environment = raw.get("environment")
    if environment is None:
        problems.append(("environment", "required key is missing (for example: dev or prod)"))
    elif not isinstance(environment, str) or not re.fullmatch(r"[a-z][a-z0-9-]{0,19}", environment):
        problems.append(("environment", f"{environment!r} must be lowercase letters, digits and '-', up to 20 characters"))
    elif stack is not None and environment != stack:
        problems.append(("environment", (
            f"is {environment!r} but the stack is {stack!r}: container, volume and Vault names come from "
            f"it, so this stack would take over {environment}'s. Set environment: {stack}")))
    else:
        parsed.environment = environment

    platform = raw.get("platform", SCALAR_DEFAULTS["platform"])
    if platform not in PLATFORMS:
        problems.append(("platform", f"{platform!r} is not a platform: use {' or '.join(PLATFORMS)}"))
    else:
        parsed.platform = platform

    for spec in SECTIONS:
        if spec.key not in raw:
            if spec.required:
                problems.append((spec.key, "required key is missing"))
            else:
                setattr(parsed, spec.attribute, spec.kind())
            continue
        value, section_problems = _validate_section(spec.key, spec.kind, raw[spec.key])
        if value is not None:
            setattr(parsed, spec.attribute, value)
        problems.extend(section_problems)

    check_images(raw, problems)
    # Cross-checks run on what is valid; a key already reported is not reported again.
    reported = {key for key, _ in problems}
    more: list[tuple[str, str]] = []
    for cross_check in CROSS_CHECKS:
        cross_check(parsed, more)

    for key in SECRET_KEYS:
        if key in raw:
            value = raw[key]
            if not isinstance(value, str):
                problems.append((key, "must be a string"))
                continue
            check_supplied_secret(key, value, key in secret_keys, problems, generated_here=not (
                key == "redisPassword" and parsed.redis is not None and parsed.redis.mode == "external"))
            parsed.supplied[key] = value

    for cross_check in SECRET_SOURCE_CHECKS:
        cross_check(parsed, more)
    problems.extend(p for p in more if p[0] not in reported)

    if problems:
        raise SettingsError(problems, list_item_labels(raw))
    sections = {spec.attribute: getattr(parsed, spec.attribute) for spec in SECTIONS}
    return StackSettings(environment=parsed.environment, platform=parsed.platform, **sections, supplied_secrets=SuppliedSecrets(parsed.supplied))
