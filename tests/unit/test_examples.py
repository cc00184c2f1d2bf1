"""The shipped example stack files (Pulumi.<stack>.yaml at the project root, users edit them freely):
each is valid and deploys under mocks, with every expectation derived from the file itself; and the
README's how-to edits applied to them give valid stacks. Every other test reads its own copies
(tests/fixtures/), so an edit to an example can only fail the tests here, and only if it is invalid."""

import copy
import re
import textwrap

import pytest
import yaml

from harness import EXAMPLE_STACKS, ROOT, example_config, run_stack

from config.parse import parse_settings

README = (ROOT / "README.md").read_text()


def test_there_are_examples():
    assert {"dev", "prod"} <= set(EXAMPLE_STACKS)


@pytest.mark.parametrize("stack", EXAMPLE_STACKS)
def test_an_example_deploys_what_its_file_declares(stack):
    config = example_config(stack)
    assert config["environment"] == stack
    run = run_stack(config, stack=stack)
    declared_routes = {(m["name"], h) for m in config["models"] for h in m["hosts"]}
    served = {(name, host) for name, model in run.outputs["models"].items() for host in model["served_by"]}
    assert served == declared_routes
    for model in config["models"]:
        assert run.outputs["models"][model["name"]]["ollama_tag"] == model["ollamaTag"]
    hosts = {h["name"] for h in config["gpuHosts"]}
    assert set(run.outputs["gpuHostModels"]) == hosts
    if config.get("platform") == "kubernetes":
        (deployment,) = [r for r in run.resources if r.type == "kubernetes:apps/v1:Deployment"
                         and r.name == "gateway-litellm"]
        scaling = config.get("kubernetes", {}).get("autoscaling", {})
        if scaling.get("enabled"):
            assert "replicas" not in deployment.plain("spec")  # the autoscaler's
            (hpa,) = run.mocks.of_type("autoscaling/v2:HorizontalPodAutoscaler")
            assert hpa.plain("spec")["minReplicas"] == scaling.get("minReplicas", 2)
        else:
            assert deployment.plain("spec")["replicas"] == config["gateway"].get("replicas", 1)
        assert not [r for r in run.resources if r.type.startswith("docker:")], "nothing on a Docker engine"
        return
    containers = [r for r in run.resources if r.type == "docker:index/container:Container"]
    published = [r for r in containers if any(p.get("external") for p in r.plain("ports") or [])]
    assert all(not r.name.startswith("gateway-litellm") for r in published), "only the load balancer publishes"
    replicas = [r for r in containers if r.name.startswith("gateway-litellm-")]
    assert len(replicas) == config["gateway"].get("replicas", 1)


def _snippet(heading: str) -> dict:
    section = README[README.index(heading):]
    block = re.search(r"```yaml\n(.*?)```", section, re.S).group(1)
    data = yaml.safe_load(textwrap.dedent(block))
    return {k.split(":", 1)[1]: v for k, v in data.items()}


def _merge(config: dict, snippet: dict) -> dict:
    """Apply a how-to snippet the way the README says: new list items are added, an item with the
    same name replaces the old one."""
    config = copy.deepcopy(config)
    for key, items in snippet.items():
        current = config.setdefault(key, [])
        for item in items:
            names = [c.get("name") for c in current]
            if item.get("name") in names:
                current[names.index(item["name"])] = {**current[names.index(item["name"])], **item}
            else:
                current.append(item)
    return config


@pytest.mark.parametrize("heading, key", [("### Add a GPU host", "gpuHosts"), ("### Add a model", "models")])
def test_the_readme_how_tos_add_something_new(heading, key):
    """A how-to's example that repeats what the example file has already shows nothing new."""
    added = {item["name"] for item in _snippet(heading)[key]}
    assert added and not added & {item["name"] for item in example_config("prod").get(key, [])}, added


@pytest.mark.parametrize("heading", ["### Add a GPU host", "### Add a model"])
def test_the_readme_how_tos_give_valid_stacks(heading):
    config = _merge(example_config("prod"), _snippet(heading))
    settings = parse_settings(config, stack="prod")
    added = _snippet(heading)
    for host in added.get("gpuHosts", []):
        assert host["name"] in {h.name for h in settings.gpu_hosts}
    for model in added.get("models", []):
        assert set(model["hosts"]) <= set(settings.model(model["name"]).hosts)


def test_only_tests_that_derive_their_expectations_read_the_examples():
    """A test that read an example and expected its hosts or models would break on the first edit."""
    deriving = {"test_examples.py", "test_hostile_config.py", "test_stack_check.py", "test_reference.py",
                "test_versions.py", "test_documented_commands.py", "test_workflows.py", "harness.py",
                "test_stack_copies.py", "test_vault_policy.py", "test_deploy_mapping.py"}
    readers = set()
    for module in (ROOT / "tests").rglob("*.py"):
        text = module.read_text()
        if "example_config(" in text or re.search(r"ROOT\s*/\s*f?[\"']Pulumi\.", text) or "EXAMPLE_STACKS" in text:
            readers.add(module.name)
    assert readers <= deriving, f"read tests/fixtures (stack_file_config) instead: {sorted(readers - deriving)}"
    assert {"test_examples.py", "harness.py"} <= readers
