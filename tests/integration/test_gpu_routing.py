"""The router a GPU fleet needs, end to end: two real LiteLLM replicas (one Redis) with the rendered config,
the rendered GPU dispatcher (Debian's HAProxy) in front of Ollama test doubles that behave like GPUs (N
slots, a service time, a queue beyond the slots, as Ollama past OLLAMA_NUM_PARALLEL).

Shown here: traffic follows each host's declared capacity across both replicas and no host ever gets
more requests at once than its slots; a killed host costs no request and gets traffic again when it
returns; a model with no live host fails fast with a clear 5xx, and a model with fallbacks is answered by
them; embeddings on /v1/embeddings; the Ollama options and keep_alive reach the host with every request;
escape-hatch keys reach LiteLLM."""

from __future__ import annotations

import asyncio
import contextlib
import copy
import time
import uuid

import httpx
import pytest
import yaml

from config.parse import parse_settings
from gateway_helpers import MASTER_KEY, REDIS_PASSWORD, gpu_dispatcher, own_dev_config
from ollama_double import OllamaDouble
from renderers.litellm_config import render_config_dict
from servers import free_port, litellm_proxy, redis_server

SERVICE = 0.2
HOSTS = {  # name: (parallel, models it serves)
    "big": (3, ["spread:1b"]), "small": (1, ["spread:1b"]),
    "pair-a": (2, ["pair:1b"]), "pair-b": (2, ["pair:1b"]),
    "lone": (1, ["lonely:1b", "orphan:1b"]),
    "tools": (4, ["embed:1b", "tuned:1b", "short:1b"]),
}


def raw_config(ports: dict[str, int]) -> dict:
    raw = own_dev_config()
    raw["gpuHosts"] = [{"name": name, "address": "127.0.0.1", "ollamaPort": ports[name], "parallel": parallel,
                        "localContainer": {"image": "ollama/ollama:0.12.6"}}  # a dev host: no SSH to reach
                       for name, (parallel, _) in HOSTS.items()]
    raw["models"] = [
        {"name": "spread", "ollamaTag": "spread:1b", "hosts": ["big", "small"]},
        {"name": "pair", "ollamaTag": "pair:1b", "hosts": ["pair-a", "pair-b"]},
        {"name": "lonely", "ollamaTag": "lonely:1b", "hosts": ["lone"], "fallbacks": ["pair"]},
        {"name": "orphan", "ollamaTag": "orphan:1b", "hosts": ["lone"]},
        {"name": "embedder", "ollamaTag": "embed:1b", "hosts": ["tools"], "mode": "embedding"},
        {"name": "tuned", "ollamaTag": "tuned:1b", "hosts": ["tools"], "keepAlive": "30m",
         "options": {"numCtx": 8192, "temperature": 0.25, "stop": ["</answer>"]},
         "extraLitellmParams": {"mirostat": 1}},
        {"name": "short", "ollamaTag": "short:1b", "hosts": ["tools"], "options": {"numCtx": 256},
         "contextWindowFallbacks": ["pair"]},
    ]
    raw["cache"] = {"enabled": False}
    raw["router"] = {"hostHealth": {"checkIntervalSeconds": 1, "fall": 1, "rise": 1},
                     "extraConfig": {"routerSettings": {"model_group_alias": {"tuned-alias": "tuned"}}}}
    return raw


@pytest.fixture(scope="module")
def fleet():
    ports = {name: free_port() for name in HOSTS}
    doubles = {name: OllamaDouble(name, models, slots=parallel, service_seconds=SERVICE, port=ports[name]).start()
               for name, (parallel, models) in HOSTS.items()}
    settings = parse_settings(raw_config(ports))
    try:
        with contextlib.ExitStack() as stack:
            redis_port = stack.enter_context(redis_server(REDIS_PASSWORD))
            dispatcher = stack.enter_context(gpu_dispatcher(settings))
            config = render_config_dict(settings, redis_host="127.0.0.1", redis_port=redis_port, dispatcher=dispatcher)
            config["general_settings"].pop("database_url")
            text = yaml.safe_dump(config, sort_keys=False)
            env = {"LITELLM_MASTER_KEY": MASTER_KEY, "REDIS_PASSWORD": REDIS_PASSWORD}
            replicas = [stack.enter_context(litellm_proxy(text, env, host=address))
                        for address in ("127.0.0.2", "127.0.0.3")]
            yield type("Fleet", (), {"doubles": doubles, "replicas": replicas, "settings": settings, "ports": ports})
    finally:
        for double in doubles.values():
            double.stop()


