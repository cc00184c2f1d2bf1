"""Render haproxy.cfg for the load balancer in front of the LiteLLM replicas (pure).

The replicas are found through DNS: every replica joins the gateway network with the alias
`litellm`, Docker's embedded DNS (127.0.0.11) answers that name with one address per running
replica, and `server-template` keeps a slot per address. A replica started beside an old one (a
rolling replacement) is picked up within seconds; one that stops is taken out by the health check
(and by DNS). A request that fails to connect, or whose server closes without answering, is tried
again on another replica (`retry-on`, `option redispatch`). Timeouts allow for long LLM streams.

Connections to the replicas are reused (keep-alive), with `http-reuse always`: HAProxy's default
("safe") sends each client connection's first request on a new server connection and lets the pool
turn over, which measurably cost the replicas CPU (docs/benchmarks.md); "always" is what HAProxy
recommends where the server never closes a connection soon after releasing it, and that holds here. A
replica closes an idle connection only when it
stops, and it stops only after the health check has taken it out (renderers/replica_entrypoint.py);
should a request still meet a closing connection, it is replayed: HAProxy keeps a copy of a request
only when it has the whole request before sending it, hence `option http-buffer-request`. Without it a
request on a reused connection that the replica closes is not retried and its client connection is
closed without an answer (HAProxy's keep-alive abort, so that browsers retry; API clients do not).
"""

from __future__ import annotations

from dataclasses import dataclass

from config.names import HAPROXY_HTTP_PORT as HTTP_PORT
from config.names import HAPROXY_HTTPS_PORT as HTTPS_PORT
from config.names import HAPROXY_STATS_PORT as STATS_PORT
from config.names import DISPATCHER_PATH, DISPATCHER_PORT, PROXY_PORT, REPLICA_SERVICE
from config.sections.fleet import ModelSettings
from config.stack import StackSettings
from config.values import host_port, ip_or_none, local_url, slug

CONFIG_PATH = "/usr/local/etc/haproxy/haproxy.cfg"
CERT_PATH = "/usr/local/etc/haproxy/certs/gateway.pem"
DOCKER_DNS = "127.0.0.11:53"    # Docker's embedded DNS server, inside every container on a user network
# Mozilla server-side TLS, "intermediate" (https://ssl-config.mozilla.org, guideline 5.7).
TLS12_CIPHERS = ("ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-RSA-AES128-GCM-SHA256:ECDHE-ECDSA-AES256-GCM-SHA384:"
                 "ECDHE-RSA-AES256-GCM-SHA384:ECDHE-ECDSA-CHACHA20-POLY1305:ECDHE-RSA-CHACHA20-POLY1305:"
                 "DHE-RSA-AES128-GCM-SHA256:DHE-RSA-AES256-GCM-SHA384:DHE-RSA-CHACHA20-POLY1305")
STATS_HEADROOM = 64             # connections kept for the stats frontend beyond the gateway's own limit
READINESS_PATH = "/health/readiness"
DRAIN_PATH = "/health/drain"    # LiteLLM's drain switch: the replicas' own entrypoint calls it, clients never
CHECK_INTERVAL_SECONDS = 1
CHECK_FALL = 2
# From a replica's readiness turning 503 to HAProxy routing nothing new to it: `fall` failed checks
# `inter` apart, plus a margin for a check in progress and the last request routed before it.
REMOVAL_SECONDS = CHECK_INTERVAL_SECONDS * CHECK_FALL + 2


@dataclass(frozen=True)
class Listen:
    """Where the rendered HAProxy listens and finds the replicas (the container's, or a test's)."""

    http: str = f":{HTTP_PORT}"
    https: str = f":{HTTPS_PORT}"
    stats: str = f":{STATS_PORT}"
    # None: the nameservers of the container's /etc/resolv.conf (a Kubernetes pod's cluster DNS).
    nameserver: str | None = DOCKER_DNS
    # The replicas' name as DNS answers it (HAProxy's resolvers use no search domains: on Kubernetes the
    # headless Service's full name).
    service: str = REPLICA_SERVICE
    # Connections per client address (gateway.loadBalancer.maxConnectionsPerClient). Off behind a Kubernetes
    # Ingress, where every client arrives from the controller's addresses.
    limit_per_client: bool = True
    replica_port: int = PROXY_PORT
    cert_path: str = CERT_PATH
    dispatcher: str = f":{DISPATCHER_PORT}"


