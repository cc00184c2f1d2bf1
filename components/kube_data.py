"""The gateway's data stores in the cluster: Postgres as a one-pod StatefulSet, Redis as a one-pod Deployment.

Plain objects on the same official images as on Docker (no operator to install, the same entrypoints,
versions and hardening), each behind a Service named as the Docker containers are, so the rendered LiteLLM
config and DATABASE_URL are the same on both platforms. Postgres keeps its data on the StatefulSet's
PersistentVolumeClaim (kept when the stack is destroyed, as the Docker volume is); one instance, as on
Docker: for a replicated database use a managed one or an operator (docs/kubernetes.md). Redis holds the
cache and the shared counters only (no persistence, as on Docker).
"""

from __future__ import annotations

from typing import Any

import pulumi
import pulumi_kubernetes as k8s

from config.names import POSTGRES_PORT, REDIS_PORT
from config.stack import StackSettings
from renderers import redis_conf
from .kube_objects import (IMAGE_USER_WAIVER, SECRETS_DIR, container_security, emptydir, exec_probe, metadata,
                           pod_security, resources, secret_file_volume, selector_labels, sha256, waivers)

POSTGRES_UID = 999     # the postgres image's postgres user
REDIS_UID = 999        # the redis alpine image's redis user
REDIS_GID = 1000
PGDATA = "/var/lib/postgresql/data/pgdata"   # a directory of its own: the volume's root holds lost+found


def _service(settings: StackSettings, name: str, component: str, port: int, opts) -> k8s.core.v1.Service:
    return k8s.core.v1.Service(
        name, metadata=metadata(settings, name, component),
        spec={"selector": selector_labels(settings, component),
              "ports": [{"name": component, "port": port, "target_port": port}]},
        opts=opts)


def postgres(resource_name: str, settings: StackSettings, gateway_secret: str, opts: pulumi.ResourceOptions):
    """(StatefulSet, Service) of the in-cluster database."""
    pg = settings.postgres
    name = settings.names.postgres
    kube = settings.kubernetes
    claim: dict[str, Any] = {"access_modes": ["ReadWriteOnce"],
                             "resources": {"requests": {"storage": f"{kube.postgres_storage_gb}Gi"}}}
    if kube.storage_class:
        claim["storage_class_name"] = kube.storage_class
    ready = ["pg_isready", "-U", pg.user, "-d", pg.database, "-h", "127.0.0.1"]
    container = {
        "name": "postgres", "image": pg.image,
        # The image's POSTGRES_PASSWORD_FILE: the password is a file from the Secret, not in the environment.
        "env": [{"name": "POSTGRES_USER", "value": pg.user}, {"name": "POSTGRES_DB", "value": pg.database},
                {"name": "PGDATA", "value": PGDATA},
                {"name": "POSTGRES_PASSWORD_FILE", "value": f"{SECRETS_DIR}/POSTGRES_PASSWORD"}],
        "ports": [{"name": "postgres", "container_port": POSTGRES_PORT}],
        # Up to 10 minutes for a first initdb or a crash recovery before liveness counts.
        "startup_probe": exec_probe(ready, period=10, timeout=5, failures=60),
        "readiness_probe": exec_probe(ready, period=5, timeout=5, failures=3),
        "liveness_probe": exec_probe(ready, period=10, timeout=5, failures=6),
        "resources": resources(settings.containers.limits.postgres),
        # The image's documented arbitrary-user setup: initdb as the postgres user on a volume it owns (fsGroup).
        "security_context": container_security(),
        "volume_mounts": [{"name": "data", "mount_path": "/var/lib/postgresql/data"},
                          {"name": "run", "mount_path": "/var/run/postgresql"}, {"name": "tmp", "mount_path": "/tmp"},
                          {"name": "password", "mount_path": SECRETS_DIR, "read_only": True}],
    }
    statefulset = k8s.apps.v1.StatefulSet(
        resource_name, metadata=metadata(settings, name, "postgres", annotations=waivers(IMAGE_USER_WAIVER)),
        spec={
            "service_name": name, "replicas": 1,
            "selector": {"match_labels": selector_labels(settings, "postgres")},
            # Deleting the stack keeps the claim (and the data), as the Docker volume is kept.
            "persistent_volume_claim_retention_policy": {"when_deleted": "Retain", "when_scaled": "Retain"},
            "template": {
                "metadata": {"labels": selector_labels(settings, "postgres")},
                "spec": {
                    "automount_service_account_token": False,
                    "security_context": pod_security(user=POSTGRES_UID),
                    # A clean shutdown (checkpoint) rather than crash recovery at the next start.
                    "termination_grace_period_seconds": 120,
                    "node_selector": dict(kube.node_selector) or None,
                    "containers": [container],
                    "volumes": [emptydir("run", 16, "Memory"), emptydir("tmp", 256),
                                secret_file_volume("password", gateway_secret, "POSTGRES_PASSWORD")],
                },
            },
            "volume_claim_templates": [{"metadata": {"name": "data"}, "spec": claim}],
        },
        # A StatefulSet's claim templates cannot change: a new size or class would replace the StatefulSet
        # (the database restarts) and resize nothing. The claim is resized on its own (docs/kubernetes.md).
        opts=pulumi.ResourceOptions.merge(opts, pulumi.ResourceOptions(ignore_changes=["spec.volumeClaimTemplates"])))
    service = _service(settings, name, "postgres", POSTGRES_PORT, opts)
    return statefulset, service


