"""The annotated value types every settings section uses, with their checks (pydantic validators
built on the pure checks in config.values). A field's type says what it accepts; its message says
what was wrong, in words, with the value.
"""

from __future__ import annotations

import re
from typing import Annotated, Any

from pydantic import AfterValidator, Field

from .values import (
    PG_IDENTIFIER, UNIX_USER, ca_certificate_problem, control_character_problem, host_key_problem, host_path_problem, host_problem, ip_or_none,
    split_host_port,
)

_NAME = r"[a-z0-9]([a-z0-9-]{0,38}[a-z0-9])?"
_NAME_HELP = "lowercase letters, digits and '-', 1-40 characters, not starting or ending with '-'"
_MODEL_NAME = r"[A-Za-z0-9][A-Za-z0-9._:/-]{0,63}"
_MODEL_NAME_HELP = "letters, digits and . _ : / -, up to 64 characters, starting with a letter or digit"
# Ollama's [registry[:port]/][namespace/]model[:tag]
_OLLAMA_TAG = r"[A-Za-z0-9][A-Za-z0-9._-]*(:[0-9]{1,5})?(/[A-Za-z0-9][A-Za-z0-9._-]*)*(:[A-Za-z0-9_][A-Za-z0-9._-]{0,127})?"
_VAULT_PATH = r"[A-Za-z0-9_.-]+(/[A-Za-z0-9_.-]+)*"
# Vault's built-in policies: `default` is attached to every token, `root` can do anything.
VAULT_BUILTIN_POLICIES = frozenset({"default", "root"})
# LiteLLM's duration strings: seconds, minutes, hours, days, months ("30d", "1mo").
_DURATION = r"[1-9][0-9]{0,5}(s|m|h|d|mo)"
_ACCESS_ID = r"[a-z0-9]([a-z0-9._-]{0,62}[a-z0-9])?"
MAX_MEMORY_MB = 1024 * 1024  # 1 TiB
MAX_CPUS = 512


def check(test, message: str):
    """A pydantic validator: `message` (with {value!r}) when `test(value)` is false."""
    def validate(value):
        if not test(value):
            raise ValueError(message.format(value=value))
        return value
    return AfterValidator(validate)


def full(pattern: str, message: str):
    compiled = re.compile(pattern)
    return check(lambda value: compiled.fullmatch(value) is not None, message)


def no_problem(problem_of):
    def validate(value):
        problem = problem_of(value)
        if problem:
            raise ValueError(problem)
        return value
    return AfterValidator(validate)


Name = Annotated[str, full(_NAME, "{value!r} is not a valid name: " + _NAME_HELP)]
ModelName = Annotated[str, full(_MODEL_NAME, "{value!r} is not a valid model name: " + _MODEL_NAME_HELP)]
OllamaTag = Annotated[str, full(_OLLAMA_TAG, "{value!r} is not an Ollama model name ([registry/][namespace/]model[:tag])")]
VaultPath = Annotated[str, full(_VAULT_PATH, "{value!r} is not a valid Vault path (letters, digits, _ . -, "
                                             "segments separated by '/', no leading or trailing '/')"),
                      check(lambda v: not {".", ".."} & set(v.split("/")),
                            "{value!r} has a '.' or '..' segment; Vault would resolve it to another path")]
# Vault's own mounts: a KV mount of the stack's is never one of them.
VAULT_SYSTEM_MOUNTS = frozenset({"sys", "auth", "identity", "cubbyhole"})
VaultMount = Annotated[VaultPath, check(lambda v: v.split("/")[0] not in VAULT_SYSTEM_MOUNTS,
                                        "{value!r} is one of Vault's own mounts (sys, auth, identity, cubbyhole); "
                                        "name the KV v2 mount of the stack's secrets")]
VaultPolicyName = Annotated[str, full(r"[A-Za-z0-9_.-]{1,128}", "{value!r} is not a valid Vault policy name"),
                            check(lambda v: v not in VAULT_BUILTIN_POLICIES,
                                  "{value!r} is one of Vault's built-in policies; name a policy of this stack's own")]
FieldName = Annotated[str, full(r"[A-Za-z0-9_.-]{1,128}", "{value!r} is not a valid field name")]
HostAddress = Annotated[str, no_problem(host_problem)]
IpAddress = Annotated[str, check(lambda v: ip_or_none(v) is not None, "{value!r} is not an IP address")]
UnixUser = Annotated[str, check(lambda v: UNIX_USER.fullmatch(v) is not None,
                                "{value!r} is not a user name (lowercase letters, digits, _ . -, up to 32)")]
