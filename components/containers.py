"""Small helpers shared by the components that run containers."""

from __future__ import annotations

from typing import Optional

import pulumi
import pulumi_docker as docker

from config.settings import PROJECT, StackSettings


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


def secret_envs(values: dict[str, pulumi.Input[str]]) -> pulumi.Output[list[str]]:
    """A container's environment as one secret list: its values never reach state in plain text."""
    return pulumi.Output.secret(
        pulumi.Output.all(**values).apply(lambda resolved: [f"{k}={v}" for k, v in resolved.items()])
    )


def container_options(
    base: pulumi.ResourceOptions, depends_on: Optional[list[pulumi.Resource]] = None
) -> pulumi.ResourceOptions:
    # Containers have fixed names and host ports, so a replacement cannot start beside the old
    # container: remove the old one first (a short outage per container, see README).
    return pulumi.ResourceOptions.merge(
        base, pulumi.ResourceOptions(delete_before_replace=True, depends_on=depends_on)
    )


def healthcheck(test: list[str], start_period: str = "10s") -> docker.ContainerHealthcheckArgs:
    return docker.ContainerHealthcheckArgs(
        tests=test, interval="10s", timeout="5s", retries=6, start_period=start_period
    )
