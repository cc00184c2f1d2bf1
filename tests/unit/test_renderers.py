"""The pure renderers: what the LiteLLM config and the Vault policy say."""

import copy
import re

import yaml

from config.parse import parse_settings
from harness import stack_file_config
from renderers.litellm_config import render_config_dict, render_litellm_config
from renderers.vault_policy import render_read_policy


# docs/configuration.md (gateway.stopGraceSeconds): "about 4 s for the load balancer to take it out".
DOCUMENTED_REMOVAL_SECONDS = 4


def prod_settings(**cache):
    raw = copy.deepcopy(stack_file_config("prod"))
    raw["cache"].update(cache)
    return parse_settings(raw)


def test_one_deployment_per_model_through_the_dispatcher_with_its_limits():
    config = render_config_dict(prod_settings(), redis_host="redis")
    deployments = [
        (d["model_name"], d["litellm_params"]["model"], d["litellm_params"]["api_base"],
         d["litellm_params"].get("rpm"), d["litellm_params"].get("tpm"))
        for d in config["model_list"]
    ]
    lb = "http://litellm-gateway-prod-lb:11400"
    assert deployments == [
        ("llama3.1-8b", "ollama_chat/llama3.1:8b", f"{lb}/models/llama3-1-8b", 600, 400000),
        ("qwen-coder", "ollama_chat/qwen2.5-coder:32b", f"{lb}/models/qwen-coder", 120, None),
        ("mistral-7b", "ollama_chat/mistral:7b", f"{lb}/models/mistral-7b", None, None),
    ]
    ids = [d["model_info"]["id"] for d in config["model_list"]]
    assert len(set(ids)) == len(ids)


def test_secrets_are_environment_references():
    config = render_config_dict(prod_settings(), redis_host="redis")
    assert config["general_settings"]["master_key"] == "os.environ/LITELLM_MASTER_KEY"
    assert config["general_settings"]["database_url"] == "os.environ/DATABASE_URL"
    assert config["router_settings"]["redis_password"] == "os.environ/REDIS_PASSWORD"
    assert config["litellm_settings"]["cache_params"]["password"] == "os.environ/REDIS_PASSWORD"
    assert config["general_settings"]["coordination_redis"]["password"] == "os.environ/REDIS_PASSWORD"


def test_cache_follows_the_settings():
    on = render_config_dict(prod_settings(enabled=True, ttlSeconds=120), redis_host="redis")
    assert on["litellm_settings"]["cache"] is True
    assert on["litellm_settings"]["cache_params"]["ttl"] == 120
    assert on["litellm_settings"]["cache_params"]["type"] == "redis"
    off = render_config_dict(prod_settings(enabled=False), redis_host="redis")
    assert "cache" not in off["litellm_settings"]
    # Router state stays shared through Redis even without the response cache.
    assert off["router_settings"]["redis_host"] == "redis"


def test_metrics_are_on_and_need_a_key():
    config = render_config_dict(prod_settings(), redis_host="redis")
    assert "prometheus" in config["litellm_settings"]["callbacks"]
    assert config["litellm_settings"]["require_auth_for_metrics_endpoint"] is True


def test_the_rendered_text_refers_to_every_secret_by_environment_name_only():
    """docs/operations.md ("Secrets"): the config LiteLLM reads names secrets only as os.environ/NAME, the
    names the containers get from Vault; nothing else in it looks like a secret. Expectations by hand."""
    text = render_litellm_config(prod_settings(), redis_host="redis")
    assert text.startswith("# Rendered by the litellm-gateway-prod Pulumi stack")
    config = yaml.safe_load(text)
    assert config["general_settings"]["master_key"] == "os.environ/LITELLM_MASTER_KEY"
    assert config["general_settings"]["database_url"] == "os.environ/DATABASE_URL"
    for redis in (config["router_settings"], config["litellm_settings"]["cache_params"],
                  config["general_settings"]["coordination_redis"]):
        assert redis.get("redis_password", redis.get("password")) == "os.environ/REDIS_PASSWORD"
    references = set(re.findall(r"os\.environ/([A-Z_]+)", text))
    assert references == {"LITELLM_MASTER_KEY", "DATABASE_URL", "REDIS_PASSWORD"}
    for line in text.splitlines():
        key, _, value = line.strip().lstrip("- ").partition(":")
        if re.search(r"(?i)(password|secret|master_key|api_key|auth_token|access_token)$", key) and value.strip():
            assert value.strip().startswith("os.environ/"), line
    # Pulumi.prod.yaml's three models, in its order, each through the load balancer's dispatcher.
    assert [(d["model_name"], d["litellm_params"]["api_base"]) for d in config["model_list"]] == [
        ("llama3.1-8b", "http://litellm-gateway-prod-lb:11400/models/llama3-1-8b"),
        ("qwen-coder", "http://litellm-gateway-prod-lb:11400/models/qwen-coder"),
        ("mistral-7b", "http://litellm-gateway-prod-lb:11400/models/mistral-7b")]


