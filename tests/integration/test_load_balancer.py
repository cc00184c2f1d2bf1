"""The rendered haproxy.cfg run by real HAProxy (Debian's) in front of real LiteLLM proxies, under
continuous load, while replicas are replaced the way Pulumi's create-before-delete does it.

Docker's DNS is a test double (tests/integration/dns_double.py) that the test updates as Docker
would: a new replica's address appears under the `litellm` alias when it starts, a stopped one's
disappears. Replicas listen on separate loopback addresses with one port, as containers do, and
run under the stack's rendered entrypoint script, which is what `docker stop` signals. The GPU host
is an Ollama double whose streamed answers take about two seconds, so streams are in flight when a
replica is stopped. A quarter of the requests carry a 40 KB prompt: more than HAProxy's buffer, so
HAProxy cannot replay them, and only the order of the stop keeps them safe.
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
import re
import signal
import subprocess
import threading
import time
import uuid
from pathlib import Path

import httpx
import pytest

from config.parse import parse_settings
from dns_double import DnsDouble
from gateway_helpers import MASTER_KEY, REDIS_PASSWORD, config_without_database, own_dev_config, replicas_up
from harness import stack_file_config
from ollama_double import OllamaDouble
from renderers.haproxy import Listen, render_haproxy_config
from servers import free_port, haproxy_server, litellm_proxy, redis_server, require_program

CLIENTS = 8
LARGE_PROMPT = "long context " * 3200   # 41.6 KB, above HAProxy's 16 KB tune.bufsize


def haproxy_check(config_text: str, tmp_path: Path) -> subprocess.CompletedProcess:
    path = tmp_path / "haproxy.cfg"
    path.write_text(config_text)
    return subprocess.run([require_program("haproxy"), "-c", "-f", str(path)], capture_output=True, text=True)


@pytest.mark.parametrize("stack", ["dev", "prod"])
def test_haproxy_accepts_the_rendered_config_without_warnings(stack, tmp_path):
    done = haproxy_check(render_haproxy_config(parse_settings(stack_file_config(stack))), tmp_path)
    assert done.returncode == 0 and "Configuration file is valid" in done.stdout + done.stderr, done.stderr
    assert "WARNING" not in done.stdout + done.stderr, done.stderr


def test_haproxy_accepts_the_tls_config_with_a_certificate(tmp_path):
    key, cert = tmp_path / "key.pem", tmp_path / "cert.pem"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", str(key), "-out", str(cert),
                    "-days", "2", "-subj", "/CN=gateway.example"], check=True, capture_output=True)
    (tmp_path / "gateway.pem").write_text(cert.read_text() + key.read_text())
    raw = stack_file_config("prod")
    raw = {**raw, "gateway": {**raw["gateway"], "loadBalancer": {"tls": {"enabled": True, "vault": {"path": "tls/gw"},
                                                                           "httpRedirectPort": 8080}}}}
    config = render_haproxy_config(parse_settings(raw), Listen(cert_path=str(tmp_path / "gateway.pem")))
    assert "redirect scheme https" in config and "ssl crt" in config
    done = haproxy_check(config, tmp_path)
    assert done.returncode == 0, done.stderr


@dataclasses.dataclass(frozen=True)
class Request:
    client: int
    kind: str        # "plain" or "stream"
    large: bool      # a prompt above HAProxy's buffer: HAProxy cannot replay it
    started: float   # time.monotonic()
    ended: float
    ok: bool
    detail: str


class Load:
    """CLIENTS threads sending requests through the load balancer until stopped; half stream."""

    def __init__(self, url: str):
        self.url = url
        self.results: list[tuple[str, bool, str]] = []  # (kind, ok, detail)
        self.requests: list[Request] = []
        self.failed_clients: list[int] = []
        self._stop = threading.Event()
        self._threads = [threading.Thread(target=self._client, args=(i,), daemon=True) for i in range(CLIENTS)]

    def __enter__(self):
        for thread in self._threads:
            thread.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        for thread in self._threads:
            thread.join(timeout=60)

    def _client(self, index: int) -> None:
        headers = {"Authorization": f"Bearer {MASTER_KEY}"}
        with httpx.Client(base_url=self.url, headers=headers, timeout=60) as client:
            n = 0
            while not self._stop.is_set():
                n += 1
                stream = (index + n) % 2 == 0
                large = index % 4 == 0
                prompt = f"load {index} {n} {uuid.uuid4()}" + (LARGE_PROMPT if large else "")
                started = time.monotonic()
                body = {"model": "qwen-small", "stream": stream, "messages": [{"role": "user", "content": prompt}]}
                kind = "stream" if stream else "plain"
                try:
                    if stream:
                        with client.stream("POST", "/v1/chat/completions", json=body) as response:
                            text = "".join(response.iter_text())
                            ok = response.status_code == 200 and "[DONE]" in text and "[9]" in text
                            detail = f"{response.status_code} {text[-200:]!r}"
                    else:
                        response = client.post("/v1/chat/completions", json=body)
                        ok = response.status_code == 200 and "reply from" in response.text
                        detail = f"{response.status_code} {response.text[:200]!r}"
                except httpx.HTTPError as error:
                    ok, detail = False, f"{type(error).__name__}: {error}"
                self.results.append((kind, ok, detail))
                self.requests.append(Request(index, kind, large, started, time.monotonic(), ok, detail))
                if not ok:
                    self.failed_clients.append(index)

    def failures(self, kind: str | None = None) -> list[str]:
        return [d for k, ok, d in self.results if not ok and (kind is None or k == kind)]

    def count(self) -> int:
        return len(self.results)


class Fleet:
    """Replicas on 127.0.0.x:port, the DNS double, and HAProxy with the rendered config."""

    def __init__(self, tmp: Path, stack: contextlib.ExitStack):
        self.stack = stack
        settings = parse_settings(own_dev_config())
        self.backend = OllamaDouble("ollama-dev", [m.ollama_tag for m in settings.models], stream_chunks=10,
                                    chunk_delay=0.2).start()
        stack.callback(self.backend.stop)
        raw = own_dev_config()  # its model has no rpm: this load is far above any per-minute limit
        raw["gpuHosts"] = [dict(raw["gpuHosts"][0], address="127.0.0.1", ollamaPort=self.backend.port)]
        settings = parse_settings(raw)
        self.stop_grace_seconds = settings.gateway.stop_grace_seconds
        redis_port = stack.enter_context(redis_server(REDIS_PASSWORD))
        # The same HAProxy is the replicas' GPU dispatcher, as in the load balancer's container.
        dispatcher = free_port()
        self.config_text = config_without_database(settings, redis_port, f"http://127.0.0.1:{dispatcher}")
        self.port = free_port()
        self.dns = DnsDouble()
        stack.callback(self.dns.stop)
        self.addresses: list[str] = []
        self.replicas: dict[str, object] = {}
        self._managers: dict[str, contextlib.AbstractContextManager] = {}
        http, stats = free_port(), free_port()
        listen = Listen(http=f"127.0.0.1:{http}", stats=f"127.0.0.1:{stats}", nameserver=self.dns.address,
                        service="litellm", replica_port=self.port, dispatcher=f"127.0.0.1:{dispatcher}")
        self.url = f"http://127.0.0.1:{http}"
        self.stats = f"http://127.0.0.1:{stats}"
        haproxy = stack.enter_context(haproxy_server(render_haproxy_config(settings, listen), tmp,
                                                     f"{self.stats}/healthz"))
        self.log = haproxy.log_path

    def start(self, address: str) -> None:
        """Start a replica, wait until it answers (Docker's healthcheck, which `pulumi up` waits for),
        and announce it under the alias (Docker adds a started container to the network's DNS)."""
        manager = litellm_proxy(self.config_text, {"LITELLM_MASTER_KEY": MASTER_KEY, "REDIS_PASSWORD": REDIS_PASSWORD},
                                host=address, port=self.port, stop_grace_seconds=self.stop_grace_seconds)
        self.replicas[address] = manager.__enter__()
        self._managers[address] = manager
        self.stack.callback(manager.__exit__, None, None, None)
        self.addresses.append(address)
        self.dns.set("litellm", self.addresses)

    def stop(self, address: str, sig=signal.SIGTERM) -> float:
        """Stop a replica as `docker stop` (SIGTERM to the container's first process, the entrypoint
        script) or a crash (SIGKILL, everything in it) would; Docker drops it from DNS once it has
        stopped. Returns how long the stop took."""
        process = self.replicas[address].process
        started = time.monotonic()
        if sig == signal.SIGKILL:
            os.killpg(process.pid, sig)
        else:
            os.kill(process.pid, sig)
        process.wait(timeout=self.stop_grace_seconds)
        self.addresses.remove(address)
        self.dns.set("litellm", self.addresses)
        return time.monotonic() - started

    def up(self) -> int:
        return replicas_up(self.stats)

    def secrets_in_logs(self) -> list[str]:
        """Which secret values appear in the load balancer's or a running replica's log (none may)."""
        logs = self.log.read_text() + "".join(r.log() for r in self.replicas.values() if r.process.poll() is None)
        return [name for name, value in (("master key", MASTER_KEY), ("Redis password", REDIS_PASSWORD)) if value in logs]

    def wait_up(self, count: int, timeout: float = 30) -> None:
        deadline = time.monotonic() + timeout
        while self.up() != count:
            assert time.monotonic() < deadline, f"{self.up()} servers UP, wanted {count}:\n{self.log.read_text()[-3000:]}"
            time.sleep(0.2)


@pytest.fixture
def fleet(tmp_path):
    with contextlib.ExitStack() as stack:
        fleet = Fleet(tmp_path, stack)
        fleet.start("127.0.0.2")
        fleet.start("127.0.0.3")
        fleet.wait_up(2)
        yield fleet


def test_a_rolling_replacement_loses_no_request_and_finishes_streams_in_flight(fleet):
    with Load(fleet.url) as load:
        time.sleep(3)
        fleet.start("127.0.0.4")             # the successor starts beside the old replica
        fleet.wait_up(3)                     # (Pulumi waits for its healthcheck; HAProxy for its own)
        took = [fleet.stop("127.0.0.2")]     # then the old one is stopped: SIGTERM, drains
        time.sleep(3)
        fleet.start("127.0.0.5")             # and the second replica, one after the other
        fleet.wait_up(3)
        took.append(fleet.stop("127.0.0.3"))
        time.sleep(3)
    assert load.count() > 40, load.count()
    log = fleet.log.read_text()
    problems = [line for line in log.splitlines() if " 200 " not in line and "gateway " in line]
    assert load.failures() == [], (load.failures()[:5], problems[:10])
    # Each stopped replica left the balancer on its readiness (503 while draining), before it closed
    # a connection; then it finished its streams and exited well within the grace period.
    # (a check that meets the draining replica logs the 503; on a starved machine it may time out)
    left_on_a_check = re.findall(r"Server \S+ is DOWN, reason: Layer7 (?:wrong status, code: 503|timeout)", log)
    assert len(left_on_a_check) >= 2, log[-3000:]
    # docs/configuration.md: about 4 s for the load balancer to take a stopped replica out, then the drain.
    assert all(4 <= t < fleet.stop_grace_seconds for t in took), took
    assert any(r[0] == "plain" and r[1] for r in load.results), "no plain request succeeded"
    streams = [r for r in load.results if r[0] == "stream"]
    assert len(streams) > 10
    fleet.wait_up(2)
    assert fleet.secrets_in_logs() == []


def test_a_killed_replica_costs_at_most_the_requests_it_held_that_cannot_be_replayed(fleet):
    with Load(fleet.url) as load:
        time.sleep(3)
        killed_at = time.monotonic()
        fleet.stop("127.0.0.2", signal.SIGKILL)
        time.sleep(4)
    # What docs/operations.md promises for a crash: a request the replica had not answered is
    # replayed on the other replica (HAProxy buffered it: retry-on conn-failure empty-response,
    # redispatch). Only what cannot be replayed may fail: a response already being streamed, or a
    # prompt above HAProxy's 16 KB buffer. At most one per client, and only requests in flight at
    # the kill: nothing sent after it fails.
    failed = [r for r in load.requests if not r.ok]
    assert load.count() > 20
    assert all(r.started <= killed_at <= r.ended for r in failed), [
        (r.kind, r.large, round(r.started - killed_at, 2), r.detail) for r in failed]
    replayable = [r for r in failed if r.kind == "plain" and not r.large]
    assert replayable == [], [r.detail for r in replayable][:5]
    assert len({r.client for r in failed}) == len(failed), "a client lost more than one request"
    for r in failed:
        if r.kind == "stream":
            assert "incomplete chunked read" in r.detail or r.large, r.detail
        else:  # a large prompt HAProxy could not replay: a 502 or a closed connection, as documented
            assert r.detail.startswith(("502", "RemoteProtocolError", "ReadError")), r.detail
    fleet.wait_up(1)


def test_metrics_and_the_drain_switch_are_not_served_through_the_load_balancer(fleet):
    replica = fleet.replicas["127.0.0.2"].url
    auth = {"Authorization": f"Bearer {MASTER_KEY}"}
    # What the replica itself would serve on these paths: metrics, and the drain switch (with its token).
    assert httpx.get(f"{replica}/metrics/", headers=auth, timeout=10).status_code == 200
    assert httpx.get(f"{replica}/health/drain", timeout=10).status_code == 401, "the drain switch needs its token"
    for path in ("/metrics/", "/metrics", "/%6detrics/", "//metrics/", "/health/drain", "/health/%64rain",
                 "//health//drain", "/health/drain/", "/health/drain?x=1"):
        response = httpx.get(f"{fleet.url}{path}", headers={**auth, "X-Drain-Token": MASTER_KEY}, timeout=10)
        assert response.status_code == 404, (path, response.status_code, response.text[:200])
    fleet.wait_up(2)  # nothing was drained
    assert httpx.get(f"{replica}/health/readiness", timeout=10).status_code == 200
    assert "haproxy_frontend_http_requests_total" in httpx.get(f"{fleet.stats}/metrics", timeout=10).text


@pytest.mark.filterwarnings("ignore:ssl.TLSVersion.TLSv1:DeprecationWarning")  # the old versions the test offers
def test_tls_is_terminated_with_the_stacks_certificate_and_plain_http_only_redirects(tmp_path):
    import ssl

    key, cert = tmp_path / "key.pem", tmp_path / "cert.pem"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", str(key), "-out", str(cert),
                    "-days", "2", "-subj", "/CN=gateway.example"], check=True, capture_output=True)
    pem = tmp_path / "gateway.pem"
    pem.write_text(cert.read_text() + key.read_text())
    backend = OllamaDouble("ollama-dev", ["qwen2.5:0.5b"]).start()
    dns = DnsDouble()
    raw = own_dev_config()
    raw = {**raw, "gpuHosts": [dict(raw["gpuHosts"][0], address="127.0.0.1", ollamaPort=backend.port)],
           "gateway": {**raw["gateway"], "loadBalancer": {"tls": {"enabled": True, "vault": {"path": "tls/gateway"},
                                                                   "httpRedirectPort": 8080}}}}
    settings = parse_settings(raw)
    try:
        with contextlib.ExitStack() as stack:
            redis_port = stack.enter_context(redis_server(REDIS_PASSWORD))
            port = free_port()
            dispatcher = free_port()
            stack.enter_context(litellm_proxy(config_without_database(settings, redis_port, f"http://127.0.0.1:{dispatcher}"),
                                              {"LITELLM_MASTER_KEY": MASTER_KEY, "REDIS_PASSWORD": REDIS_PASSWORD},
                                              host="127.0.0.2", port=port))
            dns.set("litellm", ["127.0.0.2"])
            https, http, stats = free_port(), free_port(), free_port()
            stack.enter_context(haproxy_server(render_haproxy_config(settings, Listen(
                https=f"127.0.0.1:{https}", http=f"127.0.0.1:{http}", stats=f"127.0.0.1:{stats}",
                nameserver=dns.address, replica_port=port, cert_path=str(pem), dispatcher=f"127.0.0.1:{dispatcher}")), tmp_path,
                f"http://127.0.0.1:{stats}/healthz"))
            deadline, answer = time.monotonic() + 30, None
            while time.monotonic() < deadline:
                with contextlib.suppress(httpx.HTTPError):
                    answer = httpx.get(f"https://127.0.0.1:{https}/health/liveliness", verify=False, timeout=3)
                    if answer.status_code == 200:
                        break
                time.sleep(0.3)
            assert answer is not None and answer.status_code == 200
            served = ssl.get_server_certificate(("127.0.0.1", https))
            assert ssl.PEM_cert_to_DER_cert(served) == ssl.PEM_cert_to_DER_cert(cert.read_text())
            chat = httpx.post(f"https://127.0.0.1:{https}/v1/chat/completions", verify=False, timeout=30,
                              headers={"Authorization": f"Bearer {MASTER_KEY}"},
                              json={"model": "qwen-small", "messages": [{"role": "user", "content": "over tls"}]})
            assert chat.status_code == 200 and chat.headers["strict-transport-security"].startswith("max-age=")
            plain = httpx.post(f"http://127.0.0.1:{http}/v1/chat/completions", timeout=10,
                               headers={"Authorization": f"Bearer {MASTER_KEY}"}, json={})
            assert plain.status_code == 308 and plain.headers["location"].startswith("https://")
            with pytest.raises(ssl.SSLError):  # nothing older than TLS 1.2
                context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
                context.check_hostname, context.verify_mode = False, ssl.CERT_NONE
                context.maximum_version = ssl.TLSVersion.TLSv1_1
                context.minimum_version = ssl.TLSVersion.TLSv1
                import socket

                with socket.create_connection(("127.0.0.1", https), timeout=5) as raw_socket:
                    context.wrap_socket(raw_socket)
    finally:
        backend.stop()
        dns.stop()


