"""Checks and normalisations for single config values (pure, no Pulumi imports).

Every pattern here is matched with `re.fullmatch`: `re.match(...$)` accepts a trailing newline,
which is how `"03:00\\n"` once reached a rendered script.
"""

from __future__ import annotations

import base64
import ipaddress
import posixpath
import re
import struct
from typing import Optional

CONTROL_CHARACTERS = re.compile(r"[\x00-\x1f\x7f]")

_HOST_LABEL = r"[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?"
_HOSTNAME = re.compile(rf"{_HOST_LABEL}(\.{_HOST_LABEL})*\.?")

# Linux user names as useradd accepts them by default, and PostgreSQL identifiers that need no quoting.
UNIX_USER = re.compile(r"[a-z_][a-z0-9_.-]{0,31}")
PG_IDENTIFIER = re.compile(r"[a-z_][a-z0-9_]{0,62}")

# Host key types paramiko (the drift reader) and pulumi-command can both check. ssh-dss is gone
# from OpenSSH and paramiko 4+.
HOST_KEY_TYPES = ("ssh-ed25519", "ssh-rsa", "ecdsa-sha2-nistp256", "ecdsa-sha2-nistp384", "ecdsa-sha2-nistp521")

# Directories whose contents a bind mount of the backup directory would expose or overwrite.
SYSTEM_DIRECTORIES = frozenset({
    "/", "/bin", "/boot", "/dev", "/etc", "/home", "/lib", "/lib32", "/lib64", "/opt", "/proc", "/root",
    "/run", "/sbin", "/srv", "/sys", "/tmp", "/usr", "/var", "/var/lib", "/var/lib/docker", "/var/run",
})


def control_character_problem(value: str) -> Optional[str]:
    found = CONTROL_CHARACTERS.search(value)
    if found:
        return f"contains the control character {found.group()!r} at position {found.start()}"
    return None


def ip_or_none(text: str) -> Optional[ipaddress.IPv4Address | ipaddress.IPv6Address]:
    try:
        address = ipaddress.ip_address(text)
    except ValueError:
        return None
    # ::ffff:a.b.c.d is a.b.c.d on a dual-stack socket: judge it as the IPv4 address it is.
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return address.ipv4_mapped
    return address


def endpoint_identity(address: str, port: int) -> str:
    """`address:port` as one server: an IP address in its canonical form (`0:0::1` is `::1`, `::ffff:10.0.0.1`
    is `10.0.0.1`), a DNS name in lowercase without its root dot, so one endpoint listed twice is seen."""
    ip = ip_or_none(address)
    return host_port(str(ip) if ip is not None else address.lower().rstrip("."), port)


def is_hostname(text: str) -> bool:
    return len(text) <= 253 and _HOSTNAME.fullmatch(text) is not None and not text.replace(".", "").isdigit()


def host_problem(text: str) -> Optional[str]:
    """Why `text` is neither an IP address nor a DNS name, or None."""
    if ip_or_none(text) is not None:
        return None
    if is_hostname(text):
        return None
    return f"'{text}' is not an IP address or a DNS host name"


def host_for_url(address: str) -> str:
    """The host part of a URL or of host:port: IPv6 addresses in brackets."""
    try:
        if isinstance(ipaddress.ip_address(address), ipaddress.IPv6Address):
            return f"[{address}]"
    except ValueError:
        pass
    return address


def host_port(address: str, port: int) -> str:
    return f"{host_for_url(address)}:{port}"


def split_host_port(text: str) -> Optional[tuple[str, int]]:
    """('host', port) from "host:port" or "[v6]:port"; None when it is not one."""
    match = re.fullmatch(r"\[(?P<v6>[0-9A-Fa-f:.]+)\]:(?P<port>[0-9]{1,5})|(?P<host>[^:\[\]]+):(?P<port2>[0-9]{1,5})", text)
    if not match:
        return None
    host = match["v6"] or match["host"]
    port = int(match["port"] or match["port2"])
    if not 0 < port < 65536 or host_problem(host) is not None:
        return None
    if match["v6"] and ":" not in host:
        return None  # brackets are for IPv6 addresses only
    return host, port


def duplicates(values: list[str]) -> list[str]:
    """The values that occur more than once, each once, in first-repeat order."""
    seen, dups = set(), []
    for value in values:
        if value in seen and value not in dups:
            dups.append(value)
        seen.add(value)
    return dups


