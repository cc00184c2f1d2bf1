"""The rendered LiteLLM config, run by the real LiteLLM proxy against a real Redis.

The GPU hosts are `OllamaDouble`s (Ollama cannot be installed here). LiteLLM's database mode
cannot run here either (Prisma's query engine cannot be downloaded), so the tests drop
`general_settings.database_url` from the rendered config and run the proxy without a database;
everything else is the config exactly as the stack renders it.
"""

from __future__ import annotations

import uuid

import httpx
import pytest
import redis as redis_client

from config.parse import parse_settings
from gateway_helpers import (MASTER_KEY, REDIS_PASSWORD, UI_PASSWORD, chat, config_without_database, gpu_dispatcher,
                             settings_on_doubles)
from harness import stack_file_config
from ollama_double import OllamaDouble
from renderers.redis_conf import render_redis_conf, with_password
from servers import litellm_proxy, redis_server, run_litellm_until_exit

@pytest.fixture(scope="module")
def redis_port():
    """Real Redis started from the redis.conf the stack renders (with the password it appends)."""
    config = with_password(render_redis_conf(parse_settings(stack_file_config("dev"))), REDIS_PASSWORD)
    with redis_server(REDIS_PASSWORD, config) as port:
        yield port


def gateway_on_doubles(stack: str, redis_port: int):
    """The real proxy with the stack's rendered config; each GPU host an Ollama double that has
    pulled exactly the models the host pulls."""
    settings = parse_settings(stack_file_config(stack))
    doubles = {h.name: OllamaDouble(h.name, [settings.model(m).ollama_tag for m in settings.models_pulled_by(h)]).start()
               for h in settings.gpu_hosts}
    settings = settings_on_doubles(stack, doubles)
    # The environment the Gateway component gives each replica (tests/unit/test_components.py checks
    # the container declares these names), minus the database.
    env = {"LITELLM_MASTER_KEY": MASTER_KEY, "REDIS_PASSWORD": REDIS_PASSWORD,
           "UI_USERNAME": settings.gateway.ui_username, "UI_PASSWORD": UI_PASSWORD}
    try:
        with gpu_dispatcher(settings) as dispatcher, litellm_proxy(
                config_without_database(settings, redis_port, dispatcher), env) as proxy:
            yield proxy, doubles, settings
    finally:
        for double in doubles.values():
            double.stop()


@pytest.fixture(scope="module")
def dev_gateway(redis_port):
    """The dev stack: one CPU Ollama host serving qwen-small."""
    yield from gateway_on_doubles("dev", redis_port)


@pytest.fixture(scope="module")
def prod_gateway(redis_port):
    """The prod stack's routing: three hosts, three models."""
    yield from gateway_on_doubles("prod", redis_port)


def test_requests_without_a_valid_key_are_refused(dev_gateway):
    proxy, doubles, _ = dev_gateway
    assert chat(proxy, "qwen-small", "no key", key=None).status_code == 401
    wrong = chat(proxy, "qwen-small", "wrong key", key="sk-" + "0" * 48)
    # Without a database (here) LiteLLM cannot look a virtual key up and refuses with this 400; with one
    # (test_database_mode.py) a wrong key is a 401. Either way it never reaches a GPU host.
    assert wrong.status_code == 400 and wrong.json()["error"]["type"] == "no_db_connection", wrong.text
    assert not any(d.chat_requests for d in doubles.values()), "a refused request must not reach a GPU host"


def test_the_master_key_is_accepted_and_the_model_answers(dev_gateway):
    proxy, doubles, _ = dev_gateway
    response = chat(proxy, "qwen-small", f"hello {uuid.uuid4()}")
    assert response.status_code == 200, response.text
    assert response.json()["choices"][0]["message"]["content"] == "reply from ollama-dev (qwen2.5:0.5b)"
    assert response.headers["x-litellm-model-id"] == "qwen-small"  # one deployment per model: the dispatcher picks the host


def test_an_unknown_model_is_rejected_by_the_gateway(dev_gateway):
    proxy, _, _ = dev_gateway
    response = chat(proxy, "gpt-4o", "not routed")
    assert response.status_code == 400, response.text
    assert "Invalid model name passed in model=gpt-4o" in response.json()["error"]["message"]


