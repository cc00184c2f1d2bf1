"""Monitoring with the real programs: promtool on the rendered config and rules, then the real
Prometheus (Debian's) scraping the real LiteLLM proxy booted with the rendered LiteLLM config."""

from __future__ import annotations

import contextlib
import copy
import subprocess
import time
import uuid
from pathlib import Path

import httpx
import pytest
import yaml

from config.names import DISPATCHER_PORT, HAPROXY_HTTP_PORT, HAPROXY_STATS_PORT, PROXY_PORT, REDIS_EXPORTER_PORT, REPLICA_SERVICE
from config.parse import parse_settings
from dns_double import DnsDouble
from gateway_helpers import MASTER_KEY, REDIS_PASSWORD, chat, config_without_database, gpu_dispatcher
from harness import REDIS_TOPOLOGIES, stack_file_config, with_redis_topology
from ollama_double import OllamaDouble
from renderers.monitoring import (
    PrometheusPaths, alert_rules, dashboard_queries, dashboards, render_alert_rules, render_prometheus_config,
)
from servers import (exporter_server, free_port, litellm_proxy, loopback_subnet, prometheus_server, redis_server,
                     require_program, require_root)


def rendered_files(tmp: Path, settings) -> Path:
    paths = PrometheusPaths(rules_file=str(tmp / "rules.yml"), credentials_file=str(tmp / "metrics-key"),
                            config_file=str(tmp / "prometheus.yml"))
    Path(paths.rules_file).write_text(render_alert_rules(settings))
    Path(paths.credentials_file).write_text(MASTER_KEY)
    Path(paths.config_file).write_text(render_prometheus_config(settings, paths))
    return Path(paths.config_file)


def promtool(*args, cwd=None):
    return subprocess.run([require_program("promtool"), *args], capture_output=True, text=True, cwd=cwd, timeout=60)


@pytest.mark.parametrize("stack", ["dev", "prod"])
def test_promtool_accepts_the_rendered_config_and_rules(tmp_path, stack):
    config = rendered_files(tmp_path, parse_settings(stack_file_config(stack)))
    checked = promtool("check", "config", str(config))
    assert checked.returncode == 0, checked.stdout + checked.stderr
    assert "SUCCESS" in checked.stdout + checked.stderr
    rules = promtool("check", "rules", str(tmp_path / "rules.yml"))
    assert rules.returncode == 0, rules.stdout + rules.stderr
    assert "10 rules found" in rules.stdout + rules.stderr


def _alert(name, labels, annotations):
    return {"alertname": name, "exp_alerts": [{"exp_labels": labels, "exp_annotations": annotations}]}


def _quiet(name):
    return {"alertname": name, "exp_alerts": []}


