"""One LiteLLM version everywhere: the image the stacks deploy and the proxy the tests boot."""

import re
from importlib.metadata import version

import pytest

from config.images import TESTED_LITELLM_VERSION, litellm_version_of, untested_litellm_warning
from config.parse import parse_settings
from harness import EXAMPLE_STACKS, ROOT, example_config, stack_file_config


def pinned_requirement(name: str) -> str:
    for line in (ROOT / "requirements-test.txt").read_text().splitlines():
        match = re.match(rf"^{re.escape(name)}(\[[^\]]*\])?==(\S+)", line.strip())
        if match:
            return match.group(2)
    raise AssertionError(f"{name} is not pinned in requirements-test.txt")


@pytest.mark.parametrize("config", [*(example_config(s) for s in EXAMPLE_STACKS),
                                    *(stack_file_config(s) for s in ("dev", "prod"))])
def test_image_tag_names_the_tested_litellm_version(config):
    stack = config["environment"]
    image = parse_settings(config).gateway.image
    assert litellm_version_of(image) == pinned_requirement("litellm"), (
        f"Pulumi.{stack}.yaml deploys {image}, but the tests run litellm {pinned_requirement('litellm')}"
    )


def test_the_version_the_program_calls_tested_is_the_pinned_one():
    assert TESTED_LITELLM_VERSION == pinned_requirement("litellm")


def test_another_litellm_version_is_accepted_with_a_warning():
    config = stack_file_config("prod")
    image = config["gateway"]["image"].replace(TESTED_LITELLM_VERSION, "1.109.0")
    settings = parse_settings({**config, "gateway": {**config["gateway"], "image": image}})
    assert "runs LiteLLM 1.109.0; this program was tested with" in untested_litellm_warning(settings.gateway.image)
    assert untested_litellm_warning(config["gateway"]["image"]) is None


def test_installed_litellm_is_the_pinned_one():
    assert version("litellm") == pinned_requirement("litellm")
