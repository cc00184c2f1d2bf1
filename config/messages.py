"""Pydantic's validation errors in the words of someone editing a YAML stack file: what the key
must be and what it got, never a Python type name ("valid tuple", "instance of HostExporters")."""

from __future__ import annotations

from typing import Any

_LIST_HINT = "a list (`[a, b]`, or one `- item` per line)"
_MAPPING_HINT = "a mapping (`key: value` lines, or `{key: value}`)"


def yaml_kind(value: Any) -> str:
    """What a YAML author wrote, in YAML's terms."""
    if value is None:
        return "nothing (an empty value)"
    if isinstance(value, bool):
        return f"{str(value).lower()} (a boolean)"
    if isinstance(value, (int, float)):
        return f"{value!r} (a number)"
    if isinstance(value, str):
        return f"{value!r} (text)"
    if isinstance(value, (list, tuple)):
        return "a list"
    if isinstance(value, dict):
        return "a mapping"
    return type(value).__name__


def _bound(context: dict, name: str) -> str:
    value = context.get(name)
    return f"{value:g}" if isinstance(value, (int, float)) else str(value)


def plain_message(item: dict) -> str:
    """One pydantic error (`ValidationError.errors()` item) as a sentence."""
    kind, got, context = item["type"], item.get("input"), item.get("ctx") or {}
    got_text = yaml_kind(got)
    messages = {
        "extra_forbidden": "unknown key (check the spelling against docs/configuration.md)",
        "missing": "required key is missing",
        "tuple_type": f"must be {_LIST_HINT}, got {got_text}",
        "list_type": f"must be {_LIST_HINT}, got {got_text}",
        "dict_type": f"must be {_MAPPING_HINT}, got {got_text}",
        "model_type": f"must be {_MAPPING_HINT}, got {got_text}",
        "model_attributes_type": f"must be {_MAPPING_HINT}, got {got_text}",
        "int_parsing": f"must be a whole number, got {got_text}",
        "int_type": f"must be a whole number, got {got_text}",
        "int_from_float": f"must be a whole number, got {got_text}",
        "float_parsing": f"must be a number, got {got_text}",
        "float_type": f"must be a number, got {got_text}",
        "finite_number": "must be a finite number",
        "bool_parsing": f"must be true or false, got {got_text}",
        "bool_type": f"must be true or false, got {got_text}",
        "string_type": f"must be text, got {got_text} (quote it: \"...\")",
        "greater_than_equal": f"must be at least {_bound(context, 'ge')}, got {got!r}",
        "greater_than": f"must be more than {_bound(context, 'gt')}, got {got!r}",
        "less_than_equal": f"must be at most {_bound(context, 'le')}, got {got!r}",
        "less_than": f"must be less than {_bound(context, 'lt')}, got {got!r}",
        "too_short": f"must list at least {context.get('min_length')} item(s)",
        "too_long": f"must list at most {context.get('max_length')} item(s)",
        "string_too_short": f"must be at least {context.get('min_length')} characters long",
        "string_too_long": f"must be at most {context.get('max_length')} characters long",
        "literal_error": f"must be one of {context.get('expected')}, got {got_text}",
    }
    if kind == "value_error":
        return item["msg"].removeprefix("Value error, ")
    return messages.get(kind, item["msg"])
