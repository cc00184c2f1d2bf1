"""The dev stack on a real Docker engine: every container it declares, started with its own inputs;
then the same deployment scaled to two replicas (the prod shape of the gateway).

The program is evaluated with the tests' copy of Pulumi.dev.yaml (tests/fixtures), its published ports
moved to free ones and its CPU limits fitted to this machine (engine_stack.engine_config);
tests/engine/deploy.py creates what it declares as pulumi-docker would, with the stand-in images of
tests/engine/images.py. Only Grafana is left out (no stand-in: images.NO_STANDIN says why).
"""

from __future__ import annotations

import json
import os
import signal
import threading
import time
import uuid
from pathlib import Path

import httpx
import pytest

from engine_stack import PROMETHEUS_USER, StackOnEngine, backup_minutes, bounding_set, chat, deployed, engine_config
from harness import stack_file_config


@pytest.fixture(scope="module")
def dev(docker_engine, standin_images):
    with deployed(docker_engine.client, standin_images, engine_config(stack_file_config("dev")), "dev") as stack:
        yield stack


def test_every_declared_container_but_grafana_runs_healthy_under_its_hardening(dev):
    declared = dev.declared_containers()
    assert len(declared) >= 9, declared
    for logical in declared:
        inputs = dev.inputs(logical)
        container = dev.container(logical)
        container.reload()
        state = container.attrs["State"]
        assert state["Running"], (logical, state)
        assert state["Health"]["Status"] == "healthy", (logical, state["Health"])
        status = Path(f"/proc/{state['Pid']}/status").read_text()
        fields = dict(line.split(":\t", 1) for line in status.splitlines() if ":\t" in line)
        # The bounding set is exactly what the stack adds back after dropping ALL.
        assert bounding_set(state["Pid"]) == set((inputs.get("capabilities") or {}).get("adds") or []), logical
        if "no-new-privileges:true" in (inputs.get("securityOpts") or []):
            assert fields["NoNewPrivs"].strip() == "1", logical
        host = container.attrs["HostConfig"]
        assert host["ReadonlyRootfs"] is bool(inputs.get("readOnly")), logical
        assert host["Memory"] == int(inputs["memory"]) * 1024 * 1024, logical
        assert host["NanoCpus"] == int(float(inputs["cpus"]) * 1e9), logical
        published = {key: [(b["HostIp"], int(b["HostPort"])) for b in bound]
                     for key, bound in (container.attrs["NetworkSettings"]["Ports"] or {}).items() if bound}
        assert published == {f"{int(p['internal'])}/tcp": [(p["ip"], int(p["external"]))]
                             for p in inputs.get("ports") or []}, logical


def test_a_read_only_root_is_read_only_and_its_tmpfs_writable(dev):
    postgres = dev.container("gateway-postgres")
    refused = postgres.exec_run(["touch", "/probe"])
    assert refused.exit_code != 0 and b"Read-only file system" in refused.output, refused.output
    assert postgres.exec_run(["touch", "/tmp/probe"]).exit_code == 0


def test_a_chat_and_a_streamed_chat_through_the_published_port_reach_the_ollama_container(dev):
    ollama_host = dev.container("models-ollama-ollama-dev").attrs["Config"]["Hostname"]
    answer = chat(dev, dev.master_key, content="engine: plain")
    assert answer.status_code == 200, answer.text
    assert answer.json()["choices"][0]["message"]["content"] == f"reply from {ollama_host} (qwen2.5:0.5b)"
    streamed = chat(dev, dev.master_key, stream=True, content="engine: streamed")
    assert streamed.status_code == 200, streamed.text
    pieces = [json.loads(line[6:]) for line in streamed.text.splitlines()
              if line.startswith("data: ") and line != "data: [DONE]"]
    text = "".join((p["choices"][0].get("delta") or {}).get("content") or "" for p in pieces)
    assert text == f"reply from {ollama_host} (qwen2.5:0.5b)", streamed.text[:500]
    assert streamed.text.rstrip().endswith("data: [DONE]")


