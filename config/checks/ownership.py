"""Names one environment owns are never another's: a copied stack file must not write prod's Vault
secret, mount its database volume or prune into its backups.

Every such name is derived from the environment unless a setting overrides it (config.names). An
override is refused when it is another environment's name: either spelled the way the stack derives
names for another environment (`litellm-gateway-prod-pgdata` in staging), or containing the name of
another stack of this project (a stack file beside this one) as a word.
"""

from __future__ import annotations

import re
from typing import Optional

from ..names import PROJECT, StackNames
from ..stack import Parsed

_ENV = r"(?P<env>[a-z][a-z0-9-]{0,19})"
# How the stack derives each overridable name from an environment (config.names.StackNames).
_DERIVED = {
    "vault.path": re.compile(rf"{re.escape(PROJECT)}/{_ENV}(/.*)?"),
    "vault.policyName": re.compile(rf"{re.escape(PROJECT)}-{_ENV}-read"),
    "postgres.volumeName": re.compile(rf"{re.escape(PROJECT)}-{_ENV}-pgdata"),
    "backups.volumeName": re.compile(rf"{re.escape(PROJECT)}-{_ENV}-pgbackups"),
}
_SEPARATORS = "/._-"


def owned_overrides(parsed: Parsed) -> list[tuple[str, Optional[str]]]:
    """(config key, value) of every setting that names something only this environment may use."""
    vault, postgres, backups = parsed.vault, parsed.postgres, parsed.backups
    return [
        ("vault.path", vault.path if vault else None),
        ("vault.policyName", vault.policy_name if vault else None),
        ("postgres.volumeName", postgres.volume_name if postgres else None),
        ("backups.volumeName", backups.volume_name if backups else None),
        ("backups.hostPath", backups.host_path if backups else None),
    ]


def _names_word(value: str, word: str) -> bool:
    boundary = "(?:^|[" + re.escape(_SEPARATORS) + "])"
    end = "(?:$|[" + re.escape(_SEPARATORS) + "])"
    return re.search(boundary + re.escape(word) + end, value) is not None


def _without_word(value: str, word: str) -> str:
    """`value` with every occurrence of `word` as a whole word removed (so `dev-alice` does not
    read as naming `dev`)."""
    pattern = "(^|[" + re.escape(_SEPARATORS) + "])" + re.escape(word) + "(?=$|[" + re.escape(_SEPARATORS) + "])"
    return re.sub(pattern, r"\1", value)


def other_environment_named(key: str, value: str, environment: str, others: frozenset[str]) -> Optional[str]:
    """The other environment `value` names, or None."""
    derived = _DERIVED.get(key)
    if derived is not None:
        match = derived.fullmatch(value)
        if match and match["env"] != environment:
            return match["env"]
    rest = _without_word(value, environment)
    for other in sorted(others - {environment}, key=len, reverse=True):
        if _names_word(rest, other):
            return other
    return None


def check_ownership(parsed: Parsed, problems) -> None:
    environment = parsed.environment
    if environment is None:
        return
    own = StackNames(environment)
    defaults = {"vault.path": own.vault_path, "vault.policyName": own.vault_policy,
                "postgres.volumeName": own.postgres_volume, "backups.volumeName": own.backup_volume}
    for key, value in owned_overrides(parsed):
        if value is None:
            continue
        other = other_environment_named(key, value, environment, parsed.other_environments)
        if other is not None:
            default = defaults.get(key)
            fix = f"remove it to use this stack's own ({default})" if default else \
                f"use a directory of {environment}'s own (for example /srv/backups/{PROJECT}/{environment})"
            problems.append((key, (
                f"{value!r} names environment '{other}', not '{environment}': a copy of {other}'s stack file would "
                f"take over {other}'s {_WHAT[key]}; {fix}")))


_WHAT = {
    "vault.path": "Vault secret (master key, salt key, passwords)",
    "vault.policyName": "Vault read policy",
    "postgres.volumeName": "database volume",
    "backups.volumeName": "backup volume",
    "backups.hostPath": "backup directory",
}