def test_vault_policy_paths():
    text = render_read_policy("kv", "teams/ai/gateway")
    assert 'path "kv/data/teams/ai/gateway"' in text
    assert 'path "kv/metadata/teams/ai/gateway"' in text


def test_redis_conf_holds_no_password_until_the_component_adds_it():
    from renderers.redis_conf import render_redis_conf, with_password

    text = render_redis_conf(prod_settings())
    assert "requirepass" not in text and "maxmemory 1024mb" in text and "maxmemory-policy allkeys-lru" in text
    assert with_password(text, 'a"b\\c').endswith('requirepass "a\\"b\\\\c"\n')


def test_model_limits_are_enforced_only_when_a_model_has_one():
    import copy

    from config.parse import parse_settings
    from harness import stack_file_config
    from renderers.litellm_config import render_config_dict

    raw = copy.deepcopy(stack_file_config("dev"))
    raw["models"][0].update(rpm=7, tpm=None)
    router = render_config_dict(parse_settings(raw), redis_host="r")["router_settings"]
    assert router["optional_pre_call_checks"] == ["enforce_model_rate_limits"]
    assert router["redis_host"] == "r", "the counters live in the router's Redis, shared by the replicas"
    for model in raw["models"]:
        model.pop("rpm", None)
        model.pop("tpm", None)
    assert "optional_pre_call_checks" not in render_config_dict(parse_settings(raw), redis_host="r")["router_settings"]


def test_every_deployment_has_explicit_prices_zero_unless_configured():
    """LiteLLM 1.108 prices an unpriced Ollama response by asking the GPU host (/api/show) and scanning its
    cost map on every request; explicit prices skip both. They go in model_info: in litellm_params LiteLLM
    registers them again on every request, which empties its model-info cache (docs/benchmarks.md)."""
    config = render_config_dict(prod_settings(), redis_host="redis")
    for deployment in config["model_list"]:
        assert deployment["model_info"]["input_cost_per_token"] == 0
        assert deployment["model_info"]["output_cost_per_token"] == 0
        assert not any("cost" in key for key in deployment["litellm_params"])
    raw = copy.deepcopy(stack_file_config("prod"))
    raw["models"][0].update(costPerMillionInputTokens=0.5, costPerMillionOutputTokens=1.5)
    priced = render_config_dict(parse_settings(raw), redis_host="redis")
    first = [d for d in priced["model_list"] if d["model_name"] == raw["models"][0]["name"]]
    assert first and all(d["model_info"]["input_cost_per_token"] == 0.5e-6 for d in first)
    assert all(d["model_info"]["output_cost_per_token"] == 1.5e-6 for d in first)


def test_the_stop_sequence_is_the_documented_one_for_any_grace_period():
    """docs/configuration.md and docs/operations.md, "What a change does, in order": about 4 s for the load
    balancer to take a stopped replica out, then GRACEFUL_SHUTDOWN_TIMEOUT = stopGraceSeconds - 9 s for
    in-flight requests, then LiteLLM exits; stopGraceSeconds is at least 14. Numbers from the docs."""
    import subprocess

    import pytest

    from config.errors import SettingsError
    from renderers import replica_entrypoint

    for grace in (14, 60, 3600):
        assert replica_entrypoint.graceful_timeout_seconds(grace) == grace - 9
        script = replica_entrypoint.render_entrypoint("http://127.0.0.1:4000/health/drain", grace)
        assert subprocess.run(["sh", "-n", "-c", script], capture_output=True).returncode == 0
        assert "    sleep 4 &\n" in script
    raw = copy.deepcopy(stack_file_config("prod"))
    raw["gateway"]["stopGraceSeconds"] = 13
    with pytest.raises(SettingsError, match=r"gateway\.stopGraceSeconds"):
        parse_settings(raw)