def test_a_wrong_key_is_refused_and_the_declared_keys_work(dev):
    assert chat(dev, "sk-not-a-key").status_code == 401
    for alias in ("ada-notebook", "bob-ci"):
        value = dev.deployment.outputs[f"access-key-{alias}"]["value"]
        answer = chat(dev, value, content=f"engine: {alias}")
        assert answer.status_code == 200, (alias, answer.text)


def test_the_model_was_pulled_into_the_ollama_container_by_the_declared_command(dev):
    out = dev.deployment.outputs["models-pull-ollama-dev-qwen-small"]
    assert "OLLAMA_MODEL host=ollama-dev model=qwen2.5:0.5b" in out, out
    listed = dev.container("models-ollama-ollama-dev").exec_run(["ollama", "list"])
    assert listed.exit_code == 0 and "qwen2.5:0.5b" in listed.output.decode()


def test_the_admin_ui_login_works_with_the_declared_password(dev):
    env = dev.env("gateway-litellm-0")
    login = httpx.post(f"{dev.gateway}/login", data={"username": env["UI_USERNAME"], "password": env["UI_PASSWORD"]},
                       timeout=30, follow_redirects=False)
    assert login.status_code in (200, 303), login.text[:300]
    wrong = httpx.post(f"{dev.gateway}/login", data={"username": env["UI_USERNAME"], "password": "wrong"},
                       timeout=30, follow_redirects=False)
    assert wrong.status_code in (400, 401, 403), wrong.text[:300]


def prometheus_password(dev: StackOnEngine) -> str:
    uploads = {u["file"]: u["content"] for u in dev.inputs("monitoring-prometheus")["uploads"]}
    return uploads["/etc/prometheus/secrets/web-password"].strip()


def test_prometheus_scrapes_every_job_it_is_given_litellm_with_the_metrics_key(dev):
    import yaml

    uploads = {u["file"]: u["content"] for u in dev.inputs("monitoring-prometheus")["uploads"]}
    jobs = {job["job_name"] for job in yaml.safe_load(uploads["/etc/prometheus/prometheus.yml"])["scrape_configs"]}
    assert {"litellm", "loadbalancer", "redis", "postgres"} <= jobs, jobs
    auth = (PROMETHEUS_USER, prometheus_password(dev))
    deadline = time.monotonic() + 120
    while True:
        targets = httpx.get(f"{dev.prometheus}/api/v1/targets", auth=auth, timeout=10).json()["data"]["activeTargets"]
        health = {(t["labels"]["job"], t["health"], t["lastError"][:200]) for t in targets}
        down = jobs - {job for job, h, _ in health if h == "up"}
        if not down or time.monotonic() > deadline:
            break
        time.sleep(3)
    assert not down, sorted(health)
    # The LiteLLM job reaches a replica by Docker DNS, with the metrics key (without it: 401).
    litellm = [t for t in targets if t["labels"]["job"] == "litellm"]
    assert litellm and all(t["scrapeUrl"].endswith(":4000/metrics/") for t in litellm), litellm
    assert httpx.get(f"{dev.prometheus}/api/v1/targets", timeout=10).status_code == 401


