"""How the stack reaches Vault: its own dev-mode container (dev) or an existing server (prod)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

import pulumi
import pulumi_docker as docker
import pulumi_random as random
import pulumi_vault as vault

from config.names import VAULT_PORT
from config.stack import StackSettings
from .containers import container_options, hardening, labels, pinned_image, secret_envs


@dataclass
class VaultAccessArgs:
    settings: StackSettings
    docker_provider: Optional[docker.Provider]   # for the dev-mode Vault container only (None on Kubernetes)


def vault_field(ref, key_path: str, vault_provider: vault.Provider, problem_of=None) -> pulumi.Output[str]:
    """One field of a KV v2 secret (`ref`: mount, path, field) as a secret Output; a missing field, or one
    `problem_of(value)` finds wrong, fails the run naming `key_path` (never the value)."""
    secret = vault.kv.get_secret_v2_output(mount=ref.mount, name=ref.path,
                                           opts=pulumi.InvokeOutputOptions(provider=vault_provider))
    return pulumi.Output.secret(secret.data.apply(lambda data: checked_field(data, ref, key_path, problem_of)))


def checked_field(data: Optional[dict], ref, key_path: str, problem_of=None) -> str:
    """The field `ref.field` of a Vault secret's data; a RunError naming `key_path` when it is missing or
    `problem_of(value)` finds it wrong (the message never shows the value)."""
    if not data or ref.field not in data:
        raise pulumi.RunError(f"litellm-gateway:{key_path}: Vault secret {ref.mount}/{ref.path} has no field "
                              f"'{ref.field}'")
    value = data[ref.field]
    problem = problem_of(value) if problem_of else None
    if problem:
        raise pulumi.RunError(f"litellm-gateway:{key_path}: the field '{ref.field}' of Vault secret "
                              f"{ref.mount}/{ref.path} {problem}")
    return value


class VaultAccess(pulumi.ComponentResource):
    """An explicit `vault.Provider` for the stack's secrets, plus the dev-mode server when asked for."""

    provider: vault.Provider
    address: pulumi.Output[str]
    dev_token: Optional[pulumi.Output[str]]  # the dev-mode Vault's root token (dev-container only)

    def __init__(self, name: str, args: VaultAccessArgs, opts: Optional[pulumi.ResourceOptions] = None):
        super().__init__("litellm-gateway:vault:VaultAccess", name, None, opts)
        settings = args.settings.vault
        child = pulumi.ResourceOptions(parent=self)

        self.dev_token = None
        if settings.mode == "dev-container":
            self.address, token = self._dev_server(name, args, child)
            self.dev_token = token
            self.provider = vault.Provider(
                f"{name}-provider",
                address=self.address,
                token=token,
                # The dev root token is used as is; there is no auth backend to mint children from.
                skip_child_token=True,
                opts=child,
            )
        else:
            # address None: the provider reads VAULT_ADDR; the token always comes from VAULT_TOKEN
            # (or the Vault CLI's token helper), never from stack config.
            self.address = pulumi.Output.from_input(settings.address or "")
            self.provider = vault.Provider(
                f"{name}-provider",
                address=settings.address,
                skip_tls_verify=settings.skip_tls_verify or None,
                opts=child,
            )
        self.register_outputs({"address": self.address})

    def _dev_server(self, name: str, args: VaultAccessArgs, child: pulumi.ResourceOptions):
        settings = args.settings
        docker_child = pulumi.ResourceOptions(parent=self, provider=args.docker_provider)
        root_token = random.RandomPassword(f"{name}-dev-root-token", length=32, special=False, opts=child)
        token = pulumi.Output.secret(root_token.result)
        image = pinned_image(f"{name}-dev-image", settings.vault.dev_image, docker_child)
        container = docker.Container(
            f"{name}-dev-server",
            name=settings.names.vault_dev,
            image=image.image_id,
            envs=secret_envs({"VAULT_DEV_ROOT_TOKEN_ID": token,
                              "VAULT_DEV_LISTEN_ADDRESS": f"0.0.0.0:{VAULT_PORT}"}),
            # Only the machine running `pulumi up` talks to it; never published beyond loopback.
            ports=[docker.ContainerPortArgs(internal=VAULT_PORT, external=settings.vault.dev_port, ip="127.0.0.1")],
            healthcheck=docker.ContainerHealthcheckArgs(
                tests=["CMD", "vault", "status", f"-address=http://127.0.0.1:{VAULT_PORT}"],
                interval="5s", timeout="3s", retries=10, start_period="5s",
            ),
            restart="unless-stopped",
            wait=True,
            wait_timeout=120,
            # The entrypoint gives the vault binary IPC_LOCK (setcap) and drops from root to the vault user.
            **hardening(settings, settings.containers.limits.vault_dev, cap_adds=("IPC_LOCK", "SETFCAP", "SETGID", "SETUID"),
                        no_new_privileges=False),
            labels=labels(settings, "vault-dev", waivers={
                "non-root-user": "the image's entrypoint drops from root to the vault user (dev only)",
                "read-only-rootfs": "dev-mode Vault writes its config at start (dev only)",
                "no-new-privileges": "the entrypoint grants the vault binary IPC_LOCK as a file capability, which "
                                     "no-new-privileges would void (dev only, published on 127.0.0.1 only)",
                "datastores-not-published": "dev-mode Vault must answer the Pulumi Vault provider on this machine; "
                                            "published on 127.0.0.1 only",
            }),
            opts=container_options(docker_child),
        )
        # Derived from the container so the provider is configured only once the server is healthy.
        address = container.id.apply(lambda _: f"http://127.0.0.1:{settings.vault.dev_port}")
        return address, token