def render_haproxy_config(settings: StackSettings, listen: Listen = Listen()) -> str:
    gateway = settings.gateway
    lb = gateway.load_balancer
    # Streams may run as long as LiteLLM's own request timeout; give the proxy a margin beyond it.
    stream_timeout = gateway.request_timeout_seconds + 30
    tls = lb.tls.enabled
    lines = [
        f"# Rendered by the {settings.resource_prefix()} Pulumi stack; edit the stack config, not this file.",
        "global",
        "    log stdout format raw local0 info",
        # The gateway's own limit is set on its frontend; this leaves room for stats and health checks.
        f"    maxconn {lb.max_connections + STATS_HEADROOM}",
        f"    nbthread {lb.threads}",
    ]
    if tls:
        lines += ["    # Mozilla's 'intermediate' profile: TLS 1.2 with forward-secret AEAD ciphers only, and TLS 1.3.",
                  "    ssl-default-bind-options ssl-min-ver TLSv1.2 no-tls-tickets",
                  f"    ssl-default-bind-ciphers {TLS12_CIPHERS}",
                  "    ssl-default-bind-ciphersuites TLS_AES_128_GCM_SHA256:TLS_AES_256_GCM_SHA384:TLS_CHACHA20_POLY1305_SHA256"]
    lines += [
        "",
        "defaults",
        "    mode http",
        "    log global",
        "    option httplog",
        "    option dontlognull",
        "    timeout connect 5s",
        f"    timeout client {stream_timeout}s",
        f"    timeout server {stream_timeout}s",
        "    timeout http-request 30s",
        "    timeout http-keep-alive 30s",
        "    timeout queue 60s",
        "    # Another replica gets the request when the chosen one refuses the connection or closes",
        "    # it without an answer (a replica stopping, or killed): clients see no error.",
        f"    retries {lb.retries}",
        "    retry-on conn-failure empty-response",
        "    option redispatch 1",
        "    # Replays need the whole request in hand before it is sent (bodies up to tune.bufsize).",
        "    option http-buffer-request",
        "",
        "resolvers docker",
        f"    nameserver dns1 {listen.nameserver}" if listen.nameserver else "    parse-resolv-conf",
        "    accepted_payload_size 8192",
        "    resolve_retries 3",
        "    timeout resolve 1s",
        "    timeout retry 1s",
        "    hold valid 2s",
        "    hold obsolete 5s",
        "    hold nx 2s",
        "",
        "frontend gateway",
        f"    maxconn {lb.max_connections}",
    ]
    if listen.limit_per_client:
        lines += [
            "    # One client address may hold at most this many connections (refused at once beyond it).",
            "    stick-table type ipv6 size 100k expire 60s store conn_cur",
            "    tcp-request connection track-sc0 src",
            f"    tcp-request connection reject if {{ sc_conn_cur(0) gt {lb.max_connections_per_client} }}",
        ]
    if tls:
        lines += [f"    bind {listen.https} ssl crt {listen.cert_path} alpn h2,http/1.1",
                  f"    bind {listen.http}",
                  "    # Plain HTTP only redirects: credentials never travel in clear text.",
                  "    http-request redirect scheme https code 308 unless { ssl_fc }",
                  "    http-response set-header Strict-Transport-Security \"max-age=31536000\""]
    else:
        lines += [f"    bind {listen.http}"]
    lines += [
        "    # Metrics stay on the private network, scraped from each replica by Prometheus; the drain",
        "    # switch is for the replica's own entrypoint only. Matched on the decoded path, as the replica",
        "    # reads it (`/%6detrics`, `//health/drain`).",
        f"    http-request deny deny_status 404 if {{ path,url_dec -m reg ^/+(metrics|{DRAIN_PATH.strip('/').replace('/', '/+')}) }}",
        "    # Bodies are bounded before a replica reads them (LiteLLM reads a whole body before it checks",
        "    # the key): by Content-Length, for everyone; much lower without any credentials.",
        "    acl body_method method POST PUT PATCH",
        "    acl has_length req.hdr(content-length) -m found",
        "    acl has_credentials req.hdr(authorization) -m found",
        "    acl has_credentials req.hdr(x-api-key) -m found",
        "    acl has_credentials req.hdr(api-key) -m found",
        _refuse(411, "a request body needs a Content-Length", "body_method !has_length"),
        _refuse(413, f"the request body is larger than {lb.max_request_body_mb} MB",
                f"{{ req.hdr_val(content-length) gt {lb.max_request_body_mb * 1024 * 1024} }}"),
        _refuse(401, f"a request without credentials may carry at most {lb.max_unauthenticated_body_kb} KB",
                f"!has_credentials {{ req.hdr_val(content-length) gt {lb.max_unauthenticated_body_kb * 1024} }}"),
        "    default_backend litellm",
        "",
        "backend litellm",
        "    balance leastconn",
    ]
    if lb.reuse_server_connections:
        lines += [
            "    # Any idle connection serves any request, a client's first one too: a replica closes idle",
            "    # connections only after it left the balancer, and a request that meets one is replayed.",
            "    http-reuse always",
        ]
    else:
        lines += [
            "    # A fresh server connection per request (gateway.loadBalancer.reuseServerConnections: false).",
            "    option http-server-close",
            "    http-reuse never",
        ]
    lines += [
        "    option httpchk",
        f"    http-check send meth GET uri {READINESS_PATH}",
        "    http-check expect status 200",
        f"    default-server check inter {CHECK_INTERVAL_SECONDS}s fall {CHECK_FALL} rise 1 slowstart 5s init-addr none "
        "resolvers docker "
        "resolve-prefer ipv4",
        f"    server-template replica {lb.max_replicas} {listen.service}:{listen.replica_port}",
        "",
        *dispatcher_lines(settings, listen),
        "frontend stats",
        f"    bind {listen.stats}",
        "    http-request set-log-level silent",
        "    http-request use-service prometheus-exporter if { path /metrics }",
        "    http-request return status 200 content-type text/plain string ok if { path /healthz }",
        "",
    ]
    return "\n".join(lines)


