"""Every image reference is pinned; the gateway's names its LiteLLM version; Redis is 7 or newer."""

from __future__ import annotations

import re
from typing import Any

from ..images import image_problem, image_references, image_tag, litellm_version_of


def check_images(raw: dict[str, Any], problems: list[tuple[str, str]]) -> None:
    # Checked on the raw values so that an unpinned image is reported even when a sibling key
    # of the same section has the wrong type.
    for key, value in image_references(raw):
        if not isinstance(value, str):
            continue  # the type error is reported by the section's own validation
        problem = image_problem(value)
        if problem:
            problems.append((key, problem))
        elif key == "gateway.image" and litellm_version_of(value) is None:
            problems.append((key, f"'{value}' names no LiteLLM version (expected a tag like main-v1.108.7-stable)"))
        elif key == "redis.image":
            major = re.match(r"(\d+)", image_tag(value))
            if major and int(major.group(1)) < 7:
                problems.append((key, f"'{value}' is Redis {major.group(1)}; Redis 7 or newer is required"))