def slug(text: str) -> str:
    """The part of a Pulumi resource name derived from a user's name (lowercase, [a-z0-9-])."""
    return re.sub(r"[^a-z0-9-]+", "-", text.lower()).strip("-")


def full_ollama_tag(tag: str) -> str:
    """`qwen2.5` and `qwen2.5:latest` are the same model to Ollama (names are case-insensitive)."""
    last = tag.rsplit("/", 1)[-1]
    return (tag if ":" in last else f"{tag}:latest").lower()


def host_key_problem(text: str) -> Optional[str]:
    """Why `text` is not an OpenSSH public host key line paramiko can use, or None."""
    parts = text.split()
    if len(parts) < 2:
        return "expected '<type> <base64 key>' (one line of `ssh-keyscan <host>` without the host name)"
    key_type, key_b64 = parts[0], parts[1]
    if key_type not in HOST_KEY_TYPES and len(parts) >= 3 and parts[1] in HOST_KEY_TYPES:
        return (f"starts with the host name '{key_type}' (a line of `ssh-keyscan` output): leave it out and give "
                f"the rest, '{parts[1]} {parts[2][:12]}...'")
    if key_type not in HOST_KEY_TYPES:
        return f"key type '{key_type}' is not supported (use one of: {', '.join(HOST_KEY_TYPES)})"
    try:
        blob = base64.b64decode(key_b64, validate=True)
        (length,) = struct.unpack(">I", blob[:4])
        embedded = blob[4:4 + length].decode()
    except (ValueError, struct.error, UnicodeDecodeError):
        return "the key is not valid base64 of an SSH public key"
    if embedded != key_type:
        return f"the key's data says '{embedded}', the line says '{key_type}'"
    return None


# Trees whose every directory belongs to the system, a user's login or the container engine.
SYSTEM_TREES = ("/etc", "/root", "/proc", "/sys", "/dev", "/boot", "/run", "/var/run", "/usr", "/bin", "/sbin",
                "/lib", "/lib32", "/lib64", "/var/lib/docker", "/var/lib/containerd", "/snap", "/tmp")


def host_path_problem(path: str) -> Optional[str]:
    if not path.startswith("/"):
        return f"'{path}' must be an absolute path on the Docker host"
    if posixpath.normpath(path) != path or "//" in path:
        return f"'{path}' is not a normalised path (no '..', '.', '//' or trailing '/')"
    if path in SYSTEM_DIRECTORIES:
        return f"'{path}' is a system directory; use a directory of its own (for example /srv/backups/litellm)"
    tree = next((t for t in SYSTEM_TREES if path.startswith(t + "/")), None)
    if tree is not None:
        return f"'{path}' is inside {tree}, which belongs to the system or the container engine; use a directory " \
               "of its own (for example /srv/backups/litellm-gateway/<environment>)"
    if path.count("/") == 2 and path.startswith("/home/"):
        return f"'{path}' is a user's home directory; use a directory of its own inside it or under /srv"
    return None


def local_url(bind_address: str, port: int) -> str:
    """The URL a client on the Docker host uses for a port published on `bind_address`."""
    address = ip_or_none(bind_address)
    host = "127.0.0.1" if address is None or address.is_unspecified else str(address)
    return f"http://{host_port(host, port)}"


def postgres_url(user: str, password: str, host: str, port: int, database: str, query: str = "") -> str:
    """A libpq URL with user and password percent-encoded (a '#', '/' or '@' in them would cut it)."""
    from urllib.parse import quote

    url = f"postgresql://{quote(user, safe='')}:{quote(password, safe='')}@{host_port(host, port)}/{quote(database, safe='')}"
    return f"{url}?{query}" if query else url


def ca_certificate_problem(text: str) -> Optional[str]:
    """None when `text` is one or more PEM CA certificates OpenSSL can load (and no private key), else why not."""
    import ssl

    if "PRIVATE KEY" in text:
        return "holds a private key; give only the CA's certificate (public), never a key"
    if "-----BEGIN CERTIFICATE-----" not in text:
        return "is not a PEM certificate (expected '-----BEGIN CERTIFICATE-----'): give the certificate of the CA " \
               "that signed the server's certificate"
    try:
        ssl.create_default_context(cadata=text)
    except (ssl.SSLError, ValueError) as error:
        return f"is not a certificate OpenSSL can load ({getattr(error, 'reason', None) or error})"
    return None


