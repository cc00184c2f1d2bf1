"""Two LiteLLM replicas behind the stack's HAProxy on a real Docker engine: a cache hit across replicas,
a rolling replacement under load in Pulumi's create-before-delete order, and a replica killed under load.

The stack is the tests' dev stack file with `gateway.replicas: 2` (the prod shape of the gateway: two
replicas behind the load balancer, one Redis, one database) and an rpm the load cannot reach; deployed
with tests/engine/deploy.py, as pulumi-docker would. The load is bounded: 4 clients, one request at a
time each, until the phase ends (at most 600 s).
"""

from __future__ import annotations

import json
import os
import signal
import threading
import time
import uuid

import httpx
import pytest

from engine_stack import chat, deployed, engine_config
from harness import stack_file_config

CLIENTS = 4


@pytest.fixture(scope="module")
def pair(docker_engine, standin_images):
    raw = engine_config(stack_file_config("dev"))
    raw["gateway"]["replicas"] = 2
    raw["models"][0]["rpm"] = 100000  # the load below must never meet a rate limit
    with deployed(docker_engine.client, standin_images, raw, "dev") as stack:
        yield stack


def replica_names(stack) -> list[str]:
    return [stack.inputs(f"gateway-litellm-{i}")["name"] for i in range(2)]


class Load:
    """CLIENTS clients, each sending one chat at a time (every other client streams) until stopped."""

    def __init__(self, stack, seconds: float = 600):
        self.stack, self.deadline = stack, time.monotonic() + seconds
        self.stop_event = threading.Event()
        self.results: list[tuple[bool, bool, str, float]] = []  # (streamed, ok, detail, finished at)
        self.threads = [threading.Thread(target=self._client, args=(n,), daemon=True) for n in range(CLIENTS)]

    def _client(self, n: int) -> None:
        stream = n % 2 == 1
        while not self.stop_event.is_set() and time.monotonic() < self.deadline:
            try:
                answer = chat(self.stack, self.stack.master_key, stream=stream, content=f"load {n} {uuid.uuid4()}",
                              timeout=30)
                ok = answer.status_code == 200 and ("reply from" in answer.text)
                if stream:
                    ok = ok and answer.text.rstrip().endswith("data: [DONE]")
                detail = f"{answer.status_code} {answer.text[:200]}"
            except httpx.HTTPError as error:
                ok, detail = False, repr(error)
            self.results.append((stream, ok, detail, time.monotonic()))
            time.sleep(0.05)

    def __enter__(self) -> "Load":
        for thread in self.threads:
            thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.stop_event.set()
        for thread in self.threads:
            thread.join(timeout=40)

    def failures(self, streamed: bool | None = None) -> list[str]:
        return [d for s, ok, d, _ in self.results if not ok and (streamed is None or s == streamed)]

    def succeeded_after(self, moment: float) -> int:
        return sum(1 for _, ok, _, at in self.results if ok and at > moment)


def test_an_answer_cached_by_one_replica_is_a_hit_on_the_other(pair):
    content = f"cache across replicas {uuid.uuid4()}"
    body = json.dumps({"model": "qwen-small", "messages": [{"role": "user", "content": content}]})
    probe = ("import json, sys, urllib.request\n"
             "r = urllib.request.Request('http://127.0.0.1:4000/v1/chat/completions', data=sys.argv[1].encode(),\n"
             "    headers={'Authorization': 'Bearer ' + sys.argv[2], 'Content-Type': 'application/json'})\n"
             "a = urllib.request.urlopen(r, timeout=30)\n"
             "print(json.dumps({'key': a.headers.get('x-litellm-cache-key'), 'body': json.load(a)}))\n")
    answers = []
    for logical in ("gateway-litellm-0", "gateway-litellm-1"):  # each replica asked directly, on its own loopback
        done = pair.container(logical).exec_run(["python3", "-c", probe, body, pair.master_key])
        assert done.exit_code == 0, done.output.decode()[-1000:]
        answers.append(json.loads(done.output.decode().strip().splitlines()[-1]))
    first, second = answers
    assert first["key"] is None, "the first answer comes from Ollama"
    assert second["key"] and second["key"].startswith("litellm.dev.cache:"), second
    assert second["body"]["choices"][0]["message"]["content"] == first["body"]["choices"][0]["message"]["content"]


def test_a_rolling_replacement_under_load_fails_no_request_and_creates_before_it_deletes(pair):
    old = replica_names(pair)
    raw = json.loads(json.dumps(pair.raw))
    raw["models"][0]["rpm"] += 1  # a routine change of the rendered config: both replicas roll
    with Load(pair) as load:
        time.sleep(3)
        done = pair.apply(raw)
        removed = time.monotonic()
        time.sleep(5)  # requests after the old replicas are gone
    new = replica_names(pair)
    assert set(new).isdisjoint(old)
    events = [line for line in done if line.split()[0] in ("create", "healthy", "stop", "remove")
              and line.split()[-1] in (*old, *new)]
    assert events == [f"create container {new[0]}", f"healthy container {new[0]}",
                      f"create container {new[1]}", f"healthy container {new[1]}",
                      f"stop container {old[1]}", f"remove container {old[1]}",
                      f"stop container {old[0]}", f"remove container {old[0]}"], events
    assert len(load.results) >= 50, len(load.results)
    assert load.succeeded_after(removed) >= CLIENTS, "the load ran until the old replicas were gone"
    assert not load.failures(), load.failures()[:5]


def test_a_killed_replica_costs_at_most_the_streams_it_was_serving(pair):
    victim = pair.container("gateway-litellm-1")
    restarts = victim.attrs["RestartCount"]
    with Load(pair) as load:
        time.sleep(5)
        # A crash, not `docker kill` (the engine treats that as a manual stop and never restarts it):
        # SIGKILL to the container's first process from the host.
        os.kill(victim.attrs["State"]["Pid"], signal.SIGKILL)
        killed = time.monotonic()
        time.sleep(20)
    # Requests it had not answered are replayed by HAProxy; a stream it was sending is lost (one per
    # streaming client at most, docs/operations.md "A replica that crashes").
    assert not load.failures(streamed=False), load.failures(streamed=False)[:5]
    assert len(load.failures(streamed=True)) <= CLIENTS // 2, load.failures(streamed=True)
    assert len(load.results) >= 50 and load.succeeded_after(killed + 5) >= CLIENTS, len(load.results)
    # restart: unless-stopped brings it back, healthy.
    deadline = time.monotonic() + 180
    while time.monotonic() < deadline:
        victim.reload()
        if victim.attrs["State"].get("Health", {}).get("Status") == "healthy":
            break
        time.sleep(2)
    assert victim.attrs["State"]["Health"]["Status"] == "healthy", victim.attrs["State"]
    assert victim.attrs["RestartCount"] == restarts + 1
