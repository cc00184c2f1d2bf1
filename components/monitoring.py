"""BACKLOG-003 and BACKLOG-007: Prometheus (scrapes, alert rules), exporters, Grafana dashboards."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

import pulumi
import pulumi_docker as docker

from config.names import GRAFANA_PORT, POSTGRES_EXPORTER_PORT, PROMETHEUS_PORT, REDIS_EXPORTER_PORT
from config.stack import StackSettings
from config.values import local_url
from renderers import data_stores
from renderers import monitoring as rendered
from .containers import (UPLOADS_NEED_WRITABLE_ROOT, ca_uploads, container_options, hardening, healthcheck, labels,
                         on_network, pinned_image, secret_envs)


@dataclass
class MonitoringArgs:
    settings: StackSettings
    docker_provider: docker.Provider
    network_name: pulumi.Input[str]
    metrics_key: pulumi.Input[str]           # bearer key for LiteLLM's /metrics (a key allowed only that route)
    redis_password: pulumi.Input[str]
    database_url: pulumi.Input[str]    # libpq's URL of the database (GatewaySecrets.database_url)
    grafana_admin_password: pulumi.Input[str]
    prometheus_password: pulumi.Input[str]        # basic auth in front of Prometheus (user "prometheus")
    prometheus_password_hash: pulumi.Input[str]   # its bcrypt hash, for Prometheus's web config


def _ca_waiver(files: dict[str, str]) -> dict[str, str]:
    """An exporter that gets a CA certificate uploaded cannot have a read-only root filesystem."""
    return {"read-only-rootfs": UPLOADS_NEED_WRITABLE_ROOT} if files else {}


def _http_check(url: str) -> list[str]:
    return ["CMD-SHELL", f"wget -q -O /dev/null {url} || exit 1"]


class Monitoring(pulumi.ComponentResource):
    prometheus_url: pulumi.Output[str]
    grafana_url: pulumi.Output[str]
    scrape_jobs: dict[str, list[str]]   # job -> targets
    alert_rules: list[str]
    dashboards: list[str]

    def __init__(self, name: str, args: MonitoringArgs, opts: Optional[pulumi.ResourceOptions] = None):
        super().__init__("litellm-gateway:monitoring:Monitoring", name, None, opts)
        settings = args.settings
        monitoring = settings.monitoring
        names = settings.names
        child = pulumi.ResourceOptions(parent=self, provider=args.docker_provider)

        exporters: list[pulumi.Resource] = []
        if monitoring.redis_exporter.enabled:
            redis_ca = data_stores.ca_files(settings, postgres=False)
            exporters.append(docker.Container(
                f"{name}-redis-exporter",
                name=names.redis_exporter,
                image=pinned_image(f"{name}-redis-exporter-image", monitoring.redis_exporter.image, child).image_id,
                envs=secret_envs({**data_stores.redis_exporter_environment(settings),
                                  "REDIS_PASSWORD": args.redis_password}),
                uploads=ca_uploads(redis_ca),
                healthcheck=healthcheck(_http_check(f"http://127.0.0.1:{REDIS_EXPORTER_PORT}/health")),
                networks_advanced=on_network(args.network_name, names.redis_exporter),
                restart="unless-stopped", wait=True, wait_timeout=60,
                **hardening(settings, settings.containers.limits.redis_exporter, user="59000:59000",
                            read_only=not redis_ca),
                labels=labels(settings, "redis-exporter", waivers=_ca_waiver(redis_ca)),
                opts=container_options(child),
            ))
        if monitoring.postgres_exporter.enabled:
            database_ca = data_stores.ca_files(settings, redis=False)
            exporters.append(docker.Container(
                f"{name}-postgres-exporter",
                name=names.postgres_exporter,
                image=pinned_image(f"{name}-postgres-exporter-image", monitoring.postgres_exporter.image, child).image_id,
                envs=secret_envs({"DATA_SOURCE_NAME": pulumi.Output.from_input(args.database_url).apply(
                    lambda url: data_stores.postgres_exporter_url(settings, url))}),
                uploads=ca_uploads(database_ca),
                healthcheck=healthcheck(_http_check(f"http://127.0.0.1:{POSTGRES_EXPORTER_PORT}/metrics")),
                networks_advanced=on_network(args.network_name, names.postgres_exporter),
                restart="unless-stopped", wait=True, wait_timeout=60,
                **hardening(settings, settings.containers.limits.postgres_exporter, user="65534:65534",
                            read_only=not database_ca),
                labels=labels(settings, "postgres-exporter", waivers=_ca_waiver(database_ca)),
                opts=container_options(child),
            ))

        paths = rendered.PrometheusPaths()
        self.prometheus_config = rendered.render_prometheus_config(settings, paths)
        self.rules = rendered.render_alert_rules(settings)
        jobs = rendered.scrape_jobs(settings)
        self.scrape_jobs = {job: [t for sc in configs for t in sc["targets"]] for job, configs in jobs.items()}
        self.alert_rules = [rule["alert"] for rule in rendered.alert_rules(settings)]
        prometheus_volume = docker.Volume(f"{name}-prometheus-data", name=names.prometheus_volume, opts=child)
        prometheus = docker.Container(
            f"{name}-prometheus",
            name=names.prometheus,
            image=pinned_image(f"{name}-prometheus-image", monitoring.prometheus_image, child).image_id,
            command=[f"--config.file={paths.config_file}", "--storage.tsdb.path=/prometheus",
                     f"--storage.tsdb.retention.time={monitoring.retention_days}d",
                     f"--web.listen-address=:{PROMETHEUS_PORT}",
                     f"--web.config.file={paths.web_config_file}"],
            uploads=[
                docker.ContainerUploadArgs(file=paths.config_file, content=self.prometheus_config),
                docker.ContainerUploadArgs(file=paths.rules_file, content=self.rules),
                # The bearer key as a file: Prometheus reads it, the config only names it.
                docker.ContainerUploadArgs(file=paths.credentials_file, content=pulumi.Output.secret(args.metrics_key)),
                docker.ContainerUploadArgs(file=paths.web_password_file,
                                           content=pulumi.Output.secret(args.prometheus_password)),
                docker.ContainerUploadArgs(file=paths.web_config_file, content=pulumi.Output.secret(
                    pulumi.Output.from_input(args.prometheus_password_hash).apply(rendered.render_prometheus_web_config))),
            ],
            mounts=[docker.ContainerMountArgs(target="/prometheus", source=prometheus_volume.name, type="volume")],
            ports=[docker.ContainerPortArgs(internal=PROMETHEUS_PORT, external=monitoring.prometheus_port,
                                            ip=monitoring.bind_address)],
            # Health needs the basic-auth password too; it is read from the file inside the container.
            healthcheck=healthcheck(_http_check(
                f"http://{rendered.PROMETHEUS_WEB_USER}:$(cat {paths.web_password_file})@127.0.0.1:"
                f"{PROMETHEUS_PORT}/-/healthy")),
            networks_advanced=on_network(args.network_name, names.prometheus),
            restart="unless-stopped", wait=True, wait_timeout=120,
            **hardening(settings, settings.containers.limits.prometheus, user="65534:65534", stop_grace_seconds=60),
            labels=labels(settings, "prometheus", waivers={"read-only-rootfs": UPLOADS_NEED_WRITABLE_ROOT}),
            opts=container_options(child, exporters),
        )

        boards = rendered.dashboards(settings)
        self.dashboards = [board["title"] for board in boards.values()]
        grafana_volume = docker.Volume(f"{name}-grafana-data", name=names.grafana_volume, opts=child)
        grafana = docker.Container(
            f"{name}-grafana",
            name=names.grafana,
            image=pinned_image(f"{name}-grafana-image", monitoring.grafana_image, child).image_id,
            envs=secret_envs({
                "GF_SECURITY_ADMIN_USER": "admin",
                "GF_SECURITY_ADMIN_PASSWORD": args.grafana_admin_password,
                "GF_USERS_ALLOW_SIGN_UP": "false",
                "GF_ANALYTICS_REPORTING_ENABLED": "false",
                rendered.GRAFANA_PROMETHEUS_PASSWORD_ENV: args.prometheus_password,
            }),
            uploads=[
                docker.ContainerUploadArgs(
                    file="/etc/grafana/provisioning/datasources/litellm-gateway.yml",
                    content=rendered.render_grafana_datasource(f"http://{names.prometheus}:{PROMETHEUS_PORT}"),
                ),
                docker.ContainerUploadArgs(file="/etc/grafana/provisioning/dashboards/litellm-gateway.yml",
                                           content=rendered.render_grafana_dashboard_provider()),
                *[docker.ContainerUploadArgs(file=f"{rendered.DASHBOARD_DIR}/{file}", content=rendered.render_dashboard(board))
                  for file, board in boards.items()],
            ],
            mounts=[docker.ContainerMountArgs(target="/var/lib/grafana", source=grafana_volume.name, type="volume")],
            ports=[docker.ContainerPortArgs(internal=GRAFANA_PORT, external=monitoring.grafana_port,
                                            ip=monitoring.bind_address)],
            healthcheck=healthcheck(_http_check(f"http://127.0.0.1:{GRAFANA_PORT}/api/health"), start_period="30s"),
            networks_advanced=on_network(args.network_name, names.grafana),
            restart="unless-stopped", wait=True, wait_timeout=180,
            **hardening(settings, settings.containers.limits.grafana, user="472:0"),
            labels=labels(settings, "grafana", waivers={"read-only-rootfs": UPLOADS_NEED_WRITABLE_ROOT}),
            opts=container_options(child, [prometheus]),
        )

        self.prometheus_url = prometheus.name.apply(lambda _: local_url(monitoring.bind_address, monitoring.prometheus_port))
        self.grafana_url = grafana.name.apply(lambda _: local_url(monitoring.bind_address, monitoring.grafana_port))
        self.register_outputs({"prometheus_url": self.prometheus_url, "grafana_url": self.grafana_url})
