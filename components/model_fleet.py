"""BACKLOG-002: every routed model pulled and verified on its GPU hosts, and checked again on refresh."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

import pulumi
import pulumi_command as command
import pulumi_docker as docker
import pulumi_vault as vault

from config.settings import GpuHostSettings, StackSettings
from config.values import slug
from renderers.ollama_scripts import pull_command, prune_command, render_host_script
from .containers import container_options, hardening, healthcheck, labels, pinned_image
from .ollama_drift import OllamaHostModels


def ssh_private_key(settings: StackSettings, vault_provider: vault.Provider) -> Optional[pulumi.Output[str]]:
    """The GPU hosts' SSH key as a secret: from secret config, or read from Vault."""
    if not settings.ssh_hosts():
        return None
    supplied = settings.supplied_secrets.get("gpuSshPrivateKey")
    if supplied is not None:
        return pulumi.Output.secret(supplied)
    ref = settings.gpu_ssh.private_key_vault
    secret = vault.kv.get_secret_v2_output(
        mount=ref.mount, name=ref.path, opts=pulumi.InvokeOutputOptions(provider=vault_provider)
    )

    def field(data: dict) -> str:
        if not data or ref.field not in data:
            raise pulumi.RunError(
                f"litellm-gateway:gpuSsh.privateKeyVault: Vault secret {ref.mount}/{ref.path} has no field '{ref.field}'"
            )
        return data[ref.field]

    return pulumi.Output.secret(secret.data.apply(field))


@dataclass
class ModelFleetArgs:
    settings: StackSettings
    docker_provider: docker.Provider
    network_name: pulumi.Input[str]
    ssh_private_key: Optional[pulumi.Input[str]] = None


class ModelFleet(pulumi.ComponentResource):
    """Per (host, model) an idempotent pull-and-verify command; per host a reader of what is there."""

    pulls: dict[tuple[str, str], pulumi.Resource]  # (host, model name) -> pull command
    observed: dict[str, OllamaHostModels]          # host -> models found there
    routes_ready: list[pulumi.Resource]            # what a LiteLLM replica waits for

    def __init__(self, name: str, args: ModelFleetArgs, opts: Optional[pulumi.ResourceOptions] = None):
        super().__init__("litellm-gateway:models:ModelFleet", name, None, opts)
        settings = args.settings
        self.pulls, self.observed = {}, {}
        docker_child = pulumi.ResourceOptions(parent=self, provider=args.docker_provider)

        for host in settings.gpu_hosts:
            script = render_host_script(host.name, host.ollama_port, settings.model_pulls)
            if host.local_container is not None:
                container = self._local_ollama(name, settings, host, args.network_name, docker_child)
                transport = {"kind": "docker", "container": container.name, "docker_host": settings.docker.host}
                run_on_host = self._docker_exec(settings, container)
                host_ready: list[pulumi.Resource] = [container]
            else:
                transport = pulumi.Output.secret({
                    "kind": "ssh", "host": host.name, "address": host.address,
                    "port": settings.ssh_port(host), "user": settings.ssh_user(host),
                    "private_key": args.ssh_private_key, "host_key": host.ssh.host_key or "",
                    "unpinned_host_key_waiver": settings.gpu_ssh.allow_unpinned_host_keys or "",
                })
                run_on_host = self._ssh(settings, host, args.ssh_private_key)
                host_ready = []

            # One pull at a time on a host (disk and bandwidth); hosts pull in parallel.
            previous: list[pulumi.Resource] = host_ready
            expected = {}
            for model_name in settings.models_pulled_by(host):
                model = settings.model(model_name)
                expected[model.name] = {"tag": model.ollama_tag, "digest": model.digest or ""}
                pull = run_on_host(
                    f"{name}-pull-{host.name}-{slug(model.name)}",
                    create=pull_command(model.ollama_tag, model.digest),
                    delete=prune_command(model.ollama_tag) if settings.model_pulls.prune else None,
                    stdin=script,
                    # A new tag or pinned digest runs the pull again; nothing else does.
                    triggers=[model.ollama_tag, model.digest or ""],
                    opts=pulumi.ResourceOptions(parent=self, depends_on=previous),
                )
                self.pulls[(host.name, model.name)] = pull
                previous = [pull]

            self.observed[host.name] = OllamaHostModels(
                f"{name}-observed-{host.name}", host=host.name, transport=transport, script=script,
                expected=expected, pull_timeout=settings.model_pulls.timeout_seconds,
                opts=pulumi.ResourceOptions(parent=self, depends_on=[*host_ready, *previous]),
            )

        routed_hosts = {h.name for _, h in settings.routes()}
        self.routes_ready = [self.pulls[(h.name, m.name)] for m, h in settings.routes()] + [
            self.observed[h] for h in sorted(routed_hosts)
        ]
        self.register_outputs({
            "observed": {h: r.status for h, r in self.observed.items()},
        })

    @staticmethod
    def _ssh(settings: StackSettings, host: GpuHostSettings, private_key):
        connection = command.remote.ConnectionArgs(
            host=host.address, port=settings.ssh_port(host), user=settings.ssh_user(host),
            private_key=private_key, host_key=host.ssh.host_key,
            dial_error_limit=settings.gpu_ssh.dial_error_limit,
        )

        def run(resource_name, **kwargs):
            return command.remote.Command(resource_name, connection=connection, **kwargs)

        return run

    @staticmethod
    def _docker_exec(settings: StackSettings, container: docker.Container):
        def run(resource_name, create, delete, **kwargs):
            exec_prefix = container.name.apply(lambda c: f"docker exec -i {c} ")
            return command.local.Command(
                resource_name,
                create=pulumi.Output.concat(exec_prefix, create),
                delete=pulumi.Output.concat(exec_prefix, delete) if delete else None,
                environment={"DOCKER_HOST": settings.docker.host},
                **kwargs,
            )

        return run

    @staticmethod
    def _local_ollama(name: str, settings: StackSettings, host: GpuHostSettings, network_name,
                      docker_child: pulumi.ResourceOptions) -> docker.Container:
        """dev: the GPU host is a CPU Ollama container, reachable on the gateway network as host.address."""
        prefix = settings.resource_prefix()
        models_volume = docker.Volume(
            f"{name}-ollama-{host.name}-models", name=f"{prefix}-ollama-{host.name}-models", opts=docker_child,
        )
        return docker.Container(
            f"{name}-ollama-{host.name}",
            name=f"{prefix}-ollama-{host.name}",
            image=pinned_image(f"{name}-ollama-{host.name}-image", host.local_container.image, docker_child).image_id,
            envs=[f"OLLAMA_HOST=0.0.0.0:{host.ollama_port}"],
            mounts=[docker.ContainerMountArgs(target="/root/.ollama", source=models_volume.name, type="volume")],
            healthcheck=healthcheck(["CMD", "ollama", "list"]),
            networks_advanced=[docker.ContainerNetworksAdvancedArgs(name=network_name, aliases=[host.address])],
            restart="unless-stopped",
            wait=True,
            wait_timeout=120,
            **hardening(settings, settings.containers.limits.ollama_dev),
            labels=labels(settings, "ollama", waivers={
                "non-root-user": "ollama/ollama runs as root with its models under /root/.ollama (dev only)",
                "read-only-rootfs": "ollama unpacks its runners at start (dev only)",
            }),
            opts=container_options(docker_child),
        )
