"""An external Redis behind Sentinel and a Redis Cluster for real (redis.external.sentinel, .cluster), on loopback.

The servers are Debian's redis-server, TLS only (client, replication and cluster bus), with an ACL user and the
`default` user off:
- a primary with a replica behind three Sentinels (quorum 2), which require the same user and password;
- a cluster of three primaries (the fewest Redis accepts).
The stack is declared with each (TLS with the server's certificate and name checked against a test CA, the ACL
user, the password a secret config key), and the real LiteLLM proxy runs with the declared config and
environment, unchanged but for the CA certificates' directory, in database mode on the session's database:
- answers are cached (the second call never reaches the GPU host) in the primary or the cluster's nodes;
- the router's per-deployment rpm counters, which LiteLLM keeps in coordination_redis' client when
  router_settings names no Redis, are in the same Redis;
- behind Sentinel, after a failover (SENTINEL FAILOVER, the old primary a replica), the proxy caches in the new
  primary and counts requests there without a restart.
Debian's redis_exporter, with the exporter's declared environment, reaches the first Sentinel and the first
cluster node. Ollama is a test double.
"""

from __future__ import annotations

import time
import uuid

import httpx
import pytest

from database_mode import Declared, litellm_in_database_mode
from external_stores import declare, exporter_metrics
from gateway_helpers import own_dev_config
from ollama_double import OllamaDouble
from servers import make_certificates, redis_sentinel_set, redis_tls_cli, redis_tls_cluster

USER = "litellm"
PASSWORD = f"redis-{uuid.uuid4().hex}"
MODEL = "qwen-small"


@pytest.fixture(scope="module")
def tls(tmp_path_factory):
    return make_certificates(tmp_path_factory.mktemp("tls"), "topologies")


@pytest.fixture(scope="module")
def backend():
    double = OllamaDouble("ollama-dev", ["qwen2.5:0.5b"]).start()
    yield {"ollama-dev": f"http://127.0.0.1:{double.port}"}, double
    double.stop()


def stack_with(redis_external: dict, tls) -> tuple[dict, dict]:
    """The dev stack with the external Redis `redis_external` (TLS, the ACL user, the test CA), the redis exporter
    on, and an rpm limit on its model (the router counts it in Redis)."""
    raw = own_dev_config()
    raw["redis"] = {"mode": "external", "external": {**redis_external, "tls": True, "username": USER,
                                                     "caCertificate": tls.ca_pem}}
    raw.get("containers", {}).get("limits", {}).pop("redis", None)
    raw["monitoring"]["redisExporter"]["enabled"] = True
    for model in raw["models"]:
        model["rpm"] = 1000
    return raw, {"redisPassword": PASSWORD}


def cached_twice(proxy, double) -> str:
    """Ask the same question twice: the second answer must come from the cache. Returns the cache key."""
    content = f"cache me {uuid.uuid4()}"
    before = len(double.chats_for("qwen2.5:0.5b"))
    first, second = proxy.chat(MODEL, content), proxy.chat(MODEL, content)
    assert first.status_code == second.status_code == 200, (first.text, second.text)
    assert len(double.chats_for("qwen2.5:0.5b")) == before + 1, "the second answer must come from the cache"
    key = second.headers.get("x-litellm-cache-key")
    assert key
    return key


def keys(tls, port: int, pattern: str) -> list[str]:
    done = redis_tls_cli(tls, port, USER, PASSWORD, "--scan", "--pattern", pattern)
    assert done.returncode == 0, done.stderr
    return done.stdout.split()


def rpm_total(tls, port: int) -> float:
    """The sum of the router's per-deployment rpm counters in the Redis at `port`."""
    total = 0.0
    for key in keys(tls, port, "*:rpm:*"):
        done = redis_tls_cli(tls, port, USER, PASSWORD, "get", key)
        total += float(done.stdout.strip() or 0)
    return total


# --- Sentinel ----------------------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def sentinels(tls):
    with redis_sentinel_set(tls, USER, PASSWORD) as found:
        yield found


@pytest.fixture(scope="module")
def sentinel_stack(sentinels, tls, tmp_path_factory):
    raw, secrets = stack_with({"sentinel": {"masterName": sentinels.primary_name, "nodes": [
        {"host": "127.0.0.1", "port": port} for port in sentinels.sentinel_ports]}}, tls)
    return declare(raw, secrets, tmp_path_factory.mktemp("ca"))


