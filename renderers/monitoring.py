"""Render Prometheus's config and alert rules, and Grafana's provisioning and dashboards (pure).

The LiteLLM metric names used here were read off a running proxy (litellm 1.108, `/metrics/`
with the prometheus callback), not taken from the docs.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any

import yaml

from config.names import HAPROXY_STATS_PORT as LB_STATS_PORT
from config.names import POSTGRES_EXPORTER_PORT, PROMETHEUS_PORT, PROXY_PORT, REDIS_EXPORTER_PORT, REPLICA_SERVICE
from config.stack import StackSettings
from config.values import host_port
from renderers.data_stores import host_labels, redis_topology

DATASOURCE_UID = "litellm-gateway-prometheus"
PROMETHEUS_WEB_USER = "prometheus"
GRAFANA_PROMETHEUS_PASSWORD_ENV = "PROMETHEUS_BASIC_AUTH_PASSWORD"


@dataclass(frozen=True)
class PrometheusPaths:
    """Where the files sit for the Prometheus that reads the config (container or test)."""

    rules_file: str = "/etc/prometheus/rules/litellm-gateway.rules.yml"
    credentials_file: str = "/etc/prometheus/secrets/litellm-metrics-key"
    # Prometheus's own basic-auth password (its self-scrape and the container healthcheck read it).
    web_password_file: str = "/etc/prometheus/secrets/web-password"
    web_config_file: str = "/etc/prometheus/web.yml"
    config_file: str = "/etc/prometheus/prometheus.yml"


def litellm_targets() -> list[str]:
    """What Prometheus looks up: every replica answers the network alias (DNS service discovery), so
    a replica that replaces another is scraped without a config change."""
    return [f"dns:{REPLICA_SERVICE}:{PROXY_PORT}"]


def loadbalancer_target(settings: StackSettings) -> str:
    return f"{settings.names.loadbalancer}:{LB_STATS_PORT}"


def _static(targets: list[str], labels: dict[str, str]) -> dict[str, Any]:
    return {"targets": targets, "labels": labels}


def scrape_jobs(settings: StackSettings) -> dict[str, list[dict[str, Any]]]:
    """job name -> static_configs (the replicas' job: what DNS service discovery looks up)."""
    env = settings.environment
    names = settings.names
    monitoring = settings.monitoring
    jobs: dict[str, list[dict[str, Any]]] = {
        # Each replica's `host` label is the address DNS returns for it (relabelled from __address__).
        "litellm": [_static(litellm_targets(), {"environment": env, "role": "gateway", "host": "__address__"})],
        "loadbalancer": [_static([loadbalancer_target(settings)],
                                 {"environment": env, "role": "loadbalancer", "host": names.loadbalancer})],
    }
    nodes = [(h, h.exporters.node_exporter_port) for h in settings.gpu_hosts if h.exporters.node_exporter_port]
    if nodes:
        jobs["gpu-node"] = [_static([host_port(h.address, port)], {"environment": env, "role": "gpu-host", "host": h.name})
                            for h, port in nodes]
    gpus = [(h, h.exporters.dcgm_exporter_port) for h in settings.gpu_hosts if h.exporters.dcgm_exporter_port]
    if gpus:
        jobs["gpu-dcgm"] = [_static([host_port(h.address, port)], {"environment": env, "role": "gpu", "host": h.name})
                            for h, port in gpus]
    if monitoring.redis_exporter.enabled:
        jobs["redis"] = [_static([f"{names.redis_exporter}:{REDIS_EXPORTER_PORT}"],
                                 {"environment": env, "role": "redis", "host": host_labels(settings)["redis"]})]
    if monitoring.postgres_exporter.enabled:
        jobs["postgres"] = [_static([f"{names.postgres_exporter}:{POSTGRES_EXPORTER_PORT}"],
                                    {"environment": env, "role": "postgres",
                                     "host": host_labels(settings)["postgres"]})]
    jobs["prometheus"] = [_static([f"localhost:{PROMETHEUS_PORT}"],
                                  {"environment": env, "role": "monitoring", "host": names.prometheus})]
    return jobs


def render_prometheus_config(settings: StackSettings, paths: PrometheusPaths = PrometheusPaths()) -> str:
    monitoring = settings.monitoring
    scrape_configs = []
    for job, static_configs in scrape_jobs(settings).items():
        config: dict[str, Any] = {"job_name": job, "static_configs": static_configs}
        if job == "litellm":
            # The replicas by DNS: one target per address the alias resolves to, as they come and go.
            config = {"job_name": job, "dns_sd_configs": [
                {"names": [REPLICA_SERVICE], "type": "A", "port": PROXY_PORT, "refresh_interval": "5s"}],
                "relabel_configs": [
                    {"target_label": "environment", "replacement": settings.environment},
                    {"target_label": "role", "replacement": "gateway"},
                    {"source_labels": ["__address__"], "target_label": "host"},
                ],
                # LiteLLM's /metrics needs a bearer key; it is read from a file, never written here.
                "metrics_path": "/metrics/",
                "authorization": {"type": "Bearer", "credentials_file": paths.credentials_file}}
        if job == "prometheus":
            config["basic_auth"] = {"username": PROMETHEUS_WEB_USER, "password_file": paths.web_password_file}
        scrape_configs.append(config)
    document = {
        "global": {
            "scrape_interval": f"{monitoring.scrape_interval_seconds}s",
            "evaluation_interval": f"{monitoring.evaluation_interval_seconds}s",
            "external_labels": {"environment": settings.environment},
        },
        "rule_files": [paths.rules_file],
        "scrape_configs": scrape_configs,
    }
    if monitoring.alertmanagers:
        document["alerting"] = {"alertmanagers": [{"static_configs": [{"targets": list(monitoring.alertmanagers)}]}]}
    return f"# Rendered by the {settings.resource_prefix()} Pulumi stack.\n" + yaml.safe_dump(document, sort_keys=False)


def alert_rules(settings: StackSettings) -> list[dict[str, Any]]:
    alerts = settings.monitoring.alerts
    window = f"{alerts.for_minutes}m"
    env = settings.environment

    def rule(name, expr, severity, summary, for_=window):
        return {"alert": name, "expr": expr, "for": for_,
                "labels": {"severity": severity, "environment": env},
                "annotations": {"summary": summary}}

    return [
        rule("LiteLLMGatewayDown", 'up{job="litellm"} == 0', "critical",
             "LiteLLM replica {{ $labels.host }} is not answering /metrics", for_="2m"),
        rule("LiteLLMHighErrorRatio",
             f"sum(rate(litellm_proxy_failed_requests_metric_total[{window}])) "
             f"/ sum(rate(litellm_proxy_total_requests_metric_total[{window}])) > {alerts.error_ratio}",
             "warning", f"More than {alerts.error_ratio:.0%} of gateway requests fail"),
        rule("LiteLLMHighLatencyP95",
             f"histogram_quantile(0.95, sum by (le) (rate(litellm_request_total_latency_metric_bucket[{window}]))) "
             f"> {alerts.p95_latency_seconds}",
             "warning", f"p95 request latency is above {alerts.p95_latency_seconds:g} s"),
        rule("LiteLLMDeploymentOutage", "max by (model_id) (litellm_deployment_state) == 2", "critical",
             "Deployment {{ $labels.model_id }} is in complete outage (all calls failing)", for_="1m"),
        rule("GpuHostExporterDown", 'up{job=~"gpu-node|gpu-dcgm"} == 0', "warning",
             "Exporter {{ $labels.job }} on GPU host {{ $labels.host }} is down"),
        *redis_rules(settings, rule),
        rule("GatewayLoadBalancerDown", 'up{job="loadbalancer"} == 0', "critical",
             "The gateway's load balancer is not answering: clients cannot reach the gateway", for_="1m"),
        rule("ModelNoGpuHostUp", f'sum by (proxy) (haproxy_server_status{{proxy=~"{DISPATCHER_BACKENDS}", state="UP"}}) < 1',
             "critical", "No GPU host serving {{ $labels.proxy }} passes its health check: its requests fail",
             for_="1m"),
        rule("GpuHostDown", f'haproxy_server_status{{proxy=~"{DISPATCHER_BACKENDS}", state="DOWN"}} == 1', "warning",
             "GPU host {{ $labels.server }} fails its health checks ({{ $labels.proxy }} is served by its other hosts)"),
        rule("GatewayNoReplicaUp", 'sum(haproxy_server_status{proxy="litellm", state="UP"}) < 1', "critical",
             "The load balancer sees no healthy LiteLLM replica", for_="1m"),
    ]


def redis_rules(settings: StackSettings, rule) -> list[dict]:
    """Redis' alerts, from what its exporter watches: the one server, the first Sentinel (the primary's state as
    the Sentinels see it), or the first cluster node (the cluster's state)."""
    topology = redis_topology(settings)
    if topology == "sentinel":
        return [
            rule("RedisDown", "redis_sentinel_master_status == 0", "critical",
                 "The Sentinels see Redis' primary {{ $labels.master_address }} down: the cache and shared limits "
                 "fail until a failover", for_="1m"),
            rule("RedisSentinelUnreachable", 'up{job="redis"} == 0 or redis_up == 0', "warning",
                 "The first Sentinel does not answer the exporter (the gateway's clients ask the others; the "
                 "primary's state is not watched meanwhile)"),
            rule("RedisSentinelFailoverAtRisk",
                 "redis_sentinel_master_ckquorum_status == 0 or redis_sentinel_master_ok_slaves < 1", "warning",
                 "The Sentinels could not fail Redis' primary over: no quorum, or no healthy replica"),
        ]
    if topology == "cluster":
        return [rule("RedisDown", 'up{job="redis"} == 0 or redis_up == 0 or redis_cluster_state == 0', "critical",
                     "Redis (cache and shared limits): the first cluster node does not answer, or the cluster's "
                     "state is not ok", for_="1m")]
    return [rule("RedisDown", 'up{job="redis"} == 0 or redis_up == 0', "critical",
                 "Redis (cache and shared limits) is down", for_="1m")]


def render_alert_rules(settings: StackSettings) -> str:
    document = {"groups": [{"name": "litellm-gateway", "rules": alert_rules(settings)}]}
    return f"# Rendered by the {settings.resource_prefix()} Pulumi stack.\n" + yaml.safe_dump(document, sort_keys=False)


# --- Grafana -------------------------------------------------------------------------------------

def render_prometheus_web_config(password_bcrypt_hash: str) -> str:
    """Prometheus's --web.config.file: every request (UI, API, /metrics, health) needs basic auth."""
    return yaml.safe_dump({"basic_auth_users": {PROMETHEUS_WEB_USER: password_bcrypt_hash}}, sort_keys=False)


def render_grafana_datasource(prometheus_url: str) -> str:
    # Grafana expands ${VAR} in provisioning files: the password stays in the container's environment.
    return yaml.safe_dump({"apiVersion": 1, "datasources": [{
        "name": "Prometheus", "type": "prometheus", "uid": DATASOURCE_UID, "access": "proxy",
        "url": prometheus_url, "isDefault": True, "editable": False,
        "basicAuth": True, "basicAuthUser": PROMETHEUS_WEB_USER,
        "secureJsonData": {"basicAuthPassword": "${" + GRAFANA_PROMETHEUS_PASSWORD_ENV + "}"},
    }]}, sort_keys=False)


DASHBOARD_DIR = "/etc/grafana/dashboards"


def render_grafana_dashboard_provider() -> str:
    return yaml.safe_dump({"apiVersion": 1, "providers": [{
        "name": "litellm-gateway", "folder": "LiteLLM gateway", "type": "file", "disableDeletion": True,
        "allowUiUpdates": False, "options": {"path": DASHBOARD_DIR},
    }]}, sort_keys=False)


def _panel(panel_id: int, title: str, exprs: dict[str, str], unit: str, x: int, y: int, kind="timeseries"):
    return {
        "id": panel_id, "type": kind, "title": title,
        "datasource": {"type": "prometheus", "uid": DATASOURCE_UID},
        "gridPos": {"h": 8, "w": 12, "x": x, "y": y},
        "fieldConfig": {"defaults": {"unit": unit}, "overrides": []},
        "targets": [{"refId": chr(ord("A") + i), "expr": expr, "legendFormat": legend,
                     "datasource": {"type": "prometheus", "uid": DATASOURCE_UID}}
                    for i, (legend, expr) in enumerate(exprs.items())],
    }


def _dashboard(uid: str, title: str, panels: list[tuple[str, dict[str, str], str]]) -> dict[str, Any]:
    return {
        "uid": uid, "title": title, "tags": ["litellm-gateway"], "schemaVersion": 39, "version": 1,
        "editable": False, "time": {"from": "now-6h", "to": "now"}, "refresh": "1m",
        "templating": {"list": []},
        "panels": [_panel(i + 1, t, e, u, x=(i % 2) * 12, y=(i // 2) * 8) for i, (t, e, u) in enumerate(panels)],
    }


# The GPU dispatcher's backends (renderers/haproxy.py), one per model: its servers are the GPU hosts.
DISPATCHER_BACKENDS = "model-.*"


def dashboards(settings: StackSettings) -> dict[str, dict[str, Any]]:
    """file name -> Grafana dashboard JSON model."""
    r = "[5m]"
    usage = _dashboard("litellm-usage", "LiteLLM usage", [
        ("Requests by model", {"{{requested_model}}": f"sum by (requested_model) (rate(litellm_proxy_total_requests_metric_total{r}))"}, "reqps"),
        ("Requests by key, user and team", {
            "key {{api_key_alias}} {{hashed_api_key}}": f"sum by (hashed_api_key, api_key_alias) (rate(litellm_proxy_total_requests_metric_total{r}))",
            "user {{user}}": f"sum by (user) (rate(litellm_proxy_total_requests_metric_total{r}))",
            "team {{team_alias}} {{team}}": f"sum by (team, team_alias) (rate(litellm_proxy_total_requests_metric_total{r}))",
        }, "reqps"),
        ("Tokens by model", {
            "input {{requested_model}}": f"sum by (requested_model) (rate(litellm_input_tokens_metric_total{r}))",
            "output {{requested_model}}": f"sum by (requested_model) (rate(litellm_output_tokens_metric_total{r}))",
        }, "short"),
        ("Tokens by key, user and team", {
            "key {{api_key_alias}} {{hashed_api_key}}": f"sum by (hashed_api_key, api_key_alias) (rate(litellm_total_tokens_metric_total{r}))",
            "user {{user}}": f"sum by (user) (rate(litellm_total_tokens_metric_total{r}))",
            "team {{team_alias}} {{team}}": f"sum by (team, team_alias) (rate(litellm_total_tokens_metric_total{r}))",
        }, "short"),
        ("Spend by model (USD, last 24 h)", {"{{requested_model}}": "sum by (requested_model) (increase(litellm_spend_metric_total[24h]))"}, "currencyUSD"),
        ("Spend by key, user and team (USD, last 24 h)", {
            "key {{api_key_alias}} {{hashed_api_key}}": "sum by (hashed_api_key, api_key_alias) (increase(litellm_spend_metric_total[24h]))",
            "user {{user}}": "sum by (user) (increase(litellm_spend_metric_total[24h]))",
            "team {{team_alias}} {{team}}": "sum by (team, team_alias) (increase(litellm_spend_metric_total[24h]))",
        }, "currencyUSD"),
        ("Latency p50 / p95 by model", {
            "p50 {{requested_model}}": f"histogram_quantile(0.5, sum by (le, requested_model) (rate(litellm_request_total_latency_metric_bucket{r})))",
            "p95 {{requested_model}}": f"histogram_quantile(0.95, sum by (le, requested_model) (rate(litellm_request_total_latency_metric_bucket{r})))",
        }, "s"),
        ("Cache hit rate", {"hit rate": f"sum(rate(litellm_cache_hits_metric_total{r})) / sum(rate(litellm_proxy_total_requests_metric_total{r}))"}, "percentunit"),
        ("Failures by model", {"{{requested_model}} {{exception_status}}": f"sum by (requested_model, exception_status) (rate(litellm_proxy_failed_requests_metric_total{r}))"}, "reqps"),
        ("Failures by GPU host (5xx and failed connections)", {
            "{{server}} 5xx": f'sum by (server) (rate(haproxy_server_http_responses_total{{proxy=~"{DISPATCHER_BACKENDS}", code="5xx"}}{r}))',
            "{{server}} connection errors": f'sum by (server) (rate(haproxy_server_connection_errors_total{{proxy=~"{DISPATCHER_BACKENDS}"}}{r}))',
        }, "reqps"),
        ("Waiting for a GPU slot, by model", {"{{proxy}}": f'haproxy_backend_current_queue{{proxy=~"{DISPATCHER_BACKENDS}"}}'}, "short"),
        ("Deployment state (0 healthy, 1 partial, 2 outage)", {"{{model_id}}": "max by (model_id) (litellm_deployment_state)"}, "short"),
        ("In-flight requests", {"{{instance}}": "sum by (instance) (litellm_in_flight_requests)"}, "short"),
        ("Load balancer: replicas up", {"up": 'sum(haproxy_server_status{proxy="litellm", state="UP"})',
                                        "slots": 'count(haproxy_server_status{proxy="litellm", state="UP"})'}, "short"),
        ("Load balancer: requests and retries", {
            "requests {{code}}": f'sum by (code) (rate(haproxy_frontend_http_responses_total{{proxy="gateway"}}{r}))',
            "retries": f'sum(rate(haproxy_backend_retry_warnings_total{{proxy="litellm"}}{r}))',
            "redispatches": f'sum(rate(haproxy_backend_redispatch_warnings_total{{proxy="litellm"}}{r}))',
        }, "reqps"),
    ])
    gpu = _dashboard("litellm-gpu-hosts", "GPU hosts", [
        ("Exporters up", {"{{host}} {{job}}": 'up{job=~"gpu-node|gpu-dcgm"}'}, "short"),
        ("CPU busy", {"{{host}}": '1 - avg by (host) (rate(node_cpu_seconds_total{job="gpu-node", mode="idle"}[5m]))'}, "percentunit"),
        ("Memory available", {"{{host}}": 'node_memory_MemAvailable_bytes{job="gpu-node"}'}, "bytes"),
        ("Model disk free (/)", {"{{host}}": 'node_filesystem_avail_bytes{job="gpu-node", mountpoint="/"}'}, "bytes"),
        ("GPU utilisation", {"{{host}} GPU {{gpu}}": 'DCGM_FI_DEV_GPU_UTIL{job="gpu-dcgm"}'}, "percent"),
        ("GPU memory used", {"{{host}} GPU {{gpu}}": 'DCGM_FI_DEV_FB_USED{job="gpu-dcgm"}'}, "decmbytes"),
        ("GPU temperature", {"{{host}} GPU {{gpu}}": 'DCGM_FI_DEV_GPU_TEMP{job="gpu-dcgm"}'}, "celsius"),
        ("Requests served by GPU host", {"{{server}} {{proxy}}": f'sum by (server, proxy) (rate(haproxy_server_http_responses_total{{proxy=~"{DISPATCHER_BACKENDS}"}}[5m]))'}, "reqps"),
        ("GPU slots busy, by host and model", {"{{server}} {{proxy}}": f'haproxy_server_current_sessions{{proxy=~"{DISPATCHER_BACKENDS}"}}',
                                               "{{server}} {{proxy}} slots": f'haproxy_server_limit_sessions{{proxy=~"{DISPATCHER_BACKENDS}"}}'}, "short"),
        ("GPU hosts up, by model", {"{{proxy}}": f'sum by (proxy) (haproxy_server_status{{proxy=~"{DISPATCHER_BACKENDS}", state="UP"}})'}, "short"),
    ])
    return {"litellm-usage.json": usage, "litellm-gpu-hosts.json": gpu}


def with_datasource_variable(dashboard: dict[str, Any]) -> dict[str, Any]:
    """The dashboard for a Grafana that is not the stack's (Kubernetes: the cluster's, dashboards loaded by its
    sidecar): every panel on a `${datasource}` variable, a choice of that Grafana's Prometheus data sources, in
    place of the stack's own data source uid."""
    import copy

    def swap(node: Any) -> Any:
        if isinstance(node, dict):
            if node.get("type") == "prometheus" and node.get("uid") == DATASOURCE_UID:
                return {"type": "prometheus", "uid": "${datasource}"}
            return {k: swap(v) for k, v in node.items()}
        if isinstance(node, list):
            return [swap(v) for v in node]
        return node

    board = swap(copy.deepcopy(dashboard))
    board["templating"]["list"].insert(0, {"name": "datasource", "label": "Prometheus", "type": "datasource",
                                           "query": "prometheus", "hide": 0})
    return board


def render_dashboard(dashboard: dict[str, Any]) -> str:
    return json.dumps(dashboard, indent=2, sort_keys=True)


def dashboard_queries(boards: dict[str, dict[str, Any]]) -> list[tuple[str, str, str]]:
    """(dashboard title, panel title, PromQL) for every query of every panel."""
    return [(board["title"], panel["title"], target["expr"])
            for board in boards.values() for panel in board["panels"] for target in panel["targets"]]


# --- which LiteLLM metrics the stack reads -------------------------------------------------------

# Series suffixes Prometheus adds to LiteLLM's metric names (counters, histograms).
_SERIES = re.compile(r"\b(litellm_[a-z0-9_]+)\b")
_BY = re.compile(r"\bby\s*\(([^)]*)\)")
_MADE_BY_LABEL_REPLACE = re.compile(r'label_replace\([^,]+,\s*"([^"]+)"')
# Emitted by the proxy itself, not by the prometheus callback (which prometheus_metrics_config filters).
_NOT_FROM_THE_CALLBACK = frozenset({"litellm_in_flight_requests"})


def _base_metric(series: str) -> str:
    for suffix in ("_bucket", "_total", "_count", "_sum"):
        if series.endswith(suffix):
            return series[: -len(suffix)]
    return series


def litellm_metrics_read(settings: StackSettings) -> dict[str, list[str]]:
    """LiteLLM metric -> the labels the dashboards and alert rules group it by, for every LiteLLM
    metric they read. The rendered LiteLLM config emits only these (prometheus_metrics_config):
    each metric LiteLLM updates costs CPU on every request."""
    expressions = [rule["expr"] for rule in alert_rules(settings)]
    expressions += [expr for _, _, expr in dashboard_queries(dashboards(settings))]
    used: dict[str, set[str]] = {}
    for expr in expressions:
        labels = {label.strip() for group in _BY.findall(expr) for label in group.split(",")} - {"le", ""}
        labels -= set(_MADE_BY_LABEL_REPLACE.findall(expr))  # made by the query, not emitted
        if "label_replace(" in expr and '"model_id"' in expr:
            labels.add("model_id")
        for series in _SERIES.findall(expr):
            metric = _base_metric(series)
            if metric in _NOT_FROM_THE_CALLBACK:
                continue
            used.setdefault(metric, set()).update(labels)
    return {metric: sorted(labels) for metric, labels in sorted(used.items())}
