"""Request bodies are bounded at the load balancer, before a replica reads them.

LiteLLM reads a whole request body before it checks the key (measured in the security review:
a 192 MiB body without a key grew a replica by 570 MiB before the 401), so Debian's HAProxy with
the rendered config must refuse what is too large, and what carries no credentials beyond a small
size, without passing a byte of it on. Behind it a test stand-in for a replica (a few lines of
stdlib HTTP below: it answers the readiness check and records what reaches it); what is tested is
HAProxy's behaviour with the rendered rules, which the stand-in only observes.
"""

from __future__ import annotations

import contextlib
import json
import socket
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from config.parse import parse_settings
from dns_double import DnsDouble
from gateway_helpers import own_dev_config
from renderers.haproxy import Listen, render_haproxy_config
from servers import free_port, haproxy_server

REPLICA = "127.0.0.2"


class RecordingReplica:
    """Test stand-in for a LiteLLM replica: readiness 200, and every other request's body size recorded."""

    def __init__(self, port: int):
        self.bodies: list[int] = []
        replica = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args):
                pass

            def _answer(self, status: int, body: bytes = b"{}") -> None:
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def do_GET(self):
                self._answer(200)

            def do_POST(self):
                length = int(self.headers.get("Content-Length") or 0)
                received = 0
                while received < length:
                    chunk = self.rfile.read(min(65536, length - received))
                    if not chunk:
                        break
                    received += len(chunk)
                replica.bodies.append(received)
                self._answer(200, json.dumps({"received": received}).encode())

        self.server = ThreadingHTTPServer((REPLICA, port), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@contextlib.contextmanager
def balancer_before_a_stand_in(load_balancer: dict, tmp_path):
    """Debian's HAProxy with the rendered config (gateway.loadBalancer = `load_balancer`) in front of
    the recording stand-in replica; yields (client port, stats port, replica)."""
    raw = own_dev_config()
    raw["gateway"] = {**raw["gateway"], "loadBalancer": load_balancer}
    port = free_port()
    replica = RecordingReplica(port)
    dns = DnsDouble()
    dns.set("litellm", [REPLICA])
    http, stats = free_port(), free_port()
    listen = Listen(http=f"127.0.0.1:{http}", stats=f"127.0.0.1:{stats}", nameserver=dns.address,
                    service="litellm", replica_port=port)
    try:
        with haproxy_server(render_haproxy_config(parse_settings(raw), listen), tmp_path,
                            f"http://127.0.0.1:{stats}/healthz"):
            yield http, stats, replica
    finally:
        replica.stop()
        dns.stop()


@pytest.fixture
def gateway(tmp_path):
    with balancer_before_a_stand_in({"maxRequestBodyMb": 1, "maxUnauthenticatedBodyKb": 8}, tmp_path) as (http, _, replica):
        gateway = type("Gateway", (), {"port": http, "replica": replica})
        assert send(gateway, b"", headers={"Authorization": "Bearer sk-x"}, wait_up=True)[0] == 200
        replica.bodies.clear()
        yield gateway


def send(gateway, body: bytes, headers: dict[str, str], chunked: bool = False, wait_up: bool = False,
         ) -> tuple[int, str]:
    """POST /v1/chat/completions over a raw socket (so an early answer is read even while sending)."""
    import time

    deadline = time.monotonic() + (30 if wait_up else 10)
    while True:
        lines = ["POST /v1/chat/completions HTTP/1.1", "Host: gateway", "Connection: close",
                 *(f"{k}: {v}" for k, v in headers.items())]
        lines.append("Transfer-Encoding: chunked" if chunked else f"Content-Length: {len(body)}")
        payload = ("\r\n".join(lines) + "\r\n\r\n").encode()
        payload += (f"{len(body):x}\r\n".encode() + body + b"\r\n0\r\n\r\n") if chunked else body
        with socket.create_connection(("127.0.0.1", gateway.port), timeout=10) as conn:
            with contextlib.suppress(OSError):  # the balancer may answer and close before all is sent
                conn.sendall(payload)
            answer = b""
            with contextlib.suppress(OSError):
                while chunk := conn.recv(65536):
                    answer += chunk
        text = answer.decode(errors="replace")
        status = int(text.split(" ", 2)[1]) if text.startswith("HTTP/") else 0
        if not (wait_up and status == 503 and time.monotonic() < deadline):
            return status, text
        time.sleep(0.3)


KEY = {"Authorization": "Bearer sk-" + "k" * 40}


def test_a_body_within_the_limit_reaches_the_replica_whole(gateway):
    status, text = send(gateway, b"x" * 900_000, KEY)
    assert status == 200, text
    assert gateway.replica.bodies == [900_000]


def test_a_body_above_the_limit_is_refused_with_413_and_never_reaches_a_replica(gateway):
    status, text = send(gateway, b"x" * (1024 * 1024 + 1), KEY)
    assert status == 413 and "larger than 1 MB" in text, text
    assert gateway.replica.bodies == []


@pytest.mark.parametrize("credentials", [{}, {"Cookie": "token=sk-x"}])
def test_without_credentials_only_a_small_body_passes(gateway, credentials):
    status, text = send(gateway, b"x" * (8 * 1024 + 1), credentials)
    assert status == 401 and "without credentials" in text, text
    assert gateway.replica.bodies == []
    status, _ = send(gateway, b"x" * 2048, credentials)  # the admin UI's login form, for instance
    assert status == 200 and gateway.replica.bodies == [2048]


@pytest.mark.parametrize("header", ["Authorization", "x-api-key", "api-key"])
def test_any_credentials_header_lifts_the_small_limit(gateway, header):
    status, text = send(gateway, b"x" * 100_000, {header: "sk-" + "k" * 40})
    assert status == 200, text
    assert gateway.replica.bodies == [100_000]


def test_a_body_without_a_length_is_refused_with_411(gateway):
    status, text = send(gateway, b"x" * 1000, KEY, chunked=True)
    assert status == 411 and "Content-Length" in text, text
    assert gateway.replica.bodies == []
