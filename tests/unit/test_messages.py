"""Every settings error reads as advice to someone editing YAML: it names the key (and the list
item's name where it has one) and says what the key must be, never pydantic's Python words.
Generated over every key of the configuration reference."""

from __future__ import annotations

import copy
import re

import pytest

from config import reference
from config.errors import SettingsError
from config.parse import parse_settings
from config.sections import SECTIONS
from harness import REDIS_TOPOLOGIES, stack_file_config, with_redis_topology

PYDANTIC_WORDS = re.compile(r"Input should|instance of|valid tuple|valid dictionary|valid list|Value error|"
                            r"unable to parse|fractional part|\btype=|pydantic", re.I)


def every_key() -> list[tuple[str, str]]:
    out = []
    for spec in SECTIONS:
        model, suffix = reference._model_of(spec.kind)
        out += [(path, kind) for path, kind, _, _ in reference.rows(model, spec.key + suffix)]
    return out


def wrong_value(kind: str):
    """A value of another YAML kind than `kind` wants."""
    if kind.startswith(("list", "map", "object")):
        return "just-text"
    if kind.startswith(("integer", "number")):
        return "many"
    if kind == "boolean":
        return "maybe"
    return ["a", "list"]  # string-like and one-of


def set_path(raw: dict, path: str, value) -> bool:
    """Set `path` (`a.b[].c`: the first item of a list) in raw; False when a list on the way is empty."""
    node = raw
    parts = path.split(".")
    for i, part in enumerate(parts):
        is_list = part.endswith("[]")
        name = part[:-2] if is_list else part
        last = i == len(parts) - 1
        if last and not is_list:
            node[name] = value
            return True
        if is_list:
            items = node.get(name)
            if not isinstance(items, list) or not items:
                return False
            if last:
                items[0] = value
                return True
            node = items[0]
        else:
            node = node.setdefault(name, {})
            if not isinstance(node, dict):
                return False
    return True


@pytest.mark.parametrize("path, kind", every_key())
def test_a_value_of_the_wrong_kind_is_named_in_yaml_words(path, kind):
    # The first fixture that has an item on the way (lists may be empty); the ext one's Redis behind Sentinel and
    # in a cluster for the keys of those.
    candidates = [("prod", stack_file_config("prod")), ("dev", stack_file_config("dev"))] + [
        ("ext", with_redis_topology(stack_file_config("ext"), topology)) for topology in REDIS_TOPOLOGIES]
    for stack, config in candidates:
        raw = copy.deepcopy(config)
        if set_path(raw, path, wrong_value(kind)):
            break
    else:
        raise AssertionError(f"no fixture has an item under {path}: add one to tests/fixtures")
    with pytest.raises(SettingsError) as error:
        parse_settings(raw, stack=stack)
    text = str(error.value)
    assert not PYDANTIC_WORDS.search(text), text
    assert any(k.replace("[0]", "[]") == path or k.startswith(path.split("[]")[0]) for k, _ in error.value.problems), text


def test_a_problem_inside_a_named_list_item_says_which_item():
    raw = copy.deepcopy(stack_file_config("prod"))
    second = raw["models"][1]
    second["rpm"] = 0
    with pytest.raises(SettingsError) as error:
        parse_settings(raw, stack="prod")
    assert f"models[1].rpm: must be at least 1, got 0 [in model '{second['name']}']" in str(error.value)


def test_a_pasted_ssh_keyscan_line_says_to_leave_out_the_host():
    raw = copy.deepcopy(stack_file_config("prod"))
    host = next(h for h in raw["gpuHosts"] if "hostKey" in h.get("ssh", {}))
    host["ssh"]["hostKey"] = f"{host['address']} {host['ssh']['hostKey']}"
    with pytest.raises(SettingsError) as error:
        parse_settings(raw, stack="prod")
    assert f"starts with the host name '{host['address']}'" in str(error.value)
