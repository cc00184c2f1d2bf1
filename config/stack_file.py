"""The one reader of `Pulumi.<stack>.yaml` for every tool that reads it without the Pulumi CLI:
the offline check (`scripts/stack check`), backup, restore, adopt and the tests.

What it refuses, each with the key named, is what `pulumi up` refuses too (config.loader applies
the same namespace rule to the config Pulumi hands the program):
- a key given twice in one mapping (YAML keeps the last one silently);
- a key outside the project's namespace other than Pulumi's own and the providers' this program
  uses (`litelm-gateway:redis` is a typo, not another package's setting);
- a key without a namespace.

Encrypted values (`secure:`) cannot be read without the stack's passphrase: `offline_config` puts a
placeholder of the right shape in for each and reports it as a secret, so the settings' checks
run on everything else. Pure Python and PyYAML; no Pulumi imports.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable

import yaml

from .errors import FullKey
from .names import PROJECT

ROOT = Path(__file__).resolve().parents[1]

# Namespaces a stack file may use besides the project's: Pulumi's own and the providers'
# configuration of the packages this program uses.
OTHER_NAMESPACES = frozenset({"pulumi", "docker", "vault", "command", "random", "tls", "kubernetes"})

# Placeholders for encrypted values: shaped to pass the format checks, never a usable secret.
PLACEHOLDER = "encrypted-value-not-checked-offline"
_PLACEHOLDERS = {
    "masterKey": "sk-" + PLACEHOLDER + "x" * 8,
    "gpuSshPrivateKey": "-----BEGIN OPENSSH PRIVATE KEY-----\nencrypted\n-----END OPENSSH PRIVATE KEY-----\n",
    "gatewayTlsCertificate": "-----BEGIN CERTIFICATE-----\nencrypted\n-----END CERTIFICATE-----\n",
    "gatewayTlsKey": "-----BEGIN PRIVATE KEY-----\nencrypted\n-----END PRIVATE KEY-----\n",
}


class StackFileError(Exception):
    """The file cannot be read at all (missing, not YAML, not a mapping)."""


@dataclass(frozen=True)
class StackFile:
    stack: str
    path: Path
    plain: dict[str, Any]          # project keys without the prefix -> value, encrypted ones left out
    encrypted: frozenset[str]      # project keys whose value is `secure:`
    problems: tuple[tuple[str, str], ...]  # duplicate keys, foreign namespaces: reported with the settings'

    def offline_config(self) -> tuple[dict[str, Any], frozenset[str]]:
        """(raw config with a placeholder for each encrypted value, the secret keys) for parse_settings."""
        return {**self.plain, **{key: placeholder(key) for key in self.encrypted}}, self.encrypted

    def settings(self):
        """The validated settings, as `pulumi up` would see them (placeholders for encrypted values);
        raises SettingsError with the file's own problems and the settings' together."""
        from .parse import parse_settings

        raw, secret_keys = self.offline_config()
        return parse_settings(raw, secret_keys, stack=self.stack, other_stacks=stack_names(self.path.parent),
                              earlier_problems=self.problems)


def placeholder(key: str) -> str:
    return _PLACEHOLDERS.get(key, PLACEHOLDER)


def stack_names(root: Path = ROOT) -> list[str]:
    return sorted(p.name[len("Pulumi."):-len(".yaml")] for p in root.glob("Pulumi.*.yaml"))


def namespace_problems(full_keys: Iterable[str]) -> list[tuple[str, str]]:
    """Problems with config keys outside the project's namespace (full keys, `namespace:name`)."""
    problems: list[tuple[str, str]] = []
    for full_key in full_keys:
        if not isinstance(full_key, str) or ":" not in full_key:
            problems.append((FullKey(str(full_key)), (
                f"has no namespace; Pulumi config keys are `namespace:name`: write {PROJECT}:{full_key}")))
            continue
        namespace, name = full_key.split(":", 1)
        if namespace == PROJECT or namespace in OTHER_NAMESPACES:
            continue
        near = f" (did you mean {PROJECT}:{name}?)" if _near(namespace, PROJECT) else ""
        problems.append((FullKey(full_key), (
            f"is in the namespace '{namespace}', which no part of this program reads{near}; the project's keys are "
            f"{PROJECT}:<key>, provider settings {', '.join(sorted(f'{n}:' for n in OTHER_NAMESPACES))}")))
    return problems


def _near(a: str, b: str) -> bool:
    """True when `a` is a likely misspelling of `b` (edit distance at most 2)."""
    previous = list(range(len(b) + 1))
    for i, ca in enumerate(a, 1):
        current = [i]
        for j, cb in enumerate(b, 1):
            current.append(min(previous[j] + 1, current[j - 1] + 1, previous[j - 1] + (ca != cb)))
        previous = current
    return previous[-1] <= 2


def _duplicate_keys(node: yaml.Node, path: str = "") -> list[tuple[str, str]]:
    problems: list[tuple[str, str]] = []
    if isinstance(node, yaml.MappingNode):
        seen: dict[Any, int] = {}
        for key_node, value_node in node.value:
            key = key_node.value if isinstance(key_node, yaml.ScalarNode) else str(key_node.value)
            child = f"{path}.{key}" if path else str(key)
            line = key_node.start_mark.line + 1
            if key in seen:
                problems.append((FullKey(child), (
                    f"is given twice (lines {seen[key]} and {line}); YAML would keep only the last one: remove one")))
            else:
                seen[key] = line
            problems.extend(_duplicate_keys(value_node, child))
    elif isinstance(node, yaml.SequenceNode):
        for i, item in enumerate(node.value):
            problems.extend(_duplicate_keys(item, f"{path}[{i}]"))
    return problems


def read_stack_file(stack: str, root: Path = ROOT) -> StackFile:
    """Read Pulumi.<stack>.yaml; raises StackFileError when it cannot be read."""
    path = root / f"Pulumi.{stack}.yaml"
    if not path.is_file():
        raise StackFileError(f"no stack config {path.name} (stacks: {', '.join(stack_names(root)) or 'none'})")
    text = path.read_text()
    try:
        node = yaml.compose(text, Loader=yaml.SafeLoader)
        data = yaml.safe_load(text) or {}
    except yaml.YAMLError as error:
        raise StackFileError(f"{path.name} is not valid YAML: {error}") from None
    if not isinstance(data, dict) or not isinstance(data.get("config", {}) or {}, dict):
        raise StackFileError(f"{path.name} must be a mapping with a `config:` mapping")
    config = data.get("config") or {}
    problems = _duplicate_keys(node) if node is not None else []
    problems.extend(namespace_problems(config))
    plain: dict[str, Any] = {}
    encrypted: set[str] = set()
    prefix = f"{PROJECT}:"
    for full_key, value in config.items():
        if not isinstance(full_key, str) or not full_key.startswith(prefix):
            continue
        key = full_key[len(prefix):]
        if isinstance(value, dict) and set(value) == {"secure"}:
            encrypted.add(key)
        else:
            plain[key] = value
    return StackFile(stack, path, plain, frozenset(encrypted), tuple(problems))