def test_every_alert_fires_and_stays_quiet_when_it_should(tmp_path):
    settings = parse_settings(stack_file_config("prod"))
    thresholds = settings.monitoring.alerts
    summaries = {r["alert"]: r["annotations"]["summary"] for r in alert_rules(settings)}
    (tmp_path / "rules.yml").write_text(render_alert_rules(settings))
    env = {"environment": "prod"}
    eval_at = f"{thresholds.for_minutes + 10}m"
    firing = [
        # Gateway down for good, and one that is up.
        ({"up{job='litellm', host='172.18.0.5:4000', instance='a'}": "0x20", "up{job='litellm', host='172.18.0.6:4000', instance='b'}": "1x20"},
         [_alert("LiteLLMGatewayDown", {"severity": "critical", **env, "job": "litellm", "host": "172.18.0.5:4000", "instance": "a"},
                 {"summary": summaries["LiteLLMGatewayDown"].replace("{{ $labels.host }}", "172.18.0.5:4000")})]),
        # 10 % of requests fail (threshold 5 %).
        ({"litellm_proxy_total_requests_metric_total": "0+100x30", "litellm_proxy_failed_requests_metric_total": "0+10x30"},
         [_alert("LiteLLMHighErrorRatio", {"severity": "warning", **env}, {"summary": summaries["LiteLLMHighErrorRatio"]})]),
        # Every request takes 30-60 s: p95 above 30 s.
        ({"litellm_request_total_latency_metric_bucket{le='30.0'}": "0x30",
          "litellm_request_total_latency_metric_bucket{le='60.0'}": "0+10x30",
          "litellm_request_total_latency_metric_bucket{le='+Inf'}": "0+10x30"},
         [_alert("LiteLLMHighLatencyP95", {"severity": "warning", **env}, {"summary": summaries["LiteLLMHighLatencyP95"]})]),
        ({"litellm_deployment_state{model_id='llama3.1-8b@gpu-01', api_base='http://10.20.1.11:11434'}": "2x20"},
         [_alert("LiteLLMDeploymentOutage", {"severity": "critical", **env, "model_id": "llama3.1-8b@gpu-01"},
                 {"summary": summaries["LiteLLMDeploymentOutage"].replace("{{ $labels.model_id }}", "llama3.1-8b@gpu-01")})]),
        ({"up{job='gpu-dcgm', host='gpu-02', instance='10.20.1.12:9400'}": "0x20"},
         [_alert("GpuHostExporterDown", {"severity": "warning", **env, "job": "gpu-dcgm", "host": "gpu-02", "instance": "10.20.1.12:9400"},
                 {"summary": summaries["GpuHostExporterDown"].replace("{{ $labels.job }}", "gpu-dcgm").replace("{{ $labels.host }}", "gpu-02")})]),
        ({"up{job='redis', instance='r'}": "1x20", "redis_up{job='redis', instance='r'}": "0x20"},
         [_alert("RedisDown", {"severity": "critical", **env, "job": "redis", "instance": "r"}, {"summary": summaries["RedisDown"]})]),
        ({"up{job='loadbalancer', instance='lb'}": "0x20"},
         [_alert("GatewayLoadBalancerDown", {"severity": "critical", **env, "job": "loadbalancer", "instance": "lb"},
                 {"summary": summaries["GatewayLoadBalancerDown"]})]),
        ({"haproxy_server_status{proxy='litellm', server='replica1', state='UP'}": "0x20",
          "haproxy_server_status{proxy='litellm', server='replica2', state='UP'}": "0x20"},
         [_alert("GatewayNoReplicaUp", {"severity": "critical", **env}, {"summary": summaries["GatewayNoReplicaUp"]})]),
        # Both GPU hosts of a model down in the dispatcher (HAProxy reports each state as its own series).
        ({"haproxy_server_status{proxy='model-llama3-1-8b', server='gpu-01', state='UP'}": "0x20",
          "haproxy_server_status{proxy='model-llama3-1-8b', server='gpu-02', state='UP'}": "0x20",
          "haproxy_server_status{proxy='model-llama3-1-8b', server='gpu-01', state='DOWN'}": "1x20",
          "haproxy_server_status{proxy='model-llama3-1-8b', server='gpu-02', state='DOWN'}": "1x20"},
         [_alert("ModelNoGpuHostUp", {"severity": "critical", **env, "proxy": "model-llama3-1-8b"},
                 {"summary": summaries["ModelNoGpuHostUp"].replace("{{ $labels.proxy }}", "model-llama3-1-8b")}),
          {"alertname": "GpuHostDown", "exp_alerts": [
              {"exp_labels": {"severity": "warning", **env, "proxy": "model-llama3-1-8b", "server": host, "state": "DOWN"},
               "exp_annotations": {"summary": summaries["GpuHostDown"].replace("{{ $labels.server }}", host)
                                   .replace("{{ $labels.proxy }}", "model-llama3-1-8b")}}
              for host in ("gpu-01", "gpu-02")]}]),
    ]
    quiet = [
        ({"up{job='litellm', host='172.18.0.5:4000', instance='a'}": "1x20"}, ["LiteLLMGatewayDown"]),
        ({"litellm_proxy_total_requests_metric_total": "0+100x30", "litellm_proxy_failed_requests_metric_total": "0+1x30"},
         ["LiteLLMHighErrorRatio"]),
        ({"litellm_request_total_latency_metric_bucket{le='1.0'}": "0+10x30",
          "litellm_request_total_latency_metric_bucket{le='+Inf'}": "0+10x30"}, ["LiteLLMHighLatencyP95"]),
        ({"litellm_deployment_state{model_id='llama3.1-8b@gpu-01'}": "1x20"}, ["LiteLLMDeploymentOutage"]),
        ({"up{job='gpu-node', host='gpu-01', instance='i'}": "1x20"}, ["GpuHostExporterDown"]),
        ({"up{job='redis', instance='r'}": "1x20", "redis_up{job='redis', instance='r'}": "1x20"}, ["RedisDown"]),
        ({"up{job='loadbalancer', instance='lb'}": "1x20"}, ["GatewayLoadBalancerDown"]),
        ({"haproxy_server_status{proxy='litellm', server='replica1', state='UP'}": "1x20",
          "haproxy_server_status{proxy='litellm', server='replica2', state='UP'}": "0x20"}, ["GatewayNoReplicaUp"]),
        # One host of the model up and none reported DOWN: neither alert.
        ({"haproxy_server_status{proxy='model-llama3-1-8b', server='gpu-01', state='UP'}": "1x20",
          "haproxy_server_status{proxy='model-llama3-1-8b', server='gpu-01', state='DOWN'}": "0x20",
          "haproxy_server_status{proxy='model-llama3-1-8b', server='gpu-02', state='UP'}": "0x20"},
         ["ModelNoGpuHostUp", "GpuHostDown"]),
    ]
    assert_rule_tests_pass(tmp_path, summaries, firing, quiet, eval_at)


