"""The encryption of the Vault secret's export: AES-256-CBC with PBKDF2 by `openssl enc`, the key
from BACKUP_PASSPHRASE (handed to openssl by the variable's name, never on its command line)."""

from __future__ import annotations

import os
import shutil
import subprocess

from .errors import Refused

PASSPHRASE = "BACKUP_PASSPHRASE"


def check_passphrase() -> None:
    if not os.environ.get(PASSPHRASE):
        raise Refused(f"{PASSPHRASE} is not set: it encrypts (and decrypts) the Vault secret export")


def encrypt(data: bytes) -> bytes:
    return _openssl(data, decrypt=False)


def decrypt(data: bytes) -> bytes:
    """Refused when the passphrase is not the one the data was encrypted with."""
    return _openssl(data, decrypt=True)


def _openssl(data: bytes, decrypt: bool) -> bytes:
    check_passphrase()
    if shutil.which("openssl") is None:
        raise Refused("openssl is not installed")
    args = ["openssl", "enc", "-aes-256-cbc", "-pbkdf2", "-iter", "600000", "-salt", "-pass", f"env:{PASSPHRASE}"]
    done = subprocess.run(args + (["-d"] if decrypt else []), input=data, capture_output=True)
    if done.returncode != 0:
        raise Refused("cannot decrypt the Vault export (wrong BACKUP_PASSPHRASE?)" if decrypt
                      else f"openssl failed: {done.stderr.decode(errors='replace')}")
    return done.stdout
