"""BACKLOG-004: scheduled pg_dump backups of the LiteLLM database, with checksums and retention."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

import pulumi
import pulumi_docker as docker

from config.stack import StackSettings
from config.values import libpq_environment
from renderers import backup_scripts as rendered
from renderers.data_stores import ca_files
from .containers import (UPLOADS_NEED_WRITABLE_ROOT, ca_uploads, container_options, hardening, healthcheck, labels,
                         on_network, pinned_image)

RUNBOOK = "docs/RUNBOOK.md"


@dataclass
class DatabaseBackupsArgs:
    settings: StackSettings
    docker_provider: docker.Provider
    network_name: pulumi.Input[str]
    database_url: pulumi.Input[str]            # libpq's URL of the database (GatewaySecrets.database_url)
    database: Optional[pulumi.Resource]        # the Postgres container; None for an external database


class DatabaseBackups(pulumi.ComponentResource):
    schedule: str
    location: str

    def __init__(self, name: str, args: DatabaseBackupsArgs, opts: Optional[pulumi.ResourceOptions] = None):
        super().__init__("litellm-gateway:backups:DatabaseBackups", name, None, opts)
        settings = args.settings
        backups = settings.backups
        names = settings.names
        child = pulumi.ResourceOptions(parent=self, provider=args.docker_provider)

        if backups.host_path:
            mount = docker.ContainerMountArgs(target=rendered.BACKUP_DIR, source=backups.host_path, type="bind")
            self.location = f"host path {backups.host_path}"
        else:
            # Never the database's volume (settings refuse that); kept when the stack is destroyed.
            volume = docker.Volume(
                f"{name}-volume", name=settings.backup_volume,
                opts=pulumi.ResourceOptions.merge(child, pulumi.ResourceOptions(retain_on_delete=True)),
            )
            mount = docker.ContainerMountArgs(target=rendered.BACKUP_DIR, source=volume.name, type="volume")
            self.location = f"docker volume {settings.backup_volume}"
        self.schedule = f"daily at {', '.join(backups.times_utc)} UTC"
        self.retention = backups.retention

        pg = settings.postgres
        self.container = docker.Container(
            f"{name}-scheduler",
            name=names.backup,
            # The database's own image: pg_dump has the server's major version.
            image=pinned_image(f"{name}-image", pg.image, child).image_id,
            entrypoints=["bash", rendered.SCHEDULER_SCRIPT_PATH],
            uploads=[
                *ca_uploads(ca_files(settings, redis=False)),
                # 0755, not `executable` (0744 in pulumi-docker: root's only): the scheduler runs the backup
                # script after it has dropped to postgres (found on the real engine: "Permission denied").
                docker.ContainerUploadArgs(file=rendered.SCHEDULER_SCRIPT_PATH, permissions="0755",
                                           content=rendered.render_scheduler_script(backups.times_utc)),
                docker.ContainerUploadArgs(file=rendered.BACKUP_SCRIPT_PATH, permissions="0755",
                                           content=rendered.render_backup_script(backups.retention, settings.environment)),
            ],
            # libpq's environment (PGHOST, ..., PGPASSWORD, PGSSLMODE): the URL never on a command line.
            envs=pulumi.Output.secret(pulumi.Output.from_input(args.database_url).apply(lambda url: [
                f"{k}={v}" for k, v in {**libpq_environment(url), "BACKUP_DIR": rendered.BACKUP_DIR,
                                        "BACKUP_RETENTION": str(backups.retention)}.items()])),
            mounts=[mount],
            healthcheck=healthcheck(rendered.healthcheck_command(), start_period="30s"),
            networks_advanced=on_network(args.network_name, names.backup),
            restart="unless-stopped", wait=True, wait_timeout=120,
            # Starts as root only to hand /backups to postgres (chown), then drops to it (gosu), which
            # clears every capability. As root it needs DAC_OVERRIDE and FOWNER besides CHOWN: to chmod the
            # directory it gave away, and, after a restart, to look into the 0700 directory postgres owns
            # (found on the real engine: without them the scheduler never got past a restart).
            **hardening(settings, settings.containers.limits.backup,
                        cap_adds=("CHOWN", "DAC_OVERRIDE", "FOWNER", "SETGID", "SETUID"),
                        stop_grace_seconds=60),
            labels=labels(settings, "backup", waivers={
                "read-only-rootfs": UPLOADS_NEED_WRITABLE_ROOT,
                "non-root-user": "starts as root to give /backups to the postgres user, then runs as postgres",
            }),
            opts=container_options(child, [args.database] if args.database is not None else []),
        )
        self.register_outputs({"schedule": self.schedule, "location": self.location})
