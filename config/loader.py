"""Read the project's Pulumi config namespace once and validate it (the only Pulumi-facing part of config/)."""

from __future__ import annotations

import json
from typing import Any

import pulumi
from pulumi.runtime import config as runtime_config

from .errors import SettingsError
from .names import PROJECT
from .parse import parse_settings
from .sections import STRUCTURED_KEYS
from .stack import StackSettings
from .stack_file import namespace_problems, stack_names


def _merged_config() -> dict[str, Any]:
    # The language host passes config in the PULUMI_CONFIG environment variable; the Automation API
    # and tests set it in the runtime. Read both, the runtime winning.
    return {**runtime_config.get_config_env(), **runtime_config.CONFIG.get()}


def raw_stack_config() -> tuple[dict[str, Any], frozenset[str]]:
    """The project's config values (key without prefix -> decoded value) and which are secret."""
    raw: dict[str, Any] = {}
    secret: set[str] = set()
    prefix = f"{PROJECT}:"
    merged = _merged_config()
    secret_names = set(runtime_config.get_config_secret_keys_env()) | {
        k for k in merged if runtime_config.is_config_secret(k)
    }
    for full_key, value in merged.items():
        if not full_key.startswith(prefix):
            continue
        key = full_key[len(prefix):]
        if key in STRUCTURED_KEYS and isinstance(value, str):
            try:
                value = json.loads(value)
            except json.JSONDecodeError:
                pass  # parse_settings reports the wrong type with the key path
        raw[key] = value
        if full_key in secret_names:
            secret.add(key)
    return raw, frozenset(secret)


def load_settings() -> StackSettings:
    """Parse and validate the stack's config, or stop the program with every problem listed."""
    raw, secret_keys = raw_stack_config()
    try:
        return parse_settings(raw, secret_keys, stack=pulumi.get_stack(), other_stacks=stack_names(),
                              # a misspelled namespace would otherwise vanish silently
                              earlier_problems=namespace_problems(_merged_config()))
    except SettingsError as error:
        # RunError: Pulumi prints the message without a stack trace, before any resource exists.
        raise pulumi.RunError(str(error)) from None


__all__ = ["load_settings", "raw_stack_config"]
