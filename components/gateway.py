"""The LiteLLM gateway on Docker: private network, Postgres, Redis (cache + shared limits), LiteLLM replicas."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Optional, Sequence

import pulumi
import pulumi_docker as docker
import pulumi_random as random
import pulumi_vault as vault

from config.images import untested_litellm_warning
from config.names import PROXY_PORT, REPLICA_SERVICE
from config.stack import StackSettings
from renderers import data_stores, haproxy, replica_entrypoint
from renderers import litellm_config as rendered
from renderers import redis_conf
from .containers import (UPLOADS_NEED_WRITABLE_ROOT, ca_uploads, container_options, hardening, healthcheck, labels,
                         on_network, pinned_image, secret_envs)


@dataclass
class GatewaySecretValues:
    """The secret Outputs the containers need (from GatewaySecrets)."""

    master_key: pulumi.Input[str]
    salt_key: pulumi.Input[str]
    ui_password: pulumi.Input[str]
    postgres_password: pulumi.Input[str]
    redis_password: pulumi.Input[str]
    database_url: pulumi.Input[str]                          # libpq's, the stack's or the external database's
    read_replica_url: Optional[pulumi.Input[str]] = None     # an external read replica's


@dataclass
class GatewayArgs:
    settings: StackSettings
    secrets: GatewaySecretValues
    docker_provider: docker.Provider
    network_name: pulumi.Input[str]
    # Resources each LiteLLM replica waits for (the model pulls), so no route goes live early.
    routes_ready: Sequence[pulumi.Resource] = field(default_factory=list)
    vault_provider: Optional[pulumi.ProviderResource] = None  # for a TLS certificate kept in Vault


def private_network(settings: StackSettings, docker_provider: docker.Provider) -> docker.Network:
    """The gateway's private Docker network (also joined by the dev stack's Ollama container)."""
    names = settings.names
    return docker.Network(
        "network", name=names.network, driver="bridge",
        labels=[docker.NetworkLabelArgs(label=f"{names.prefix}.role", value="gateway")],
        opts=pulumi.ResourceOptions(provider=docker_provider),
    )


class Gateway(pulumi.ComponentResource):
    url: pulumi.Output[str]
    litellm_containers: list[docker.Container]
    config: dict  # the rendered LiteLLM config, as data
    rendered_config: str

    def __init__(self, name: str, args: GatewayArgs, opts: Optional[pulumi.ResourceOptions] = None):
        super().__init__("litellm-gateway:gateway:Gateway", name, None, opts)
        self._name, self._args, self._settings, self._names = name, args, args.settings, args.settings.names
        self._child = pulumi.ResourceOptions(parent=self, provider=args.docker_provider)
        # postgres.mode / redis.mode external: the stack runs neither (None), the replicas reach the external ones.
        self.postgres = self._postgres() if self._settings.postgres.mode == "container" else None
        self.redis = self._redis() if self._settings.redis.mode == "container" else None
        self.config = rendered.render_config_dict(self._settings)
        self.rendered_config = rendered.render_litellm_config(self._settings, config=self.config)
        warning = untested_litellm_warning(self._settings.gateway.image)
        if warning:
            pulumi.log.warn(warning, resource=self)
        self.litellm_containers = self._replicas()
        self.load_balancer = self._load_balancer()
        self.url = self.load_balancer.name.apply(lambda _: haproxy.published_url(self._settings))
        self.register_outputs({"url": self.url})

    def _on_network(self, *aliases: str) -> list[docker.ContainerNetworksAdvancedArgs]:
        return on_network(self._args.network_name, *aliases)

    def _postgres(self) -> docker.Container:
        """LiteLLM's keys, users, teams, spend logs. Never published on the host."""
        name, settings, child = self._name, self._settings, self._child
        pg = settings.postgres
        pg_volume = docker.Volume(
            f"{name}-postgres-volume", name=settings.postgres_volume,
            # Destroying the stack keeps the database volume; delete it by hand if you mean it.
            opts=pulumi.ResourceOptions.merge(child, pulumi.ResourceOptions(retain_on_delete=True)),
        )
        return docker.Container(
            f"{name}-postgres",
            name=self._names.postgres,
            image=pinned_image(f"{name}-postgres-image", pg.image, child).image_id,
            envs=secret_envs({
                "POSTGRES_USER": pg.user,
                "POSTGRES_DB": pg.database,
                "POSTGRES_PASSWORD": self._args.secrets.postgres_password,
            }),
            mounts=[docker.ContainerMountArgs(target="/var/lib/postgresql/data", source=pg_volume.name, type="volume")],
            healthcheck=healthcheck(["CMD", "pg_isready", "-U", pg.user, "-d", pg.database]),
            networks_advanced=self._on_network("postgres"),
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

    def _redis(self) -> docker.Container:
        """The response cache (BACKLOG-008), router state and key/user limits shared by replicas."""
        name, settings, child = self._name, self._settings, self._child
        redis_password = self._args.secrets.redis_password
        return docker.Container(
            f"{name}-redis",
            name=self._names.redis,
            image=pinned_image(f"{name}-redis-image", settings.redis.image, child).image_id,
            # A bare `redis-server` lets the image's entrypoint drop root; the password is only in the
            # uploaded config file (a Pulumi secret) and the healthcheck's environment.
            command=["redis-server", redis_conf.CONFIG_PATH],
            uploads=[docker.ContainerUploadArgs(
                file=redis_conf.CONFIG_PATH,
                content=pulumi.Output.secret(pulumi.Output.from_input(redis_password).apply(
                    lambda password: redis_conf.with_password(redis_conf.render_redis_conf(settings), password))),
            )],
            envs=secret_envs({"REDISCLI_AUTH": redis_password}),
            healthcheck=healthcheck(["CMD", "redis-cli", "ping"], start_period="5s"),
            networks_advanced=self._on_network("redis"),
            restart="unless-stopped",
            wait=True,
            wait_timeout=60,
            **hardening(settings, settings.redis_limits(), user="redis"),
            labels=labels(settings, "redis", waivers={"read-only-rootfs": UPLOADS_NEED_WRITABLE_ROOT}),
            opts=container_options(child),
        )

    def _replica_environment(self) -> dict[str, pulumi.Input[str]]:
        settings, secrets = self._settings, self._args.secrets
        gateway = settings.gateway
        replica = {rendered.READ_REPLICA_URL_ENV: secrets.read_replica_url} if secrets.read_replica_url else {}
        return {
            rendered.MASTER_KEY_ENV: secrets.master_key,
            "LITELLM_SALT_KEY": secrets.salt_key,
            rendered.DATABASE_URL_ENV: secrets.database_url,
            **replica,
            rendered.REDIS_PASSWORD_ENV: secrets.redis_password,
            "UI_USERNAME": gateway.ui_username,
            "UI_PASSWORD": secrets.ui_password,
            "LITELLM_MODE": "PRODUCTION",
            "LITELLM_LOG": gateway.log_level,
            # Use the cost map shipped in the image instead of fetching it at every start.
            "LITELLM_LOCAL_MODEL_COST_MAP": "True",
            # Only the entrypoint calls /health/drain (the load balancer refuses it), with this token.
            **replica_entrypoint.environment(secrets.master_key, gateway.stop_grace_seconds),
        }

    def _replicas(self) -> list[docker.Container]:
        name, settings, child = self._name, self._settings, self._child
        gateway = settings.gateway
        litellm_image = pinned_image(f"{name}-litellm-image", gateway.image, child)
        command = replica_entrypoint.litellm_arguments(rendered.CONFIG_PATH, PROXY_PORT, gateway.num_workers)
        # The first process drains the replica out of the load balancer before LiteLLM gets SIGTERM.
        entrypoints = replica_entrypoint.entrypoints(PROXY_PORT, gateway.stop_grace_seconds)
        environment = self._replica_environment()
        ca_files = data_stores.ca_files(settings)
        containers: list[docker.Container] = []
        for replica in range(gateway.replicas):
            env = dict(environment)
            depends_on: list[pulumi.Resource] = [r for r in (self.postgres, self.redis) if r is not None]
            depends_on += self._args.routes_ready
            if replica > 0:
                # Replica 0 runs the Prisma migrations; the others wait for it and never migrate.
                env["DISABLE_SCHEMA_UPDATE"] = "true"
                depends_on.append(containers[0])
            envs = secret_envs(env)
            hardened = hardening(settings, settings.replica_limits(),
                                 stop_grace_seconds=gateway.stop_grace_seconds)
            replica_labels = labels(settings, "litellm", waivers={
                "read-only-rootfs": UPLOADS_NEED_WRITABLE_ROOT,
                "non-root-user": "the litellm-database image runs as root (Prisma keeps its engines and "
                                 "generated client under /root); it gets no capabilities",
            })
            aliases = (REPLICA_SERVICE, f"litellm-{replica}")
            # Rolling replacement: a replica whose inputs change gets a new name, so its successor
            # starts beside it (create before delete), joins the `litellm` alias the load balancer
            # resolves, and only then is the old one stopped (SIGTERM, gateway.stopGraceSeconds).
            # The revision covers every input that makes pulumi-docker replace the container (the
            # name aside): one it missed would replace the replica under the same name, which Docker
            # refuses while the old one still runs beside it.
            revision = random.RandomId(
                f"{name}-litellm-{replica}-revision", byte_length=3,
                keepers=pulumi.Output.secret(pulumi.Output.all(litellm_image.image_id, envs,
                                                               self._args.network_name).apply(
                    lambda v, r=replica: {"revision": _digest(
                        [r, v[0], v[1], command, entrypoints, self.rendered_config, rendered.CONFIG_PATH, ca_files,
                         _plain(hardened), _plain(replica_labels), v[2], aliases])})),
                opts=pulumi.ResourceOptions(parent=self),
            )
            containers.append(docker.Container(
                f"{name}-litellm-{replica}",
                name=revision.hex.apply(lambda suffix, r=replica: self._names.replica(r, suffix)),
                image=litellm_image.image_id,
                entrypoints=entrypoints,
                command=command,
                uploads=[docker.ContainerUploadArgs(file=rendered.CONFIG_PATH, content=self.rendered_config),
                         *ca_uploads(ca_files)],
                envs=envs,
                healthcheck=docker.ContainerHealthcheckArgs(
                    tests=["CMD", "python3", "-c",
                           "import urllib.request; urllib.request.urlopen("
                           f"'http://127.0.0.1:{PROXY_PORT}/health/liveliness', timeout=4)"],
                    # Checked often so a new replica counts as started soon after it answers; the load
                    # balancer routes on /health/readiness (the database too).
                    interval="5s", timeout="5s", retries=6, start_period="120s",
                ),
                networks_advanced=self._on_network(*aliases),
                restart="unless-stopped",
                wait=True,
                # The first start runs database migrations.
                wait_timeout=300,
                # SIGTERM to the entrypoint: out of the load balancer, then in-flight requests finish.
                **hardened,
                labels=replica_labels,
                # pulumi-docker asks the engine to delete a container before replacing it (its provider's
                # `DeleteBeforeReplace: true` for docker_container, provider/resources.go), which would stop
                # the old replica before its successor exists. A replica's name is new on every replacement,
                # so the two can run side by side: say so, and Pulumi creates first, deletes after.
                opts=pulumi.ResourceOptions.merge(child, pulumi.ResourceOptions(depends_on=depends_on,
                                                                                delete_before_replace=False)),
            ))
        return containers

    def _load_balancer(self) -> docker.Container:
        """HAProxy: the one published gateway port, health-checked replicas found through DNS."""
        name, settings, args, child = self._name, self._settings, self._args, self._child
        gateway = settings.gateway
        lb = gateway.load_balancer
        uploads = [docker.ContainerUploadArgs(file=haproxy.CONFIG_PATH, content=haproxy.render_haproxy_config(settings))]
        internal = haproxy.HTTP_PORT
        ports = []
        if lb.tls.enabled:
            uploads.append(docker.ContainerUploadArgs(file=haproxy.CERT_PATH,
                                                      content=tls_pem(settings, args.vault_provider)))
            internal = haproxy.HTTPS_PORT
            if lb.tls.http_redirect_port is not None:
                ports.append(docker.ContainerPortArgs(internal=haproxy.HTTP_PORT, external=lb.tls.http_redirect_port,
                                                      ip=gateway.bind_address))
        ports.insert(0, docker.ContainerPortArgs(internal=internal, external=gateway.port, ip=gateway.bind_address))
        return docker.Container(
            f"{name}-lb",
            name=self._names.loadbalancer,
            image=pinned_image(f"{name}-lb-image", lb.image, child).image_id,
            uploads=uploads,
            ports=ports,
            healthcheck=healthcheck(["CMD-SHELL", f"wget -q -O /dev/null http://127.0.0.1:{haproxy.STATS_PORT}/healthz"
                                     " || exit 1"], start_period="10s"),
            networks_advanced=self._on_network("gateway-lb"),
            restart="unless-stopped",
            wait=True,
            wait_timeout=120,
            # SIGUSR1: HAProxy's soft stop, finishing the requests it carries.
            stop_signal="SIGUSR1",
            **hardening(settings, settings.containers.limits.loadbalancer, stop_grace_seconds=gateway.stop_grace_seconds),
            labels=labels(settings, "loadbalancer", waivers={"read-only-rootfs": UPLOADS_NEED_WRITABLE_ROOT,
                                                              "non-root-user": "the haproxy image runs as its haproxy user"}),
            # Fixed name and host port: a change of its own config replaces it stop-first (seconds, rare);
            # replica changes never touch it.
            opts=container_options(child, self.litellm_containers),
        )


def _plain(value):
    """Pulumi input types (ContainerCapabilitiesArgs, ...) as plain dicts, for a digest."""
    from pulumi import _types

    if _types.is_input_type(type(value)):
        return {k: _plain(v) for k, v in _types.input_type_to_dict(value).items()}
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    return value


def _digest(values: list) -> str:
    import hashlib
    import json as _json

    return hashlib.sha256(_json.dumps(values, sort_keys=True, default=str).encode()).hexdigest()


def tls_parts(settings: StackSettings, ref, vault_provider, key_path: str) -> pulumi.Output[tuple[str, str]]:
    """(certificate chain, private key) as PEM, each ending in one newline: from the Vault secret `ref`, or
    from the secret config keys gatewayTlsCertificate and gatewayTlsKey. A secret from end to end."""
    if ref is None:
        supplied = settings.supplied_secrets
        return pulumi.Output.secret((supplied.get("gatewayTlsCertificate").rstrip("\n") + "\n",
                                     supplied.get("gatewayTlsKey").rstrip("\n") + "\n"))
    secret = vault.kv.get_secret_v2_output(mount=ref.mount, name=ref.path,
                                           opts=pulumi.InvokeOutputOptions(provider=vault_provider))

    def split(data: dict) -> tuple[str, str]:
        missing = [f for f in (ref.certificate_field, ref.key_field) if not data or f not in data]
        if missing:
            raise pulumi.RunError(f"litellm-gateway:{key_path}: Vault secret {ref.mount}/{ref.path} "
                                  f"has no field {', '.join(repr(m) for m in missing)}")
        return data[ref.certificate_field].rstrip("\n") + "\n", data[ref.key_field].rstrip("\n") + "\n"

    return pulumi.Output.secret(secret.data.apply(split))


def tls_pem(settings: StackSettings, vault_provider) -> pulumi.Output[str]:
    """The certificate chain and key as one PEM (what HAProxy's crt wants), a secret from end to end."""
    parts = tls_parts(settings, settings.gateway.load_balancer.tls.vault, vault_provider,
                      "gateway.loadBalancer.tls.vault")
    return pulumi.Output.secret(parts.apply(lambda p: p[0] + p[1]))
