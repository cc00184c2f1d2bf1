"""Names one environment owns are never another's: a copied stack file must not write prod's Vault
secret, mount its database volume or prune into its backups.

Every such name is derived from the environment unless a setting overrides it (config.names). An
override is refused when it is another environment's name: either spelled the way the stack derives
names for another environment (`litellm-gateway-prod-pgdata` in staging), or containing the name of
another stack of this project (a stack file beside this one) as a word.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Callable, Optional

from ..names import PROJECT, StackNames
from ..stack import Parsed

_SEPARATORS = "/._-"
_WORD_START = "(^|[" + re.escape(_SEPARATORS) + "])"
_WORD_END = "(?=$|[" + re.escape(_SEPARATORS) + "])"
_MARK = "\x00"  # stands for the environment in a derived name, to turn it into a pattern


@dataclass(frozen=True)
class Owned:
    """A setting that may override a name only this environment may use."""

    key: str
    what: str
    value: Callable[[Parsed], Optional[str]]
    derived: Optional[Callable[[StackNames], str]] = None  # the name the stack derives when it is unset
    below: bool = False                                     # paths below the derived name belong to it too

    def derived_pattern(self) -> Optional[re.Pattern]:
        """The derived name for any environment, as a pattern (from config.names, never spelled twice)."""
        if self.derived is None:
            return None
        pattern = re.escape(self.derived(StackNames(_MARK))).replace(re.escape(_MARK), r"(?P<env>[a-z][a-z0-9-]{0,19})")
        return re.compile(pattern + ("(/.*)?" if self.below else ""))


OWNED = (
    Owned("vault.path", "Vault secret (master key, salt key, passwords)",
          lambda p: p.vault and p.vault.path, lambda n: n.vault_path, below=True),
    Owned("vault.policyName", "Vault read policy", lambda p: p.vault and p.vault.policy_name, lambda n: n.vault_policy),
    Owned("postgres.volumeName", "database volume", lambda p: p.postgres and p.postgres.volume_name,
          lambda n: n.postgres_volume),
    Owned("backups.volumeName", "backup volume", lambda p: p.backups and p.backups.volume_name,
          lambda n: n.backup_volume),
    Owned("backups.hostPath", "backup directory", lambda p: p.backups and p.backups.host_path),
    # Every object of a kubernetes stack is in its namespace (and `pulumi destroy` leaves the namespace).
    Owned("kubernetes.namespace", "Kubernetes namespace", lambda p: p.kubernetes and p.kubernetes.namespace,
          lambda n: n.prefix),
)


def _names_word(value: str, word: str) -> bool:
    return re.search(_WORD_START + re.escape(word) + _WORD_END, value) is not None


def _without_word(value: str, word: str) -> str:
    """`value` with every occurrence of `word` as a whole word removed (so `dev-alice` does not
    read as naming `dev`)."""
    return re.sub(_WORD_START + re.escape(word) + _WORD_END, r"\1", value)


def other_environment_named(owned: Owned, value: str, environment: str, others: frozenset[str]) -> Optional[str]:
    """The other environment `value` names, or None."""
    pattern = owned.derived_pattern()
    match = pattern.fullmatch(value) if pattern is not None else None
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
    for owned in OWNED:
        value = owned.value(parsed)
        if not value:
            continue
        other = other_environment_named(owned, value, environment, parsed.other_environments)
        if other is None:
            continue
        fix = (f"remove it to use this stack's own ({owned.derived(StackNames(environment))})" if owned.derived else
               f"use a directory of {environment}'s own (for example /srv/backups/{PROJECT}/{environment})")
        problems.append((owned.key, (
            f"{value!r} names environment '{other}', not '{environment}': a copy of {other}'s stack file would "
            f"take over {other}'s {owned.what}; {fix}")))
