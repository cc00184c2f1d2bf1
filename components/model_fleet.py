"""BACKLOG-002: every routed model pulled and verified on its GPU hosts, and checked again on refresh."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

import shlex

import pulumi
import pulumi_command as command
import pulumi_docker as docker
import pulumi_tls as tls
import pulumi_vault as vault

from config.sections.fleet import GpuHostSettings
from config.stack import StackSettings
from config.values import slug
from renderers.litellm_config import ollama_api_base
from renderers.ollama_scripts import install_command, pull_command, render_host_script
from .containers import container_options, hardening, healthcheck, labels, on_network, pinned_image
from .ollama_drift import OllamaHostModels
from .vault_access import vault_field


def ssh_private_key(settings: StackSettings, vault_provider: vault.Provider) -> Optional[pulumi.Output[str]]:
    """The GPU hosts' SSH key as a secret: from secret config, or read from Vault."""
    if not settings.ssh_hosts():
        return None
    supplied = settings.supplied_secrets.get("gpuSshPrivateKey")
    if supplied is not None:
        return pulumi.Output.secret(supplied)
    return vault_field(settings.gpu_ssh.private_key_vault, "gpuSsh.privateKeyVault", vault_provider)


@dataclass
class ModelFleetArgs:
    settings: StackSettings
    docker_provider: Optional[docker.Provider]   # None on Kubernetes (no local Ollama containers there)
    network_name: Optional[pulumi.Input[str]]
    ssh_private_key: Optional[pulumi.Input[str]] = None


