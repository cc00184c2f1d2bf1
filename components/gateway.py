"""The LiteLLM gateway on Docker: private network, Postgres, Redis (cache + shared limits), LiteLLM replicas."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Optional, Sequence

import pulumi
import pulumi_docker as docker

from config.settings import Limits, StackSettings
from config.values import local_url, postgres_url
from renderers import litellm_config as rendered
from renderers import redis_conf
from .containers import (UPLOADS_NEED_WRITABLE_ROOT, container_options, hardening, healthcheck, labels, pinned_image,
                         secret_envs)

POSTGRES_PORT = 5432


@dataclass
class GatewaySecretValues:
    """The secret Outputs the containers need (from GatewaySecrets)."""

    master_key: pulumi.Input[str]
    salt_key: pulumi.Input[str]
    ui_password: pulumi.Input[str]
    postgres_password: pulumi.Input[str]
    redis_password: pulumi.Input[str]


@dataclass
class GatewayArgs:
    settings: StackSettings
    secrets: GatewaySecretValues
    docker_provider: docker.Provider
    network_name: pulumi.Input[str]
    # Resources each LiteLLM replica waits for (the model pulls), so no route goes live early.
    routes_ready: Sequence[pulumi.Resource] = field(default_factory=list)


def private_network(settings: StackSettings, docker_provider: docker.Provider) -> docker.Network:
    """The gateway's private Docker network (also joined by the dev stack's Ollama container)."""
    prefix = settings.resource_prefix()
    return docker.Network(
        "network", name=f"{prefix}-net", driver="bridge",
        labels=[docker.NetworkLabelArgs(label=f"{prefix}.role", value="gateway")],
        opts=pulumi.ResourceOptions(provider=docker_provider),
    )


class Gateway(pulumi.ComponentResource):
    urls: pulumi.Output[list[str]]
    url: pulumi.Output[str]
    litellm_containers: list[docker.Container]
    config: dict  # the rendered LiteLLM config, as data
    rendered_config: str

    def __init__(self, name: str, args: GatewayArgs, opts: Optional[pulumi.ResourceOptions] = None):
        super().__init__("litellm-gateway:gateway:Gateway", name, None, opts)
        settings = args.settings
        prefix = settings.resource_prefix()
        child = pulumi.ResourceOptions(parent=self, provider=args.docker_provider)

        def on_network(*aliases: str) -> list[docker.ContainerNetworksAdvancedArgs]:
            return [docker.ContainerNetworksAdvancedArgs(name=args.network_name, aliases=list(aliases))]

        # Postgres: LiteLLM's keys, users, teams, spend logs. Never published on the host.
        pg = settings.postgres
        pg_volume = docker.Volume(
            f"{name}-postgres-volume", name=settings.postgres_volume,
            # Destroying the stack keeps the database volume; delete it by hand if you mean it.
            opts=pulumi.ResourceOptions.merge(child, pulumi.ResourceOptions(retain_on_delete=True)),
        )
        postgres = docker.Container(
            f"{name}-postgres",
            name=f"{prefix}-postgres",
            image=pinned_image(f"{name}-postgres-image", pg.image, child).image_id,
            envs=secret_envs({
                "POSTGRES_USER": pg.user,
                "POSTGRES_DB": pg.database,
                "POSTGRES_PASSWORD": args.secrets.postgres_password,
            }),
            mounts=[docker.ContainerMountArgs(target="/var/lib/postgresql/data", source=pg_volume.name, type="volume")],
            healthcheck=healthcheck(["CMD", "pg_isready", "-U", pg.user, "-d", pg.database]),
            networks_advanced=on_network("postgres"),
            restart="unless-stopped",
            wait=True,
            wait_timeout=120,
            # Read-only image, writable data volume (the image's documented --read-only setup); the
            # entrypoint prepares the data directory as root, then runs the server as postgres.
            # A clean shutdown on replacement, not crash recovery at the next start.
            **hardening(settings, settings.containers.limits.postgres, read_only=True,
                        tmpfs={"/tmp": "rw,noexec,nosuid,size=256m", "/run/postgresql": "rw,noexec,nosuid,size=16m"},
                        cap_adds=("CHOWN", "DAC_OVERRIDE", "FOWNER", "SETGID", "SETUID"), stop_grace_seconds=120),
            labels=labels(settings, "postgres", waivers={
                "non-root-user": "the image's entrypoint prepares the data directory as root, then runs postgres "
                                 "as the postgres user",
            }),
            opts=container_options(child),
        )

        # Redis: response cache (BACKLOG-008), router state and key/user limits shared by replicas.
        redis = docker.Container(
            f"{name}-redis",
            name=f"{prefix}-redis",
            image=pinned_image(f"{name}-redis-image", settings.redis.image, child).image_id,
            # A bare `redis-server` lets the image's entrypoint drop root; the password is only in the
            # uploaded config file (a Pulumi secret) and the healthcheck's environment.
            command=["redis-server", redis_conf.CONFIG_PATH],
            uploads=[docker.ContainerUploadArgs(
                file=redis_conf.CONFIG_PATH,
                content=pulumi.Output.secret(pulumi.Output.from_input(args.secrets.redis_password).apply(
                    lambda password: redis_conf.with_password(redis_conf.render_redis_conf(settings), password))),
            )],
            envs=secret_envs({"REDISCLI_AUTH": args.secrets.redis_password}),
            healthcheck=healthcheck(["CMD", "redis-cli", "ping"], start_period="5s"),
            networks_advanced=on_network("redis"),
            restart="unless-stopped",
            wait=True,
            wait_timeout=60,
            **hardening(settings, settings.redis_limits(), user="redis"),
            labels=labels(settings, "redis", waivers={"read-only-rootfs": UPLOADS_NEED_WRITABLE_ROOT}),
            opts=container_options(child),
        )

        self.config = rendered.render_config_dict(settings, redis_host=f"{prefix}-redis")
        self.rendered_config = rendered.render_litellm_config(settings, redis_host=f"{prefix}-redis", config=self.config)
        self.postgres = postgres
        self.redis = redis
        litellm_image = pinned_image(f"{name}-litellm-image", settings.gateway.image, child)
        gateway = settings.gateway
        database_url = pulumi.Output.secret(pulumi.Output.from_input(args.secrets.postgres_password).apply(
            lambda password: postgres_url(pg.user, password, f"{prefix}-postgres", POSTGRES_PORT, pg.database)))
        self.litellm_containers = []
        for replica in range(gateway.replicas):
            env: dict[str, pulumi.Input[str]] = {
                rendered.MASTER_KEY_ENV: args.secrets.master_key,
                "LITELLM_SALT_KEY": args.secrets.salt_key,
                rendered.DATABASE_URL_ENV: database_url,
                rendered.REDIS_PASSWORD_ENV: args.secrets.redis_password,
                "UI_USERNAME": gateway.ui_username,
                "UI_PASSWORD": args.secrets.ui_password,
                "LITELLM_MODE": "PRODUCTION",
                "LITELLM_LOG": "INFO",
                # Use the cost map shipped in the image instead of fetching it at every start.
                "LITELLM_LOCAL_MODEL_COST_MAP": "True",
            }
            depends_on: list[pulumi.Resource] = [postgres, redis, *args.routes_ready]
            if replica > 0:
                # Replica 0 runs the Prisma migrations; the others wait for it and never migrate.
                env["DISABLE_SCHEMA_UPDATE"] = "true"
                depends_on.append(self.litellm_containers[0])
            container = docker.Container(
                f"{name}-litellm-{replica}",
                name=f"{prefix}-litellm-{replica}",
                image=litellm_image.image_id,
                command=["--config", rendered.CONFIG_PATH, "--port", str(rendered.PROXY_PORT),
                         "--num_workers", str(gateway.num_workers)],
                uploads=[docker.ContainerUploadArgs(file=rendered.CONFIG_PATH, content=self.rendered_config)],
                envs=secret_envs(env),
                ports=[docker.ContainerPortArgs(
                    internal=rendered.PROXY_PORT, external=gateway.port + replica, ip=gateway.bind_address,
                )],
                healthcheck=healthcheck(
                    ["CMD", "python3", "-c",
                     "import urllib.request; urllib.request.urlopen("
                     f"'http://127.0.0.1:{rendered.PROXY_PORT}/health/liveliness', timeout=4)"],
                    start_period="60s",
                ),
                networks_advanced=on_network("litellm", f"litellm-{replica}"),
                restart="unless-stopped",
                wait=True,
                # The first start runs database migrations.
                wait_timeout=300,
                # uvicorn finishes in-flight requests on SIGTERM within the grace period.
                **hardening(settings, Limits(memory_mb=gateway.memory_mb, cpus=gateway.cpus),
                            stop_grace_seconds=gateway.stop_grace_seconds),
                labels=labels(settings, "litellm", waivers={
                    "read-only-rootfs": UPLOADS_NEED_WRITABLE_ROOT,
                    "non-root-user": "the litellm-database image runs as root (Prisma keeps its engines and "
                                     "generated client under /root); it gets no capabilities",
                }),
                opts=container_options(child, depends_on),
            )
            self.litellm_containers.append(container)

        self.urls = pulumi.Output.all(*[
            c.name.apply(lambda _, port=gateway.port + i: local_url(gateway.bind_address, port))
            for i, c in enumerate(self.litellm_containers)
        ])
        self.url = self.urls.apply(lambda urls: urls[0])
        self.register_outputs({"urls": self.urls})
