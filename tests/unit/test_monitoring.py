"""Monitoring under mocks, and the structure of the Grafana files (Grafana cannot run here)."""

import copy
import json
import re

import pytest
import yaml

from config.errors import SettingsError
from config.parse import parse_settings
from harness import ROOT, run_stack, stack_file_config
from renderers.monitoring import (
    DASHBOARD_DIR, DATASOURCE_UID, dashboard_queries, dashboards, render_grafana_dashboard_provider,
    render_grafana_datasource, render_prometheus_config, scrape_jobs,
)


@pytest.fixture(scope="module")
def prod_run():
    return run_stack(stack_file_config("prod"), stack="prod")


def test_prometheus_gets_config_rules_and_the_key_as_a_file(prod_run):
    prometheus = prod_run.mocks.named("monitoring-prometheus")
    files = {u["file"]: u["content"] for u in prometheus.plain("uploads")}
    assert set(files) == {"/etc/prometheus/prometheus.yml", "/etc/prometheus/rules/litellm-gateway.rules.yml",
                          "/etc/prometheus/secrets/litellm-metrics-key", "/etc/prometheus/secrets/web-password",
                          "/etc/prometheus/web.yml"}
    assert prometheus.is_secret("uploads"), "the uploads carry the metrics key: they must be secret"
    config = yaml.safe_load(files["/etc/prometheus/prometheus.yml"])
    litellm = next(job for job in config["scrape_configs"] if job["job_name"] == "litellm")
    assert litellm["authorization"] == {"type": "Bearer", "credentials_file": "/etc/prometheus/secrets/litellm-metrics-key"}
    assert files["/etc/prometheus/secrets/litellm-metrics-key"].startswith("sk-")
    assert files["/etc/prometheus/secrets/litellm-metrics-key"] not in files["/etc/prometheus/prometheus.yml"]
    assert "--storage.tsdb.retention.time=30d" in prometheus.plain("command")
    assert prometheus.plain("ports") == [{"internal": 9090, "external": 9090, "ip": "10.20.0.10"}]
    assert prometheus.plain("mounts")[0]["source"] == "litellm-gateway-prod-prometheus-data"


def test_prometheus_and_grafana_need_credentials(prod_run):
    import bcrypt

    prometheus = prod_run.mocks.named("monitoring-prometheus")
    files = {u["file"]: u["content"] for u in prometheus.plain("uploads")}
    assert "--web.config.file=/etc/prometheus/web.yml" in prometheus.plain("command")
    password = files["/etc/prometheus/secrets/web-password"]
    users = yaml.safe_load(files["/etc/prometheus/web.yml"])["basic_auth_users"]
    assert bcrypt.checkpw(password.encode(), users["prometheus"].encode())
    assert password not in files["/etc/prometheus/web.yml"]
    assert "$(cat /etc/prometheus/secrets/web-password)" in prometheus.plain("healthcheck")["tests"][1]
    config = yaml.safe_load(files["/etc/prometheus/prometheus.yml"])
    itself = next(job for job in config["scrape_configs"] if job["job_name"] == "prometheus")
    assert itself["basic_auth"] == {"username": "prometheus", "password_file": "/etc/prometheus/secrets/web-password"}
    grafana = prod_run.mocks.named("monitoring-grafana")
    env = dict(e.split("=", 1) for e in grafana.plain("envs"))
    assert env["PROMETHEUS_BASIC_AUTH_PASSWORD"] == password and grafana.is_secret("envs")
    stored = json.loads(prod_run.mocks.named("secrets-kv").plain("dataJson"))
    assert stored["PROMETHEUS_PASSWORD"] == password