def post(fleet, path: str, body: dict, replica: int = 0, timeout: float = 30) -> httpx.Response:
    return httpx.post(f"{fleet.replicas[replica].url}{path}", json=body, timeout=timeout,
                      headers={"Authorization": f"Bearer {MASTER_KEY}"})


def chat(fleet, model: str, replica: int = 0, **extra) -> httpx.Response:
    return post(fleet, "/v1/chat/completions",
                {"model": model, "messages": [{"role": "user", "content": f"{model} {uuid.uuid4()}"}], **extra}, replica)


async def _load(fleet, model: str, requests: int, clients: int) -> list[tuple[int, float, str]]:
    """Closed-loop clients alternating between the two replicas: (status, seconds, answering host) each."""
    results: list[tuple[int, float, str]] = []
    counter = iter(range(requests))

    async def client(http: httpx.AsyncClient, k: int):
        for i in counter:
            started = time.monotonic()
            response = await http.post(f"{fleet.replicas[(i + k) % 2].url}/v1/chat/completions", json={
                "model": model, "messages": [{"role": "user", "content": f"{i} {uuid.uuid4()}"}]})
            text = response.json()["choices"][0]["message"]["content"] if response.status_code == 200 else response.text
            results.append((response.status_code, time.monotonic() - started,
                            text.removeprefix("reply from ").split(" ", 1)[0]))

    async with httpx.AsyncClient(timeout=60, headers={"Authorization": f"Bearer {MASTER_KEY}"},
                                 limits=httpx.Limits(max_connections=clients)) as http:
        await asyncio.gather(*(client(http, k) for k in range(clients)))
    return results


def load(fleet, model: str, requests: int, clients: int) -> list[tuple[int, float, str]]:
    # A loop of its own, not asyncio.run: that leaves the main thread without a current event loop, which
    # the Pulumi mocks of later tests need.
    loop = asyncio.new_event_loop()
    try:
        return loop.run_until_complete(_load(fleet, model, requests, clients))
    finally:
        loop.close()


def test_traffic_follows_each_hosts_slots_across_both_replicas(fleet):
    big, small = fleet.doubles["big"], fleet.doubles["small"]
    big.most_in_service.clear(), small.most_in_service.clear()
    results = load(fleet, "spread", requests=96, clients=8)  # twice the model's 4 slots
    assert [r for r in results if r[0] != 200] == []
    served = {host: sum(1 for r in results if r[2] == host) for host in ("big", "small")}
    # 3 slots : 1 slot at the same speed: 3/4 of the requests on `big` (the shuffle gave each host half).
    assert 0.65 <= served["big"] / len(results) <= 0.85, served
    # Both replicas' requests together never exceed a host's slots: the slots are counted once.
    assert big.most_in_service["spread:1b"] <= 3 and small.most_in_service["spread:1b"] <= 1
    assert big.most_in_service["spread:1b"] == 3, "the big host's slots were not all used"


def test_a_killed_host_costs_no_request_and_gets_traffic_again_when_it_returns(fleet):
    pair_b = fleet.doubles["pair-b"]
    load(fleet, "pair", requests=16, clients=4)
    pair_b.stop()  # connections refused from now on (the open ones are closed)
    try:
        results = load(fleet, "pair", requests=40, clients=4)
        assert [r for r in results if r[0] != 200] == [], "a request failed after a host was killed"
        assert {r[2] for r in results[8:]} == {"pair-a"}
        budget = fleet.settings.model_timeout(fleet.settings.model("pair"))
        assert max(r[1] for r in results) < min(budget, 10), "a request waited beyond the retry budget"
    finally:
        fleet.doubles["pair-b"] = OllamaDouble("pair-b", ["pair:1b"], slots=2, service_seconds=SERVICE,
                                               port=fleet.ports["pair-b"]).start()
    deadline = time.monotonic() + 20  # rise 1 check, 1 s apart
    while time.monotonic() < deadline:
        results = load(fleet, "pair", requests=16, clients=4)
        assert [r for r in results if r[0] != 200] == []
        if "pair-b" in {r[2] for r in results}:
            return
        time.sleep(0.5)
    raise AssertionError("the host that came back got no traffic within 20 s")