PgIdentifier = Annotated[str, check(lambda v: PG_IDENTIFIER.fullmatch(v) is not None,
                                    "{value!r} must be lowercase letters, digits and '_', starting with a letter "
                                    "or '_', up to 63 characters")]
TimeOfDay = Annotated[str, full(r"([01][0-9]|2[0-3]):[0-5][0-9]", "{value!r} is not a time of day as HH:MM (UTC)")]
VolumeName = Annotated[str, full(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,127}", "{value!r} is not a Docker volume name")]
HostKey = Annotated[str, no_problem(host_key_problem)]
HostPath = Annotated[str, no_problem(host_path_problem)]
HostPortText = Annotated[str, check(lambda v: split_host_port(v) is not None,
                                    "{value!r} must be host:port ([address]:port for IPv6)")]
DockerHost = Annotated[str, full(r"(unix|ssh|tcp)://[^\s]+", "{value!r} must start with unix://, ssh:// or tcp://")]
HttpUrl = Annotated[str, full(r"https?://[^\s/]+(/[^\s]*)?", "{value!r} must be an http:// or https:// URL")]
VaultAddress = HttpUrl
Text = Annotated[str, no_problem(control_character_problem)]
CaCertificate = Annotated[str, no_problem(ca_certificate_problem)]
# Kubernetes names: a DNS label (namespaces, Services), a DNS subdomain (most objects, classes), and a label or
# annotation key ([prefix/]name: a DNS subdomain prefix, a name of up to 63 characters).
_DNS_LABEL = r"[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?"
_DNS_SUBDOMAIN = rf"{_DNS_LABEL}(\.{_DNS_LABEL})*"
DnsLabel = Annotated[str, full(_DNS_LABEL, "{value!r} is not a Kubernetes name (a DNS label: lowercase letters, digits "
                               "and '-', up to 63 characters, starting and ending with a letter or digit)")]
DnsSubdomain = Annotated[str, full(_DNS_SUBDOMAIN, "{value!r} is not a Kubernetes name (a DNS subdomain: DNS labels "
                                   "joined by '.', up to 253 characters)"),
                         check(lambda v: len(v) <= 253, "{value!r} is longer than 253 characters")]
LabelKey = Annotated[str, check(lambda v: len(v.rpartition("/")[0]) <= 253, "{value!r} has a prefix longer than 253 characters"),
                     full(rf"({_DNS_SUBDOMAIN}/)?[A-Za-z0-9]([A-Za-z0-9_.-]{{0,61}}[A-Za-z0-9])?",
                               "{value!r} is not a Kubernetes label or annotation key ([prefix/]name, the name up to "
                               "63 letters, digits, '-', '_', '.')")]
OllamaDigest = Annotated[str, full(r"(sha256:)?[0-9a-f]{12,64}", "{value!r} is not an Ollama model ID (12 to 64 hex characters)")]

# The escape hatch's keys (LiteLLM's config.yaml keys are snake_case identifiers) and values (any YAML).
ExtraKey = Annotated[str, Field(pattern=r"^[a-z][a-z0-9_]{0,63}$")]
Extra = dict[ExtraKey, Any]

# A named waiver: why a safe default does not apply here (written for the reviewer of the stack file).
Waiver = Annotated[str, Field(min_length=10, max_length=300), no_problem(control_character_problem)]

# The access section's values.
# Longer than this, LiteLLM cannot compute an expiry (its datetime overflows): 100 years.
MAX_DURATION_SECONDS = 100 * 365 * 86400


def duration_seconds(value: str) -> int:
    """LiteLLM's duration string in seconds (a month counts 30 days)."""
    unit = "mo" if value.endswith("mo") else value[-1]
    return int(value[: -len(unit)]) * {"s": 1, "m": 60, "h": 3600, "d": 86400, "mo": 30 * 86400}[unit]


Duration = Annotated[str, full(_DURATION, "{value!r} is not a duration like 30s, 15m, 12h, 30d or 1mo"),
                     check(lambda v: duration_seconds(v) <= MAX_DURATION_SECONDS,
                           "{value!r} is longer than 100 years; LiteLLM cannot compute such an expiry")]
AccessId = Annotated[str, full(_ACCESS_ID, "{value!r} must be lowercase letters, digits and . _ -, 1-64 characters, "
                                           "starting and ending with a letter or digit")]
Email = Annotated[str, full(r"[^@\s]{1,64}@[A-Za-z0-9.-]{1,253}\.[A-Za-z]{2,63}", "{value!r} is not an e-mail address")]
Ref = Text  # a name that must match a declared model, team or user (checked across sections)
Count = Annotated[int, Field(ge=1, le=10_000_000)]
Budget = Annotated[float, Field(gt=0, le=1_000_000_000)]
