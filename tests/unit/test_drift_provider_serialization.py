"""The drift reader's provider is pickled into the state and later run by Pulumi's dynamic-provider
host, which has no access to this repository. It must unpickle and work on its own."""

import json
import subprocess
import sys
import textwrap

from pulumi.dynamic.dynamic import serialize_provider

from components.ollama_drift import OllamaHostModelsProvider, pickled_by_value


def test_provider_unpickles_and_runs_without_this_repository(tmp_path):
    with pickled_by_value():  # as OllamaHostModels does when it declares the resource
        blob = serialize_provider(OllamaHostModelsProvider())
    probe = textwrap.dedent(f"""
        import base64, json, sys
        import importlib.util
        assert all(importlib.util.find_spec(m) is None for m in ("components", "renderers", "config")), sys.path
        import dill
        provider = dill.loads(base64.b64decode({blob!r}))
        props = {{"host": "h", "expected": {{"m": {{"tag": "llama3.1:8b", "digest": ""}}}},
                  "script": "", "transport": {{"kind": "ssh", "host": "h", "address": "127.0.0.1", "port": 9,
                  "user": "nobody", "private_key": "not a key", "host_key": ""}}}}
        print(json.dumps({{
            "parsed": provider.parse_models("OLLAMA_MODEL host=h model=a:b digest=0123456789ab size=1GB status=listed"),
            "observed": provider.observe(props),
        }}))
    """)
    done = subprocess.run([sys.executable, "-I", "-c", probe], capture_output=True, text=True, cwd=tmp_path, timeout=60)
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout)
    assert result["parsed"] == {"a:b": {"digest": "0123456789ab", "size": "1GB", "status": "listed"}}
    assert result["observed"]["status"].startswith("unreachable:")
    assert "private key could not be read" in result["observed"]["status"]


def test_serialization_is_deterministic():
    with pickled_by_value():
        first, second = serialize_provider(OllamaHostModelsProvider()), serialize_provider(OllamaHostModelsProvider())
    assert first == second, "a changing blob would show a diff on every preview"
    assert OllamaHostModelsProvider.__module__ == "components.ollama_drift", "the class is put back afterwards"


def test_the_access_provider_unpickles_and_runs_without_this_repository(tmp_path):
    from components.litellm_objects import LiteLLMObjectProvider

    with pickled_by_value(LiteLLMObjectProvider):
        blob = serialize_provider(LiteLLMObjectProvider())
    assert LiteLLMObjectProvider.__module__ == "components.litellm_objects"
    probe = textwrap.dedent(f"""
        import base64, json, sys
        import importlib.util
        assert all(importlib.util.find_spec(m) is None for m in ("components", "renderers", "config")), sys.path
        import dill
        provider = dill.loads(base64.b64decode({blob!r}))
        props = {{"kind": "key", "name": "k", "api_base": "http://127.0.0.1:9", "master_key": "sk-x",
                  "ident": "sk-secret-value", "spec": {{"key_alias": "k", "models": ["m"]}}}}
        try:
            provider.create(props)
        except ConnectionError as error:
            print(json.dumps({{"error": str(error), "id": provider.object_id(props)}}))
    """)
    done = subprocess.run([sys.executable, "-I", "-c", probe], capture_output=True, text=True, cwd=tmp_path, timeout=60)
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout)
    assert "management API at http://127.0.0.1:9 is not reachable" in result["error"]
    assert result["id"].startswith("key-") and "sk-secret-value" not in result["id"]
