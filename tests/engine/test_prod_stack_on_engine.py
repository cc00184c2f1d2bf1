"""The prod stack's containers on a real Docker engine: the tests' copy of Pulumi.prod.yaml with its
Docker host pointed at the local engine (and its published ports moved to free ones).

Two LiteLLM replicas, the load balancer, Postgres, Redis, the backup scheduler, Prometheus and the
exporters are created as pulumi-docker would (tests/engine/deploy.py) and must all become healthy under
their declared hardening. Left out, each with its reason: Grafana (no stand-in image); the model pulls,
which run over SSH on the prod GPU hosts (tested against a real sshd in
tests/integration/test_model_pulls_over_ssh.py); the access objects and the observed models, whose
providers read the master key from the external Vault at vault.internal and dial the GPU hosts, neither
reachable here (the dev stack's are created for real in test_dev_stack_on_engine.py).
"""

from __future__ import annotations

import pytest

from engine_stack import bounding_set, deployed, engine_config
from harness import stack_file_config

LEFT_OUT_TYPES = {
    "command:remote:Command": "the prod GPU hosts' pulls run over SSH (test_model_pulls_over_ssh.py)",
    "pulumi-python:dynamic:Resource": "its provider reads the master key from the external Vault (vault.internal) "
                                      "or dials the GPU hosts over SSH, neither reachable here",
}


@pytest.fixture(scope="module")
def prod(docker_engine, standin_images):
    raw = engine_config(stack_file_config("prod"))
    raw["docker"] = {"host": "unix:///var/run/docker.sock"}
    with deployed(docker_engine.client, standin_images, raw, "prod", frozenset(LEFT_OUT_TYPES)) as stack:
        yield stack


def test_every_prod_container_but_grafana_runs_healthy_under_its_hardening(prod):
    declared = prod.declared_containers()
    assert {"gateway-litellm-0", "gateway-litellm-1", "gateway-lb", "gateway-postgres", "gateway-redis",
            "backups-scheduler", "monitoring-prometheus"} <= set(declared), declared
    for logical in declared:
        container = prod.container(logical)
        state = container.attrs["State"]
        assert state["Running"] and state["Health"]["Status"] == "healthy", (logical, state.get("Health"))
        inputs = prod.inputs(logical)
        assert bounding_set(state["Pid"]) == set((inputs.get("capabilities") or {}).get("adds") or []), logical
    # Both replicas are behind the load balancer: HAProxy's own count of servers up.
    lb = prod.container("gateway-lb")
    stats = lb.exec_run(["wget", "-q", "-O", "-", "http://127.0.0.1:8405/metrics"]).output.decode()
    up = [line for line in stats.splitlines() if line.startswith('haproxy_backend_active_servers{proxy="litellm"}')]
    assert up and float(up[0].split()[-1]) == 2, up
