"""What only a dev stack may do (dev-mode Vault, plain-HTTP Vault, skipped TLS checks, local Ollama)."""

from __future__ import annotations

from ..stack import Parsed, is_dev_environment


def check_environment(parsed: Parsed, problems) -> None:
    """What only a dev stack may do."""
    environment = parsed.environment
    if environment is None or is_dev_environment(environment):
        return
    vault = parsed.vault
    if vault is not None:
        if vault.mode == "dev-container":
            problems.append(("vault.mode", f"dev-container keeps secrets in memory only; {environment} needs mode: external"))
        if vault.address and vault.address.startswith("http://"):
            problems.append(("vault.address", f"{vault.address!r} sends the Vault token in plain text; "
                             f"{environment} needs https:// (only dev stacks may use http://)"))
        if vault.skip_tls_verify:
            problems.append(("vault.skipTlsVerify", f"turns off TLS verification; only dev stacks may do that, not {environment}"))
    for i, host in enumerate(parsed.gpu_hosts or ()):
        if host.local_container is not None:
            problems.append((f"gpuHosts[{i}].localContainer", f"runs Ollama on the gateway's Docker engine, "
                             f"which only dev stacks do; {environment} needs real GPU hosts"))