def _through_closing_replicas(config_text_for, tmp_path: Path, requests: int = 24) -> tuple[list[str], int]:
    """Requests on one kept-alive client connection through HAProxy to a replica that closes every
    reused connection as a request arrives (closing_replica.py) and one that answers; returns the
    failures and how many requests met a closing connection."""
    from closing_replica import ClosingReplica

    port, http, stats = free_port(), free_port(), free_port()
    dns = DnsDouble()
    closing, steady = ClosingReplica("127.0.0.2", port, "closing"), ClosingReplica("127.0.0.3", port, "steady", False)
    try:
        dns.set("litellm", ["127.0.0.2", "127.0.0.3"])
        config = config_text_for(Listen(http=f"127.0.0.1:{http}", stats=f"127.0.0.1:{stats}", nameserver=dns.address,
                                        replica_port=port))
        with haproxy_server(config, tmp_path, f"http://127.0.0.1:{stats}/healthz") as proxy:
            deadline = time.monotonic() + 20
            while replicas_up(f"http://127.0.0.1:{stats}") < 2:
                assert time.monotonic() < deadline, proxy.log()[-2000:]
                time.sleep(0.2)
            failures = []
            with httpx.Client(base_url=f"http://127.0.0.1:{http}", timeout=10) as client:
                for n in range(requests):
                    try:
                        response = client.post("/v1/chat/completions", json={"n": n, "messages": [{"content": "x"}]})
                        if response.status_code != 200:
                            failures.append(f"{n}: {response.status_code}")
                    except httpx.HTTPError as error:
                        failures.append(f"{n}: {type(error).__name__}: {error}")
        return failures, closing.closed_on_request
    finally:
        closing.stop()
        steady.stop()
        dns.stop()


def test_a_request_on_a_reused_connection_that_the_replica_closes_is_replayed_on_another(tmp_path):
    settings = parse_settings(own_dev_config())
    assert settings.gateway.load_balancer.reuse_server_connections, "the default reuses connections"
    failures, met_closing = _through_closing_replicas(lambda listen: render_haproxy_config(settings, listen), tmp_path)
    assert met_closing >= 3, "the scenario did not happen: no request was sent on a reused connection"
    assert failures == []


def test_without_buffering_the_request_haproxy_cannot_replay_it(tmp_path):
    """The counter-proof for the line the replay depends on: without `option http-buffer-request`
    HAProxy forwards a request before it has all of it, keeps no copy, and closes the client's
    connection without an answer when the reused server connection closes."""
    settings = parse_settings(own_dev_config())

    def without_buffering(listen):
        config = render_haproxy_config(settings, listen)
        assert "    option http-buffer-request\n" in config
        return config.replace("    option http-buffer-request\n", "")

    failures, met_closing = _through_closing_replicas(without_buffering, tmp_path)
    assert met_closing >= 3
    assert failures and all("Server disconnected without sending a response" in f for f in failures), failures