def test_a_repeated_request_is_answered_from_the_redis_cache(dev_gateway, redis_port):
    proxy, doubles, settings = dev_gateway
    double = doubles["ollama-dev"]
    content = f"cache me {uuid.uuid4()}"
    before = len(double.chats_for("qwen2.5:0.5b"))
    first = chat(proxy, "qwen-small", content)
    second = chat(proxy, "qwen-small", content)
    assert first.status_code == second.status_code == 200
    assert len(double.chats_for("qwen2.5:0.5b")) == before + 1, "the second answer must come from the cache"
    assert second.json()["choices"][0]["message"]["content"] == first.json()["choices"][0]["message"]["content"]
    cache_key = second.headers.get("x-litellm-cache-key")
    assert cache_key and cache_key.startswith(f"litellm.{settings.environment}.cache:")
    stored = redis_client.Redis(host="127.0.0.1", port=redis_port, password=REDIS_PASSWORD)
    assert stored.exists(cache_key), "the cached answer lives in Redis"
    ttl = stored.ttl(cache_key)
    assert 0 < ttl <= settings.cache.ttl_seconds


def test_metrics_need_a_bearer_key(dev_gateway):
    proxy, _, _ = dev_gateway
    chat(proxy, "qwen-small", f"count me {uuid.uuid4()}")
    assert httpx.get(f"{proxy.url}/metrics/", timeout=10).status_code == 401
    metrics = httpx.get(f"{proxy.url}/metrics/", headers={"Authorization": f"Bearer {MASTER_KEY}"}, timeout=10)
    assert metrics.status_code == 200
    assert "litellm_" in metrics.text


def test_each_model_is_routed_only_to_the_api_base_of_its_hosts(prod_gateway):
    proxy, doubles, settings = prod_gateway
    for model in settings.models:
        hosts_hit = set()
        for _ in range(16):  # distinct prompts, so the cache does not answer
            response = chat(proxy, model.name, f"{model.name} {uuid.uuid4()}")
            assert response.status_code == 200, response.text
            # "reply from <host> (<tag>)": the double that answered (the dispatcher chose it).
            reply = response.json()["choices"][0]["message"]["content"]
            assert reply.endswith(f"({model.ollama_tag})"), reply
            hosts_hit.add(reply.removeprefix("reply from ").split(" ", 1)[0])
        assert hosts_hit == set(model.hosts), f"{model.name} went to {hosts_hit}, expected {model.hosts}"
    # The doubles agree: no host received a model the gateway does not route to it.
    for name, double in doubles.items():
        routed_tags = {m.ollama_tag for m in settings.models if name in m.hosts}
        received = {r["model"] for r in double.chat_requests}
        assert received == routed_tags, f"{name} received {received}, routed {routed_tags}"


def test_the_admin_ui_is_served_and_checks_its_credentials(dev_gateway):
    """BACKLOG-006: the admin UI at the `adminUiUrl` output, behind UI_USERNAME / UI_PASSWORD."""
    proxy, _, settings = dev_gateway
    page = httpx.get(f"{proxy.url}/ui", follow_redirects=True, timeout=10)  # adminUiUrl = gatewayUrl + /ui
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    assert "<html" in page.text.lower()

    def login(username: str, password: str) -> httpx.Response:
        return httpx.post(f"{proxy.url}/login", data={"username": username, "password": password}, timeout=10)

    # The right credentials pass the check. The next step (the UI's session key) is written to the
    # database, which LiteLLM cannot reach here; with the stack's Postgres the answer is a redirect
    # into the UI (303) instead of this 400.
    right = login(settings.gateway.ui_username, UI_PASSWORD)
    assert right.status_code == 400 and "Not connected to DB" in right.json()["error"]["message"], right.text
    for username, password in [(settings.gateway.ui_username, "wrong-" + UI_PASSWORD),
                               ("not-" + settings.gateway.ui_username, UI_PASSWORD)]:
        refused = login(username, password)
        assert refused.status_code == 401, refused.text
        assert "invalid_credentials" in refused.text


@pytest.mark.parametrize("weak_key", ["sk-1234", ""])
def test_the_proxy_refuses_to_boot_with_a_weak_master_key(redis_port, weak_key):
    settings = settings_on_doubles("dev", {"ollama-dev": OllamaDouble("ollama-dev", [])})
    env = {"LITELLM_MASTER_KEY": weak_key, "REDIS_PASSWORD": REDIS_PASSWORD}
    # It must refuse before it reaches any GPU host: no dispatcher listens at port 9.
    code, output = run_litellm_until_exit(config_without_database(settings, redis_port, "http://127.0.0.1:9"), env)
    assert code is not None, "the proxy kept running with a weak master key"
    assert code != 0
    assert "master key" in output.lower() or "master_key" in output.lower()
