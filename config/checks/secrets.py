"""Secret config values the user supplied: set as secrets, of the right shape (never shown)."""

from __future__ import annotations

from ..secret_keys import DATABASE_URL_KEYS, MIN_MASTER_KEY_RANDOM_CHARS, NOT_GENERATED, PEM_KEYS, PUBLICLY_KNOWN_MASTER_KEYS
from ..values import postgres_url_problem


def check_supplied_secret(key: str, value: str, is_secret: bool, problems, generated_here: bool = True) -> None:
    """`generated_here`: the stack would generate this value (so it holds it to the generated ones' length);
    False for an external Redis' password, which its owner chose."""
    if not is_secret:
        problems.append(
            (key, f"is stored in plain text; set it with `pulumi config set --secret {key}` (it asks for the value; "
                  "or pipe it in), never with the value on the command line")
        )
    if not value:
        problems.append((key, "is empty; set it, or remove it" + ("" if key in NOT_GENERATED else " to have one generated")))
        return
    # A key file has line breaks; no other secret may have control characters (a newline in the
    # Redis password stops Redis from starting). The message never shows the value.
    allowed = "\n\r" if key in PEM_KEYS else ""
    bad = sorted({c for c in value if (ord(c) < 32 or ord(c) == 127) and c not in allowed})
    if bad:
        problems.append((key, f"contains control characters ({', '.join(repr(c) for c in bad)}); "
                              "set it again without them (`pulumi config set --secret` takes the value as given)"))
    if key == "masterKey":
        if value in PUBLICLY_KNOWN_MASTER_KEYS:
            problems.append((key, "is the publicly known example key; LiteLLM refuses to start with it"))
        elif not value.startswith("sk-"):
            problems.append((key, "must start with 'sk-'"))
        elif len(value) - 3 < MIN_MASTER_KEY_RANDOM_CHARS:
            problems.append((key, f"is too short: use 'sk-' and at least {MIN_MASTER_KEY_RANDOM_CHARS} random characters"))
        elif any(c.isspace() for c in value):
            problems.append((key, "contains white space; clients send it in an Authorization header"))
    elif key == "gatewayTlsCertificate":
        if "-----BEGIN CERTIFICATE-----" not in value:
            problems.append((key, "is not a PEM certificate (chain); set it with "
                                  "`pulumi config set --secret gatewayTlsCertificate < fullchain.pem`"))
    elif key == "gatewayTlsKey":
        if "-----BEGIN" not in value or "PRIVATE KEY-----" not in value:
            problems.append((key, "is not a PEM private key; set it with `pulumi config set --secret gatewayTlsKey < key.pem`"))
    elif key == "gpuSshPrivateKey":
        if "-----BEGIN" not in value or "PRIVATE KEY-----" not in value:
            problems.append((key, "is not a PEM/OpenSSH private key (expected '-----BEGIN ... PRIVATE KEY-----'); "
                                  "set it with `pulumi config set --secret gpuSshPrivateKey < ~/.ssh/id_ed25519`"))
    elif key in DATABASE_URL_KEYS:
        problem = postgres_url_problem(value)
        if problem:
            problems.append((key, problem))
    elif generated_here and len(value) < 16:
        problems.append((key, "is too short: use at least 16 random characters"))
