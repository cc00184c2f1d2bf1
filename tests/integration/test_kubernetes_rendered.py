"""What the Kubernetes platform renders differently from the Docker one, run by the real programs: the HAProxy
config of the load balancer's ConfigMap (exactly as the stack declares it) checked by Debian's HAProxy, and
the replicas' preStop hook run by /bin/sh against a drain endpoint on loopback."""

from __future__ import annotations

import http.server
import os
import subprocess
import threading
import time
from pathlib import Path

from harness import run_stack, stack_file_config
from renderers import haproxy, replica_entrypoint
from servers import require_program

PREFIX = "litellm-gateway-k8s"


def test_haproxy_accepts_the_load_balancer_config_the_kubernetes_stack_declares(tmp_path: Path):
    run = run_stack(stack_file_config("k8s"), stack="k8s")
    (config_map,) = [r for r in run.resources if r.type == "kubernetes:core/v1:ConfigMap"
                     and r.plain("metadata")["name"] == f"{PREFIX}-lb-config"]
    text = config_map.plain("data")["haproxy.cfg"]
    assert "parse-resolv-conf" in text and f"{PREFIX}-litellm.{PREFIX}.svc.cluster.local" in text
    path = tmp_path / "haproxy.cfg"
    path.write_text(text)
    done = subprocess.run([require_program("haproxy"), "-c", "-f", str(path)], capture_output=True, text=True,
                          timeout=60)
    assert done.returncode == 0 and "Configuration file is valid" in done.stdout + done.stderr, done.stderr
    assert "WARNING" not in done.stdout + done.stderr, done.stderr


class _Drain(http.server.BaseHTTPRequestHandler):
    calls: list = []

    def do_POST(self):  # noqa: N802 (http.server's naming)
        self._answer()

    def do_GET(self):  # noqa: N802
        self._answer()

    def _answer(self):
        type(self).calls.append((self.path, self.headers.get("X-Drain-Token"), time.monotonic()))
        body = b'{"status": "draining"}'
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


def test_the_prestop_hook_drains_then_waits_for_the_load_balancer():
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Drain)
    port = server.server_address[1]
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        command = replica_entrypoint.render_prestop(port, 60)
        started = time.monotonic()
        done = subprocess.run(command, env={**os.environ, replica_entrypoint.DRAIN_TOKEN_ENV: "sk-drain-token"},
                              capture_output=True, text=True, timeout=30)
        took = time.monotonic() - started
    finally:
        server.shutdown()
    assert done.returncode == 0, done.stderr
    ((path, token, at),) = _Drain.calls
    assert path == haproxy.DRAIN_PATH and token == "sk-drain-token"
    assert at - started < 2, "the drain is called first, not after the wait"
    # The kubelet sends SIGTERM only when the hook returns: after the load balancer's removal time.
    assert haproxy.REMOVAL_SECONDS <= took < haproxy.REMOVAL_SECONDS + 3, took
