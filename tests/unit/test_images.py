"""Every image the stack runs is pinned: a tag with a version number in it, or a digest. Moving tags
(`alpine`, `lts`, `main`, `edge`, `rocm`, `latest`, `stable`) are refused under every image key, and a
major-version tag is a tag, not a registry port."""

from __future__ import annotations

import copy

import pytest

from config.errors import SettingsError
from config.images import image_problem, image_references
from config.parse import parse_settings
from harness import stack_file_config

MOVING = ["redis:alpine", "haproxy:lts", "grafana/grafana:main", "redis:edge", "ollama/ollama:rocm", "postgres:latest",
          "ghcr.io/berriai/litellm-database:main-latest", "ghcr.io/berriai/litellm-database:main-stable", "postgres"]
PINNED = ["postgres:16", "postgres:16.10", "registry.local:5000/team/redis:7.4.6-alpine", "haproxy:3.0.5-alpine",
          "ollama/ollama:0.12.3", "redis@sha256:" + "a" * 64]


@pytest.mark.parametrize("image", MOVING)
def test_a_moving_or_missing_tag_is_not_pinned(image):
    assert image_problem(image) is not None


@pytest.mark.parametrize("image", PINNED)
def test_a_version_tag_or_a_digest_is_pinned(image):
    assert image_problem(image) is None


def every_image_key(raw: dict) -> list[str]:
    return [key for key, _ in image_references(raw)]


@pytest.mark.parametrize("stack", ["dev", "prod"])
def test_a_moving_tag_is_refused_under_every_image_key_by_name(stack):
    raw = stack_file_config(stack)
    keys = every_image_key(raw)
    assert len(keys) >= 4, keys
    for key in keys:
        changed = copy.deepcopy(raw)
        node = changed
        parts = key.replace("]", "").replace("[", ".").split(".")
        for part in parts[:-1]:
            node = node[int(part)] if part.isdigit() else node[part]
        node[parts[-1]] = "example/image:edge"
        with pytest.raises(SettingsError) as error:
            parse_settings(changed)
        assert any(k == key and "moving tag 'edge'" in m for k, m in error.value.problems), (key, error.value.problems)
