"""One client cannot take the gateway: Debian's HAProxy with the rendered config refuses a client
address's connections beyond gateway.loadBalancer.maxConnectionsPerClient at once, other clients go on
being served, and the health endpoint answers even when the gateway's own connections are all taken
(measured before: 4,200 idle connections from one client kept /healthz waiting 30 s). Clients are
loopback addresses of their own (127.0.0.4-9); behind HAProxy the recording stand-in replica of
test_request_limits.py."""

from __future__ import annotations

import contextlib
import socket
import time

import httpx
import pytest

from test_request_limits import KEY, balancer_before_a_stand_in

PER_CLIENT, TOTAL = 16, 64


@pytest.fixture
def gateway(tmp_path):
    limits = {"maxConnections": TOTAL, "maxConnectionsPerClient": PER_CLIENT}
    with balancer_before_a_stand_in(limits, tmp_path) as (http, stats, _), contextlib.ExitStack() as stack:
        sockets: list[socket.socket] = []
        stack.callback(lambda: [s.close() for s in sockets])
        gateway = type("Gateway", (), {"port": http, "stats": stats, "sockets": sockets})
        wait_served(gateway, "127.0.0.5")
        yield gateway


def hold(gateway, source: str, count: int) -> list[socket.socket]:
    held = [socket.create_connection(("127.0.0.1", gateway.port), timeout=5, source_address=(source, 0))
            for _ in range(count)]
    gateway.sockets.extend(held)
    time.sleep(0.3)  # HAProxy accepts and tracks them
    return held


def refused(gateway, source: str) -> bool:
    """A new connection from `source` is closed by the balancer without an answer. The reset can reach
    the client during connect() itself (seen on a loaded CI machine: HAProxy's `tcp-request connection
    reject` ran before the client's connect() returned), while sending or while reading: all three are
    a refusal; only an HTTP answer is not."""
    try:
        with socket.create_connection(("127.0.0.1", gateway.port), timeout=5, source_address=(source, 0)) as conn:
            conn.sendall(b"GET /health/liveliness HTTP/1.1\r\nHost: g\r\nConnection: close\r\n\r\n")
            return conn.recv(1024) == b""
    except (ConnectionResetError, BrokenPipeError):
        return True


def served(gateway, source: str) -> int:
    transport = httpx.HTTPTransport(local_address=source)
    with httpx.Client(transport=transport, timeout=5) as client:
        return client.post(f"http://127.0.0.1:{gateway.port}/v1/chat/completions", content=b"{}", headers=KEY).status_code


def wait_served(gateway, source: str, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with contextlib.suppress(httpx.HTTPError):
            if served(gateway, source) == 200:
                return
        time.sleep(0.3)
    raise AssertionError("the stand-in replica never became UP behind HAProxy")


def test_a_client_beyond_its_connections_is_refused_and_others_are_served(gateway):
    hold(gateway, "127.0.0.4", PER_CLIENT)
    assert refused(gateway, "127.0.0.4"), f"the {PER_CLIENT + 1}th connection of one client was accepted"
    assert served(gateway, "127.0.0.5") == 200


def test_the_health_endpoint_answers_when_the_gateway_is_full(gateway):
    for source in ("127.0.0.6", "127.0.0.7", "127.0.0.8", "127.0.0.9"):
        hold(gateway, source, PER_CLIENT)  # TOTAL connections: the gateway frontend is full
    started = time.monotonic()
    answer = httpx.get(f"http://127.0.0.1:{gateway.stats}/healthz", timeout=10)
    assert answer.status_code == 200 and time.monotonic() - started < 2, time.monotonic() - started
