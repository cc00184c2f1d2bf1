"""The stack's own settings: what backup and restore take from Pulumi.<stack>.yaml, read through
the one stack-file reader (config.stack_file) the offline check uses too, so both accept and refuse
the same files."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Optional

from config.names import StackNames
from config.errors import SettingsError
from config.stack import StackSettings
from config.stack_file import StackFileError, read_stack_file

from .errors import Refused

# The repository: the stack files and the Pulumi project (the Pulumi CLI runs here).
ROOT = Path(__file__).resolve().parents[2]


@dataclass(frozen=True)
class StackFacts:
    """What backup and restore take from Pulumi.<stack>.yaml (never from flags that could disagree)."""

    stack: str
    settings: StackSettings
    stack_file: Path

    @property
    def names(self) -> StackNames:
        return StackNames(self.settings.environment)

    @property
    def postgres_container(self) -> str:
        return self.names.postgres

    @property
    def vault_mount(self) -> str:
        return self.settings.vault.mount

    @property
    def vault_path(self) -> str:
        return self.settings.vault_path


def load_stack(stack: str, root: Optional[Path] = None) -> StackFacts:
    """The stack's validated settings, read before anything is done; else Refused.

    Encrypted values cannot be read without the stack's passphrase and are not needed here: the
    reader's placeholders stand in for every one of them. The file's own problems (a key given
    twice, a misspelled namespace) are refused with the settings' problems, each naming its key."""
    try:
        stack_file = read_stack_file(stack, root or ROOT)
    except StackFileError as error:
        raise Refused(str(error)) from None
    try:
        settings = stack_file.settings()
    except SettingsError as error:
        raise Refused(f"{stack_file.path.name}: {error}") from None
    return StackFacts(stack, settings, stack_file.path)