def test_a_model_without_a_live_host_fails_fast_and_a_fallback_answers(fleet):
    fleet.doubles["lone"].stop()
    try:
        time.sleep(2.5)  # its health check fails (fall 1, 1 s apart)
        started = time.monotonic()
        refused = chat(fleet, "orphan")
        assert refused.status_code >= 500 and "no GPU host serving orphan is up" in refused.text, refused.text
        assert time.monotonic() - started < 5, "a model with no live host kept the client waiting"
        answered = chat(fleet, "lonely", replica=1)
        assert answered.status_code == 200, answered.text
        assert answered.json()["choices"][0]["message"]["content"].endswith("(pair:1b)")
    finally:
        fleet.doubles["lone"] = OllamaDouble("lone", HOSTS["lone"][1], slots=1, port=fleet.ports["lone"]).start()


def test_a_prompt_longer_than_the_models_context_goes_to_its_context_window_fallback(fleet):
    fitting = chat(fleet, "short")
    assert fitting.status_code == 200 and fitting.json()["choices"][0]["message"]["content"].endswith("(short:1b)")
    long_prompt = " ".join(f"word{i}" for i in range(600))  # well above 256 tokens
    answer = post(fleet, "/v1/chat/completions", {"model": "short", "messages": [{"role": "user", "content": long_prompt}]})
    assert answer.status_code == 200, answer.text
    assert answer.json()["choices"][0]["message"]["content"].endswith("(pair:1b)")
    assert not [r for r in fleet.doubles["tools"].chats_for("short:1b") if long_prompt in str(r)], \
        "the long prompt reached the model whose context would have cut it"


def test_embeddings_are_served_on_v1_embeddings(fleet):
    answer = post(fleet, "/v1/embeddings", {"model": "embedder", "input": ["first text", "second text"]})
    assert answer.status_code == 200, answer.text
    data = answer.json()["data"]
    assert [d["index"] for d in data] == [0, 1] and all(len(d["embedding"]) == 8 for d in data)
    assert data[0]["embedding"] != data[1]["embedding"]
    (request,) = [r for r in fleet.doubles["tools"].embed_requests if r.get("input") == ["first text", "second text"]]
    assert request["model"] == "embed:1b"


def test_the_ollama_options_reach_the_host_with_every_request(fleet):
    for replica in (0, 1):
        assert chat(fleet, "tuned", replica=replica).status_code == 200
    # A client's own temperature wins over the model's; the rest stays the stack's.
    assert chat(fleet, "tuned", temperature=0.9).status_code == 200
    received = fleet.doubles["tools"].chats_for("tuned:1b")[-3:]
    for body in received:
        assert body["keep_alive"] == "30m"
        assert body["options"]["num_ctx"] == 8192 and body["options"]["stop"] == ["</answer>"]
        assert body["options"]["mirostat"] == 1  # models[].extraLitellmParams
    assert [b["options"]["temperature"] for b in received] == [0.25, 0.25, 0.9]


def test_an_escape_hatch_key_reaches_litellm(fleet):
    answer = chat(fleet, "tuned-alias")  # router.extraConfig.routerSettings.model_group_alias
    assert answer.status_code == 200, answer.text
    assert answer.json()["choices"][0]["message"]["content"].endswith("(tuned:1b)")


def test_without_the_escape_hatch_the_alias_is_unknown(fleet):
    """The alias exists only through the escape hatch (the test above cannot pass on LiteLLM's defaults)."""
    raw = copy.deepcopy(raw_config(fleet.ports))
    raw["router"].pop("extraConfig")
    config = render_config_dict(parse_settings(raw), redis_host="r")
    assert "model_group_alias" not in config["router_settings"]
    unknown = chat(fleet, "no-such-alias")
    assert unknown.status_code == 400 and "Invalid model name passed in model=no-such-alias" in unknown.text
