"""The one error a stack's configuration raises: every problem at once, each with its key path
(pure; the policy pack and the operations tools import it without pydantic)."""

from __future__ import annotations

from typing import Optional

from .names import PROJECT


class FullKey(str):
    """A problem's key that is a whole config key (namespace included), printed as it is."""


class SettingsError(Exception):
    """Every problem found in a stack's configuration, each as (key path, message).

    A key path is relative to the project's namespace (`gateway.replicas`), except a whole config key
    (`FullKey`, such as a misspelled namespace), which is printed as it is."""

    def __init__(self, problems: list[tuple[str, str]], labels: Optional[dict[str, str]] = None):
        self.problems = problems
        self.labels = labels or {}
        lines = [f"  - {_full_key(key)}: {message}{_label(key, self.labels)}" for key, message in problems]
        super().__init__(
            f"invalid configuration ({len(problems)} problem{'s' if len(problems) != 1 else ''}); "
            "nothing was deployed:\n" + "\n".join(lines)
        )


def _label(key: str, labels: dict[str, str]) -> str:
    """` [in model 'qwen-coder']` for a key inside a list item that has a name (the index stays in the
    key path: it is what `pulumi config set --path` takes)."""
    found = [item for item in labels if key == item or key.startswith((f"{item}.", f"{item}["))]
    return f" [in {labels[max(found, key=len)]}]" if found else ""


def _full_key(key: str) -> str:
    return key if isinstance(key, FullKey) else f"{PROJECT}:{key}"