class ModelFleet(pulumi.ComponentResource):
    """Per (host, model) an idempotent pull-and-verify command; per host the script they run and a
    reader of what is there.

    What a pull's inputs hold is what should make it run again: the host's address and Ollama port,
    the tag and the pinned digest. How the host is reached and how a pull retries live elsewhere,
    so changing them re-runs no pull:
    - the script (retries, timeouts) is shipped once per host by `<name>-install-<host>`, with the
      operator's SSH key (gpuSshPrivateKey or gpuSsh.privateKeyVault) and `gpuSsh.dialErrorLimit`;
    - the pulls connect with the stack's own pull key (`<name>-pull-key`, ED25519), which that
      install step authorizes on the host (`restrict`: no forwarding, no pty). Rotating the
      operator's key re-runs the install step only.
    Pruning (`modelPulls.prune`) is done by the host's reader when a model leaves the host's list,
    never because a pull resource was replaced.
    """

    pulls: dict[tuple[str, str], pulumi.Resource]  # (host, model name) -> pull command
    installs: dict[str, pulumi.Resource]           # host -> the command that ships the script
    observed: dict[str, OllamaHostModels]          # host -> models found there
    routes_ready: list[pulumi.Resource]            # what a LiteLLM replica waits for

    def __init__(self, name: str, args: ModelFleetArgs, opts: Optional[pulumi.ResourceOptions] = None):
        super().__init__("litellm-gateway:models:ModelFleet", name, None, opts)
        settings = args.settings
        self.pulls, self.installs, self.observed = {}, {}, {}
        docker_child = pulumi.ResourceOptions(parent=self, provider=args.docker_provider)
        environment = settings.environment
        pull_key = tls.PrivateKey(f"{name}-pull-key", algorithm="ED25519",
                                  opts=pulumi.ResourceOptions(parent=self)) if settings.ssh_hosts() else None

        for host in settings.gpu_hosts:
            script = render_host_script(host.name, host.ollama_port, settings.model_pulls)
            if host.local_container is not None:
                container = self._local_ollama(name, settings, host, args.network_name, docker_child)
                transport = {"kind": "docker", "container": container.name, "docker_host": settings.docker.host}
                install, run_pull = self._docker_exec(name, settings, host, container, script)
            else:
                transport = pulumi.Output.secret({
                    "kind": "ssh", "host": host.name, "address": host.address,
                    "port": settings.ssh_port(host), "user": settings.ssh_user(host),
                    "private_key": args.ssh_private_key, "host_key": host.ssh.host_key or "",
                    "unpinned_host_key_waiver": settings.gpu_ssh.allow_unpinned_host_keys or "",
                })
                install, run_pull = self._ssh(name, settings, host, args.ssh_private_key, pull_key, script)
            self.installs[host.name] = install

            # One pull at a time on a host (disk and bandwidth); hosts pull in parallel.
            previous: list[pulumi.Resource] = [install]
            expected = {}
            for model_name in settings.models_pulled_by(host):
                model = settings.model(model_name)
                expected[model.name] = {"tag": model.ollama_tag, "digest": model.digest or ""}
                pull = run_pull(
                    f"{name}-pull-{host.name}-{slug(model.name)}",
                    pull_command(model.ollama_tag, model.digest, environment=environment, host=host.name),
                    # A new tag or pinned digest runs the pull again; nothing else does.
                    [model.ollama_tag, model.digest or ""],
                    pulumi.ResourceOptions(parent=self, depends_on=previous),
                )
                self.pulls[(host.name, model.name)] = pull
                previous = [pull]

            self.observed[host.name] = OllamaHostModels(
                f"{name}-observed-{host.name}", host=host.name, transport=transport, script=script,
                expected=expected, pull_timeout=settings.model_pulls.timeout_seconds,
                prune=settings.model_pulls.prune,
                opts=pulumi.ResourceOptions(parent=self, depends_on=previous),
            )

        # A host's reader waits for the last of its pulls, which waits for the one before: waiting for
        # the readers of the routed hosts is waiting for every pull they serve (and declares 1 dependency
        # per host instead of 1 per route: thousands fewer at fleet scale).
        routed_hosts = {h.name for _, h in settings.routes()}
        self.routes_ready = [self.observed[h] for h in sorted(routed_hosts)]
        self.models = {
            m.name: {"ollama_tag": m.ollama_tag, "rpm": m.rpm, "tpm": m.tpm,
                     "served_by": {h: ollama_api_base(settings.host(h).address, settings.host(h).ollama_port)
                                   for h in m.hosts}}
            for m in settings.models
        }
        self.register_outputs({
            "observed": {h: r.status for h, r in self.observed.items()},
        })

    def observed_models(self) -> dict:
        """The `gpuHostModels` output: what each host holds, as the last `up` or `refresh` read it."""
        return {host: {"status": r.status, "models": r.models, "missing": r.missing, "mismatched": r.mismatched}
                for host, r in self.observed.items()}

    def _ssh(self, name: str, settings: StackSettings, host: GpuHostSettings, operator_key, pull_key, script):
        """The install step (operator key) and a pull factory (the stack's pull key) for one SSH host."""
        address, port, user = host.address, settings.ssh_port(host), settings.ssh_user(host)
        environment = settings.environment
        authorized = pull_key.public_key_openssh.apply(
            lambda public: f"restrict {' '.join(public.split()[:2])} litellm-gateway-{environment}-pulls")
        install = command.remote.Command(
            f"{name}-install-{host.name}",
            connection=command.remote.ConnectionArgs(
                host=address, port=port, user=user, private_key=operator_key, host_key=host.ssh.host_key,
                dial_error_limit=settings.gpu_ssh.dial_error_limit,
            ),
            create=authorized.apply(lambda line: install_command(environment, line)),
            stdin=script,
            opts=pulumi.ResourceOptions(parent=self),
        )
        # Only where (address, port, user, pinned host key) and the stack's own key: stable inputs.
        pull_connection = command.remote.ConnectionArgs(
            host=address, port=port, user=user, private_key=pull_key.private_key_openssh, host_key=host.ssh.host_key,
        )

        def run_pull(resource_name, create, triggers, opts):
            return command.remote.Command(resource_name, connection=pull_connection, create=create,
                                          triggers=triggers, opts=opts)

        return install, run_pull

    def _docker_exec(self, name: str, settings: StackSettings, host: GpuHostSettings, container: docker.Container,
                     script: str):
        """dev: the same steps through `docker exec` into the local Ollama container."""
        environment = {"DOCKER_HOST": settings.docker.host}
        install_script = install_command(settings.environment)

        def in_container(shell: str, interactive: bool = False) -> pulumi.Output[str]:
            flags = "-i " if interactive else ""
            return container.name.apply(lambda c: f"docker exec {flags}{c} sh -c {shlex.quote(shell)}")

        install = command.local.Command(
            f"{name}-install-{host.name}",
            create=in_container(install_script, interactive=True),
            stdin=script,
            environment=environment,
            # A new container (its models stay on the volume) needs the script again.
            triggers=[container.id],
            opts=pulumi.ResourceOptions(parent=self, depends_on=[container]),
        )

        def run_pull(resource_name, create, triggers, opts):
            return command.local.Command(resource_name, create=in_container(create), environment=environment,
                                         triggers=triggers, opts=opts)

        return install, run_pull

    @staticmethod
    def _local_ollama(name: str, settings: StackSettings, host: GpuHostSettings, network_name,
                      docker_child: pulumi.ResourceOptions) -> docker.Container:
        """dev: the GPU host is a CPU Ollama container, reachable on the gateway network as host.address."""
        models_volume = docker.Volume(
            f"{name}-ollama-{host.name}-models", name=settings.names.ollama_volume(host.name), opts=docker_child,
        )
        return docker.Container(
            f"{name}-ollama-{host.name}",
            name=settings.names.ollama(host.name),
            image=pinned_image(f"{name}-ollama-{host.name}-image", host.local_container.image, docker_child).image_id,
            envs=[f"OLLAMA_HOST=0.0.0.0:{host.ollama_port}"],
            mounts=[docker.ContainerMountArgs(target="/root/.ollama", source=models_volume.name, type="volume")],
            healthcheck=healthcheck(["CMD", "ollama", "list"]),
            networks_advanced=on_network(network_name, host.address),
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
