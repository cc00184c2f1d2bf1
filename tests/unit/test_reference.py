"""The configuration reference (docs/configuration.md) and Pulumi.yaml's `config:` block are generated
from the settings models: these tests fail when either drifts from the code, when a field has no
description, and when the project config's declared defaults would change what a stack means."""

import subprocess
import sys
import typing

import pytest
import yaml

from harness import EXAMPLE_STACKS, ROOT, example_config, stack_file_config

from config import reference
from config.parse import parse_settings
from config.secret_keys import SECRET_KEYS
from config.sections import SCALAR_DEFAULTS, SCALARS, SECTIONS, SECTIONS_BY_KEY


def test_generated_files_are_up_to_date():
    result = subprocess.run([sys.executable, "-m", "config.reference", "--check"], cwd=ROOT,
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr


def test_the_check_notices_a_stale_reference(tmp_path, monkeypatch):
    stale_doc = tmp_path / "configuration.md"
    stale_doc.write_text(reference.render_markdown().replace("gateway.replicas", "gateway.replica"))
    monkeypatch.setattr(reference, "DOC", stale_doc)
    monkeypatch.setattr(reference, "ROOT", tmp_path)
    project = tmp_path / "Pulumi.yaml"
    project.write_text((ROOT / "Pulumi.yaml").read_text())
    monkeypatch.setattr(reference, "PROJECT_FILE", project)
    assert reference.stale() == ["configuration.md"]


def _models():
    seen, todo = [], [reference._model_of(spec.kind)[0] for spec in SECTIONS]
    while todo:
        model = todo.pop()
        if model is None or model in seen:
            continue
        seen.append(model)
        todo.extend(reference._model_of(f.annotation)[0] for f in model.model_fields.values())
    return seen


def test_every_field_of_every_section_has_a_description():
    models = _models()
    assert len(models) > 20
    missing = [f"{m.__name__}.{name}" for m in models for name, f in m.model_fields.items() if not f.description]
    assert missing == [], "add a docstring under each field (it is the reference's description)"


def test_every_key_is_in_the_reference():
    text = (ROOT / "docs" / "configuration.md").read_text()
    for key in (*SCALARS, *SECTIONS_BY_KEY, *SECRET_KEYS):
        assert f"`{key}`" in text
    for path, _, _, _ in reference.rows(reference._model_of(SECTIONS_BY_KEY["gateway"].kind)[0], "gateway"):
        assert f"| `{path}` |" in text
    assert "| `gateway.loadBalancer.tls.httpRedirectPort` | integer 1-65535 | unset |" in text
    assert "| `access.keys[].expiresAfter` |" in text


def _project_config():
    return yaml.safe_load((ROOT / "Pulumi.yaml").read_text())["config"]


def _apply_project_config(stack_config: dict) -> dict:
    """What the Pulumi CLI hands the program: the stack's keys, plus each declared key's default when the
    stack leaves it out; a declared key with neither is an error (pkg workspace/config.go, mergeConfig)."""
    merged = dict(stack_config)
    for key, declaration in _project_config().items():
        if key in merged:
            continue
        if "default" not in declaration:
            raise KeyError(f"Stack is missing configuration value '{key}'")
        merged[key] = declaration["default"]
    return merged


def test_project_config_declares_every_top_level_key_in_a_form_the_cli_accepts():
    declared = _project_config()
    assert set(declared) == {*SCALARS, *SECTIONS_BY_KEY}
    for key, declaration in declared.items():
        assert set(declaration) <= {"type", "description", "default", "secret", "items"}
        assert declaration["description"]
        # Pulumi's project config types: string, integer, boolean, array (no object).
        assert declaration.get("type") in (None, "string", "integer", "boolean", "array")
        if key in SECTIONS_BY_KEY:
            assert "type" not in declaration, "a typed structured key would fail the CLI's type check"
    required = {k for k, d in declared.items() if "default" not in d}
    assert required == {*(set(SCALARS) - set(SCALAR_DEFAULTS)), *(spec.key for spec in SECTIONS if spec.required)}


@pytest.mark.parametrize("stack", EXAMPLE_STACKS)
def test_declared_defaults_mean_the_same_as_leaving_a_key_out(stack):
    config = example_config(stack)
    assert parse_settings(_apply_project_config(config), stack=stack) == parse_settings(config, stack=stack)
    minimal = {k: config[k] for k in ("environment", "platform", "kubernetes", "gateway", "models", "gpuHosts", "gpuSsh", "vault")
               if k in config}
    assert parse_settings(_apply_project_config(minimal), stack=stack) == parse_settings(minimal, stack=stack)


def test_a_stack_without_a_required_key_is_refused_by_the_cli_first():
    config = stack_file_config("dev")
    del config["gateway"]
    with pytest.raises(KeyError, match="gateway"):
        _apply_project_config(config)


def test_type_names_carry_their_limits():
    assert reference.type_name(typing.Optional[int]) == "integer"
    gateway = reference._model_of(SECTIONS_BY_KEY["gateway"].kind)[0]
    field = gateway.model_fields["cpus"]
    assert reference.type_name(field.annotation, field.metadata) == "number > 0 <= 512"
