"""The dev stack on a real Docker engine: every container it declares, started with its own inputs.

The program is evaluated with the tests' copy of Pulumi.dev.yaml (tests/fixtures), its published ports
moved to free ones and its CPU limits fitted to this machine (engine_stack.engine_config);
tests/engine/deploy.py creates what it declares as pulumi-docker would, with the stand-in images of
tests/engine/images.py. Only Grafana is left out (no stand-in: images.NO_STANDIN says why).
"""

from __future__ import annotations

import json
import time
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