def test_the_backup_scheduler_writes_a_dump_as_postgres_and_it_restores_into_a_fresh_database(dev):
    # A config change, as a user makes it: backups in the coming minutes. Only the scheduler is replaced.
    raw = json.loads(json.dumps(dev.raw))
    raw["backups"]["timesUtc"] = backup_minutes()
    done = dev.apply(raw)
    changed = {line.split()[-1] for line in done if line.startswith(("create container", "remove container"))}
    assert changed == {dev.inputs("backups-scheduler")["name"]}, done
    backup = dev.container("backups-scheduler")
    deadline = time.monotonic() + 200
    dumps: list[list[str]] = []
    while time.monotonic() < deadline and not dumps:
        time.sleep(5)
        listing = backup.exec_run(["find", "/backups", "-name", "*.dump", "-printf", "%u %m %p\n"], user="postgres")
        dumps = [line.split() for line in listing.output.decode().splitlines() if line.endswith(".dump")]
    assert dumps, backup.logs(tail=30).decode()
    owner, mode, path = dumps[0]
    assert (owner, mode) == ("postgres", "600"), dumps
    env = dev.env("backups-scheduler")

    def psql(database: str, sql: str) -> str:
        done = backup.exec_run(["psql", "-X", "-tA", "-d", database, "-c", sql], user="postgres")
        assert done.exit_code == 0, done.output.decode()
        return done.output.decode().strip()

    psql(env["PGDATABASE"], "DROP DATABASE IF EXISTS restored")
    psql(env["PGDATABASE"], "CREATE DATABASE restored")
    restored = backup.exec_run(["pg_restore", "--no-owner", "-d", "restored", path], user="postgres")
    assert restored.exit_code == 0, restored.output.decode()[-2000:]
    count = 'SELECT count(*) FROM "LiteLLM_VerificationToken"'
    # The access objects were made before the change above, so the dump holds all their keys.
    assert psql("restored", count) == psql(env["PGDATABASE"], count)
    assert int(psql("restored", count)) >= 3


def test_the_stacks_vault_container_holds_the_secret_and_each_key_policy_reads_only_its_own_path(dev):
    vault = dev.deployment.vault
    root = {"X-Vault-Token": vault["token"]}
    secret = dev.inputs("secrets-kv")
    stored = httpx.get(f"{vault['address']}/v1/{secret['mount']}/data/{secret['name']}", headers=root, timeout=10)
    assert stored.status_code == 200
    assert stored.json()["data"]["data"]["LITELLM_MASTER_KEY"] == dev.master_key
    policy = dev.inputs("access-key-ada-notebook-policy")["name"]
    own = dev.inputs("access-key-ada-notebook-vault")
    token = httpx.post(f"{vault['address']}/v1/auth/token/create", headers=root,
                       json={"policies": [policy], "no_default_policy": True, "ttl": "5m"}, timeout=10).json()["auth"]["client_token"]
    mine = {"X-Vault-Token": token}
    assert httpx.get(f"{vault['address']}/v1/{own['mount']}/data/{own['name']}", headers=mine, timeout=10).status_code == 200
    assert httpx.get(f"{vault['address']}/v1/{secret['mount']}/data/{secret['name']}", headers=mine, timeout=10).status_code == 403
    other = dev.inputs("access-key-bob-ci-vault")
    assert httpx.get(f"{vault['address']}/v1/{other['mount']}/data/{other['name']}", headers=mine, timeout=10).status_code == 403


def test_the_backup_scheduler_stops_on_sigterm_instead_of_being_killed(dev):
    backup = dev.container("backups-scheduler")
    backup.stop(timeout=int(dev.inputs("backups-scheduler")["destroyGraceSeconds"]))
    backup.reload()
    assert backup.attrs["State"]["ExitCode"] == 0, backup.attrs["State"]  # 137: killed after the stop timeout
    assert '"status":"stopped"' in backup.logs(tail=5).decode()


# --- Two replicas: a cache hit across them, a rolling replacement under load in Pulumi's
# create-before-delete order, and a crashed replica. The load is bounded: 4 clients, one request at a
# time each, until the phase ends (at most 600 s).

CLIENTS = 4


@pytest.fixture(scope="module")
def pair(dev):
    """The same deployment scaled to two replicas (the prod shape of the gateway), with an rpm the load
    below cannot reach: an `up` of that config change."""
    raw = json.loads(json.dumps(dev.raw))
    raw["gateway"]["replicas"] = 2
    raw["models"][0]["rpm"] = 100000
    done = dev.apply(raw)
    assert any(line.startswith("healthy container litellm-gateway-dev-litellm-1-") for line in done), done
    return dev


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
