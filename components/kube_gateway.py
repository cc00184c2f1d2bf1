"""The LiteLLM gateway on Kubernetes: the same rendered config, load balancer and GPU dispatcher as on Docker,
as native objects (pulumi-kubernetes), not LiteLLM's Helm chart (opaque to the mock tests and the offline
check, hooks skipped, a master key of its own).

In the stack's namespace:
- a Secret of the Vault-held values and a ConfigMap of the rendered config, whose checksum and the Vault
  secret's version are on the pod template (a change or a rotation rolls the pods);
- a migration Job per LiteLLM version, which `pulumi up` waits for before it touches the Deployment (the
  replicas run with DISABLE_SCHEMA_UPDATE=true and never migrate, so no pod rolls onto an old schema and no
  two pods migrate at once);
- the replicas' Deployment (maxUnavailable 0, spread across nodes, startup/readiness/liveness probes, a
  preStop drain inside a grace period that covers the whole stop sequence) behind a headless Service, a
  PodDisruptionBudget and, optionally, a HorizontalPodAutoscaler;
- HAProxy with the rendered config: the GPU dispatcher (one place that counts each host's free slots) and
  the gateway's front door, behind a Service the Ingress (TLS from Vault) points at;
- Postgres and Redis (components/kube_data.py).
"""

from __future__ import annotations

import hashlib
import hmac
from dataclasses import dataclass, field
from typing import Any, Optional, Sequence

import pulumi
import pulumi_kubernetes as k8s

from config.images import untested_litellm_warning
from config.names import (DISPATCHER_PORT, POSTGRES_EXPORTER_PORT, POSTGRES_PORT, PROXY_PORT, REDIS_EXPORTER_PORT,
                          REDIS_PORT)
from config.stack import StackSettings
from config.values import LIBPQ_ENVIRONMENT, libpq_environment
from renderers import data_stores, haproxy, replica_entrypoint
from renderers import litellm_config as rendered
from . import kube_data
from .gateway import GatewaySecretValues, tls_parts
from .kube_objects import (IMAGE_USER_WAIVER, ca_config_map_name, ca_volume, child_options, container_security, emptydir,
                           http_probe, metadata, plain_env, pod_security, resources, secret_env, selector_labels, sha256,
                           waivers)

HAPROXY_UID = 99          # the haproxy image's haproxy user
LITELLM = "litellm"
LOADBALANCER = "loadbalancer"
ROOT_WAIVER = ("the litellm-database image runs as root (Prisma keeps its engines and generated client under "
               "/root); it gets no capabilities and no privilege escalation")
WRITABLE_WAIVER = "LiteLLM and Prisma write caches and temporary files beside the application"
ENV_SECRETS_WAIVER = ("LiteLLM reads its secrets from its environment only (os.environ/NAME in its config); the "
                      "values are the Secret's, never in the pod spec")
POSTGRES_EXPORTER_URL_KEY = "POSTGRES_EXPORTER_URL"
# libpq's environment for the backups' pg_dump (config.values.libpq_environment): every key the URL may give.
LIBPQ_KEYS = ("PGHOST", "PGPORT", "PGUSER", "PGPASSWORD", "PGDATABASE", *LIBPQ_ENVIRONMENT.values())


@dataclass
class KubeGatewayArgs:
    settings: StackSettings
    secrets: GatewaySecretValues
    provider: k8s.Provider
    secret_version: pulumi.Input[Optional[int]]   # the Vault secret's version: a rotation rolls the pods
    routes_ready: Sequence[pulumi.Resource] = field(default_factory=list)
    vault_provider: Optional[pulumi.ProviderResource] = None  # for the Ingress certificate kept in Vault


