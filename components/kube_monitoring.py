"""BACKLOG-003 and BACKLOG-007 on Kubernetes: prometheus-operator objects for the cluster's Prometheus.

The same scrape jobs, labels, alert rules and dashboards as the Docker platform's own Prometheus and Grafana
(renderers/monitoring.py), as objects the cluster's monitoring stack picks up:
- ServiceMonitors for the replicas (with the metrics key as a bearer token from a Secret), the load
  balancer and the exporters, each relabelled to the job name and labels the rules and dashboards use;
- a ScrapeConfig for the GPU hosts' exporters (outside the cluster, static targets);
- a PrometheusRule with the alert rules;
- the dashboards as ConfigMaps labelled `grafana_dashboard: "1"` for Grafana's dashboard sidecar.
`kubernetes.monitoringLabels` go on all of them, so the cluster's Prometheus selects them.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Optional

import pulumi
import pulumi_kubernetes as k8s

from config.names import POSTGRES_EXPORTER_PORT, REDIS_EXPORTER_PORT
from config.stack import StackSettings
from renderers import data_stores
from renderers import monitoring as rendered
from .kube_gateway import POSTGRES_EXPORTER_URL_KEY
from .kube_objects import (ca_volume, child_options, container_security, http_probe, metadata, plain_env, pod_security,
                           resources, selector_labels, waivers)

METRICS_KEY_FIELD = "token"


@dataclass
class KubeMonitoringArgs:
    settings: StackSettings
    provider: k8s.Provider
    gateway: Any                      # KubeGateway: its namespace, Secret and Services
    metrics_key: pulumi.Input[str]    # may read /metrics and nothing else


class KubeMonitoring(pulumi.ComponentResource):
    prometheus_url = None   # the cluster's Prometheus and Grafana are not the stack's
    grafana_url = None
    scrape_jobs: dict[str, list[str]]
    alert_rules: list[str]
    dashboards: list[str]

    def __init__(self, name: str, args: KubeMonitoringArgs, opts: Optional[pulumi.ResourceOptions] = None):
        super().__init__("litellm-gateway:monitoring:KubeMonitoring", name, None, opts)
        settings = self._settings = args.settings
        names, monitoring = settings.names, settings.monitoring
        self._name = name
        self._data_store_digest = args.gateway.data_store_digest
        self._child = child_options(self, args.provider, depends_on=[args.gateway.secret])
        self._labels = dict(settings.kubernetes.monitoring_labels)
        interval = f"{monitoring.scrape_interval_seconds}s"
        key_secret = f"{names.prefix}-metrics-key"
        k8s.core.v1.Secret(f"{name}-metrics-key", metadata=metadata(settings, key_secret, "monitoring"),
                           string_data={METRICS_KEY_FIELD: pulumi.Output.secret(args.metrics_key)}, opts=self._child)
        self.scrape_jobs: dict[str, list[str]] = {}
        self._service_monitor("litellm", "litellm", "gateway", "http", "/metrics/", interval, host="pod", authorization={
            "type": "Bearer", "credentials": {"name": key_secret, "key": METRICS_KEY_FIELD}})
        self._service_monitor("loadbalancer", "loadbalancer", "loadbalancer", "stats", "/metrics", interval,
                              host=names.loadbalancer)
        if monitoring.redis_exporter.enabled:
            self._redis_exporter(args.gateway.secret_name)
            self._service_monitor("redis", "redis-exporter", "redis", "metrics", "/metrics", interval,
                                  host=data_stores.host_labels(settings)["redis"])
        if monitoring.postgres_exporter.enabled:
            self._postgres_exporter(args.gateway.secret_name)
            self._service_monitor("postgres", "postgres-exporter", "postgres", "metrics", "/metrics", interval,
                                  host=data_stores.host_labels(settings)["postgres"])
        jobs = rendered.scrape_jobs(settings)
        for job in ("gpu-node", "gpu-dcgm"):
            if job in jobs:
                self._scrape_config(job, jobs[job], interval)

        rules = rendered.alert_rules(settings)
        self.alert_rules = [rule["alert"] for rule in rules]
        k8s.apiextensions.CustomResource(
            f"{name}-rules", api_version="monitoring.coreos.com/v1", kind="PrometheusRule",
            metadata=metadata(settings, f"{names.prefix}-alerts", "monitoring", labels=self._labels),
            spec={"groups": [{"name": "litellm-gateway", "rules": rules}]}, opts=self._child)

        boards = rendered.dashboards(settings)
        self.dashboards = [board["title"] for board in boards.values()]
        for file_name, board in boards.items():
            short = file_name.removesuffix(".json")
            k8s.core.v1.ConfigMap(
                f"{name}-dashboard-{short}",
                metadata=metadata(settings, f"{names.prefix}-dashboard-{short}", "monitoring",
                                  labels={"grafana_dashboard": "1"}, annotations={"grafana_folder": "LiteLLM gateway"}),
                data={file_name: rendered.render_dashboard(rendered.with_datasource_variable(board))},
                opts=self._child)
        self.register_outputs({"scrape_jobs": self.scrape_jobs})

    def _relabelings(self, job: str, role: str, host: str) -> list[dict[str, Any]]:
        """The job name and labels the rules and dashboards use (as the Docker platform's scrape config sets)."""
        labels = [{"target_label": "job", "replacement": job},
                  {"target_label": "environment", "replacement": self._settings.environment},
                  {"target_label": "role", "replacement": role}]
        if host == "pod":
            labels.append({"source_labels": ["__meta_kubernetes_pod_name"], "target_label": "host"})
        else:
            labels.append({"target_label": "host", "replacement": host})
        return [{_camel(k): v for k, v in label.items()} for label in labels]

    def _service_monitor(self, job: str, component: str, role: str, port: str, path: str, interval: str, *,
                         host: str, authorization: Optional[dict] = None) -> None:
        settings = self._settings
        endpoint: dict[str, Any] = {"port": port, "path": path, "interval": interval,
                                    "relabelings": self._relabelings(job, role, host)}
        if authorization:
            endpoint["authorization"] = authorization
        k8s.apiextensions.CustomResource(
            f"{self._name}-{job}", api_version="monitoring.coreos.com/v1", kind="ServiceMonitor",
            metadata=metadata(settings, f"{settings.names.prefix}-{job}", "monitoring", labels=self._labels),
            spec={"selector": {"matchLabels": selector_labels(settings, component)},
                  "namespaceSelector": {"matchNames": [settings.namespace]}, "endpoints": [endpoint]},
            opts=self._child)
        self.scrape_jobs[job] = [f"service {settings.names.prefix}-{component if job != 'litellm' else 'litellm'}:{port}"]

    def _scrape_config(self, job: str, static_configs: list[dict[str, Any]], interval: str) -> None:
        settings = self._settings
        k8s.apiextensions.CustomResource(
            f"{self._name}-{job}", api_version="monitoring.coreos.com/v1alpha1", kind="ScrapeConfig",
            metadata=metadata(settings, f"{settings.names.prefix}-{job}", "monitoring", labels=self._labels),
            spec={"scrapeInterval": interval, "staticConfigs": static_configs,
                  "relabelings": [{"targetLabel": "job", "replacement": job}]},
            opts=self._child)
        self.scrape_jobs[job] = [t for sc in static_configs for t in sc["targets"]]

    def _exporter(self, component: str, image: str, port: int, user: int, env: list[dict[str, Any]], limits,
                  health_path: str, *, waived: Optional[dict] = None) -> None:
        settings = self._settings
        name = f"{settings.names.prefix}-{component}"
        labels = selector_labels(settings, component)
        probe = http_probe(health_path, "metrics", period=10, timeout=5, failures=3)
        container: dict[str, Any] = {"name": component, "image": image, "env": env,
                                     "ports": [{"name": "metrics", "container_port": port}],
                                     "readiness_probe": probe, "liveness_probe": probe,
                                     "resources": resources(limits), "security_context": container_security()}
        # The external data stores' CA certificates, where the exporter's address or URL names them.
        volumes, mounts = ca_volume(settings)
        if mounts:
            container["volume_mounts"] = mounts
        k8s.apps.v1.Deployment(
            f"{self._name}-{component}", metadata=metadata(settings, name, component, annotations=waivers(waived or {})),
            spec={"replicas": 1, "selector": {"match_labels": labels}, "template": {
                # A new database URL or Redis password restarts the exporter with it (KubeGateway.data_store_digest).
                "metadata": {"labels": labels,
                             "annotations": {"litellm-gateway/data-stores": self._data_store_digest}},
                "spec": {"automount_service_account_token": False, "security_context": pod_security(user=user),
                         "node_selector": dict(settings.kubernetes.node_selector) or None,
                         "containers": [container], "volumes": volumes or None}}},
            opts=self._child)
        k8s.core.v1.Service(
            f"{self._name}-{component}-service", metadata=metadata(settings, name, component),
            spec={"selector": labels, "ports": [{"name": "metrics", "port": port, "target_port": "metrics"}]},
            opts=self._child)

    def _redis_exporter(self, secret_name: str) -> None:
        settings = self._settings
        env = [*plain_env(data_stores.redis_exporter_environment(settings)),
               {"name": "REDIS_PASSWORD", "value_from": {"secret_key_ref": {"name": secret_name, "key": "REDIS_PASSWORD"}}}]
        self._exporter("redis-exporter", settings.monitoring.redis_exporter.image, REDIS_EXPORTER_PORT, 59000, env,
                       settings.containers.limits.redis_exporter, "/health", waived={
                           "CKV_K8S_35": "redis_exporter reads the password from REDIS_PASSWORD (its password file is "
                                         "a map per address); the value is the Secret's"})

    def _postgres_exporter(self, secret_name: str) -> None:
        settings = self._settings
        # The stack's own database or an external one (its sslmode and CA), the URL from the Secret.
        env = [{"name": "DATA_SOURCE_NAME", "value_from": {"secret_key_ref": {
            "name": secret_name, "key": POSTGRES_EXPORTER_URL_KEY}}}]
        self._exporter("postgres-exporter", settings.monitoring.postgres_exporter.image, POSTGRES_EXPORTER_PORT, 65534,
                       env, settings.containers.limits.postgres_exporter, "/metrics", waived={
                           "CKV_K8S_35": "postgres_exporter reads its connection URL from DATA_SOURCE_NAME (the "
                                         "password inside it); the value is the Secret's"})


def _camel(key: str) -> str:
    head, *rest = key.split("_")
    return head + "".join(part.title() for part in rest)