# Query parameters an external database URL must not carry: postgres.external.sslmode and caCertificate set them
# for every consumer (LiteLLM's Prisma engine, pg_dump, the exporter), each in its own dialect.
URL_TLS_PARAMETERS = ("sslmode", "sslrootcert", "sslcert", "sslkey", "sslaccept", "sslnegotiation")
# ... nor name the server, user or database in its query: libpq would take them over the URL's own, and pg_dump
# (through libpq's environment) would reach another server or database than LiteLLM.
URL_TARGET_PARAMETERS = ("host", "hostaddr", "port", "user", "password", "dbname", "service", "passfile")


def postgres_url_problem(url: str) -> Optional[str]:
    """None when `url` is a usable libpq URL for an external database, else what is wrong (never the URL itself,
    which holds the password)."""
    from urllib.parse import parse_qsl, urlsplit

    try:
        parts = urlsplit(url)
        if "," in parts.netloc.rpartition("@")[2]:   # in the host part only: a password may hold a comma
            return "names several hosts; give one (the primary's endpoint) and the replica as postgresReadReplicaUrl"
        port = parts.port
    except ValueError as error:
        return f"is not a valid URL ({'the port' if 'port' in str(error).lower() else 'its address'} cannot be read)"
    if parts.scheme not in ("postgresql", "postgres"):
        return "must start with postgresql:// (LiteLLM's database is PostgreSQL)"
    if not parts.hostname:
        return "names no host (postgresql://user:password@host:5432/database)"
    if port == 0:
        return "has port 0"
    if not parts.username:
        return "names no user (postgresql://user:password@host:5432/database)"
    if not parts.path.strip("/"):
        return "names no database (postgresql://user:password@host:5432/database)"
    keys = {key for key, _ in parse_qsl(parts.query, keep_blank_values=True)}
    given = sorted(keys & set(URL_TLS_PARAMETERS))
    if given:
        return f"carries {', '.join(given)}: remove it; postgres.external.sslmode and caCertificate set TLS"
    given = sorted(keys & set(URL_TARGET_PARAMETERS))
    if given:
        return f"carries {', '.join(given)} as a parameter: put the host, port, user and database in the URL itself"
    if control_character_problem(url) or any(c.isspace() for c in url):
        return "contains white space or control characters"
    return None


def with_query(url: str, **parameters: str) -> str:
    """`url` with the query parameters added (the URL has none of them: postgres_url_problem checks that)."""
    from urllib.parse import urlencode, urlsplit, urlunsplit

    parts = urlsplit(url)
    query = "&".join(q for q in (parts.query, urlencode(parameters, safe="/")) if q)
    return urlunsplit(parts._replace(query=query))


# libpq's environment variable for each URL parameter pg_dump may need (the rest are Prisma's, for LiteLLM only).
LIBPQ_ENVIRONMENT = {"sslmode": "PGSSLMODE", "sslrootcert": "PGSSLROOTCERT", "connect_timeout": "PGCONNECT_TIMEOUT",
                     "application_name": "PGAPPNAME", "options": "PGOPTIONS",
                     "target_session_attrs": "PGTARGETSESSIONATTRS"}
PRISMA_ONLY_PARAMETERS = ("schema", "connection_limit", "pool_timeout", "pgbouncer", "socket_timeout",
                          "max_idle_connection_lifetime", "statement_cache_size")


def libpq_environment(url: str) -> dict[str, str]:
    """libpq's environment (PGHOST, PGPORT, PGUSER, PGPASSWORD, PGDATABASE, PGSSLMODE, ...) for a database URL, so
    a client (pg_dump) connects without the URL, and its password, on a command line."""
    from urllib.parse import parse_qsl, unquote, urlsplit

    parts = urlsplit(url)
    environment = {"PGHOST": parts.hostname or "", "PGPORT": str(parts.port or 5432),
                   "PGUSER": unquote(parts.username or ""), "PGPASSWORD": unquote(parts.password or ""),
                   "PGDATABASE": unquote(parts.path.lstrip("/"))}
    for key, value in parse_qsl(parts.query, keep_blank_values=True):
        if key in LIBPQ_ENVIRONMENT:
            environment[LIBPQ_ENVIRONMENT[key]] = value
    return environment


def libpq_url(url: str) -> str:
    """`url` without the parameters only Prisma knows (libpq and lib/pq refuse or forward them to the server)."""
    from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

    parts = urlsplit(url)
    kept = [(k, v) for k, v in parse_qsl(parts.query, keep_blank_values=True) if k not in PRISMA_ONLY_PARAMETERS]
    return urlunsplit(parts._replace(query=urlencode(kept, safe="/")))