class KubeGateway(pulumi.ComponentResource):
    url: pulumi.Output[str]
    litellm_containers: list[pulumi.Resource]   # what the access objects wait for: the replicas' Deployment
    config: dict
    rendered_config: str

    def __init__(self, name: str, args: KubeGatewayArgs, opts: Optional[pulumi.ResourceOptions] = None):
        super().__init__("litellm-gateway:gateway:KubeGateway", name, None, opts)
        settings = args.settings
        self._name, self._args, self._settings, self._names = name, args, settings, settings.names
        self.namespace = self._namespace()
        self._child = child_options(self, args.provider, depends_on=[self.namespace] if self.namespace else [])
        self.secret_name = f"{self._names.prefix}-gateway"
        self.secret = self._secret()
        # Pods read the Secret when they start: a new database URL (or Redis password) that is not in the stack's
        # Vault secret must still roll them. A keyed digest (the salt key, which never changes), not the values.
        secrets = args.secrets
        self.data_store_digest = pulumi.Output.secret(pulumi.Output.all(
            secrets.salt_key, secrets.database_url, secrets.read_replica_url or "", secrets.redis_password).apply(
            lambda v: hmac.new(v[0].encode(), "\0".join(v[1:]).encode(), hashlib.sha256).hexdigest()[:16]))
        self._child = pulumi.ResourceOptions.merge(self._child, pulumi.ResourceOptions(depends_on=[self.secret]))
        # postgres.mode / redis.mode external: the stack runs neither (None), the pods reach the external ones.
        self.postgres = self.postgres_service = self.redis = self.redis_service = None
        if settings.postgres.mode == "container":
            self.postgres, self.postgres_service = kube_data.postgres(f"{name}-postgres", settings, self.secret_name,
                                                                      self._child)
        if settings.redis.mode == "container":
            self.redis, self.redis_service, _ = kube_data.redis(
                f"{name}-redis", settings, args.secrets.redis_password, self.secret_name, args.secret_version,
                self._child)
        self.ca_files = data_stores.ca_files(settings)
        if self.ca_files:
            # The external data stores' CA certificates (public), mounted where the URLs and the config name them.
            self._child = pulumi.ResourceOptions.merge(self._child, pulumi.ResourceOptions(depends_on=[
                k8s.core.v1.ConfigMap(f"{name}-ca", metadata=metadata(settings, ca_config_map_name(settings), "gateway"),
                                      data={path.rsplit("/", 1)[1]: pem for path, pem in self.ca_files.items()},
                                      opts=self._child)]))
        self.config = rendered.render_config_dict(settings)
        self.rendered_config = rendered.render_litellm_config(settings, config=self.config)
        warning = untested_litellm_warning(settings.gateway.image)
        if warning:
            pulumi.log.warn(warning, resource=self)
        self.migration = self._migration()
        self.replicas = self._replicas()
        self.litellm_containers = [self.replicas]
        self.load_balancer = self._load_balancer()
        self.ingress = self._ingress()
        # What the access objects (through gatewayUrl: the Ingress, HAProxy, the replicas) wait for.
        self.litellm_containers = [self.replicas, self.load_balancer, *([self.ingress] if self.ingress else [])]
        self._network_policies()
        self.url = pulumi.Output.from_input(self.load_balancer.metadata).apply(
            lambda _: haproxy.published_url(settings))
        self.register_outputs({"url": self.url})

    @property
    def replica_service(self) -> str:
        """The headless Service the load balancer resolves to every ready replica's address."""
        return f"{self._names.prefix}-{LITELLM}"

    def _opts(self, *depends_on: pulumi.Resource, **extra) -> pulumi.ResourceOptions:
        return pulumi.ResourceOptions.merge(self._child, pulumi.ResourceOptions(depends_on=list(depends_on), **extra))

    def _namespace(self) -> Optional[k8s.core.v1.Namespace]:
        settings = self._settings
        if not settings.kubernetes.create_namespace:
            return None
        # baseline is enforced (LiteLLM's image runs as root); restricted is warned and audited, so every
        # other deviation shows. Kept on destroy: deleting a namespace deletes the database's volume claim.
        return k8s.core.v1.Namespace(
            f"{self._name}-namespace",
            metadata={"name": settings.namespace, "labels": {
                "pod-security.kubernetes.io/enforce": "baseline", "pod-security.kubernetes.io/warn": "restricted",
                "pod-security.kubernetes.io/audit": "restricted"}},
            opts=child_options(self, self._args.provider, retain_on_delete=True))

    def _secret(self) -> k8s.core.v1.Secret:
        settings, secrets = self._settings, self._args.secrets
        database_url = pulumi.Output.from_input(secrets.database_url)
        values = {
            rendered.MASTER_KEY_ENV: secrets.master_key, "LITELLM_SALT_KEY": secrets.salt_key,
            "UI_PASSWORD": secrets.ui_password, "POSTGRES_PASSWORD": secrets.postgres_password,
            rendered.REDIS_PASSWORD_ENV: secrets.redis_password, rendered.DATABASE_URL_ENV: database_url,
            # Only the preStop hook calls /health/drain (the load balancer refuses it), with this token.
            replica_entrypoint.DRAIN_TOKEN_ENV: secrets.master_key,
            POSTGRES_EXPORTER_URL_KEY: database_url.apply(lambda url: data_stores.postgres_exporter_url(settings, url)),
            **({rendered.READ_REPLICA_URL_ENV: secrets.read_replica_url} if secrets.read_replica_url else {}),
        }
        # The backups' libpq environment: the keys the URL gives (the CronJob reads each one as optional).
        string_data = pulumi.Output.all(values=pulumi.Output.all(**values), url=database_url).apply(
            lambda v: {**v["values"], **libpq_environment(v["url"])})
        return k8s.core.v1.Secret(
            f"{self._name}-secret", metadata=metadata(settings, self.secret_name, "gateway"), type="Opaque",
            string_data=pulumi.Output.secret(string_data), opts=self._child)

    def database_env(self) -> list[dict[str, Any]]:
        """The replicas' and the migration's database URLs, from the Secret."""
        keys = [rendered.DATABASE_URL_ENV] + ([rendered.READ_REPLICA_URL_ENV] if self._args.secrets.read_replica_url
                                              else [])
        return secret_env(self.secret_name, *keys)

    def libpq_env(self) -> list[dict[str, Any]]:
        """libpq's environment from the Secret, for pg_dump: each key only when the database's URL gives it."""
        return [{"name": key, "value_from": {"secret_key_ref": {"name": self.secret_name, "key": key,
                                                                 "optional": True}}} for key in LIBPQ_KEYS]

    def _stores(self, store: str) -> list[pulumi.Resource]:
        """The stack's own `postgres` or `redis` objects to wait for (none for an external store)."""
        return [r for r in (getattr(self, store), getattr(self, f"{store}_service")) if r is not None]

    def _litellm_container(self, name: str, *, env: list[dict[str, Any]], **extra) -> dict[str, Any]:
        gateway = self._settings.gateway
        return {"name": name, "image": gateway.image, "env": env,
                "resources": resources(self._settings.replica_limits()),
                "security_context": container_security(read_only=False), **extra}

    def _migration(self) -> k8s.batch.v1.Job:
        """One Job per LiteLLM image: a new version gets a new Job (a Job's pod spec cannot change), which
        `pulumi up` waits for to complete before the Deployment is updated."""
        settings = self._settings
        timeout = settings.kubernetes.migration_timeout_seconds
        job_name: pulumi.Input[str] = f"{self._names.prefix}-migrate-{sha256(settings.gateway.image)[:10]}"
        if settings.postgres.mode == "external":
            # Another external database (a new URL) gets its migrations too: one Job per image and database.
            job_name = pulumi.Output.concat(job_name, "-", self.data_store_digest.apply(lambda d: d[:6]))
        container = self._litellm_container(
            "migrate", env=[*self.database_env(), *plain_env({"LITELLM_LOCAL_MODEL_COST_MAP": "True"})],
            # LiteLLM's own standalone migration entrypoint (what its chart's migration Job runs).
            command=["python3", "litellm/proxy/prisma_migration.py"], working_dir="/app",
            **({"volume_mounts": ca_volume(settings)[1]} if self.ca_files else {}))
        return k8s.batch.v1.Job(
            f"{self._name}-migrate",
            # A Job that failed (backoffLimit, activeDeadlineSeconds) is replaced by the next `pulumi up` instead
            # of being waited for again (pulumi-kubernetes' replaceUnready).
            metadata=metadata(settings, job_name, "migrate", annotations={"pulumi.com/replaceUnready": "true", **waivers({
                **IMAGE_USER_WAIVER, "CKV_K8S_23": ROOT_WAIVER, "CKV_K8S_22": WRITABLE_WAIVER,
                "CKV_K8S_35": ENV_SECRETS_WAIVER})}),
            spec={"backoff_limit": 4, "active_deadline_seconds": timeout,
                  "template": {"metadata": {"labels": selector_labels(settings, "migrate")},
                               "spec": {"restart_policy": "Never", "automount_service_account_token": False,
                                        "security_context": pod_security(),
                                        "node_selector": dict(settings.kubernetes.node_selector) or None,
                                        "containers": [container],
                                        "volumes": ca_volume(settings)[0] or None}}},
            opts=self._opts(*self._stores("postgres"), custom_timeouts=pulumi.CustomTimeouts(
                create=f"{timeout}s", update=f"{timeout}s")))

    def _replicas(self) -> k8s.apps.v1.Deployment:
        settings = self._settings
        gateway, kube = settings.gateway, settings.kubernetes
        config_map = k8s.core.v1.ConfigMap(
            f"{self._name}-litellm-config", metadata=metadata(settings, f"{self._names.prefix}-litellm-config", LITELLM),
            data={"config.yaml": self.rendered_config}, opts=self._child)
        env = [
            *secret_env(self.secret_name, rendered.MASTER_KEY_ENV, "LITELLM_SALT_KEY", rendered.REDIS_PASSWORD_ENV,
                        "UI_PASSWORD", replica_entrypoint.DRAIN_TOKEN_ENV),
            *self.database_env(),
            *plain_env({"UI_USERNAME": gateway.ui_username, "LITELLM_MODE": "PRODUCTION", "LITELLM_LOG": gateway.log_level,
                        "LITELLM_LOCAL_MODEL_COST_MAP": "True",
                        replica_entrypoint.GRACEFUL_TIMEOUT_ENV: str(
                            replica_entrypoint.graceful_timeout_seconds(gateway.stop_grace_seconds)),
                        # The migration Job migrates; a replica never does.
                        "DISABLE_SCHEMA_UPDATE": "true"}),
        ]
        container = self._litellm_container(
            LITELLM, env=env, command=[LITELLM],
            args=replica_entrypoint.litellm_arguments(rendered.CONFIG_PATH, PROXY_PORT, gateway.num_workers),
            ports=[{"name": "http", "container_port": PROXY_PORT}],
            # Up to 5 minutes to start (as the Docker healthcheck's start period allows), then liveness; the
            # load balancer and the Service route on readiness (the database too).
            startup_probe=http_probe("/health/liveliness", "http", period=5, timeout=5, failures=60),
            liveness_probe=http_probe("/health/liveliness", "http", period=10, timeout=5, failures=6),
            readiness_probe=http_probe(haproxy.READINESS_PATH, "http", period=5, timeout=5, failures=2),
            lifecycle={"pre_stop": {"exec_": {"command": replica_entrypoint.render_prestop(
                PROXY_PORT, gateway.stop_grace_seconds)}}},
            volume_mounts=[{"name": "config", "mount_path": rendered.CONFIG_PATH, "sub_path": "config.yaml",
                            "read_only": True}, {"name": "tmp", "mount_path": "/tmp"}, *ca_volume(settings)[1]])
        labels = selector_labels(settings, LITELLM)
        annotations = {
            # The config and the CA certificates it names: a new one of either rolls the pods.
            "litellm-gateway/config-sha256": sha256(self.rendered_config + "".join(self.ca_files.values())),
            "litellm-gateway/vault-secret-version": pulumi.Output.from_input(self._args.secret_version).apply(
                lambda version: str(version or 0)),
            "litellm-gateway/migration": self.migration.metadata.apply(lambda m: m["name"] if m else ""),
            "litellm-gateway/data-stores": self.data_store_digest,
        }
        spec: dict[str, Any] = {
            "selector": {"match_labels": labels},
            # A new pod is ready before an old one stops: the gateway never has fewer replicas than declared.
            "strategy": {"type": "RollingUpdate", "rolling_update": {"max_unavailable": 0, "max_surge": 1}},
            "min_ready_seconds": 5, "revision_history_limit": 10, "progress_deadline_seconds": 600,
            "template": {
                "metadata": {"labels": labels, "annotations": annotations},
                "spec": {
                    "automount_service_account_token": False,
                    "security_context": pod_security(),
                    # preStop (drain, REMOVAL_SECONDS) + LiteLLM's graceful shutdown + teardown.
                    "termination_grace_period_seconds": gateway.stop_grace_seconds,
                    "topology_spread_constraints": [{
                        "max_skew": 1, "topology_key": "kubernetes.io/hostname",
                        "when_unsatisfiable": kube.spread, "label_selector": {"match_labels": labels},
                        # Counted per ReplicaSet: the old pods of a rollout do not skew the new ones' spread.
                        "match_label_keys": ["pod-template-hash"]}],
                    "node_selector": dict(kube.node_selector) or None,
                    "containers": [container],
                    "volumes": [{"name": "config", "config_map": {"name": f"{self._names.prefix}-litellm-config"}},
                                emptydir("tmp", 1024), *ca_volume(settings)[0]],
                },
            },
        }
        if not kube.autoscaling.enabled:
            spec["replicas"] = gateway.replicas  # with an autoscaler the count is the autoscaler's
        # The autoscaler first. When it is turned on for a running stack, the Deployment stops declaring a count and
        # server-side apply resets it to 1 until the autoscaler's first sync (docs/kubernetes.md); created first,
        # the autoscaler is already there when that happens.
        autoscaler = None
        scaling = kube.autoscaling
        if scaling.enabled:
            autoscaler = k8s.autoscaling.v2.HorizontalPodAutoscaler(
                f"{self._name}-litellm-hpa", metadata=metadata(settings, f"{self._names.prefix}-{LITELLM}", LITELLM),
                spec={"scale_target_ref": {"api_version": "apps/v1", "kind": "Deployment",
                                           "name": f"{self._names.prefix}-{LITELLM}"},
                      "min_replicas": scaling.min_replicas, "max_replicas": scaling.max_replicas,
                      "metrics": [{"type": "Resource", "resource": {"name": "cpu", "target": {
                          "type": "Utilization", "average_utilization": scaling.target_cpu_percent}}}],
                      # Scale down slowly: a replica leaving costs its streams their drain.
                      "behavior": {"scale_down": {"stabilization_window_seconds": 300}}},
                opts=self._child)
        deployment = k8s.apps.v1.Deployment(
            f"{self._name}-litellm", metadata=metadata(
                settings, f"{self._names.prefix}-{LITELLM}", LITELLM,
                annotations=waivers({**IMAGE_USER_WAIVER, "CKV_K8S_23": ROOT_WAIVER, "CKV_K8S_22": WRITABLE_WAIVER,
                                     "CKV_K8S_35": ENV_SECRETS_WAIVER})),
            spec=spec,
            opts=self._opts(config_map, self.migration, *self._stores("redis"), *self._args.routes_ready,
                            *([autoscaler] if autoscaler else []),
                            custom_timeouts=pulumi.CustomTimeouts(create="15m", update="15m")))
        k8s.core.v1.Service(
            f"{self._name}-litellm-service",
            metadata=metadata(settings, self.replica_service, LITELLM),
            # Headless: DNS answers one address per ready pod, which the load balancer's server-template
            # slots follow (as Docker's DNS answers the replicas' alias).
            spec={"cluster_ip": "None", "selector": labels,
                  "ports": [{"name": "http", "port": PROXY_PORT, "target_port": "http"}]},
            opts=self._child)
        k8s.policy.v1.PodDisruptionBudget(
            f"{self._name}-litellm-pdb", metadata=metadata(settings, f"{self._names.prefix}-{LITELLM}", LITELLM),
            # One replica at a time may be evicted (a node drain); an unready one never holds a drain up.
            spec={"max_unavailable": 1, "selector": {"match_labels": labels},
                  "unhealthy_pod_eviction_policy": "AlwaysAllow"},
            opts=self._child)
        return deployment

    def _load_balancer(self) -> k8s.apps.v1.Deployment:
        """HAProxy with the rendered config: the gateway's front door and the GPU dispatcher."""
        settings = self._settings
        names, gateway, kube = self._names, settings.gateway, settings.kubernetes
        listen = haproxy.Listen(nameserver=None, limit_per_client=False,
                                service=f"{self.replica_service}.{settings.namespace}.svc.{kube.cluster_domain}")
        text = haproxy.render_haproxy_config(settings, listen)
        config_map = k8s.core.v1.ConfigMap(
            f"{self._name}-lb-config", metadata=metadata(settings, f"{names.loadbalancer}-config", LOADBALANCER),
            data={"haproxy.cfg": text}, opts=self._child)
        labels = selector_labels(settings, LOADBALANCER)
        healthz = http_probe("/healthz", "stats", period=5, timeout=3, failures=3)
        # HAProxy's soft stop is SIGUSR1 (the image's STOPSIGNAL; a pod's stop signal is not settable before
        # Kubernetes 1.33): after the Service has dropped the pod, stop accepting and let the carried requests,
        # streams included, finish.
        soft_stop = f"sleep {haproxy.REMOVAL_SECONDS}; kill -USR1 1; while kill -0 1 2>/dev/null; do sleep 1; done"
        container = {
            "name": "haproxy", "image": gateway.load_balancer.image,
            "ports": [{"name": "http", "container_port": haproxy.HTTP_PORT},
                      {"name": "dispatcher", "container_port": DISPATCHER_PORT},
                      {"name": "stats", "container_port": haproxy.STATS_PORT}],
            "readiness_probe": healthz, "liveness_probe": {**healthz, "failure_threshold": 6},
            "lifecycle": {"pre_stop": {"exec_": {"command": ["/bin/sh", "-c", soft_stop]}}},
            "resources": resources(settings.containers.limits.loadbalancer),
            "security_context": container_security(),
            "volume_mounts": [{"name": "config", "mount_path": haproxy.CONFIG_PATH, "sub_path": "haproxy.cfg",
                               "read_only": True}],
        }
        deployment = k8s.apps.v1.Deployment(
            f"{self._name}-lb", metadata=metadata(settings, names.loadbalancer, LOADBALANCER,
                                                  annotations=waivers(IMAGE_USER_WAIVER)),
            spec={
                # One dispatcher counts every GPU host's free slots; during a config change the new one is
                # ready before the old one stops (two, briefly).
                "replicas": 1,
                "strategy": {"type": "RollingUpdate", "rolling_update": {"max_unavailable": 0, "max_surge": 1}},
                "selector": {"match_labels": labels},
                "template": {
                    "metadata": {"labels": labels, "annotations": {"litellm-gateway/config-sha256": sha256(text)}},
                    "spec": {
                        "automount_service_account_token": False,
                        "security_context": pod_security(user=HAPROXY_UID),
                        # A stream may run as long as its timeout: the old HAProxy carries it to the end.
                        "termination_grace_period_seconds": haproxy.REMOVAL_SECONDS + gateway.request_timeout_seconds + 30,
                        "node_selector": dict(kube.node_selector) or None,
                        # Rescheduled 30 s after its node stops answering, not the default 5 minutes: it is
                        # the one dispatcher.
                        "tolerations": [{"key": key, "operator": "Exists", "effect": "NoExecute",
                                         "toleration_seconds": 30}
                                        for key in ("node.kubernetes.io/not-ready", "node.kubernetes.io/unreachable")],
                        "containers": [container],
                        "volumes": [{"name": "config", "config_map": {"name": f"{names.loadbalancer}-config"}}],
                    },
                },
            },
            opts=self._opts(config_map))
        k8s.core.v1.Service(
            f"{self._name}-lb-service", metadata=metadata(settings, names.loadbalancer, LOADBALANCER),
            spec={"selector": labels, "ports": [
                {"name": "http", "port": haproxy.HTTP_PORT, "target_port": "http"},
                {"name": "dispatcher", "port": DISPATCHER_PORT, "target_port": "dispatcher"},
                {"name": "stats", "port": haproxy.STATS_PORT, "target_port": "stats"}]},
            opts=self._child)
        return deployment

    def _network_policies(self) -> None:
        """Ingress to the stack's pods only from where it is needed (egress stays open: GPU hosts, DNS)."""
        settings = self._settings
        stack = {"app.kubernetes.io/name": selector_labels(settings, LITELLM)["app.kubernetes.io/name"],
                 "app.kubernetes.io/instance": settings.environment}

        def pods(*components: str) -> dict[str, Any]:
            return {"pod_selector": {"match_labels": stack, "match_expressions": [
                {"key": "app.kubernetes.io/component", "operator": "In", "values": list(components)}]}}

        monitoring = {"namespace_selector": {"match_expressions": [{
            "key": "kubernetes.io/metadata.name", "operator": "In",
            "values": list(settings.kubernetes.monitoring_namespaces)}]}}

        def allow(role: str, *rules: tuple[list[dict[str, Any]], int], anyone: tuple[int, ...] = ()) -> None:
            ingress = [{"from": sources, "ports": [{"port": port, "protocol": "TCP"}]} for sources, port in rules]
            ingress += [{"ports": [{"port": port, "protocol": "TCP"}]} for port in anyone]
            k8s.networking.v1.NetworkPolicy(
                f"{self._name}-netpol-{role}", metadata=metadata(settings, f"{self._names.prefix}-{role}", role),
                spec={**pods(*{"exporters": ("redis-exporter", "postgres-exporter")}.get(role, (role,))),
                      "policy_types": ["Ingress"], "ingress": ingress},
                opts=self._child)

        # Everything of the stack admits nothing unless a policy below allows it.
        k8s.networking.v1.NetworkPolicy(
            f"{self._name}-netpol-default-deny", metadata=metadata(settings, f"{self._names.prefix}-default-deny", "gateway"),
            spec={"pod_selector": {"match_labels": stack}, "policy_types": ["Ingress"]}, opts=self._child)
        if self.postgres is not None:
            allow("postgres", ([pods(LITELLM, "migrate", "backup", "postgres-exporter")], POSTGRES_PORT))
        if self.redis is not None:
            allow("redis", ([pods(LITELLM, "redis-exporter")], REDIS_PORT))
        allow(LITELLM, ([pods(LOADBALANCER)], PROXY_PORT), ([monitoring], PROXY_PORT))
        # The front door is the Ingress controller's to reach (wherever it runs); the dispatcher only the replicas'.
        allow(LOADBALANCER, ([pods(LITELLM)], DISPATCHER_PORT), ([monitoring], haproxy.STATS_PORT),
              anyone=(haproxy.HTTP_PORT,))
        allow("exporters", ([monitoring], REDIS_EXPORTER_PORT), ([monitoring], POSTGRES_EXPORTER_PORT))

    def _ingress(self) -> Optional[k8s.networking.v1.Ingress]:
        settings = self._settings
        ingress = settings.kubernetes.ingress
        if not ingress.enabled:
            return None
        spec: dict[str, Any] = {"rules": [{"host": ingress.host, "http": {"paths": [{
            "path": "/", "path_type": "Prefix",
            "backend": {"service": {"name": self._names.loadbalancer, "port": {"name": "http"}}}}]}}]}
        if ingress.class_name:
            spec["ingress_class_name"] = ingress.class_name
        depends: list[pulumi.Resource] = [self.load_balancer]
        if ingress.tls.enabled:
            tls_name = f"{self._names.prefix}-tls"
            parts = tls_parts(settings, ingress.tls.vault, self._args.vault_provider, "kubernetes.ingress.tls.vault")
            depends.append(k8s.core.v1.Secret(
                f"{self._name}-tls", metadata=metadata(settings, tls_name, "gateway"), type="kubernetes.io/tls",
                string_data={"tls.crt": pulumi.Output.secret(parts.apply(lambda p: p[0])),
                             "tls.key": pulumi.Output.secret(parts.apply(lambda p: p[1]))},
                opts=self._child))
            spec["tls"] = [{"hosts": [ingress.host], "secret_name": tls_name}]
        return k8s.networking.v1.Ingress(
            f"{self._name}-ingress",
            metadata=metadata(settings, self._names.prefix, "gateway", annotations=dict(ingress.annotations) or None),
            spec=spec, opts=self._opts(*depends))