def dispatcher_backend(model: ModelSettings) -> str:
    return f"model-{slug(model.name)}"


def dispatcher_path(model: ModelSettings) -> str:
    """The model's base path on the dispatcher (LiteLLM's api_base adds /api/chat or /api/embed)."""
    return f"{DISPATCHER_PATH}/{slug(model.name)}"


def dispatcher_lines(settings: StackSettings, listen: Listen) -> list[str]:
    """The GPU dispatcher: one queue per model in front of its hosts' slots.

    Every replica sends a model's requests to one backend here, whose servers are the model's GPU hosts,
    each with `maxconn` = the host's `parallel` (its OLLAMA_NUM_PARALLEL). A request goes to the host with
    the fewest requests per slot; when every slot is taken it waits in the backend's queue and goes to the
    first slot that frees on any host: a host that answers faster frees its slots sooner and gets more
    requests. One dispatcher for all replicas, so the slots are counted once, not per replica. A host
    that refuses connections, times out or answers 5xx `fall` times in a row is taken out at once (and by
    its failed health checks); its requests are sent again to another host when HAProxy still holds them
    (bodies up to tune.bufsize), else LiteLLM retries them here. It comes back after `rise` good checks.
    """
    router = settings.router
    health = router.host_health
    lines = [
        "frontend dispatcher",
        "    # Reached by the replicas only (not published): every Ollama request, by model.",
        f"    bind {listen.dispatcher}",
        "    option dontlog-normal",
    ]
    for model in settings.models:
        backend, path = dispatcher_backend(model), dispatcher_path(model)
        lines += [f"    acl {backend} path_beg {path}/",
                  _refuse(503, f"no GPU host serving {model.name} is up",
                          f"{backend} {{ nbsrv({backend}) lt 1 }}", ollama=True)]
        if router.queue.max_waiting is not None:
            lines.append(_refuse(429, f"{model.name}: every GPU slot is busy and {router.queue.max_waiting} requests "
                                 "are waiting", f"{backend} {{ queue({backend}) ge {router.queue.max_waiting} }}",
                                 ollama=True))
    # HAProxy runs every http-request rule before any use_backend: they come first, as they run.
    lines += [f"    use_backend {dispatcher_backend(m)} if {dispatcher_backend(m)}" for m in settings.models]
    lines += ["    default_backend unknown-model", "",
              "backend unknown-model",
              _refuse(404, "no such model on the GPU dispatcher", "TRUE", ollama=True), ""]
    for model in settings.models:
        backend = dispatcher_backend(model)
        timeout = settings.model_timeout(model)
        queue = router.queue.timeout_seconds or timeout
        lines += [
            f"backend {backend}",
            "    balance leastconn",
            f"    http-request replace-path {dispatcher_path(model)}(/.*) \\1",
            f"    timeout queue {queue}s",
            f"    timeout connect {health.connect_timeout_seconds}s",
            f"    timeout server {max(timeout, settings.model_stream_timeout(model)) + 30}s",
            "    # A request whose replica gave up (its timeout) leaves the queue instead of taking a slot.",
            "    option abortonclose",
            "    # Another host gets the request when the chosen one refuses it, closes without an answer",
            "    # or answers 5xx, while HAProxy holds the whole request.",
            "    retry-on conn-failure empty-response junk-response 500 502 503 504",
            "    option redispatch 1",
            "    option httpchk",
            "    http-check send meth GET uri /",
            "    http-check expect status 200",
            f"    default-server check inter {health.check_interval_seconds}s fall {health.fall} rise {health.rise} "
            f"observe layer7 error-limit {health.fall} on-error mark-down",
        ]
        for host_name in model.hosts:
            host = settings.host(host_name)
            # A host name is looked up through Docker's DNS (which forwards other names to the host's
            # resolvers) once HAProxy runs, and again as it changes; an IP address needs no lookup.
            lookup = "" if ip_or_none(host.address) is not None else " init-addr none resolvers docker resolve-prefer ipv4"
            lines.append(f"    server {host.name} {host_port(host.address, host.ollama_port)} "
                         f"maxconn {host.parallel} weight {min(host.parallel, 256)}{lookup}")
        lines.append("")
    return lines


def _refuse(status: int, message: str, condition: str, ollama: bool = False) -> str:
    """An answer from the load balancer itself, shaped like LiteLLM's (OpenAI's) error bodies, or like
    Ollama's (`{"error": "..."}`) where LiteLLM reads it."""
    body = ('{"error": "' + message + '"}' if ollama else
            '{"error": {"message": "' + message + '", "type": "invalid_request_error", "code": "' + str(status) + '"}}')
    return f"    http-request return status {status} content-type application/json string '{body}' if {condition}"


def published_url(settings: StackSettings) -> str:
    """The one URL clients use: the load balancer, by the certificate's name when TLS has one."""
    gateway = settings.gateway
    if settings.on_kubernetes:
        ingress = settings.kubernetes.ingress
        if not ingress.enabled:
            return f"http://{settings.names.loadbalancer}.{settings.namespace}.svc:{HTTP_PORT}"
        return f"{'https' if ingress.tls.enabled else 'http'}://{ingress.host}"
    tls = gateway.load_balancer.tls
    url = local_url(gateway.bind_address, gateway.port)
    if not tls.enabled:
        return url
    return f"https://{host_port(tls.server_name, gateway.port)}" if tls.server_name else url.replace("http://", "https://", 1)
