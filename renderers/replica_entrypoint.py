"""The LiteLLM replicas' entrypoint: LiteLLM, stopped in an order in which no request is lost (pure).

`docker stop` sends SIGTERM to a container's first process. LiteLLM's uvicorn would at once stop
accepting connections and close every idle one, while the load balancer, which keeps connections to
the replicas open between requests, may be sending a request on one of them at that very moment.
HAProxy replays such a request only when it could keep a copy (bodies up to its buffer size); a longer
prompt would be lost. So the first process is this shell script, and on SIGTERM it:

1. calls LiteLLM's `/health/drain` (enabled by the rendered `general_settings.enable_drain_endpoint`,
   guarded by `DRAIN_ENDPOINT_TOKEN`): readiness turns 503 while the replica keeps serving;
2. waits `haproxy.REMOVAL_SECONDS`, until the load balancer's health check has taken the replica out
   and routes nothing new to it;
3. passes SIGTERM on to LiteLLM, which finishes what is still in flight (up to
   `GRACEFUL_SHUTDOWN_TIMEOUT`) and exits; the script exits with LiteLLM's status.

It never waits for the drain call itself: LiteLLM's drain waits up to `GRACEFUL_SHUTDOWN_TIMEOUT` for
in-flight requests too, and waiting for both spent that budget twice, so a long stream ran past the
grace period and Docker's SIGKILL cut LiteLLM's teardown (its batched spend-log flush). The whole
sequence is REMOVAL_SECONDS + GRACEFUL_SHUTDOWN_TIMEOUT + TEARDOWN_SECONDS = the stop grace period.

A second SIGTERM (or SIGINT) during step 2 skips the rest of the wait. Without SIGTERM the script only
waits for LiteLLM, and exits with its status if it ends by itself (a crash restarts the container).
"""

from __future__ import annotations

import shlex

from renderers import haproxy

DRAIN_TOKEN_ENV = "DRAIN_ENDPOINT_TOKEN"      # LiteLLM reads it for /health/drain's X-Drain-Token
GRACEFUL_TIMEOUT_ENV = "GRACEFUL_SHUTDOWN_TIMEOUT"
# Seconds kept back from the stop grace period for LiteLLM's own teardown after the drain.
TEARDOWN_SECONDS = 5
# A replica keeps an idle connection from the load balancer this long (uvicorn's default is 5 s), so
# that idle connections are closed by HAProxy, which knows when it is not using one, and not by the
# replica in the middle of HAProxy sending a request on it.
KEEPALIVE_SECONDS = 300
# The shortest stop grace period that leaves LiteLLM a few seconds to finish in-flight requests.
MIN_STOP_GRACE_SECONDS = haproxy.REMOVAL_SECONDS + TEARDOWN_SECONDS + 5

_DRAIN = """\
import os, sys, urllib.request
request = urllib.request.Request(sys.argv[1], headers={"X-Drain-Token": os.environ.get("%s", "")})
try:
    print("replica stopping: drain", urllib.request.urlopen(request, timeout=float(sys.argv[2])).read().decode(), flush=True)
except Exception as error:
    print("replica stopping: drain call failed:", error, flush=True)
""" % DRAIN_TOKEN_ENV


def graceful_timeout_seconds(stop_grace_seconds: int) -> int:
    """How long LiteLLM may finish in-flight requests, within the container's stop grace period."""
    return stop_grace_seconds - haproxy.REMOVAL_SECONDS - TEARDOWN_SECONDS


def litellm_arguments(config_path: str, port: int, num_workers: int, host: str | None = None) -> list[str]:
    """LiteLLM's command line in a replica (the arguments the entrypoint script passes on)."""
    arguments = ["--config", config_path, "--port", str(port), "--num_workers", str(num_workers),
                 "--keepalive_timeout", str(KEEPALIVE_SECONDS)]
    return arguments + (["--host", host] if host else [])


def render_entrypoint(drain_url: str, stop_grace_seconds: int, litellm: str = "litellm") -> str:
    """The script for `sh -c <script> litellm-replica <litellm arguments...>`."""
    drain_timeout = graceful_timeout_seconds(stop_grace_seconds) + 2
    return "\n".join([
        "# Rendered by the Pulumi stack (renderers/replica_entrypoint.py): stop LiteLLM only after the",
        "# load balancer has taken this replica out.",
        "stopping=0",
        "status=0",
        "trap 'stopping=1' TERM INT",
        f"{shlex.quote(litellm)} \"$@\" &",
        "child=$!",
        "while [ \"$stopping\" = 0 ] && kill -0 \"$child\" 2>/dev/null; do wait \"$child\"; status=$?; done",
        "if [ \"$stopping\" = 1 ] && kill -0 \"$child\" 2>/dev/null; then",
        "    stopping=0",
        f"    python3 -c {shlex.quote(_DRAIN)} {shlex.quote(drain_url)} {drain_timeout} &",
        "    drainer=$!",
        f"    sleep {haproxy.REMOVAL_SECONDS} &",
        "    wait $!",
        "    trap '' TERM INT  # passed on from here: nothing may interrupt the last wait",
        "    kill -TERM \"$child\" 2>/dev/null",
        "    wait \"$child\"",
        "    status=$?",
        "    kill \"$drainer\" 2>/dev/null",
        "fi",
        "exit \"$status\"",
        "",
    ])


def entrypoints(port: int, stop_grace_seconds: int, host: str = "127.0.0.1", litellm: str = "litellm") -> list[str]:
    """The replica's entrypoint (`docker run --entrypoint`): the script, draining LiteLLM at host:port."""
    script = render_entrypoint(f"http://{host}:{port}{haproxy.DRAIN_PATH}", stop_grace_seconds, litellm=litellm)
    return ["/bin/sh", "-c", script, "litellm-replica"]


def environment(master_key, stop_grace_seconds: int) -> dict:
    """What the script and LiteLLM's drain need in the replica's environment (the master key as the token)."""
    return {DRAIN_TOKEN_ENV: master_key, GRACEFUL_TIMEOUT_ENV: str(graceful_timeout_seconds(stop_grace_seconds))}


def render_prestop(port: int, stop_grace_seconds: int, host: str = "127.0.0.1") -> list[str]:
    """A Kubernetes pod's preStop hook: the same first two steps as the entrypoint's SIGTERM branch.

    The kubelet runs it before it sends SIGTERM, inside the pod's termination grace period: the drain
    call turns readiness 503 (the load balancer and the Service's endpoints drop the pod), the wait gives
    the load balancer `haproxy.REMOVAL_SECONDS` to stop routing to it; then SIGTERM reaches LiteLLM, which
    finishes in-flight requests within GRACEFUL_SHUTDOWN_TIMEOUT. REMOVAL_SECONDS + GRACEFUL_SHUTDOWN_TIMEOUT
    + TEARDOWN_SECONDS is the grace period, as on Docker."""
    drain_url = f"http://{host}:{port}{haproxy.DRAIN_PATH}"
    drain_timeout = graceful_timeout_seconds(stop_grace_seconds) + 2
    script = "\n".join([
        "# Rendered by the Pulumi stack (renderers/replica_entrypoint.py): out of the load balancer before SIGTERM.",
        f"python3 -c {shlex.quote(_DRAIN)} {shlex.quote(drain_url)} {drain_timeout} &",
        f"sleep {haproxy.REMOVAL_SECONDS}",
    ])
    return ["/bin/sh", "-c", script]
