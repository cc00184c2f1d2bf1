"""The base of every settings section model."""

from __future__ import annotations

from typing import Any, ClassVar

from pydantic import BaseModel, ConfigDict, Field, ValidationInfo, field_validator
from pydantic.alias_generators import to_camel

from ..values import control_character_problem

Port = Field(ge=1, le=65535)


class Section(BaseModel):
    """A settings section: camelCase keys, unknown keys refused, frozen, every string free of control
    characters."""

    model_config = ConfigDict(
        alias_generator=to_camel, populate_by_name=True, extra="forbid", frozen=True, allow_inf_nan=False,
        use_attribute_docstrings=True,  # each field's docstring is its description (docs/configuration.md)
    )

    # Fields whose value is PEM text (line breaks allowed; every other control character still refused).
    MULTILINE_FIELDS: ClassVar[frozenset[str]] = frozenset()

    @field_validator("*", mode="after")
    @classmethod
    def _no_control_characters(cls, value: Any, info: ValidationInfo) -> Any:
        if info.field_name in cls.MULTILINE_FIELDS:
            problem = isinstance(value, str) and control_character_problem(value.replace("\n", "").replace("\r", ""))
            if problem:
                raise ValueError(problem)
            return value
        # A newline or NUL in any value ends up in a rendered file, a command line or a URL.
        items = value if isinstance(value, tuple) else (
            [*value.keys(), *value.values()] if isinstance(value, dict) else (value,))
        for text in items:
            if isinstance(text, str):
                problem = control_character_problem(text)
                if problem:
                    raise ValueError(problem)
        return value
