"""Validation of the router's settings: capacity, fallbacks, model kinds, Ollama options and the escape hatch.
Each bad value is refused before anything is declared, at its key, with what is wrong."""

from __future__ import annotations

import copy

import pytest

from config.errors import SettingsError
from config.parse import parse_settings
from harness import stack_file_config


def problems(mutate) -> dict[str, str]:
    raw = copy.deepcopy(stack_file_config("prod"))
    mutate(raw)
    with pytest.raises(SettingsError) as caught:
        parse_settings(raw)
    return dict(caught.value.problems)


def model(raw, name: str) -> dict:
    return next(m for m in raw["models"] if m["name"] == name)


@pytest.mark.parametrize("value", [0, -1, 1.5, "four"])
def test_parallel_must_be_a_whole_number_of_at_least_one(value):
    found = problems(lambda raw: raw["gpuHosts"][0].update(parallel=value))
    assert "gpuHosts[0].parallel" in found, found


def test_a_fallback_to_an_unknown_model_is_refused():
    found = problems(lambda raw: model(raw, "mistral-7b").update(fallbacks=["gpt-9"]))
    assert "unknown model 'gpt-9'" in found["models[2].fallbacks"], found


def test_a_model_cannot_fall_back_to_itself():
    found = problems(lambda raw: model(raw, "mistral-7b").update(contextWindowFallbacks=["mistral-7b"],
                                                                 options={"numCtx": 4096}))
    assert "is the model itself" in found["models[2].contextWindowFallbacks"], found


def test_context_window_fallbacks_need_the_models_context_window():
    found = problems(lambda raw: model(raw, "mistral-7b").update(contextWindowFallbacks=["llama3.1-8b"]))
    assert "options.numCtx" in found["models[2].contextWindowFallbacks"], found


def test_a_fallback_loop_is_refused_with_its_path():
    def loop(raw):
        model(raw, "llama3.1-8b")["fallbacks"] = ["qwen-coder"]
        model(raw, "qwen-coder")["fallbacks"] = ["mistral-7b"]
        model(raw, "mistral-7b")["fallbacks"] = ["llama3.1-8b"]
    found = problems(loop)
    message = next(v for k, v in found.items() if k.endswith(".fallbacks"))
    assert "loop" in message and "llama3.1-8b -> qwen-coder -> mistral-7b -> llama3.1-8b" in message, found


def test_a_fallback_must_serve_the_same_kind_of_request():
    def embedding(raw):
        model(raw, "qwen-coder")["mode"] = "embedding"
        model(raw, "mistral-7b")["fallbacks"] = ["qwen-coder"]
    found = problems(embedding)
    assert "same kind" in found["models[2].fallbacks"], found


def test_an_unknown_mode_is_refused():
    found = problems(lambda raw: model(raw, "mistral-7b").update(mode="completion"))
    assert "models[2].mode" in found, found


@pytest.mark.parametrize("section, key, typed", [
    ("litellmSettings", "callbacks", "monitoring"),
    ("litellmSettings", "cache_params", "cache.ttlSeconds"),
    ("routerSettings", "redis_password", "redis"),
    ("routerSettings", "num_retries", "router.retries"),
    ("generalSettings", "master_key", "gateway.masterKeyRotation"),
    ("generalSettings", "database_url", "postgres"),
])
def test_an_escape_hatch_key_the_stack_renders_is_refused_at_its_key(section, key, typed):
    found = problems(lambda raw: raw.update(router={"extraConfig": {section: {key: "x"}}}))
    assert f"set it with `{typed}`" in found[f"router.extraConfig.{section}.{key}"], found


@pytest.mark.parametrize("key, typed", [("api_base", "gpuHosts"), ("num_ctx", "models[].options.numCtx"),
                                        ("max_parallel_requests", "gpuHosts[].parallel"),
                                        ("keep_alive", "models[].keepAlive")])
def test_an_extra_litellm_param_the_stack_renders_is_refused(key, typed):
    found = problems(lambda raw: model(raw, "mistral-7b").update(extraLitellmParams={key: 1}))
    assert f"set it with `{typed}`" in found[f"models[2].extraLitellmParams.{key}"], found


@pytest.mark.parametrize("options, key", [({"numCtx": 10}, "numCtx"), ({"temperature": 9}, "temperature"),
                                          ({"numContext": 4096}, "numContext"), ({"topP": 2}, "topP")])
def test_bad_ollama_options_are_refused_at_their_key(options, key):
    found = problems(lambda raw: model(raw, "mistral-7b").update(options=options))
    assert f"models[2].options.{key}" in found, found


@pytest.mark.parametrize("value", ["5 minutes", "-2", "10d", ""])
def test_a_keep_alive_that_ollama_cannot_read_is_refused(value):
    found = problems(lambda raw: model(raw, "mistral-7b").update(keepAlive=value))
    assert "models[2].keepAlive" in found, found


def test_an_escape_hatch_key_that_is_not_an_identifier_is_refused():
    found = problems(lambda raw: raw.update(router={"extraConfig": {"litellmSettings": {"Bad Key": 1}}}))
    assert any(k.startswith("router.extraConfig.litellmSettings") for k in found), found