def test_the_replica_entrypoint_passes_on_the_exit_status_and_stops_its_child_after_the_drain_wait(tmp_path):
    """The script's own logic, with Python standing in for the `litellm` program (the drain call itself,
    against real LiteLLM, is exercised by tests/integration/test_load_balancer.py)."""
    import signal
    import subprocess
    import sys
    import time

    from renderers import replica_entrypoint

    def run(child_code: str, grace: int = 30):
        script = replica_entrypoint.render_entrypoint("http://127.0.0.1:9/health/drain", grace, litellm=sys.executable)
        return subprocess.Popen(["sh", "-c", script, "litellm-replica", "-c", child_code], stdout=subprocess.PIPE,
                                stderr=subprocess.STDOUT, text=True, cwd=tmp_path)

    crashed = run("import sys; sys.exit(3)")
    assert crashed.wait(timeout=30) == 3, "a replica that dies by itself exits with its status (Docker restarts it)"

    marker = tmp_path / "term"
    child = (f"import signal, sys, time, pathlib\n"
             f"signal.signal(signal.SIGTERM, lambda *a: (pathlib.Path({str(marker)!r}).write_text(str(time.monotonic())), sys.exit(0)))\n"
             f"print('ready', flush=True)\n"
             f"time.sleep(120)\n")
    stopping = run(child)
    assert stopping.stdout.readline().strip() == "ready"
    sent = time.monotonic()
    stopping.send_signal(signal.SIGTERM)
    assert stopping.wait(timeout=30) == 0
    output = stopping.stdout.read()
    # LiteLLM got SIGTERM only after the wait for the load balancer, even though the drain call failed.
    assert float(marker.read_text()) - sent >= DOCUMENTED_REMOVAL_SECONDS - 0.1, output
    assert "replica stopping: drain call failed" in output, output

    hurried = run(child)
    assert hurried.stdout.readline().strip() == "ready"
    sent = time.monotonic()
    hurried.send_signal(signal.SIGTERM)
    time.sleep(0.5)
    hurried.send_signal(signal.SIGTERM)  # a second SIGTERM skips the rest of the wait
    hurried.wait(timeout=30)
    assert hurried.returncode == 0, hurried.stdout.read()
    assert float(marker.read_text()) - sent < DOCUMENTED_REMOVAL_SECONDS - 1


def test_the_whole_stop_sequence_fits_the_grace_period_even_when_a_request_outlasts_it(tmp_path):
    """A stream longer than the grace period: the drain call hangs (it waits for in-flight requests),
    LiteLLM takes all of GRACEFUL_SHUTDOWN_TIMEOUT after SIGTERM, and the script still exits before
    Docker would SIGKILL it. (Waiting for the drain call as well spent the budget twice.)"""
    import signal
    import socket
    import subprocess
    import sys
    import time

    from renderers import replica_entrypoint

    grace = 18
    budget = replica_entrypoint.graceful_timeout_seconds(grace)
    hanging = socket.socket()  # a drain endpoint that accepts the connection and never answers
    hanging.bind(("127.0.0.1", 0))
    hanging.listen(8)
    marker = tmp_path / "term"
    child = (f"import signal, sys, time, pathlib\n"
             f"def stop(*a):\n"
             f"    pathlib.Path({str(marker)!r}).write_text(str(time.monotonic()))\n"
             f"    time.sleep({budget})  # uvicorn waiting out the stream, all of its budget\n"
             f"    sys.exit(0)\n"
             f"signal.signal(signal.SIGTERM, stop)\n"
             f"print('ready', flush=True)\n"
             f"time.sleep(300)\n")
    script = replica_entrypoint.render_entrypoint(f"http://127.0.0.1:{hanging.getsockname()[1]}/health/drain", grace,
                                                  litellm=sys.executable)
    process = subprocess.Popen(["sh", "-c", script, "litellm-replica", "-c", child], stdout=subprocess.PIPE,
                               stderr=subprocess.STDOUT, text=True, cwd=tmp_path)
    try:
        assert process.stdout.readline().strip() == "ready"
        sent = time.monotonic()
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=grace + 5) == 0
        took = time.monotonic() - sent
        assert float(marker.read_text()) - sent < DOCUMENTED_REMOVAL_SECONDS + 1, "SIGTERM once the balancer let go"
        assert took < grace - 1, f"the stop took {took:.1f} s of a {grace} s grace period"
    finally:
        process.kill()
        hanging.close()


