"""Render redis.conf for the gateway's Redis (pure). The password is appended by the component as
a Pulumi secret (`with_password`), so this text holds no secret."""

from config.stack import StackSettings

CONFIG_PATH = "/usr/local/etc/redis/redis.conf"


def render_redis_conf(settings: StackSettings) -> str:
    return "\n".join([
        f"# Rendered by the {settings.resource_prefix()} Pulumi stack.",
        "port 6379",
        f"maxmemory {settings.redis.max_memory_mb}mb",
        # A cache: evict the least recently used keys rather than refuse writes.
        "maxmemory-policy allkeys-lru",
        "appendonly no",
        'save ""',
        "",
    ])


def with_password(config_text: str, password: str) -> str:
    quoted = password.replace("\\", "\\\\").replace('"', '\\"')
    return f'{config_text}requirepass "{quoted}"\n'
