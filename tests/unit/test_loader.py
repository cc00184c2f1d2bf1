"""config.loader reads the project's namespace the way the language host hands it over."""

import json

import pulumi

from config.loader import raw_stack_config
from harness import PROJECT, stack_file_config


def test_reads_config_from_the_language_host_environment(monkeypatch):
    raw = stack_file_config("dev")
    env = {f"{PROJECT}:{k}": v if isinstance(v, str) else json.dumps(v) for k, v in raw.items()}
    env[f"{PROJECT}:masterKey"] = "sk-" + "k" * 40
    env["other-project:gateway"] = "not ours"
    monkeypatch.setenv("PULUMI_CONFIG", json.dumps(env))
    monkeypatch.setenv("PULUMI_CONFIG_SECRET_KEYS", json.dumps([f"{PROJECT}:masterKey"]))
    pulumi.runtime.set_all_config({}, [])
    values, secret = raw_stack_config()
    assert values["gateway"] == raw["gateway"], "structured keys arrive as JSON text and are decoded"
    assert values["environment"] == "dev"
    assert secret == frozenset({"masterKey"})
    assert "other-project:gateway" not in values and "gateway" in values


def test_runtime_config_wins_over_the_environment(monkeypatch):
    monkeypatch.setenv("PULUMI_CONFIG", json.dumps({f"{PROJECT}:environment": "from-env"}))
    pulumi.runtime.set_all_config({f"{PROJECT}:environment": "from-runtime"}, [])
    values, _ = raw_stack_config()
    assert values["environment"] == "from-runtime"


def test_the_program_stops_on_a_key_in_a_namespace_it_does_not_read(monkeypatch):
    """A misspelled namespace (`litelm-gateway:redis`) would otherwise vanish at `pulumi up`."""
    import pytest

    from config.loader import load_settings

    raw = stack_file_config("dev")
    config = {f"{PROJECT}:{k}": v if isinstance(v, str) else json.dumps(v) for k, v in raw.items()}
    monkeypatch.setenv("PULUMI_CONFIG", json.dumps({**config, "litelm-gateway:redis": '{"maxMemoryMb": 512}',
                                                    "docker:host": "unix:///var/run/docker.sock"}))
    monkeypatch.setenv("PULUMI_CONFIG_SECRET_KEYS", "[]")
    pulumi.runtime.set_all_config({}, [])
    monkeypatch.setattr(pulumi, "get_stack", lambda: "dev")
    with pytest.raises(pulumi.RunError) as error:
        load_settings()
    message = str(error.value)
    assert "- litelm-gateway:redis: is in the namespace 'litelm-gateway'" in message
    assert "did you mean litellm-gateway:redis?" in message and "docker:host" not in message