def assert_rule_tests_pass(tmp_path, summaries: dict, firing: list, quiet: list, eval_at: str) -> None:
    """promtool's rule tests: each (series, expected alerts) of `firing` fires those, each (series, names) of
    `quiet` fires none of them; every alert of `summaries` (rules.yml in tmp_path) has a case of each."""
    tests = []
    for series, expectations in firing:
        tests.append({"interval": "1m", "input_series": [{"series": k.replace("'", '"'), "values": v} for k, v in series.items()],
                      "alert_rule_test": [dict(e, eval_time=eval_at) for e in expectations]})
    for series, names in quiet:
        tests.append({"interval": "1m", "input_series": [{"series": k.replace("'", '"'), "values": v} for k, v in series.items()],
                      "alert_rule_test": [dict(_quiet(n), eval_time=eval_at) for n in names]})
    assert {e["alertname"] for _, exps in firing for e in exps} == set(summaries), "every alert has a firing case"
    assert {n for _, names in quiet for n in names} == set(summaries), "every alert has a quiet case"
    (tmp_path / "tests.yml").write_text(yaml.safe_dump({"rule_files": ["rules.yml"], "evaluation_interval": "1m",
                                                         "tests": tests}, sort_keys=False))
    result = promtool("test", "rules", "tests.yml", cwd=tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "SUCCESS" in result.stdout + result.stderr


@pytest.mark.parametrize("topology", sorted(REDIS_TOPOLOGIES))
def test_the_redis_alerts_behind_sentinel_and_in_a_cluster_fire_and_stay_quiet(tmp_path, topology):
    """The Redis rules of an external Redis behind Sentinel (the primary's state as the Sentinels see it, the first
    Sentinel unreachable, a failover at risk) or in a cluster (the cluster's state), in Debian's promtool; the
    other rules are the prod stack's, tested above."""
    settings = parse_settings(with_redis_topology(stack_file_config("ext"), topology), stack="ext")
    rules = [r for r in alert_rules(settings) if r["alert"].startswith("Redis")]
    summaries = {r["alert"]: r["annotations"]["summary"] for r in rules}
    (tmp_path / "rules.yml").write_text(yaml.safe_dump({"groups": [{"name": "redis", "rules": rules}]}))
    checked = promtool("check", "rules", str(tmp_path / "rules.yml"))
    assert checked.returncode == 0, checked.stdout + checked.stderr
    env = {"environment": "ext"}
    up = {"up{job='redis', instance='r'}": "1x20", "redis_up{job='redis', instance='r'}": "1x20"}
    if topology == "sentinel":
        primary = {"master_name": "gateway", "master_address": "10.0.0.5:6379"}
        status = "redis_sentinel_master_status{job='redis', master_name='gateway', master_address='10.0.0.5:6379'"
        quorum = "redis_sentinel_master_ckquorum_status{job='redis', master_name='gateway'}"
        replicas = "redis_sentinel_master_ok_slaves{job='redis', master_name='gateway'}"
        healthy = {**up, f"{status}, master_status='ok'}}": "1x20", quorum: "1x20", replicas: "1x20"}
        firing = [
            ({f"{status}, master_status='odown'}}": "0x20"},
             [_alert("RedisDown", {"severity": "critical", **env, "job": "redis", **primary, "master_status": "odown"},
                     {"summary": summaries["RedisDown"].replace("{{ $labels.master_address }}", "10.0.0.5:6379")})]),
            ({**up, "redis_up{job='redis', instance='r'}": "0x20"},
             [_alert("RedisSentinelUnreachable", {"severity": "warning", **env, "job": "redis", "instance": "r"},
                     {"summary": summaries["RedisSentinelUnreachable"]})]),
            ({**healthy, quorum: "0x20"},
             [_alert("RedisSentinelFailoverAtRisk", {"severity": "warning", **env, "job": "redis", "master_name": "gateway"},
                     {"summary": summaries["RedisSentinelFailoverAtRisk"]})]),
            ({**healthy, replicas: "0x20"},
             [_alert("RedisSentinelFailoverAtRisk", {"severity": "warning", **env, "job": "redis", "master_name": "gateway"},
                     {"summary": summaries["RedisSentinelFailoverAtRisk"]})]),
        ]
        quiet = [(healthy, sorted(summaries))]
    else:
        firing = [({**up, "redis_cluster_state{job='redis', instance='r'}": "0x20"},
                   [_alert("RedisDown", {"severity": "critical", **env, "job": "redis", "instance": "r"},
                           {"summary": summaries["RedisDown"]})])]
        quiet = [({**up, "redis_cluster_state{job='redis', instance='r'}": "1x20"}, ["RedisDown"])]
    assert_rule_tests_pass(tmp_path, summaries, firing, quiet, eval_at="15m")


def test_the_rule_tests_can_fail(tmp_path):
    """Guard: promtool really checks the expectations (a wrong expected label is a failure)."""
    settings = parse_settings(stack_file_config("prod"))
    (tmp_path / "rules.yml").write_text(render_alert_rules(settings))
    wrong = {"interval": "1m", "input_series": [{"series": 'up{job="redis", instance="r"}', "values": "1x20"}],
             "alert_rule_test": [dict(_alert("RedisDown", {"severity": "critical"}, {}), eval_time="10m")]}
    (tmp_path / "tests.yml").write_text(yaml.safe_dump({"rule_files": ["rules.yml"], "tests": [wrong]}))
    assert promtool("test", "rules", "tests.yml", cwd=tmp_path).returncode != 0


# --- the real Prometheus scraping the real LiteLLM proxy -------------------------------------------

def query(prometheus_url: str, promql: str) -> dict:
    response = httpx.get(f"{prometheus_url}/api/v1/query", params={"query": promql}, timeout=10)
    return response.json()


def wait_for(prometheus_url: str, promql: str, predicate, timeout: float = 60):
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        last = query(prometheus_url, promql)
        if last.get("status") == "success" and predicate(last["data"]["result"]):
            return last["data"]["result"]
        time.sleep(1)
    raise AssertionError(f"{promql} never satisfied the check; last answer: {last}")


# Each container the stack scrapes gets an address of its own, as on the gateway network, and the port the
# rendered config names; a resolver on port 53 stands in for Docker's embedded DNS. All on loopback
# addresses of this machine's 127.0.0.0/8, chosen per run.
SUBNET = loopback_subnet()
REPLICAS = [f"{SUBNET}.2", f"{SUBNET}.3"]
LOAD_BALANCER, GPU_HOST, REDIS_EXPORTER, RESOLVER = f"{SUBNET}.10", f"{SUBNET}.20", f"{SUBNET}.30", f"{SUBNET}.53"


@pytest.fixture(scope="module")
def scraped_gateway(tmp_path_factory):
    """The rendered Prometheus config as the stack deploys it (no address overridden), scraping what the
    dev stack runs: two real LiteLLM replicas found by DNS service discovery of the alias `litellm`, the
    rendered load balancer (Debian's HAProxy: the gateway, its stats and the GPU dispatcher), Debian's
    redis exporter in front of a real Redis, and a GPU host with Debian's node exporter beside an Ollama
    double. Names resolve through a DNS double on port 53, Prometheus's only resolver."""
    require_root("Prometheus gets its own resolv.conf (a mount namespace) and the DNS double port 53")
    raw = copy.deepcopy(stack_file_config("dev"))
    raw["monitoring"].update(scrapeIntervalSeconds=1, evaluationIntervalSeconds=1)
    double = OllamaDouble("ollama-dev", [m["ollamaTag"] for m in raw["models"]], address=GPU_HOST).start()
    # A model the host has not pulled: its requests fail, so the failure metrics exist too.
    raw["models"] = raw["models"] + [{"name": "not-pulled", "ollamaTag": "missing:1b", "hosts": ["ollama-dev"]}]
    settings = parse_settings({**raw, "gpuHosts": [dict(raw["gpuHosts"][0], address=GPU_HOST, ollamaPort=double.port,
                                                        exporters={"nodeExporterPort": 9100})]})
    tmp = tmp_path_factory.mktemp("prometheus")
    dns = DnsDouble(host=RESOLVER, port=53)
    dns.set(REPLICA_SERVICE, REPLICAS)
    dns.set(settings.names.loadbalancer, [LOAD_BALANCER])
    dns.set(settings.names.redis_exporter, [REDIS_EXPORTER])
    env = {"LITELLM_MASTER_KEY": MASTER_KEY, "REDIS_PASSWORD": REDIS_PASSWORD}
    try:
        with contextlib.ExitStack() as stack:
            redis_port = stack.enter_context(redis_server(REDIS_PASSWORD))
            dispatcher = stack.enter_context(gpu_dispatcher(
                settings, port=DISPATCHER_PORT, address=LOAD_BALANCER, stats=f"{LOAD_BALANCER}:{HAPROXY_STATS_PORT}",
                http=f"{LOAD_BALANCER}:{HAPROXY_HTTP_PORT}", nameserver=f"{RESOLVER}:53"))
            config_text = config_without_database(settings, redis_port, dispatcher)
            proxy = stack.enter_context(litellm_proxy(config_text, env, host=REPLICAS[0], port=PROXY_PORT))
            stack.enter_context(litellm_proxy(config_text, env, host=REPLICAS[1], port=PROXY_PORT))
            # The exporters as the stack runs them: the redis exporter with the container's REDIS_ADDR and
            # REDIS_PASSWORD (components/monitoring.py), the node exporter as a GPU host runs it. This
            # machine's / is an overlay file system, which the node exporter skips by default; a GPU host's
            # is not, so the test lets it report / to check the dashboard's mountpoint="/" series.
            stack.enter_context(exporter_server("prometheus-redis-exporter", f"{REDIS_EXPORTER}:{REDIS_EXPORTER_PORT}", [],
                                                env={"REDIS_ADDR": f"redis://127.0.0.1:{redis_port}",
                                                     "REDIS_PASSWORD": REDIS_PASSWORD}))
            stack.enter_context(exporter_server("prometheus-node-exporter", f"{GPU_HOST}:9100",
                                                ["--collector.filesystem.fs-types-exclude=^(proc|sysfs|tmpfs)$"]))
            config = rendered_files(tmp, settings)
            prometheus_url = stack.enter_context(prometheus_server(config, tmp / "data", resolver=RESOLVER))
            yield proxy, prometheus_url, settings, dns
    finally:
        dns.stop()
        double.stop()


def replicas_up(result) -> bool:
    return len(result) == len(REPLICAS) and all(r["value"][1] == "1" for r in result)


def test_prometheus_finds_both_replicas_by_dns_and_scrapes_them_with_the_bearer_key(scraped_gateway):
    _, prometheus_url, _, _ = scraped_gateway
    up = wait_for(prometheus_url, 'up{job="litellm"}', replicas_up)
    # The labels prod gets: its environment, the role, and the address DNS gave as the host.
    assert sorted(r["metric"]["host"] for r in up) == sorted(f"{a}:{PROXY_PORT}" for a in REPLICAS)
    assert {(r["metric"]["environment"], r["metric"]["role"]) for r in up} == {("dev", "gateway")}


def test_a_replica_that_leaves_the_alias_leaves_the_targets_and_a_new_one_joins(scraped_gateway):
    """docs: a replica that replaces another is scraped without a config change (refresh every 5 s)."""
    _, prometheus_url, _, dns = scraped_gateway
    wait_for(prometheus_url, 'up{job="litellm"}', replicas_up)

    def targets():
        answer = httpx.get(f"{prometheus_url}/api/v1/targets", params={"state": "active"}, timeout=10).json()
        return sorted(t["labels"]["host"] for t in answer["data"]["activeTargets"] if t["labels"]["job"] == "litellm")

    try:
        dns.set(REPLICA_SERVICE, REPLICAS[1:])
        deadline = time.monotonic() + 30
        while targets() != [f"{REPLICAS[1]}:{PROXY_PORT}"] and time.monotonic() < deadline:
            time.sleep(1)
        assert targets() == [f"{REPLICAS[1]}:{PROXY_PORT}"]
    finally:
        dns.set(REPLICA_SERVICE, REPLICAS)
    wait_for(prometheus_url, 'up{job="litellm"}', replicas_up, timeout=30)


def test_the_request_counter_rises_with_traffic(scraped_gateway):
    proxy, prometheus_url, _, _ = scraped_gateway
    wait_for(prometheus_url, 'up{job="litellm"}', replicas_up)
    counter = "sum(litellm_proxy_total_requests_metric_total)"
    before_result = query(prometheus_url, counter)["data"]["result"]
    before = float(before_result[0]["value"][1]) if before_result else 0.0
    for _ in range(3):
        assert chat(proxy, "qwen-small", f"count {uuid.uuid4()}").status_code == 200
    wait_for(prometheus_url, counter, lambda r: r and float(r[0]["value"][1]) >= before + 3)


def test_alert_rules_are_loaded(scraped_gateway):
    _, prometheus_url, settings, _ = scraped_gateway
    groups = httpx.get(f"{prometheus_url}/api/v1/rules", timeout=10).json()["data"]["groups"]
    loaded = {rule["name"]: rule["health"] for group in groups for rule in group["rules"]}
    assert set(loaded) == {r["alert"] for r in alert_rules(settings)}
    deadline = time.monotonic() + 30
    while any(h != "ok" for h in loaded.values()) and time.monotonic() < deadline:
        time.sleep(1)
        groups = httpx.get(f"{prometheus_url}/api/v1/rules", timeout=10).json()["data"]["groups"]
        loaded = {rule["name"]: rule["health"] for group in groups for rule in group["rules"]}
    assert set(loaded.values()) == {"ok"}, loaded


class LoadBalancer:
    url = f"http://{LOAD_BALANCER}:{HAPROXY_HTTP_PORT}"


# The DCGM exporter needs an NVIDIA GPU and its driver, which no machine here has: its panels stay empty,
# and their metric names are checked against the exporter's default counters instead
# (NVIDIA/dcgm-exporter etc/default-counters.csv, commit 00d6d344ea4a39112b211b9ff5af3d97e0bb51c2).
DCGM_DEFAULT_COUNTERS = {
    "DCGM_FI_DEV_SM_CLOCK", "DCGM_FI_DEV_MEM_CLOCK", "DCGM_FI_DEV_MEMORY_TEMP", "DCGM_FI_DEV_GPU_TEMP",
    "DCGM_FI_DEV_POWER_USAGE", "DCGM_FI_DEV_TOTAL_ENERGY_CONSUMPTION", "DCGM_FI_DEV_PCIE_TX_THROUGHPUT",
    "DCGM_FI_DEV_PCIE_RX_THROUGHPUT", "DCGM_FI_DEV_PCIE_REPLAY_COUNTER", "DCGM_FI_DEV_GPU_UTIL",
    "DCGM_FI_DEV_MEM_COPY_UTIL", "DCGM_FI_DEV_ENC_UTIL", "DCGM_FI_DEV_DEC_UTIL", "DCGM_FI_DEV_XID_ERRORS",
    "DCGM_FI_DEV_FB_FREE", "DCGM_FI_DEV_FB_USED", "DCGM_FI_DEV_NVLINK_BANDWIDTH_TOTAL",
    "DCGM_FI_DEV_VGPU_LICENSE_STATUS", "DCGM_FI_DEV_UNCORRECTABLE_REMAPPED_ROWS",
    "DCGM_FI_DEV_CORRECTABLE_REMAPPED_ROWS", "DCGM_FI_DEV_ROW_REMAP_FAILURE",
}


def test_every_dashboard_panel_shows_data_from_what_the_stack_runs(scraped_gateway):
    """Each query of both dashboards runs, and after traffic through the load balancer (a miss, a cache hit,
    a failure) each one returns series: a wrong metric name, label or job would leave a panel empty.
    Only the DCGM panels are empty here (no GPU); their names are checked against the exporter's list."""
    import re

    _, prometheus_url, settings, _ = scraped_gateway
    same = f"dashboard traffic {uuid.uuid4()}"
    assert chat(LoadBalancer, "qwen-small", same).status_code == 200
    assert chat(LoadBalancer, "qwen-small", same).status_code == 200       # a cache hit
    assert chat(LoadBalancer, "not-pulled", "fails").status_code >= 400     # a failure
    queries = dashboard_queries(dashboards(settings))
    assert len(queries) >= 30
    failures, empty = [], []
    for board, panel, promql in queries:
        answer = query(prometheus_url, promql)
        if answer.get("status") != "success":
            failures.append(f"{board} / {panel}: {promql}: {answer.get('error')}")
    assert failures == []
    gpu_only = [q for q in queries if "DCGM_" in q[2]]
    assert {m for _, _, q in gpu_only for m in re.findall(r"\bDCGM_[A-Z_]+", q)} <= DCGM_DEFAULT_COUNTERS
    assert [p for _, p, _ in gpu_only] == ["GPU utilisation", "GPU memory used", "GPU temperature"]
    # rate() and increase() need two samples of a series after the traffic: wait for them, 30 s at most.
    deadline = time.monotonic() + 30
    for board, panel, promql in queries:
        if (board, panel, promql) in gpu_only:
            continue
        while not query(prometheus_url, promql)["data"]["result"] and time.monotonic() < deadline:
            time.sleep(1)
        if not query(prometheus_url, promql)["data"]["result"]:
            empty.append(f"{board} / {panel}: {promql}")
    assert empty == [], "panels with no data:\n" + "\n".join(empty)


def test_every_litellm_metric_the_dashboards_and_rules_use_is_exposed_by_the_proxy(scraped_gateway):
    """A wrong metric name would only give an empty panel: check each against the live /metrics."""
    import re

    proxy, _, settings, _ = scraped_gateway
    same = f"cache me {uuid.uuid4()}"
    assert chat(proxy, "qwen-small", same).status_code == 200
    assert chat(proxy, "qwen-small", same).status_code == 200          # a cache hit
    assert chat(proxy, "not-pulled", "fails").status_code >= 400        # a failure
    exposed = httpx.get(f"{proxy.url}/metrics/", headers={"Authorization": f"Bearer {MASTER_KEY}"}, timeout=10).text
    families = {line.split("{")[0].split(" ")[0] for line in exposed.splitlines() if line.startswith("litellm_")}
    used = {m for _, _, q in dashboard_queries(dashboards(settings)) for m in re.findall(r"\blitellm_[a-z_]+", q)}
    used |= {m for rule in alert_rules(settings) for m in re.findall(r"\blitellm_[a-z_]+", rule["expr"])}
    assert len(used) >= 10
    assert sorted(used - families) == [], f"not exposed by litellm: {sorted(used - families)}"


def test_prometheus_answers_only_with_its_password_and_scrapes_itself_with_it(tmp_path):
    """The rendered web config and self-scrape, on Debian's Prometheus: no password, no data."""
    import bcrypt

    from renderers.monitoring import PROMETHEUS_WEB_USER, render_prometheus_web_config

    settings = parse_settings({**stack_file_config("dev"), "monitoring": {
        **stack_file_config("dev")["monitoring"], "scrapeIntervalSeconds": 1, "evaluationIntervalSeconds": 1}})
    password = "prometheus-" + uuid.uuid4().hex
    paths = PrometheusPaths(rules_file=str(tmp_path / "rules.yml"), credentials_file=str(tmp_path / "metrics-key"),
                            config_file=str(tmp_path / "prometheus.yml"),
                            web_password_file=str(tmp_path / "web-password"), web_config_file=str(tmp_path / "web.yml"))
    Path(paths.rules_file).write_text(render_alert_rules(settings))
    Path(paths.credentials_file).write_text(MASTER_KEY)
    Path(paths.web_password_file).write_text(password)
    Path(paths.web_config_file).write_text(render_prometheus_web_config(
        bcrypt.hashpw(password.encode(), bcrypt.gensalt(10)).decode()))
    # Only the address changes: the container's localhost:9090 is this test's port.
    port = free_port()
    Path(paths.config_file).write_text(render_prometheus_config(settings, paths).replace(
        "localhost:9090", f"localhost:{port}"))
    checked = promtool("check", "web-config", paths.web_config_file)
    assert checked.returncode == 0, checked.stdout + checked.stderr
    auth = (PROMETHEUS_WEB_USER, password)
    with prometheus_server(Path(paths.config_file), tmp_path / "data", web_config=Path(paths.web_config_file),
                           auth=auth, port=port) as url:
        for path in ("/api/v1/query?query=up", "/-/healthy", "/metrics", "/graph"):
            assert httpx.get(url + path, timeout=10).status_code == 401, path
            assert httpx.get(url + path, timeout=10, auth=(PROMETHEUS_WEB_USER, "wrong")).status_code == 401, path
        deadline = time.monotonic() + 60
        result = []
        while time.monotonic() < deadline and not result:
            answer = httpx.get(f"{url}/api/v1/query", params={"query": 'up{job="prometheus"} == 1'}, auth=auth,
                               timeout=10).json()
            result = answer["data"]["result"]
            time.sleep(1)
        assert result, "the self-scrape with the password file never succeeded"
