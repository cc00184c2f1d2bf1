"""A kubernetes stack's pod templates, as declared, run on the real Docker engine (tests/engine/pods.py maps
each to the container a kubelet would ask for): Postgres as its StatefulSet's pod (uid 999, fsGroup on its
claim, password file, read-only root), Redis (999:1000, config from its Secret), the migration Job to
completion, a LiteLLM replica, HAProxy with the config rendered for Kubernetes (cluster DNS, the headless
Service's full name), and a backup CronJob's pod writing a dump to its claim. Then a chat goes through HAProxy,
the replica and the GPU dispatcher to an Ollama stand-in.

What a cluster adds and this does not: admission, NetworkPolicies, the Ingress, probes other than readiness,
lifecycle hooks (the preStop hook is run by /bin/sh in tests/integration/test_kubernetes_rendered.py), the
rollout. The GPU host is an Ollama stand-in the test starts, with the model pulled by `docker exec` (the
stack's pulls go over SSH: tests/integration/test_model_pulls_over_ssh.py).
"""

from __future__ import annotations

import copy
import time

import httpx
import pytest

from harness import stack_file_config
from images import standin_name
from kube_manifests import stack_manifests
from pods import PodRunner
from servers import free_port

STACK = "dev-k8s"
PREFIX = f"litellm-gateway-{STACK}"
GPU_HOST = "ollama.gpu.test"   # a full name (short ones are refused on Kubernetes), an alias on the test network


def _config() -> dict:
    raw = copy.deepcopy(stack_file_config("k8s"))
    raw["environment"] = STACK
    raw["kubernetes"].update(ingress={"enabled": False}, autoscaling={"enabled": False})
    raw["gateway"].update(replicas=1, cpus=1, memoryMb=2048)
    raw["access"] = {"managementUrl": "http://127.0.0.1:9"}   # the access objects are not created here
    raw["monitoring"] = {"enabled": False}
    raw["gpuHosts"] = [{"name": "gpu-test", "address": GPU_HOST, "ollamaPort": 11434, "parallel": 2,
                        "ssh": {"hostKey": raw["gpuHosts"][0]["ssh"]["hostKey"]}}]
    raw["models"] = [{"name": "qwen-small", "ollamaTag": "qwen2.5:0.5b", "hosts": ["gpu-test"]}]
    return raw


def _wait(container, until: str, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        container.reload()
        state = container.attrs["State"]
        if until == "healthy" and (state.get("Health") or {}).get("Status") == "healthy":
            return
        if until == "exited" and state["Status"] == "exited":
            assert state["ExitCode"] == 0, container.logs(tail=60).decode(errors="replace")
            return
        if state["Status"] == "exited" and until == "healthy":
            raise AssertionError(f"{container.name} exited {state['ExitCode']}: "
                                 f"{container.logs(tail=60).decode(errors='replace')}")
        time.sleep(1)
    raise AssertionError(f"{container.name} not {until} within {timeout} s: {container.logs(tail=60).decode(errors='replace')}")


@pytest.fixture(scope="module")
def pods(docker_engine, standin_images, tmp_path_factory):
    manifests = stack_manifests(_config(), stack=STACK)
    runner = PodRunner(docker_engine.client, manifests, lambda ref: standin_images[standin_name(ref)],
                       tmp_path_factory.mktemp("pods"), network=f"{PREFIX}-test")
    ollama = docker_engine.client.containers.run(
        standin_images[standin_name("ollama/ollama:0.12.6")], name=f"{PREFIX}-ollama", detach=True,
        network=runner.network.name)
    runner.containers.append(ollama)
    runner.api.disconnect_container_from_network(ollama.id, runner.network.name)
    runner.api.connect_container_to_network(ollama.id, runner.network.name, aliases=[GPU_HOST])
    try:
        yield runner, ollama
    finally:
        failed = runner.remove_all()
        assert not failed, failed


def test_the_pod_templates_start_and_serve_a_chat_through_the_dispatcher(pods):
    runner, ollama = pods
    postgres = runner.start(runner.workload("StatefulSet", f"{PREFIX}-postgres"))
    redis = runner.start(runner.workload("Deployment", f"{PREFIX}-redis"))
    _wait(postgres, "healthy", 180)
    _wait(redis, "healthy", 60)
    # The database as its own user, on a read-only root, its data on the claim in a directory of its own.
    assert postgres.exec_run(["id", "-u"]).output.strip() == b"999"
    assert postgres.exec_run(["touch", "/probe"]).exit_code != 0
    assert postgres.exec_run(["test", "-s", "/var/lib/postgresql/data/pgdata/PG_VERSION"]).exit_code == 0
    assert redis.exec_run(["id", "-u"]).output.strip() == b"999"

    (job,) = [m for m in runner.manifests if m["kind"] == "Job"]
    migrate = runner.start(job)
    _wait(migrate, "exited", 300)

    pulled = ollama.exec_run(["ollama", "pull", "qwen2.5:0.5b"])
    assert pulled.exit_code == 0, pulled.output
    replica = runner.start(runner.workload("Deployment", f"{PREFIX}-litellm"))
    port = free_port()
    lb = runner.start(runner.workload("Deployment", f"{PREFIX}-lb"), publish={8080: port})
    _wait(replica, "healthy", 300)
    _wait(lb, "healthy", 60)
    master_key = runner.secrets[f"{PREFIX}-gateway"]["LITELLM_MASTER_KEY"]
    deadline, answer = time.monotonic() + 60, None
    while time.monotonic() < deadline:  # HAProxy's resolver finds the replica through the headless Service
        answer = httpx.post(f"http://127.0.0.1:{port}/v1/chat/completions", timeout=60,
                            headers={"Authorization": f"Bearer {master_key}"},
                            json={"model": "qwen-small", "messages": [{"role": "user", "content": "k8s pods"}]})
        if answer.status_code == 200:
            break
        time.sleep(2)
    assert answer is not None and answer.status_code == 200, answer.text if answer else None
    host = ollama.attrs["Config"]["Hostname"]
    assert answer.json()["choices"][0]["message"]["content"] == f"reply from {host} (qwen2.5:0.5b)"
    # A wrong key is refused by the replica behind the load balancer.
    refused = httpx.post(f"http://127.0.0.1:{port}/v1/chat/completions", timeout=30,
                         headers={"Authorization": "Bearer sk-wrong"}, json={"model": "qwen-small", "messages": []})
    assert refused.status_code == 401, refused.text

    # A backup CronJob's pod: the rendered script as postgres, over the network, onto its claim.
    (cronjob,) = [m for m in runner.manifests if m["kind"] == "CronJob"]
    claim = runner._claim("pgbackups", runner.image_for("postgres:16.10"), 999)
    backup = runner.start(cronjob, claims={f"{PREFIX}-pgbackups": claim})
    _wait(backup, "exited", 120)
    reader = runner.client.containers.run(runner.image_for("postgres:16.10"), entrypoint=["ls", "-ln", "/b/dumps"],
                                          volumes={claim.name: {"bind": "/b", "mode": "ro"}}, remove=True, user="0")
    listing = reader.decode()
    assert f"litellm-{STACK}-" in listing and ".dump.sha256" in listing, listing
    dump = next(line for line in listing.splitlines() if line.endswith(".dump"))
    assert dump.split()[2] == "999" and dump.startswith("-rw-------"), dump  # the postgres user's, 0600