def test_the_dispatcher_gives_each_host_its_slots_and_each_model_its_queue():
    from renderers.haproxy import render_haproxy_config

    text = render_haproxy_config(prod_settings())
    backend = text[text.index("\nbackend model-llama3-1-8b"):].split("\n\n", 1)[0]
    # The fixture's gpu-01 has parallel 4, gpu-02 parallel 2 (docs: gpuHosts[].parallel).
    assert "    server gpu-01 10.20.1.11:11434 maxconn 4 weight 4" in backend
    assert "    server gpu-02 10.20.1.12:11434 maxconn 2 weight 2" in backend
    assert "balance leastconn" in backend and "timeout queue 600s" in backend
    assert "    http-request replace-path /models/llama3-1-8b(/.*) \\1" in backend
    assert "gpu-03" not in backend
    assert "use_backend model-qwen-coder if model-qwen-coder" in text


def test_router_settings_fallbacks_and_options_are_rendered():
    raw = stack_file_config("prod")
    raw["models"][2]["fallbacks"] = ["llama3.1-8b"]
    raw["models"][1].update(options={"numCtx": 16384, "topK": 20}, keepAlive="-1", timeoutSeconds=120,
                            contextWindowFallbacks=["llama3.1-8b"], extraLitellmParams={"mirostat": 2})
    raw["router"] = {"retries": 4, "allowedFails": 5, "cooldownSeconds": 12, "streamTimeoutSeconds": 90,
                     "extraConfig": {"litellmSettings": {"max_budget": 10}}}
    config = render_config_dict(parse_settings(raw), redis_host="r")
    router = config["router_settings"]
    assert (router["num_retries"], router["allowed_fails"], router["cooldown_time"], router["stream_timeout"]) == (4, 5, 12, 90)
    assert router["fallbacks"] == [{"mistral-7b": ["llama3.1-8b"]}]
    assert router["context_window_fallbacks"] == [{"qwen-coder": ["llama3.1-8b"]}]
    # LiteLLM can only see a prompt too long for Ollama by counting it against the model's num_ctx.
    assert router["enable_pre_call_checks"] is True
    assert config["model_list"][1]["model_info"]["max_input_tokens"] == 16384
    qwen = config["model_list"][1]["litellm_params"]
    assert (qwen["num_ctx"], qwen["top_k"], qwen["keep_alive"], qwen["timeout"], qwen["mirostat"]) == (16384, 20, -1, 120, 2)
    assert qwen["stream_timeout"] == 90  # the stack's, as the model sets none
    assert config["litellm_settings"]["max_budget"] == 10


def test_every_key_the_renderer_writes_is_owned_by_the_stack():
    """The escape hatch refuses what the stack renders: every rendered key is in the owned lists, for a
    config with every optional section on."""
    from config.sections.fleet import OllamaOptions
    from config.sections.router import OWNED_EXTRA, OWNED_LITELLM_PARAMS

    raw = stack_file_config("prod")
    raw["models"][2].update(fallbacks=["llama3.1-8b"], contextWindowFallbacks=["llama3.1-8b"], keepAlive="5m",
                            options={"numCtx": 8192})
    raw["router"] = {"streamTimeoutSeconds": 30}
    raw.setdefault("access", {})["defaults"] = {"keyGenerate": {"rpm": 5}, "upperBound": {"rpm": 5000},
                                                "internalUser": {"maxBudget": 3}}
    config = render_config_dict(parse_settings(raw), redis_host="r")
    for section, owned in OWNED_EXTRA.items():
        assert set(config[section]) <= set(owned), set(config[section]) - set(owned)
    for deployment in config["model_list"]:
        # The Ollama options are refused as extra params by their typed names (models[].options.*).
        owned = set(OWNED_LITELLM_PARAMS) | set(OllamaOptions.model_fields)
        assert set(deployment["litellm_params"]) <= owned, deployment["litellm_params"]
