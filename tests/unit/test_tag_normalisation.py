"""One Ollama tag normaliser: the settings' guard (two models pulling one tag on a host) and the drift
reader's comparison and pruning must agree on what is the same model. They disagreed on case
(`Qwen2.5`) and on a registry port (`host:5000/m`): the reader reported such a model missing forever,
and pruning compared other spellings than the guard checked."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap

import pytest
from pulumi.dynamic.dynamic import serialize_provider

from components.ollama_drift import OllamaHostModelsProvider, pickled_by_value
from config.errors import SettingsError
from config.parse import parse_settings
from harness import stack_file_config

# (as written in the config, as `ollama list` may show it)
SAME_MODEL = [
    ("Qwen2.5", "qwen2.5:latest"),
    ("qwen2.5", "Qwen2.5:latest"),
    ("registry.local:5000/team/m", "registry.local:5000/team/m:latest"),
    ("Team/Qwen:7B", "team/qwen:7b"),
]


class ListingHost(OllamaHostModelsProvider):
    """The provider with its transport replaced by a host that lists `listed` (what Ollama would
    print through the host script's `list` action) and records what it is asked to prune."""

    def __init__(self, listed: list[str]):
        self.listed = listed
        self.commands: list[str] = []

    def run(self, transport, command, stdin, timeout):  # noqa: ARG002 - the real signature
        self.commands.append(command)
        if command.endswith(" list"):
            return 0, "".join(f"OLLAMA_MODEL host=h model={t} digest=0123456789ab size=1GB status=listed\n"
                              for t in self.listed), ""
        return 0, "", ""


def props(tags: dict[str, str]) -> dict:
    return {"host": "h", "transport": {"kind": "docker", "container": "c"}, "script": "",
            "expected": {name: {"tag": tag, "digest": ""} for name, tag in tags.items()}}


@pytest.mark.parametrize("configured, listed", SAME_MODEL)
def test_the_reader_finds_a_model_whatever_spelling_ollama_lists(configured, listed):
    observed = ListingHost([listed]).observe(props({"m": configured}))
    assert observed["status"] == "in-sync", observed
    assert observed["missing"] == []


@pytest.mark.parametrize("configured, listed", SAME_MODEL)
def test_respelling_a_tag_prunes_nothing(configured, listed):
    host = ListingHost([listed])
    assert host.prune(props({"m": configured}), props({"m": listed})) == []
    assert not any(" prune " in c for c in host.commands)


def test_a_tag_that_really_left_is_pruned_once_in_its_normal_form():
    host = ListingHost(["qwen2.5:latest", "llama3.1:8b"])
    gone = host.prune(props({"a": "Qwen2.5", "b": "llama3.1:8b"}), props({"b": "LLAMA3.1:8B"}))
    assert gone == ["qwen2.5:latest"]
    assert [c for c in host.commands if " prune " in c] == ["bash -s -- prune qwen2.5:latest"]


@pytest.mark.parametrize("configured, listed", SAME_MODEL)
def test_the_settings_guard_treats_the_same_spellings_as_one_model(configured, listed):
    raw = stack_file_config("dev")
    host = raw["gpuHosts"][0]["name"]
    raw["models"] = [{"name": "one", "ollamaTag": configured, "hosts": [host]},
                     {"name": "two", "ollamaTag": listed, "hosts": [host]}]
    raw.pop("access", None)
    with pytest.raises(SettingsError) as error:
        parse_settings(raw)
    assert any("both pull" in message for _, message in error.value.problems), error.value.problems


def test_the_pickled_reader_normalises_without_this_repository(tmp_path):
    with pickled_by_value():
        blob = serialize_provider(OllamaHostModelsProvider())
    probe = textwrap.dedent(f"""
        import base64, json, importlib.util
        assert all(importlib.util.find_spec(m) is None for m in ("components", "renderers", "config"))
        import dill
        provider = dill.loads(base64.b64decode({blob!r}))
        print(json.dumps([provider.full_tag(t) for t in {json.dumps([c for c, _ in SAME_MODEL])}]))
    """)
    done = subprocess.run([sys.executable, "-I", "-c", probe], capture_output=True, text=True, cwd=tmp_path, timeout=60)
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout) == [listed.lower() for _, listed in SAME_MODEL]