def test_scrape_targets_cover_replicas_gpu_exporters_redis_postgres_and_itself():
    settings = parse_settings(stack_file_config("prod"))
    jobs = {job: [(t, sc["labels"]) for sc in configs for t in sc["targets"]] for job, configs in scrape_jobs(settings).items()}
    assert [t for t, _ in jobs["litellm"]] == ["dns:litellm:4000"]
    assert [t for t, _ in jobs["loadbalancer"]] == ["litellm-gateway-prod-lb:8405"]
    hosts = [h for h in settings.gpu_hosts if h.exporters.node_exporter_port]
    assert [t for t, _ in jobs["gpu-node"]] == [f"{h.address}:{h.exporters.node_exporter_port}" for h in hosts]
    dcgm = [h for h in settings.gpu_hosts if h.exporters.dcgm_exporter_port]
    assert [t for t, _ in jobs["gpu-dcgm"]] == [f"{h.address}:{h.exporters.dcgm_exporter_port}" for h in dcgm]
    assert set(jobs) == {"litellm", "loadbalancer", "gpu-node", "gpu-dcgm", "redis", "postgres", "prometheus"}
    for job, targets in jobs.items():
        for _, labels in targets:
            assert labels["environment"] == "prod" and labels["role"] and labels["host"], (job, labels)


def test_prometheus_finds_the_replicas_by_dns_not_by_fixed_names():
    config = yaml.safe_load(render_prometheus_config(parse_settings(stack_file_config("prod"))))
    litellm = next(job for job in config["scrape_configs"] if job["job_name"] == "litellm")
    assert litellm["dns_sd_configs"] == [{"names": ["litellm"], "type": "A", "port": 4000, "refresh_interval": "5s"}]
    assert "static_configs" not in litellm
    assert {"target_label": "environment", "replacement": "prod"} in litellm["relabel_configs"]


def test_dev_has_no_gpu_exporter_jobs():
    assert not {"gpu-node", "gpu-dcgm"} & set(scrape_jobs(parse_settings(stack_file_config("dev"))))


def test_exporters_are_not_published_and_get_passwords_as_secrets(prod_run):
    for name in ("monitoring-redis-exporter", "monitoring-postgres-exporter"):
        exporter = prod_run.mocks.named(name)
        assert not exporter.plain("ports")
        assert exporter.is_secret("envs")
    dsn = dict(e.split("=", 1) for e in prod_run.mocks.named("monitoring-postgres-exporter").plain("envs"))
    assert dsn["DATA_SOURCE_NAME"].startswith("postgresql://litellm:")


def test_grafana_admin_password_is_generated_kept_in_vault_and_secret(prod_run):
    grafana = prod_run.mocks.named("monitoring-grafana")
    assert grafana.is_secret("envs")
    env = dict(e.split("=", 1) for e in grafana.plain("envs"))
    stored = json.loads(prod_run.mocks.named("secrets-kv").plain("dataJson"))
    assert env["GF_SECURITY_ADMIN_PASSWORD"] == stored["GRAFANA_ADMIN_PASSWORD"]
    files = {u["file"] for u in grafana.plain("uploads")}
    assert "/etc/grafana/provisioning/datasources/litellm-gateway.yml" in files
    assert {f"{DASHBOARD_DIR}/litellm-usage.json", f"{DASHBOARD_DIR}/litellm-gpu-hosts.json"} <= files


def test_backlog_evidence_for_monitoring_and_analytics(prod_run):
    backlog = prod_run.outputs["backlog"]
    evidence = backlog["BACKLOG-003"]["evidence"]
    assert backlog["BACKLOG-003"]["status"] == "done"
    # docs/operations.md's alert lists ("Alert rules" and the GPU routing section), by hand.
    documented = {"LiteLLMGatewayDown", "LiteLLMHighErrorRatio", "LiteLLMHighLatencyP95", "LiteLLMDeploymentOutage",
                  "GpuHostExporterDown", "RedisDown", "GatewayLoadBalancerDown", "GatewayNoReplicaUp",
                  "ModelNoGpuHostUp", "GpuHostDown"}
    operations = (ROOT / "docs" / "operations.md").read_text()
    assert all(f"`{name}`" in operations for name in documented)
    assert set(evidence["alerts"]) == documented and evidence["alert_rules"] == len(documented)
    # ... and the rules file Prometheus is given holds exactly those.
    uploads = {u["file"]: u for u in prod_run.mocks.named("monitoring-prometheus").plain("uploads")}
    [rules_file] = [f for f in uploads if f.endswith(".rules.yml")]
    groups = yaml.safe_load(uploads[rules_file]["content"])["groups"]
    assert {rule["alert"] for group in groups for rule in group["rules"]} == documented
    assert evidence["scrape_jobs"]["litellm"] == ["dns:litellm:4000"]
    assert backlog["BACKLOG-007"]["status"] == "done"
    assert backlog["BACKLOG-007"]["evidence"]["dashboards"] == ["LiteLLM usage", "GPU hosts"]
    assert prod_run.outputs["grafanaUrl"] == "http://10.20.0.10:3000"