def redis(resource_name: str, settings: StackSettings, redis_password: pulumi.Input[str], gateway_secret: str,
          secret_version: pulumi.Input[Any], opts: pulumi.ResourceOptions):
    """(Deployment, Service, config Secret) of the cache and shared counters."""
    name = settings.names.redis
    conf_secret = f"{name}-config"
    config = k8s.core.v1.Secret(
        f"{resource_name}-config", metadata=metadata(settings, conf_secret, "redis"),
        # The password is in the config file only (a Secret, a Pulumi secret) and the probe's environment.
        string_data={"redis.conf": pulumi.Output.secret(pulumi.Output.from_input(redis_password).apply(
            lambda password: redis_conf.with_password(redis_conf.render_redis_conf(settings), password)))},
        opts=opts)
    ping = ["redis-cli", "ping"]
    container = {
        "name": "redis", "image": settings.redis.image,
        "command": ["redis-server", redis_conf.CONFIG_PATH],
        "env": [{"name": "REDISCLI_AUTH", "value_from": {"secret_key_ref": {"name": gateway_secret,
                                                                            "key": "REDIS_PASSWORD"}}}],
        "ports": [{"name": "redis", "container_port": REDIS_PORT}],
        "readiness_probe": exec_probe(ping, period=5, timeout=3, failures=3),
        "liveness_probe": {**exec_probe(ping, period=10, timeout=3, failures=6), "initial_delay_seconds": 10},
        "resources": resources(settings.redis_limits()),
        "security_context": container_security(),
        "volume_mounts": [{"name": "config", "mount_path": redis_conf.CONFIG_PATH, "sub_path": "redis.conf",
                           "read_only": True},
                          {"name": "data", "mount_path": "/data"}],
    }
    deployment = k8s.apps.v1.Deployment(
        resource_name, metadata=metadata(settings, name, "redis", annotations=waivers({
            **IMAGE_USER_WAIVER,
            "CKV_K8S_35": "redis-cli, the probe, reads the password from REDISCLI_AUTH only; the value is the Secret's"})),
        spec={
            "replicas": 1,
            # One Redis holds the shared counters: never two at once.
            "strategy": {"type": "Recreate"},
            "selector": {"match_labels": selector_labels(settings, "redis")},
            "template": {
                "metadata": {"labels": selector_labels(settings, "redis"),
                             # A new maxmemory, or a new password (a new Vault version), restarts Redis with it.
                             "annotations": {"litellm-gateway/config-sha256": sha256(redis_conf.render_redis_conf(settings)),
                                             "litellm-gateway/vault-secret-version": pulumi.Output.from_input(
                                                 secret_version).apply(lambda v: str(v or 0))}},
                "spec": {
                    "automount_service_account_token": False,
                    "security_context": pod_security(user=REDIS_UID, group=REDIS_GID),
                    "node_selector": dict(settings.kubernetes.node_selector) or None,
                    "containers": [container],
                    "volumes": [{"name": "config", "secret": {"secret_name": conf_secret, "default_mode": 0o440}},
                                emptydir("data", 64)],
                },
            },
        },
        opts=pulumi.ResourceOptions.merge(opts, pulumi.ResourceOptions(depends_on=[config])))
    service = _service(settings, name, "redis", REDIS_PORT, opts)
    return deployment, service, config

