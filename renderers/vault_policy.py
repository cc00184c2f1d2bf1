"""Render the read-only Vault policy for the stack's KV v2 secret (pure)."""


def render_read_policy(mount: str, path: str) -> str:
    # KV v2 serves data under <mount>/data/<path> and version metadata under <mount>/metadata/<path>.
    return (
        f'# Read the LiteLLM gateway secret at {mount}/{path} (KV v2), nothing else.\n'
        f'path "{mount}/data/{path}" {{\n  capabilities = ["read"]\n}}\n\n'
        f'path "{mount}/metadata/{path}" {{\n  capabilities = ["read"]\n}}\n'
    )