def test_monitoring_can_be_turned_off():
    raw = copy.deepcopy(stack_file_config("dev"))
    raw["monitoring"]["enabled"] = False
    run = run_stack(raw, stack="dev")
    assert not [r for r in run.resources if r.name.startswith("monitoring-")]
    assert run.outputs["backlog"]["BACKLOG-003"]["status"] == "partial"
    assert "grafanaUrl" not in run.outputs


def test_bad_monitoring_settings_are_named():


    raw = copy.deepcopy(stack_file_config("dev"))
    raw["monitoring"].update(prometheusImage="prom/prometheus:latest", scrapeIntervalSeconds=0)
    with pytest.raises(SettingsError) as caught:
        parse_settings(raw)
    assert {"monitoring.prometheusImage", "monitoring.scrapeIntervalSeconds"} <= {k for k, _ in caught.value.problems}
    raw = copy.deepcopy(stack_file_config("dev"))
    raw["monitoring"].update(grafanaPort=4000, bindAddress="0.0.0.0", evaluationIntervalSeconds=5)
    with pytest.raises(SettingsError) as caught:
        parse_settings(raw)
    problems = dict(caught.value.problems)
    assert "monitoring.allowPublicBind" in problems["monitoring.bindAddress"]
    assert "shorter than monitoring.scrapeIntervalSeconds" in problems["monitoring.evaluationIntervalSeconds"]
    raw["monitoring"].update(bindAddress="127.0.0.1", evaluationIntervalSeconds=15)
    with pytest.raises(SettingsError, match="monitoring.grafanaPort: port 4000 on 127.0.0.1 is already published for gateway.port"):
        parse_settings(raw)


# --- Grafana files: what Grafana's provisioning expects ---------------------------------------------

def test_datasource_and_dashboard_provider_files():
    datasource = yaml.safe_load(render_grafana_datasource("http://prom:9090"))
    assert datasource["apiVersion"] == 1
    (ds,) = datasource["datasources"]
    assert (ds["type"], ds["uid"], ds["url"], ds["access"]) == ("prometheus", DATASOURCE_UID, "http://prom:9090", "proxy")
    assert ds["basicAuth"] is True and ds["basicAuthUser"] == "prometheus"
    assert ds["secureJsonData"] == {"basicAuthPassword": "${PROMETHEUS_BASIC_AUTH_PASSWORD}"}
    provider = yaml.safe_load(render_grafana_dashboard_provider())
    (p,) = provider["providers"]
    assert p["type"] == "file" and p["options"]["path"] == DASHBOARD_DIR


def test_dashboards_are_well_formed():
    boards = dashboards(parse_settings(stack_file_config("prod")))
    uids = [b["uid"] for b in boards.values()]
    assert len(set(uids)) == len(uids)
    for board in boards.values():
        assert board["title"] and board["schemaVersion"] >= 36 and board["panels"]
        ids = [p["id"] for p in board["panels"]]
        assert len(set(ids)) == len(ids)
        for panel in board["panels"]:
            assert panel["type"] in {"timeseries", "stat", "gauge", "table"}
            assert panel["datasource"] == {"type": "prometheus", "uid": DATASOURCE_UID}
            assert {"h", "w", "x", "y"} <= set(panel["gridPos"]) and panel["gridPos"]["x"] + panel["gridPos"]["w"] <= 24
            refs = [t["refId"] for t in panel["targets"]]
            assert refs and len(set(refs)) == len(refs)
            assert all(t["expr"] and t["datasource"]["uid"] == DATASOURCE_UID for t in panel["targets"])


