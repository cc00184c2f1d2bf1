"""The load balancer's TLS follows Mozilla's "intermediate" profile, checked by handshakes against
Debian's HAProxy with the rendered config: TLS 1.2 only with forward-secret AEAD ciphers, TLS 1.3,
and nothing older or weaker (no CBC, no SHA-1 MACs, no static RSA key exchange)."""

from __future__ import annotations

import socket
import ssl
import subprocess

import pytest

from config.parse import parse_settings
from gateway_helpers import own_dev_config
from renderers.haproxy import Listen, render_haproxy_config
from servers import free_port, haproxy_server

ACCEPTED = ["ECDHE-RSA-AES128-GCM-SHA256", "ECDHE-RSA-AES256-GCM-SHA384", "ECDHE-RSA-CHACHA20-POLY1305"]
REFUSED = ["AES128-SHA", "AES256-SHA256", "ECDHE-RSA-AES128-SHA", "ECDHE-RSA-AES256-SHA384", "AES128-GCM-SHA256"]


@pytest.fixture(scope="module")
def gateway(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("tls")
    key, cert = tmp / "key.pem", tmp / "cert.pem"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", str(key), "-out", str(cert),
                    "-days", "2", "-subj", "/CN=gateway.example"], check=True, capture_output=True)
    (tmp / "gateway.pem").write_text(cert.read_text() + key.read_text())
    raw = own_dev_config()
    raw["gateway"] = {**raw["gateway"], "loadBalancer": {"tls": {"enabled": True, "vault": {"path": "tls/gw"}}}}
    https, http, stats = free_port(), free_port(), free_port()
    listen = Listen(https=f"127.0.0.1:{https}", http=f"127.0.0.1:{http}", stats=f"127.0.0.1:{stats}",
                    cert_path=str(tmp / "gateway.pem"))
    with haproxy_server(render_haproxy_config(parse_settings(raw), listen), tmp, f"http://127.0.0.1:{stats}/healthz"):
        yield https


def handshake(port: int, cipher: str | None = None, version: ssl.TLSVersion = ssl.TLSVersion.TLSv1_2) -> str:
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.check_hostname, context.verify_mode = False, ssl.CERT_NONE
    context.minimum_version = context.maximum_version = version
    if cipher:
        context.set_ciphers(cipher + ":@SECLEVEL=0")
    with socket.create_connection(("127.0.0.1", port), timeout=5) as raw:
        with context.wrap_socket(raw) as tls:
            return tls.cipher()[0]


@pytest.mark.parametrize("cipher", ACCEPTED)
def test_forward_secret_aead_ciphers_are_accepted_on_tls12(gateway, cipher):
    assert handshake(gateway, cipher) == cipher


@pytest.mark.parametrize("cipher", REFUSED)
def test_cbc_sha1_and_static_rsa_ciphers_are_refused(gateway, cipher):
    with pytest.raises(ssl.SSLError):
        handshake(gateway, cipher)


def test_tls13_is_accepted(gateway):
    assert handshake(gateway, version=ssl.TLSVersion.TLSv1_3).startswith("TLS_")
