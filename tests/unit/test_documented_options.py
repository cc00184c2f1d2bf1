"""Every option in docs/configuration.md passes the check when set as documented: each key set
explicitly to its documented default is accepted (alone, in a valid stack), and all of them set at
once evaluate through the whole program as `scripts/stack check` does. Generated from the settings
models the reference is generated from, so a new option is covered the day it is documented. An
optional object (`gateway.loadBalancer.tls.vault`, `gpuSsh.privateKeyVault`) is written whole, with
its required keys: tests/unit/test_stack_check.py sets each as the docs show it."""

from __future__ import annotations

import copy
import io
import typing

import pytest
import yaml
from pydantic import BaseModel

from config.checks.data import option_mode
from config.checks.platform import option_platform
from config.parse import parse_settings
from config.sections import SECTIONS
from harness import stack_file_config
from operations.stack_check import check


def _inner_model(annotation):
    while typing.get_origin(annotation) in (typing.Union, typing.Annotated):
        args = [a for a in typing.get_args(annotation) if a is not type(None)]
        annotation = args[0]
    if typing.get_origin(annotation) is tuple:
        return _inner_model(typing.get_args(annotation)[0])[0], True
    return (annotation if isinstance(annotation, type) and issubclass(annotation, BaseModel) else None), False


def documented_defaults(model: type[BaseModel], path: list) -> list[tuple[list, object]]:
    """(path, default) for every field with a concrete documented default, depth first."""
    out = []
    for name, field in model.model_fields.items():
        key = path + [field.alias or name]
        inner, is_list = _inner_model(field.annotation)
        if inner is not None:
            if field.default is not None or is_list:  # an optional object (tls.vault) is written whole:
                out += documented_defaults(inner, key + ([0] if is_list else []))  # test_stack_check sets those
            continue
        if field.is_required():
            continue
        value = field.get_default(call_default_factory=True)
        if value is None:
            continue
        out.append((key, list(value) if isinstance(value, tuple) else dict(value) if isinstance(value, dict) else value))
    return out


def every_default() -> list[tuple[list, object]]:
    found = []
    for spec in SECTIONS:
        inner, is_list = _inner_model(spec.kind)
        found += documented_defaults(inner, [spec.key] + ([0] if is_list else []))
    return found


def put(raw: dict, path: list, value) -> bool:
    node = raw
    for part in path[:-1]:
        if isinstance(part, int):
            if not isinstance(node, list) or len(node) <= part:
                return False
            node = node[part]
        else:
            node = node.setdefault(part, {})
    node.setdefault(path[-1], value)  # a key the fixture sets already is set as documented by the fixture
    return True


def key_path(path) -> str:
    return ".".join(str(p) for p in path).replace(".0.", "[].").replace(".0", "[]")


def fixture_with(path, value):
    platform = option_platform(key_path(path))
    stacks = {"kubernetes": ("k8s",), "docker": ("prod", "dev")}.get(platform, ("prod", "dev", "k8s"))
    if option_mode(key_path(path)) == "external":
        stacks = ("ext",)   # the fixture with external data stores (postgres.mode, redis.mode: external)
    for stack in stacks:
        raw = copy.deepcopy(stack_file_config(stack))
        if put(raw, path, value):
            return stack, raw
    raise AssertionError(f"no fixture has an item under {path}: add one to tests/fixtures")


@pytest.mark.parametrize("path, value", every_default(), ids=lambda v: ".".join(map(str, v)) if isinstance(v, list) else None)
def test_each_option_set_to_its_documented_default_is_accepted(path, value):
    stack, raw = fixture_with(path, value)
    parse_settings(raw, stack=stack)


@pytest.mark.parametrize("stack, platform, mode", [("prod", "docker", "container"), ("k8s", "kubernetes", "container"),
                                                  ("ext", "docker", "external")])
def test_all_options_at_their_documented_defaults_pass_the_whole_check(tmp_path, stack, platform, mode):
    raw = copy.deepcopy(stack_file_config(stack))
    for path, value in every_default():
        if option_platform(key_path(path)) in (None, platform) and option_mode(key_path(path)) in (None, mode):
            put(raw, path, value)
    # Documented alternatives that exclude each other: keep the fixture's choice.
    raw.get("backups", {}).pop("hostPath", None)
    if platform == "kubernetes":
        raw["gateway"].pop("replicas")  # the fixture's autoscaler owns the count
    document = {"config": {f"litellm-gateway:{k}": v for k, v in raw.items()}}
    (tmp_path / f"Pulumi.{stack}.yaml").write_text(yaml.safe_dump(document))
    out, err = io.StringIO(), io.StringIO()
    assert check(stack, tmp_path, out, err) == 0, err.getvalue()
    assert "configuration valid" in out.getvalue()
