"""Small helpers shared by the components that run containers."""

from __future__ import annotations

from typing import Optional

import pulumi
import pulumi_docker as docker

from config.names import PROJECT
from config.sections.containers import Limits
from config.stack import StackSettings


def pinned_image(resource_name: str, reference: str, opts: pulumi.ResourceOptions) -> docker.RemoteImage:
    # Settings reject untagged and `latest` images, so the reference here is always pinned.
    return docker.RemoteImage(resource_name, name=reference, keep_locally=True, opts=opts)


def labels(settings: StackSettings, role: str, waivers: Optional[dict[str, str]] = None) -> list[docker.ContainerLabelArgs]:
    """Container labels; `waivers` maps a policy name to the reason it does not apply (see policy/)."""
    values = {
        "org.opencontainers.image.vendor": PROJECT,
        f"{PROJECT}.environment": settings.environment,
        f"{PROJECT}.role": role,
        **{f"{PROJECT}.policy-waiver.{policy}": reason for policy, reason in (waivers or {}).items()},
    }
    return [docker.ContainerLabelArgs(label=k, value=v) for k, v in values.items()]


NO_NEW_PRIVILEGES = "no-new-privileges:true"
# Why a container may keep what the hardening policy otherwise forbids (label values, see policy/).
UPLOADS_NEED_WRITABLE_ROOT = ("its configuration is uploaded before it starts, and Docker refuses uploads "
                              "into a read-only root filesystem")


def hardening(settings: StackSettings, limits: Limits, *, user: Optional[str] = None, read_only: bool = False,
              tmpfs: Optional[dict[str, str]] = None, cap_adds: tuple[str, ...] = (),
              stop_grace_seconds: int = 30, no_new_privileges: bool = True) -> dict:
    """Container arguments every container gets: no privilege escalation, no capabilities beyond
    `cap_adds`, rotated logs, memory and CPU limits, and time to stop cleanly when replaced."""
    containers = settings.containers
    hardened = dict(
        security_opts=[NO_NEW_PRIVILEGES] if no_new_privileges else [],
        capabilities=docker.ContainerCapabilitiesArgs(drops=["ALL"], adds=list(cap_adds) or None),
        log_driver="json-file",
        log_opts={"max-size": f"{containers.log_max_size_mb}m", "max-file": str(containers.log_max_files)},
        memory=limits.memory_mb,
        cpus=f"{limits.cpus:g}",
        # Docker's stop timeout (daemon restarts, `docker stop`) and the provider's on replace/destroy.
        stop_timeout=stop_grace_seconds,
        destroy_grace_seconds=stop_grace_seconds,
        read_only=read_only,
    )
    if user is not None:
        hardened["user"] = user
    if tmpfs:
        hardened["tmpfs"] = tmpfs
    return hardened


def ca_uploads(files: dict[str, str]) -> list[docker.ContainerUploadArgs]:
    """The external data stores' CA certificates (renderers.litellm_config.ca_files), readable by any user."""
    return [docker.ContainerUploadArgs(file=path, content=pem, permissions="0644") for path, pem in files.items()]


def on_network(network_name: pulumi.Input[str], *aliases: str) -> list[docker.ContainerNetworksAdvancedArgs]:
    """Attach to the gateway's private network, reachable there under `aliases` (Docker's DNS)."""
    return [docker.ContainerNetworksAdvancedArgs(name=network_name, aliases=list(aliases))]


def secret_envs(values: dict[str, pulumi.Input[str]]) -> pulumi.Output[list[str]]:
    """A container's environment as one secret list: its values never reach state in plain text."""
    return pulumi.Output.secret(
        pulumi.Output.all(**values).apply(lambda resolved: [f"{k}={v}" for k, v in resolved.items()])
    )


def container_options(
    base: pulumi.ResourceOptions, depends_on: Optional[list[pulumi.Resource]] = None
) -> pulumi.ResourceOptions:
    # Containers have fixed names and host ports, so a replacement cannot start beside the old
    # container: remove the old one first (a short outage per container, see docs/operations.md).
    return pulumi.ResourceOptions.merge(
        base, pulumi.ResourceOptions(delete_before_replace=True, depends_on=depends_on)
    )


def healthcheck(test: list[str], start_period: str = "10s") -> docker.ContainerHealthcheckArgs:
    return docker.ContainerHealthcheckArgs(
        tests=test, interval="10s", timeout="5s", retries=6, start_period=start_period
    )
