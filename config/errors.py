"""The one error a stack's configuration raises: every problem at once, each with its key path
(pure; the policy pack and the operations tools import it without pydantic)."""

from __future__ import annotations

from .names import PROJECT


class SettingsError(Exception):
    """Every problem found in a stack's configuration, each as (key path, message).

    A key path is relative to the project's namespace (`gateway.replicas`), except a whole config key
    (`config.stack_file.FullKey`, such as a misspelled namespace), which is printed as it is."""

    def __init__(self, problems: list[tuple[str, str]]):
        self.problems = problems
        lines = [f"  - {_full_key(key)}: {message}" for key, message in problems]
        super().__init__(
            f"invalid configuration ({len(problems)} problem{'s' if len(problems) != 1 else ''}); "
            "nothing was deployed:\n" + "\n".join(lines)
        )


def _full_key(key: str) -> str:
    from .stack_file import FullKey

    return key if isinstance(key, FullKey) else f"{PROJECT}:{key}"
