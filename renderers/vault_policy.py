"""Render the Vault policies of a stack (pure): the read-only policy the stack declares for its
secret, and the policy the token that runs `pulumi up` needs (an example an operator loads into
Vault; tests/unit/test_vault_policy.py checks it covers every path the program writes and reads)."""

from __future__ import annotations

from config.stack import StackSettings


def render_read_policy(mount: str, path: str) -> str:
    # KV v2 serves data under <mount>/data/<path> and version metadata under <mount>/metadata/<path>.
    return (
        f'# Read the LiteLLM gateway secret at {mount}/{path} (KV v2), nothing else.\n'
        f'path "{mount}/data/{path}" {{\n  capabilities = ["read"]\n}}\n\n'
        f'path "{mount}/metadata/{path}" {{\n  capabilities = ["read"]\n}}\n'
    )


def _rule(path: str, capabilities: list[str], why: str) -> str:
    quoted = ", ".join(f'"{c}"' for c in capabilities)
    return f'# {why}\npath "{path}" {{\n  capabilities = [{quoted}]\n}}\n'


WRITE = ["create", "read", "update", "delete"]


def deployer_rules(settings: StackSettings) -> list[tuple[str, list[str], str]]:
    """(path, capabilities, why) of everything the deploying token does in Vault for this stack."""
    mount, path = settings.vault.mount, settings.vault_path
    names = settings.names
    rules = [
        (f"{mount}/data/{path}", WRITE, "the stack's secret: master key, salt key, passwords (KV v2 data)"),
        (f"{mount}/metadata/{path}", ["read", "update", "delete"], "its versions (refresh reads them; destroy deletes them)"),
        (f"{mount}/data/{path}/keys/*", WRITE, "one secret per API key the stack manages (access.keys)"),
        (f"{mount}/metadata/{path}/keys/*", ["read", "update", "delete"], "their versions"),
        (f"sys/policies/acl/{settings.vault_policy_name}", WRITE, "the stack's read policy for its secret"),
        (f"sys/policies/acl/{names.key_policy('*')}", WRITE, "one read policy per API key"),
        ("auth/token/create", ["update"],
         "the Vault provider works with a short-lived child token of VAULT_TOKEN (its default)"),
        ("auth/token/lookup-self", ["read"], "the provider and scripts/restore check the token first"),
        ("sys/capabilities-self", ["update"], "scripts/restore and adopt check they may write before they do"),
    ]
    ssh = settings.gpu_ssh.private_key_vault
    if ssh is not None:
        rules.append((f"{ssh.mount}/data/{ssh.path}", ["read"], "the GPU hosts' SSH key (gpuSsh.privateKeyVault)"))
    tls = settings.gateway.load_balancer.tls
    if tls.enabled and tls.vault is not None and not settings.on_kubernetes:
        rules.append((f"{tls.vault.mount}/data/{tls.vault.path}", ["read"],
                      "the load balancer's certificate and key (gateway.loadBalancer.tls.vault)"))
    ingress = settings.kubernetes.ingress
    if settings.on_kubernetes and ingress.enabled and ingress.tls.enabled and ingress.tls.vault is not None:
        rules.append((f"{ingress.tls.vault.mount}/data/{ingress.tls.vault.path}", ["read"],
                      "the Ingress's certificate and key (kubernetes.ingress.tls.vault)"))
    external = settings.postgres.external
    for ref, why in ((external.url_vault, "the external database's URL (postgres.external.urlVault)"),
                     (external.read_replica_url_vault,
                      "the read replica's URL (postgres.external.readReplicaUrlVault)")):
        if settings.postgres.mode == "external" and ref is not None:
            rules.append((f"{ref.mount}/data/{ref.path}", ["read"], why))
    redis = settings.redis.external.password_vault
    if settings.redis.mode == "external" and redis is not None:
        rules.append((f"{redis.mount}/data/{redis.path}", ["read"],
                      "the external Redis user's password (redis.external.passwordVault)"))
    # One rule per path: two settings may name fields of the same secret.
    merged: dict[str, tuple[list[str], list[str]]] = {}
    for path, capabilities, why in rules:
        caps, whys = merged.setdefault(path, ([], []))
        caps.extend(c for c in capabilities if c not in caps)
        whys.append(why)
    return [(path, caps, "; ".join(whys)) for path, (caps, whys) in merged.items()]


def render_deployer_policy(settings: StackSettings) -> str:
    header = (f"# What the VAULT_TOKEN that runs `pulumi up`, `refresh` and `destroy` for stack "
              f"'{settings.environment}' needs, nothing more.\n# Load it: vault policy write "
              f"{settings.names.prefix}-deployer <this file>; then vault token create -policy="
              f"{settings.names.prefix}-deployer\n\n")
    return header + "\n".join(_rule(p, c, why) for p, c, why in deployer_rules(settings))
