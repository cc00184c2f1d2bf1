"""Image references: which are pinned, and which version of LiteLLM one names (pure: the settings,
the policy pack and the tests use it)."""

from __future__ import annotations

import re
from typing import Any, Optional

# Docker's reference grammar: [registry[:port]/]path[:tag][@sha256:digest]. A registry port is only
# part of the first component when a path follows it (`host:5000/team/app`); `postgres:16` is a tag.
_COMPONENT = r"[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*"
_REGISTRY = r"(?:[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?)*(?::[0-9]+)?/)"
_IMAGE = re.compile(
    rf"(?P<repo>{_REGISTRY}?{_COMPONENT}(?:/{_COMPONENT})*)"
    r"(?::(?P<tag>[\w][\w.-]{0,127}))?(?:@(?P<digest>sha256:[0-9a-f]{64}))?",
    re.ASCII,
)


def _moving(tag: str) -> bool:
    """A tag that names no version moves (`latest`, `stable`, `alpine`, `lts`, `main`, `edge`, `rocm`):
    a pinned tag has a version number in it."""
    return not re.search(r"[0-9]", tag) or "latest" in tag.split("-")


def image_problem(image: str) -> Optional[str]:
    """Why an image reference is not pinned, or None when it is."""
    match = _IMAGE.fullmatch(image)
    if not match:
        return f"'{image}' is not a valid image reference"
    if match["tag"] is None and match["digest"] is None:
        return f"'{image}' has no tag; pin a version (for example '{image}:<version>')"
    if match["tag"] is not None and match["digest"] is None and _moving(match["tag"]):
        return f"'{image}' uses the moving tag '{match['tag']}'; pin a version"
    return None


def image_tag(image: str) -> str:
    match = _IMAGE.fullmatch(image)
    return (match["tag"] or "") if match else ""


# The LiteLLM version the test suite runs (requirements-test.txt pins it; tests/integration/test_versions.py
# keeps the two equal). Another version in gateway.image is allowed, with a warning: it is untested here.
TESTED_LITELLM_VERSION = "1.108.7"

LITELLM_IMAGE_VERSION = re.compile(r"v(\d+\.\d+\.\d+)")


def litellm_version_of(image: str) -> Optional[str]:
    found = LITELLM_IMAGE_VERSION.search(image_tag(image))
    return found.group(1) if found else None


def image_references(raw: dict[str, Any]) -> list[tuple[str, Any]]:
    """(key path, value) of every image reference in the raw config, valid sections or not."""
    found = []
    for section, key in (("gateway", "image"), ("redis", "image"), ("postgres", "image"), ("vault", "devImage")):
        if isinstance(raw.get(section), dict) and key in raw[section]:
            found.append((f"{section}.{key}", raw[section][key]))
    gateway = raw.get("gateway")
    if isinstance(gateway, dict) and isinstance(gateway.get("loadBalancer"), dict) and "image" in gateway["loadBalancer"]:
        found.append(("gateway.loadBalancer.image", gateway["loadBalancer"]["image"]))
    monitoring = raw.get("monitoring")
    if isinstance(monitoring, dict):
        for key in ("prometheusImage", "grafanaImage"):
            if key in monitoring:
                found.append((f"monitoring.{key}", monitoring[key]))
        for key in ("redisExporter", "postgresExporter"):
            if isinstance(monitoring.get(key), dict) and "image" in monitoring[key]:
                found.append((f"monitoring.{key}.image", monitoring[key]["image"]))
    hosts = raw.get("gpuHosts")
    if isinstance(hosts, list):
        for i, host in enumerate(hosts):
            local = host.get("localContainer") if isinstance(host, dict) else None
            if isinstance(local, dict) and "image" in local:
                found.append((f"gpuHosts[{i}].localContainer.image", local["image"]))
    return found


def untested_litellm_warning(image: str) -> Optional[str]:
    """A warning when `image` runs another LiteLLM version than the one the tests ran."""
    found = litellm_version_of(image)
    if found is None or found == TESTED_LITELLM_VERSION:
        return None
    return (f"gateway.image runs LiteLLM {found}; this program was tested with {TESTED_LITELLM_VERSION}. Preview it on a "
            "dev stack first and read docs/operations.md, \"Upgrade LiteLLM\" (migrations, rollback)")
