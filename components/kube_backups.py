"""BACKLOG-004 on Kubernetes: the same backup run (renderers/backup_scripts.py) as a CronJob per daily time.

Each run is a pod of the database's own Postgres image (pg_dump has the server's major version) that runs
the rendered backup script as the postgres user, over the network to the database's Service, and writes
the dump, its checksum and the retention pass to a PersistentVolumeClaim of its own (kept on destroy).
`concurrencyPolicy: Forbid`: a run never overlaps the previous one. The Docker platform's scheduler loop is
the kubelet's job here; a failed run is a failed Job (`kubectl get jobs`), retried once.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Optional

import pulumi
import pulumi_kubernetes as k8s

from config.stack import StackSettings
from renderers import backup_scripts as rendered
from .kube_data import POSTGRES_UID
from .kube_objects import (IMAGE_USER_WAIVER, ca_volume, child_options, container_security, emptydir, metadata,
                           plain_env, pod_security, resources, selector_labels, waivers)

SCRIPTS = "/opt/litellm-backup"
# A directory the postgres user creates on the claim (the claim's root is root's, group-writable by fsGroup;
# the script's chmod 0700 needs a directory it owns).
DUMP_DIR = f"{rendered.BACKUP_DIR}/dumps"


@dataclass
class KubeBackupsArgs:
    settings: StackSettings
    provider: k8s.Provider
    gateway: Any   # KubeGateway: its Secret and the database's StatefulSet


def cron_schedule(time_utc: str) -> str:
    hours, minutes = time_utc.split(":")
    return f"{int(minutes)} {int(hours)} * * *"


class KubeBackups(pulumi.ComponentResource):
    schedule: str
    retention: int
    location: str

    def __init__(self, name: str, args: KubeBackupsArgs, opts: Optional[pulumi.ResourceOptions] = None):
        super().__init__("litellm-gateway:backups:KubeBackups", name, None, opts)
        settings = args.settings
        backups, kube, names, pg = settings.backups, settings.kubernetes, settings.names, settings.postgres
        child = child_options(self, args.provider, depends_on=[args.gateway.secret])
        claim_name = settings.backup_volume
        claim_spec: dict[str, Any] = {"access_modes": ["ReadWriteOnce"],
                                      "resources": {"requests": {"storage": f"{kube.backup_storage_gb}Gi"}}}
        if kube.storage_class:
            claim_spec["storage_class_name"] = kube.storage_class
        claim = k8s.core.v1.PersistentVolumeClaim(
            f"{name}-volume", metadata=metadata(settings, claim_name, "backup"), spec=claim_spec,
            # Destroying the stack keeps the dumps, as it keeps the Docker volume.
            opts=pulumi.ResourceOptions.merge(child, pulumi.ResourceOptions(retain_on_delete=True)))
        script_map = f"{names.prefix}-backup-script"
        scripts = k8s.core.v1.ConfigMap(
            f"{name}-script", metadata=metadata(settings, script_map, "backup"),
            data={"litellm-backup": rendered.render_backup_script(backups.retention, settings.environment)},
            opts=child)
        container = {
            "name": "backup", "image": pg.image, "command": ["bash", f"{SCRIPTS}/litellm-backup"],
            # libpq's environment (PGHOST, ..., PGPASSWORD, PGSSLMODE) from the Secret: the script never names the
            # database or its password; the stack's own database or an external one over the network.
            "env": [*plain_env({"BACKUP_DIR": DUMP_DIR}), *args.gateway.libpq_env()],
            "resources": resources(settings.containers.limits.backup),
            "security_context": container_security(),
            "volume_mounts": [{"name": "backups", "mount_path": rendered.BACKUP_DIR},
                              {"name": "scripts", "mount_path": SCRIPTS, "read_only": True},
                              {"name": "tmp", "mount_path": "/tmp"}, *ca_volume(settings)[1]],
        }
        for index, time_utc in enumerate(backups.times_utc):
            k8s.batch.v1.CronJob(
                f"{name}-{index}", metadata=metadata(settings, f"{names.prefix}-backup-{index}", "backup",
                                                     annotations=waivers({**IMAGE_USER_WAIVER, "CKV_K8S_35": (
                                                         "pg_dump reads the password from libpq's PGPASSWORD, as on "
                                                         "the Docker platform; the value is the Secret's")})),
                spec={"schedule": cron_schedule(time_utc), "time_zone": "Etc/UTC", "concurrency_policy": "Forbid",
                      "starting_deadline_seconds": 3600, "successful_jobs_history_limit": 3,
                      "failed_jobs_history_limit": 3,
                      "job_template": {"spec": {"backoff_limit": 1, "template": {
                          "metadata": {"labels": selector_labels(settings, "backup")},
                          "spec": {"restart_policy": "Never", "automount_service_account_token": False,
                                   "security_context": pod_security(user=POSTGRES_UID),
                                   "node_selector": dict(kube.node_selector) or None,
                                   "containers": [container],
                                   "volumes": [{"name": "backups", "persistent_volume_claim": {"claim_name": claim_name}},
                                               {"name": "scripts", "config_map": {"name": script_map,
                                                                                  "default_mode": 0o555}},
                                               emptydir("tmp", 64), *ca_volume(settings)[0]]}}}}},
                opts=pulumi.ResourceOptions.merge(child, pulumi.ResourceOptions(
                    depends_on=[claim, scripts, *([args.gateway.postgres] if args.gateway.postgres else [])])))
        self.schedule = f"daily at {', '.join(backups.times_utc)} UTC"
        self.retention = backups.retention
        self.location = f"persistent volume claim {claim_name} (namespace {settings.namespace})"
        self.register_outputs({})