def test_litellm_caches_and_counts_behind_sentinel_and_follows_a_failover(sentinel_stack, sentinels, tls, backend,
                                                                           litellm_database):
    config = sentinel_stack.config()
    assert config["general_settings"]["coordination_redis"]["sentinel_nodes"] == [
        ["127.0.0.1", port] for port in sentinels.sentinel_ports]
    assert not {"redis_host", "redis_port", "cache_kwargs"} & set(config["router_settings"])
    env = sentinel_stack.env("gateway-litellm-0")
    with litellm_in_database_mode(Declared(config, env, sentinel_stack.settings_raw), litellm_database.fresh_database(),
                                  0, backend[0]) as proxy:
        assert httpx.get(f"{proxy.url}/health/readiness", timeout=30).json()["db"] == "connected"
        primary = sentinels.primary_port()
        key = cached_twice(proxy, backend[1])
        assert sentinels.cli(primary, "exists", key) == "1"
        assert keys(tls, primary, "*:rpm:*"), "the router's rpm counters must be in the Sentinel-managed primary"

        new_primary = sentinels.fail_over()
        assert new_primary != primary
        # A write in flight while the old primary steps down can be lost (Sentinel's own semantics); within a few
        # tries the proxy caches in the new primary, without a restart.
        for _ in range(5):
            try:
                key = cached_twice(proxy, backend[1])
            except AssertionError:
                continue
            if sentinels.cli(new_primary, "exists", key) == "1":
                break
        else:
            pytest.fail(f"the proxy never cached in the new primary:\n{proxy.log()[-3000:]}")
        # The router's client (coordination_redis') follows too: a request counts in the new primary.
        before = rpm_total(tls, new_primary)
        assert proxy.chat(MODEL, f"count me {uuid.uuid4()}").status_code == 200
        deadline = time.monotonic() + 20
        while rpm_total(tls, new_primary) <= before:
            assert time.monotonic() < deadline, "the router's rpm counter never moved in the new primary"
            time.sleep(0.5)


def test_the_exporter_reaches_the_first_sentinel(sentinel_stack, sentinels):
    env = sentinel_stack.env("monitoring-redis-exporter")
    assert env["REDIS_ADDR"] == f"rediss://127.0.0.1:{sentinels.sentinel_ports[0]}" and env["REDIS_USER"] == USER
    metrics = exporter_metrics("prometheus-redis-exporter", env, "redis_up")
    assert "redis_up 1" in metrics and 'redis_sentinel_master_status{master_address="127.0.0.1:' in metrics


# --- Cluster -----------------------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def cluster(tls):
    with redis_tls_cluster(tls, USER, PASSWORD) as ports:
        yield ports


@pytest.fixture(scope="module")
def cluster_stack(cluster, tls, tmp_path_factory):
    raw, secrets = stack_with({"cluster": {"nodes": [{"host": "127.0.0.1", "port": port} for port in cluster[:2]]}},
                              tls)
    return declare(raw, secrets, tmp_path_factory.mktemp("ca"))


def test_litellm_caches_and_counts_across_the_cluster(cluster_stack, cluster, tls, backend, litellm_database):
    config = cluster_stack.config()
    assert config["litellm_settings"]["cache_params"]["redis_startup_nodes"] == [
        {"host": "127.0.0.1", "port": port} for port in cluster[:2]]
    env = cluster_stack.env("gateway-litellm-0")
    with litellm_in_database_mode(Declared(config, env, cluster_stack.settings_raw), litellm_database.fresh_database(),
                                  0, backend[0]) as proxy:
        key = cached_twice(proxy, backend[1])
        found = redis_tls_cli(tls, cluster[0], USER, PASSWORD, "exists", key, cluster=True)
        assert found.stdout.strip() == "1", found.stdout + found.stderr
        assert any(keys(tls, port, "*:rpm:*") for port in cluster), "the router's rpm counters must be in the cluster"


def test_the_exporter_reaches_the_first_cluster_node(cluster_stack, cluster):
    env = cluster_stack.env("monitoring-redis-exporter")
    assert env["REDIS_ADDR"] == f"rediss://127.0.0.1:{cluster[0]}"
    metrics = exporter_metrics("prometheus-redis-exporter", env, "redis_up")
    assert "redis_up 1" in metrics and "redis_cluster_state 1" in metrics