def test_usage_dashboard_covers_what_analytics_needs():
    boards = dashboards(parse_settings(stack_file_config("prod")))
    titles = " | ".join(p["title"] for p in boards["litellm-usage.json"]["panels"])
    for needed in ("Requests by model", "Tokens by model", "Spend by model", "key, user and team", "p50 / p95",
                   "Cache hit rate", "Failures by model", "Failures by GPU host"):
        assert needed in titles, needed
    exprs = " ".join(q for _, _, q in dashboard_queries(boards))
    for metric in ("litellm_proxy_total_requests_metric_total", "litellm_spend_metric_total",
                   "litellm_total_tokens_metric_total", "litellm_request_total_latency_metric_bucket",
                   "litellm_cache_hits_metric_total", "haproxy_server_http_responses_total",
                   "haproxy_backend_current_queue"):
        assert metric in exprs, metric


def test_prometheus_config_names_no_secret():
    settings = parse_settings(stack_file_config("prod"))
    text = render_prometheus_config(settings)
    assert "sk-" not in text and "credentials_file" in text


def test_alertmanagers_are_rendered_when_configured():
    settings = parse_settings(stack_file_config("prod"))
    config = yaml.safe_load(render_prometheus_config(settings))
    assert config["alerting"] == {"alertmanagers": [{"static_configs": [{"targets": ["alertmanager.internal:9093"]}]}]}
    raw = copy.deepcopy(stack_file_config("dev"))
    assert "alerting" not in yaml.safe_load(render_prometheus_config(parse_settings(raw)))
    raw["monitoring"]["alertmanagers"] = ["alertmanager"]
    with pytest.raises(SettingsError, match=r"monitoring.alertmanagers\[0\]: 'alertmanager' must be host:port"):
        parse_settings(raw)


def test_litellm_emits_exactly_the_metrics_the_dashboards_and_alerts_read():
    """prometheus_metrics_config is derived from the queries: every LiteLLM metric a panel or an alert
    reads is emitted with the labels it is grouped by, valid for LiteLLM 1.108 (which refuses to start
    on an unknown metric or label), and nothing else is."""
    import os
    from typing import get_args

    os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")  # as in the container: no fetch at import
    from litellm.types.integrations.prometheus import DEFINED_PROMETHEUS_METRICS, PrometheusMetricLabels

    from renderers.litellm_config import render_config_dict
    from renderers.monitoring import alert_rules, dashboard_queries, dashboards

    settings = parse_settings(stack_file_config("prod"))
    groups = render_config_dict(settings, "redis")["litellm_settings"]["prometheus_metrics_config"]
    emitted = {group["metrics"][0]: group.get("include_labels") for group in groups}
    queries = [r["expr"] for r in alert_rules(settings)] + [q for _, _, q in dashboard_queries(dashboards(settings))]
    for query in queries:
        for series in re.findall(r"\b(litellm_[a-z0-9_]+)\b", query):
            if series == "litellm_in_flight_requests":
                continue  # the proxy's own gauge, not the prometheus callback's
            base = re.sub(r"_(bucket|total|count|sum)$", "", series)
            assert base in emitted, f"{query} reads {series}, which the rendered config does not emit"
            for label in re.findall(r"by \(([^)]*)\)", query):
                for name in {n.strip() for n in label.split(",")} - {"le", "gpu_host"}:
                    assert name in (emitted[base] or []), f"{base} is read by {name} but not emitted with it"
    valid = set(get_args(DEFINED_PROMETHEUS_METRICS))
    for metric, labels in emitted.items():
        assert metric in valid
        assert set(labels or []) <= set(PrometheusMetricLabels.get_labels(metric)), metric
    assert "litellm_llm_api_time_to_first_token_metric" not in emitted  # one of the many nobody reads
