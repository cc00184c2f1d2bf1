"""Start real servers on loopback for the integration tests, wait for them, and always stop them."""

from __future__ import annotations

import contextlib
import json
import os
import random
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from dataclasses import dataclass
from typing import Iterator, Optional

import httpx


def _ephemeral_range() -> tuple[int, int]:
    try:
        low, high = map(int, Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split())
        return low, high
    except (OSError, ValueError):
        return 32768, 60999


_handed_out: set[int] = set()


def _bindable(port: int) -> bool:
    try:
        for kind in (socket.SOCK_STREAM, socket.SOCK_DGRAM):
            with socket.socket(socket.AF_INET, kind) as sock:
                sock.bind(("127.0.0.1", port))
    except OSError:
        return False
    return True


def free_port(pair: bool = False) -> int:
    """A loopback port for a server a test starts, which binds it itself a moment later; with `pair`, one
    whose next port is free too (a server that also listens on port + 1, as OpenBao's cluster listener).

    Port 0 would pick from the kernel's ephemeral range, where every outgoing connection on the machine
    also takes its source port: between this check and the server's bind, one could take it. So the port
    comes from below that range (never used as a source port), is checked to be free on TCP and UDP, and
    is never handed out twice by this test run."""
    low, high = _ephemeral_range()
    top = min(low, 65536) - 1 - pair
    if top < 4096:  # a machine whose ephemeral range covers nearly everything: the kernel's pick
        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            return sock.getsockname()[1]
    for _ in range(200):
        port = random.randint(max(1024, top - 12000), top)
        ports = [port, port + 1] if pair else [port]
        if any(p in _handed_out for p in ports) or not all(_bindable(p) for p in ports):
            continue
        _handed_out.update(ports)
        return port
    raise RuntimeError(f"no free loopback port below the ephemeral range ({low}-{high})")


def loopback_subnet() -> str:
    """A /24 of 127.0.0.0/8 for one test's servers, each on an address of its own as on a Docker network
    (the second octet from the process, the third at random; never 127.0.0.x)."""
    return f"127.{os.getpid() % 200 + 20}.{random.randrange(200) + 20}"


def require_root(why: str) -> None:
    """Fail (never skip) a test that needs root, saying why."""
    if os.geteuid() != 0:
        import pytest

        pytest.fail(f"{why}; run the suite as root (CI does)")


def require_program(name: str) -> str:
    path = shutil.which(name) or (f"/usr/bin/{name}" if Path(f"/usr/bin/{name}").exists() else None)
    if not path:
        raise RuntimeError(f"{name} is not installed; run .ci/run (or apt-get install it) first")
    return path


def _stop(process: subprocess.Popen) -> None:
    if process.poll() is None:
        os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait(timeout=5)


@contextlib.contextmanager
def redis_server(password: str, config_text: Optional[str] = None) -> Iterator[int]:
    """redis-server on loopback; with `config_text`, started from that redis.conf (as the stack does)."""
    port = free_port()
    config_dir = Path(tempfile.mkdtemp(prefix="redis-test-"))
    if config_text is None:
        args = ["--save", "", "--appendonly", "no", "--requirepass", password]
    else:
        (config_dir / "redis.conf").write_text(config_text)
        args = [str(config_dir / "redis.conf")]
    process = subprocess.Popen(
        [require_program("redis-server"), *args, "--port", str(port), "--bind", "127.0.0.1", "--dir", str(config_dir)],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, start_new_session=True,
    )
    try:
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            with contextlib.suppress(OSError):
                with socket.create_connection(("127.0.0.1", port), timeout=1) as sock:
                    sock.sendall(f"AUTH {password}\r\nPING\r\n".encode())
                    if b"PONG" in sock.recv(100):
                        break
            if process.poll() is not None:
                raise RuntimeError(f"redis-server exited: {process.stdout.read().decode()}")
            time.sleep(0.1)
        else:
            raise RuntimeError("redis-server did not become ready in 20 s")
        yield port
    finally:
        _stop(process)
        shutil.rmtree(config_dir, ignore_errors=True)


def _wait_until_ready(name: str, process: subprocess.Popen, url: str, log_path: Path, timeout: float,
                      auth: Optional[tuple[str, str]] = None) -> None:
    """Poll `url` until it answers 200; fail with the server's log if it exits or takes too long."""
    deadline = time.monotonic() + timeout
    while True:
        if process.poll() is not None:
            raise RuntimeError(f"{name} exited with {process.returncode}:\n{log_path.read_text(errors='replace')[-4000:]}")
        with contextlib.suppress(httpx.HTTPError):
            if httpx.get(url, timeout=2, auth=auth).status_code == 200:
                return
        if time.monotonic() > deadline:
            raise RuntimeError(f"{name} not ready after {timeout} s:\n{log_path.read_text(errors='replace')[-4000:]}")
        time.sleep(0.3)


class LiteLLMProcess:
    def __init__(self, process: subprocess.Popen, port: int, log_path: Path, host: str = "127.0.0.1"):
        self.process = process
        self.port = port
        self.log_path = log_path
        self.host = host

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")


def litellm_env(extra: dict[str, str]) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("LITELLM_", "DATABASE_URL", "REDIS_"))}
    env.update({
        # As in the container: the bundled cost map, no network fetch at start.
        "LITELLM_LOCAL_MODEL_COST_MAP": "True",
        "LITELLM_MODE": "PRODUCTION",
        "LITELLM_LOG": "INFO",
        "NO_PROXY": "127.0.0.1,localhost",
    })
    env.update(extra)
    return env


def litellm_program() -> str:
    """The `litellm` of this test run's environment (the pinned one), not whichever is first on PATH."""
    beside = Path(sys.executable).parent / "litellm"
    if not beside.is_file():
        raise AssertionError(f"no litellm beside {sys.executable}: install requirements-test.txt into this environment")
    return str(beside)


@contextlib.contextmanager
def litellm_proxy(config_text: str, env: dict[str, str], timeout: float = 120, host: str = "127.0.0.1",
                  port: Optional[int] = None, stop_grace_seconds: Optional[int] = None) -> Iterator[LiteLLMProcess]:
    """The real LiteLLM proxy (pip litellm[proxy]) on a free loopback port, ready when yielded.

    With `stop_grace_seconds`, it runs as a replica container does: under the rendered entrypoint
    script (renderers/replica_entrypoint.py) with the stack's command line and environment; the
    yielded process is then the script, which is what `docker stop` signals."""
    workdir = Path(tempfile.mkdtemp(prefix="litellm-test-"))
    config_path = workdir / "config.yaml"
    config_path.write_text(config_text)
    log_path = workdir / "proxy.log"
    port = port or free_port()
    litellm_cli = litellm_program()
    command = [litellm_cli, "--config", str(config_path), "--host", host, "--port", str(port), "--num_workers", "1"]
    if stop_grace_seconds is not None:
        from renderers import replica_entrypoint

        command = [*replica_entrypoint.entrypoints(port, stop_grace_seconds, host=host, litellm=litellm_cli),
                   *replica_entrypoint.litellm_arguments(str(config_path), port, 1, host=host)]
        env = {**env, **replica_entrypoint.environment(env["LITELLM_MASTER_KEY"], stop_grace_seconds)}
    with open(log_path, "wb") as log:
        process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, env=litellm_env(env), cwd=workdir,
                                   start_new_session=True)
    proxy = LiteLLMProcess(process, port, log_path, host)
    try:
        _wait_until_ready("litellm", process, f"{proxy.url}/health/liveliness", log_path, timeout)
        yield proxy
    finally:
        _stop(process)
        shutil.rmtree(workdir, ignore_errors=True)


def run_litellm_until_exit(config_text: str, env: dict[str, str], timeout: float = 90) -> tuple[Optional[int], str]:
    """Start the proxy and wait for it to exit by itself (for boot refusals); returns (code, output)."""
    workdir = Path(tempfile.mkdtemp(prefix="litellm-test-"))
    try:
        config_path = workdir / "config.yaml"
        config_path.write_text(config_text)
        litellm_cli = litellm_program()
        process = subprocess.Popen(
            [litellm_cli, "--config", str(config_path), "--host", "127.0.0.1", "--port", str(free_port())],
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, env=litellm_env(env), cwd=workdir,
            start_new_session=True,
        )
        try:
            output, _ = process.communicate(timeout=timeout)
            return process.returncode, output.decode(errors="replace")
        except subprocess.TimeoutExpired:
            _stop(process)
            return None, (process.stdout.read() or b"").decode(errors="replace")
    finally:
        shutil.rmtree(workdir, ignore_errors=True)


class SshHost:
    """A GPU host stand-in: real sshd on loopback, with the `ollama` test double on its PATH."""

    def __init__(self, root: Path, port: int, user: str):
        self.root = root
        self.port = port
        self.user = user
        self.state_path = root / "ollama-state.json"
        self.client_key = (root / "client_key").read_text()
        self.host_key = " ".join((root / "host_key.pub").read_text().split()[:2])

    def transport(self, host_name: str, pin_host_key: bool = True, private_key: Optional[str] = None) -> dict:
        return {"kind": "ssh", "host": host_name, "address": "127.0.0.1", "port": self.port, "user": self.user,
                "private_key": private_key or self.client_key, "host_key": self.host_key if pin_host_key else ""}

    @property
    def home(self) -> Path:
        """The login's HOME on this host (sshd sets it)."""
        return self.root / "home"

    def state(self) -> dict:
        return json.loads(self.state_path.read_text())

    def set_state(self, **changes) -> None:
        state = self.state()
        state.update(changes)
        self.state_path.write_text(json.dumps(state))


@contextlib.contextmanager
def ssh_host(ollama_double: Path, registry: dict, models: Optional[dict] = None) -> Iterator[SshHost]:
    """Start sshd (Debian's openssh-server) on a free loopback port; the current user logs in by key."""
    sshd = require_program("sshd") if shutil.which("sshd") else "/usr/sbin/sshd"
    if not Path(sshd).exists():
        raise RuntimeError("sshd is not installed; run .ci/run (apt-get install openssh-server) first")
    root = Path(tempfile.mkdtemp(prefix="gpu-host-"))
    os.chmod(root, 0o755)
    try:
        for key in ("host_key", "client_key"):
            subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(root / key)], check=True)
        (root / "authorized_keys").write_text((root / "client_key.pub").read_text())
        (root / "home").mkdir()
        bin_dir = root / "bin"
        bin_dir.mkdir()
        (bin_dir / "ollama").write_text(f"#!{sys.executable}\n" + ollama_double.read_text())
        (bin_dir / "ollama").chmod(0o755)
        state = {"models": models or {}, "registry": registry, "fail": {}, "pulls": 0}
        (root / "ollama-state.json").write_text(json.dumps(state))
        port = free_port()
        config = root / "sshd_config"
        config.write_text("\n".join([
            f"Port {port}", "ListenAddress 127.0.0.1", f"HostKey {root / 'host_key'}",
            f"PidFile {root / 'sshd.pid'}",
            # The operator's key, and what the stack authorizes in the login's ~/.ssh (HOME below).
            f"AuthorizedKeysFile {root / 'authorized_keys'} {root / 'home' / '.ssh' / 'authorized_keys'}",
            "PubkeyAuthentication yes", "PasswordAuthentication no", "KbdInteractiveAuthentication no",
            "PermitRootLogin prohibit-password", "StrictModes no", "UsePAM no", "LogLevel ERROR",
            f"SetEnv PATH={bin_dir}:/usr/local/bin:/usr/bin:/bin OLLAMA_DOUBLE_STATE={root / 'ollama-state.json'} "
            f"HOME={root / 'home'}",
            "",
        ]))
        Path("/run/sshd").mkdir(parents=True, exist_ok=True)  # sshd's privilege separation directory
        process = subprocess.Popen([sshd, "-D", "-e", "-f", str(config)], stdout=subprocess.PIPE,
                                   stderr=subprocess.STDOUT, start_new_session=True)
        try:
            deadline = time.monotonic() + 20
            while True:
                with contextlib.suppress(OSError):
                    with socket.create_connection(("127.0.0.1", port), timeout=1) as sock:
                        if sock.recv(4).startswith(b"SSH-"):
                            break
                if process.poll() is not None:
                    raise RuntimeError(f"sshd exited: {process.stdout.read().decode()}")
                if time.monotonic() > deadline:
                    raise RuntimeError("sshd did not answer in 20 s")
                time.sleep(0.1)
            import getpass

            yield SshHost(root, port, getpass.getuser())
        finally:
            _stop(process)
    finally:
        shutil.rmtree(root, ignore_errors=True)


@contextlib.contextmanager
def prometheus_server(config_file: Path, data_dir: Path, web_config: Optional[Path] = None,
                      auth: Optional[tuple[str, str]] = None, port: Optional[int] = None,
                      resolver: Optional[str] = None) -> Iterator[str]:
    """Debian's Prometheus on a free loopback port with the given config; yields its URL.

    With `resolver` (an address whose port 53 answers DNS, such as a DnsDouble's), Prometheus runs in
    its own mount namespace where /etc/resolv.conf names only that resolver, as a container's names
    Docker's embedded DNS: its DNS service discovery (which reads /etc/resolv.conf itself) and its name
    lookups ask that server. The machine's own resolv.conf is not touched."""
    port = port or free_port()
    data_dir.mkdir(parents=True, exist_ok=True)
    log_path = data_dir.parent / "prometheus.log"
    command = [require_program("prometheus"), f"--config.file={config_file}", f"--storage.tsdb.path={data_dir}",
               f"--web.listen-address=127.0.0.1:{port}", "--web.enable-lifecycle",
               *([f"--web.config.file={web_config}"] if web_config else [])]
    if resolver is not None:
        resolv_conf = data_dir.parent / "resolv.conf"
        resolv_conf.write_text(f"nameserver {resolver}\noptions timeout:1 attempts:1\n")
        command = [require_program("unshare"), "--mount", "--propagation", "private", "sh", "-c",
                   'mount --bind "$0" /etc/resolv.conf && exec "$@"', str(resolv_conf), *command]
    with open(log_path, "wb") as log:
        process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    url = f"http://127.0.0.1:{port}"
    try:
        _wait_until_ready("prometheus", process, f"{url}/-/ready", log_path, timeout=60, auth=auth)
        yield url
    finally:
        _stop(process)


@contextlib.contextmanager
def exporter_server(program: str, listen: str, args: list[str], env: Optional[dict[str, str]] = None,
                    timeout: float = 30) -> Iterator[str]:
    """A Prometheus exporter from Debian (prometheus-node-exporter, prometheus-redis-exporter) on
    `listen` (host:port); yields its /metrics URL once it answers."""
    workdir = Path(tempfile.mkdtemp(prefix="exporter-"))
    log_path = workdir / "exporter.log"
    with open(log_path, "wb") as log:
        process = subprocess.Popen([require_program(program), f"--web.listen-address={listen}", *args],
                                   stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
                                   env={"PATH": "/usr/bin:/bin", **(env or {})})
    url = f"http://{listen}/metrics"
    try:
        _wait_until_ready(program, process, url, log_path, timeout=timeout)
        yield url
    finally:
        _stop(process)
        shutil.rmtree(workdir, ignore_errors=True)


def _postgres_bin(program: str) -> str:
    candidates = sorted(Path("/usr/lib/postgresql").glob(f"*/bin/{program}"), key=lambda p: int(p.parts[-3]))
    if not candidates:
        raise RuntimeError("PostgreSQL server binaries are not installed; run .ci/run (apt-get install postgresql)")
    return str(candidates[-1])


@dataclass(frozen=True)
class TlsMaterial:
    """A throwaway CA and a server certificate it signed for 127.0.0.1 (and localhost), made with openssl."""

    ca: Path
    server_certificate: Path
    server_key: Path

    @property
    def ca_pem(self) -> str:
        return self.ca.read_text()


def make_certificates(directory: Path, name: str = "test") -> TlsMaterial:
    """A CA named `name` and a server certificate for 127.0.0.1 it signed, under `directory` (EC P-256, 2 days)."""
    directory.mkdir(parents=True, exist_ok=True)

    def openssl(*args: str) -> None:
        subprocess.run(["openssl", *args], check=True, capture_output=True)

    ca, ca_key = directory / f"{name}-ca.pem", directory / f"{name}-ca.key"
    cert, key, csr = directory / f"{name}-server.pem", directory / f"{name}-server.key", directory / f"{name}.csr"
    openssl("req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes", "-keyout", str(ca_key),
            "-out", str(ca), "-days", "2", "-subj", f"/CN={name} test CA")
    openssl("req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes", "-keyout", str(key), "-out",
            str(csr), "-subj", "/CN=127.0.0.1")
    (directory / f"{name}.ext").write_text("subjectAltName=IP:127.0.0.1,DNS:localhost\n")
    openssl("x509", "-req", "-in", str(csr), "-CA", str(ca), "-CAkey", str(ca_key), "-CAcreateserial", "-out",
            str(cert), "-days", "2", "-extfile", str(directory / f"{name}.ext"))
    return TlsMaterial(ca, cert, key)


def _redis_tls_args(certificates: TlsMaterial, port: int) -> list[str]:
    """redis-server's arguments for TLS only on loopback `port` (no plain port), replication over TLS too."""
    return ["--port", "0", "--tls-port", str(port), "--bind", "127.0.0.1",
            "--tls-cert-file", str(certificates.server_certificate), "--tls-key-file", str(certificates.server_key),
            "--tls-ca-cert-file", str(certificates.ca), "--tls-auth-clients", "no", "--tls-replication", "yes"]


def _acl_text(users: dict[str, str]) -> str:
    """ACL users (name -> password, all commands and keys); the `default` user off."""
    return "user default off\n" + "".join(f"user {name} on >{password} ~* &* +@all\n" for name, password in users.items())


def redis_tls_cli(certificates: TlsMaterial, port: int, user: str, password: str, *command: str,
                  cluster: bool = False) -> subprocess.CompletedProcess:
    """redis-cli over TLS (the server's certificate checked against the test CA) as an ACL user."""
    return subprocess.run(["redis-cli", "--tls", "--cacert", str(certificates.ca), "-h", "127.0.0.1", "-p", str(port),
                           "--user", user, "--no-auth-warning", *(["-c"] if cluster else []), *command],
                          capture_output=True, text=True, timeout=60, env={**os.environ, "REDISCLI_AUTH": password})


def _start_redis(arguments: list[str], log: Path) -> subprocess.Popen:
    with log.open("wb") as output:
        return subprocess.Popen([require_program("redis-server"), *arguments], stdout=output,
                                stderr=subprocess.STDOUT, start_new_session=True)


def _await_redis(processes: list[subprocess.Popen], logs: list[Path], ready, what: str, timeout: float = 30) -> None:
    """Wait until `ready()` is true; a process that exits, or the timeout, raises with the servers' logs."""
    deadline = time.monotonic() + timeout
    while not ready():
        if any(p.poll() is not None for p in processes) or time.monotonic() > deadline:
            tails = "\n".join(f"{log.name}: {log.read_text(errors='replace')[-1500:]}" for log in logs if log.exists())
            raise RuntimeError(f"{what} did not start:\n{tails}")
        time.sleep(0.2)


@contextlib.contextmanager
def redis_tls_server(certificates: TlsMaterial, users: dict[str, str]) -> Iterator[int]:
    """redis-server on loopback with TLS only (no plain port) and ACL users (`users`: name -> password, all
    commands and keys); the `default` user is off, so a client that names no user is refused. Yields the port."""
    port = free_port()
    with _redis_group("redis-tls-test-", users) as group:
        group.start("server", [*_redis_tls_args(certificates, port), "--aclfile", str(group.acl), "--save", "",
                               "--appendonly", "no", "--dir", str(group.directory)])
        name, password = next(iter(users.items()))
        group.wait(lambda: redis_tls_cli(certificates, port, name, password, "ping").stdout.strip() == "PONG",
                   "redis-server with TLS")
        yield port


@dataclass
class _RedisGroup:
    """Redis servers a test starts together, in one temporary directory with one ACL file."""

    directory: Path
    acl: Path
    processes: list
    logs: list

    def start(self, name: str, arguments: list[str]) -> None:
        self.logs.append(self.directory / f"{name}.log")
        self.processes.append(_start_redis(arguments, self.logs[-1]))

    def wait(self, ready, what: str, timeout: float = 30) -> None:
        _await_redis(self.processes, self.logs, ready, what, timeout)


@contextlib.contextmanager
def _redis_group(prefix: str, users: dict[str, str]) -> Iterator[_RedisGroup]:
    """A _RedisGroup whose servers are always stopped and whose directory is always removed."""
    directory = Path(tempfile.mkdtemp(prefix=prefix))
    group = _RedisGroup(directory, directory / "users.acl", [], [])
    group.acl.write_text(_acl_text(users))
    try:
        yield group
    finally:
        for process in group.processes:
            _stop(process)
        shutil.rmtree(directory, ignore_errors=True)


@dataclass
class SentinelSet:
    """A primary, its replica and three Sentinels (quorum 2), all TLS-only with the same ACL user."""

    primary_name: str
    data_ports: list[int]
    sentinel_ports: list[int]
    certificates: TlsMaterial
    user: str
    password: str

    def cli(self, port: int, *command: str) -> str:
        done = redis_tls_cli(self.certificates, port, self.user, self.password, *command)
        assert done.returncode == 0 and not done.stdout.startswith("ERR"), done.stdout + done.stderr
        return done.stdout.strip()

    def primary_port(self) -> int:
        """The primary's port, as the first Sentinel that answers sees it."""
        return int(self.cli(self.sentinel_ports[0], "sentinel", "get-master-addr-by-name",
                            self.primary_name).split()[1])

    def fail_over(self, timeout: float = 60) -> int:
        """SENTINEL FAILOVER, then wait until the old primary serves as a replica and every Sentinel names the
        new one; returns the new primary's port."""
        old = self.primary_port()
        answer = self.cli(self.sentinel_ports[0], "sentinel", "failover", self.primary_name)
        assert answer == "OK", answer
        deadline = time.monotonic() + timeout
        while True:
            seen = {int(self.cli(port, "sentinel", "get-master-addr-by-name", self.primary_name).split()[1])
                    for port in self.sentinel_ports}
            if len(seen) == 1 and old not in seen and self.cli(old, "role").split()[0] == "slave":
                return seen.pop()
            if time.monotonic() > deadline:
                raise AssertionError(f"no failover from {old} within {timeout} s: the Sentinels name {seen}")
            time.sleep(0.3)


@contextlib.contextmanager
def redis_sentinel_set(certificates: TlsMaterial, user: str, password: str,
                       primary_name: str = "gateway") -> Iterator[SentinelSet]:
    """A primary with one replica behind three Sentinels on loopback, each TLS-only with the ACL user `user`
    (the `default` user off): the replica and the Sentinels authenticate to the data nodes as `user`, the
    Sentinels to each other too, and the Sentinels require `user`'s password of their clients."""
    data_ports, sentinel_ports = [free_port(), free_port()], [free_port(), free_port(), free_port()]
    with _redis_group("redis-sentinel-test-", {user: password}) as group:
        for index, port in enumerate(data_ports):
            (group.directory / f"data-{port}").mkdir()
            replica = ["--replicaof", "127.0.0.1", str(data_ports[0])] if index else []
            group.start(f"data-{port}", [*_redis_tls_args(certificates, port), "--aclfile", str(group.acl),
                                         "--masteruser", user, "--masterauth", password, *replica, "--save", "",
                                         "--appendonly", "no", "--dir", str(group.directory / f"data-{port}")])
        for port in sentinel_ports:
            config = group.directory / f"sentinel-{port}.conf"
            config.write_text(
                f"dir {group.directory}\n" + _acl_text({user: password}) +
                f"sentinel sentinel-user {user}\nsentinel sentinel-pass {password}\n"
                f"sentinel monitor {primary_name} 127.0.0.1 {data_ports[0]} 2\n"
                f"sentinel auth-user {primary_name} {user}\nsentinel auth-pass {primary_name} {password}\n"
                f"sentinel down-after-milliseconds {primary_name} 3000\nsentinel failover-timeout {primary_name} 20000\n")
            group.start(f"sentinel-{port}", [str(config), "--sentinel", *_redis_tls_args(certificates, port)])

        def ready() -> bool:
            """Replication is up, and every Sentinel knows the replica and the two other Sentinels."""
            replicated = redis_tls_cli(certificates, data_ports[1], user, password, "info", "replication")
            if "master_link_status:up" not in replicated.stdout:
                return False
            for port in sentinel_ports:
                replicas = redis_tls_cli(certificates, port, user, password, "sentinel", "replicas", primary_name)
                quorum = redis_tls_cli(certificates, port, user, password, "sentinel", "ckquorum", primary_name)
                if f"127.0.0.1:{data_ports[1]}" not in replicas.stdout or not quorum.stdout.startswith("OK 3 usable"):
                    return False
            return True
        group.wait(ready, "the Sentinel set", timeout=60)
        yield SentinelSet(primary_name, data_ports, sentinel_ports, certificates, user, password)


@contextlib.contextmanager
def redis_tls_cluster(certificates: TlsMaterial, user: str, password: str, primaries: int = 3) -> Iterator[list[int]]:
    """A Redis Cluster of `primaries` primaries on loopback (the fewest Redis accepts), TLS-only on the client
    and cluster bus ports, with the ACL user `user` (the `default` user off); yields the nodes' ports."""
    ports = [free_port() for _ in range(primaries)]
    with _redis_group("redis-cluster-test-", {user: password}) as group:
        for port in ports:
            (group.directory / str(port)).mkdir()
            group.start(str(port), [
                *_redis_tls_args(certificates, port), "--tls-cluster", "yes", "--cluster-enabled", "yes",
                "--cluster-port", str(free_port()), "--cluster-config-file", str(group.directory / str(port) / "nodes.conf"),
                "--aclfile", str(group.acl), "--masteruser", user, "--masterauth", password,
                "--save", "", "--appendonly", "no", "--dir", str(group.directory / str(port))])
        group.wait(lambda: all(redis_tls_cli(certificates, port, user, password, "ping").stdout.strip() == "PONG"
                               for port in ports), "the cluster's nodes")
        created = redis_tls_cli(certificates, ports[0], user, password, "--cluster", "create",
                                *(f"127.0.0.1:{port}" for port in ports), "--cluster-yes")
        assert created.returncode == 0, created.stdout + created.stderr
        group.wait(lambda: all("cluster_state:ok" in redis_tls_cli(certificates, port, user, password, "cluster",
                                                                    "info").stdout for port in ports),
                   "the cluster", timeout=60)
        yield ports


@contextlib.contextmanager
def postgres_cluster(user: str = "litellm", password: str = "pg-test-password", database: str = "litellm",
                     certificates: Optional["TlsMaterial"] = None):
    """A throwaway PostgreSQL server (Debian's) on a free loopback port; yields its database URL. With
    `certificates`, it accepts TLS connections only (pg_hba: hostssl, and every other TCP connection rejected)."""
    root = Path(tempfile.mkdtemp(prefix="pg-test-"))
    os.chmod(root, 0o755)
    as_postgres = ["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else []  # initdb refuses root
    if as_postgres:
        shutil.chown(root, "postgres")
    data, log = root / "data", root / "server.log"
    port = free_port()
    started = False
    try:
        (root / "pw").write_text(password)
        if as_postgres:
            shutil.chown(root / "pw", "postgres")
        subprocess.run(as_postgres + [_postgres_bin("initdb"), "-D", str(data), "-U", user, f"--pwfile={root / 'pw'}",
                                      "--auth-host=scram-sha-256", "--auth-local=trust", "-E", "UTF8"],
                       check=True, capture_output=True)
        options = f"-p {port} -k {root} -c listen_addresses=127.0.0.1"
        if certificates is not None:
            for source, target in ((certificates.server_certificate, "server.crt"), (certificates.server_key, "server.key")):
                shutil.copy(source, data / target)
                os.chmod(data / target, 0o600)
                if as_postgres:
                    shutil.chown(data / target, "postgres")
            (data / "pg_hba.conf").write_text("local all all trust\n"
                                              "hostssl all all 127.0.0.1/32 scram-sha-256\n"
                                              "host all all 0.0.0.0/0 reject\nhost all all ::/0 reject\n")
            options += " -c ssl=on -c ssl_cert_file=server.crt -c ssl_key_file=server.key"
        subprocess.run(as_postgres + [_postgres_bin("pg_ctl"), "-D", str(data), "-l", str(log), "-w", "-t", "60",
                                      "-o", options, "start"],
                       check=True, capture_output=True)
        started = True
        base = f"postgresql://{user}:{password}@127.0.0.1:{port}"
        tls = f"?sslmode=verify-full&sslrootcert={certificates.ca}" if certificates is not None else ""
        subprocess.run(["psql", f"{base}/postgres{tls}", "-X", "-q", "-c", f'CREATE DATABASE "{database}"'],
                       check=True, capture_output=True)
        yield f"{base}/{database}"
    finally:
        if started:
            subprocess.run(as_postgres + [_postgres_bin("pg_ctl"), "-D", str(data), "-m", "fast", "-w", "stop"],
                           capture_output=True)
        shutil.rmtree(root, ignore_errors=True)


class HaproxyProcess:
    def __init__(self, process: subprocess.Popen, log_path: Path):
        self.process = process
        self.log_path = log_path

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")


@contextlib.contextmanager
def haproxy_server(config_text: str, workdir: Path, ready_url: str, timeout: float = 30) -> Iterator[HaproxyProcess]:
    """Debian's HAProxy in the foreground with `config_text`, ready when `ready_url` answers 200."""
    config, log_path = workdir / "haproxy.cfg", workdir / "haproxy.log"
    config.write_text(config_text)
    with open(log_path, "wb") as log:
        process = subprocess.Popen([require_program("haproxy"), "-db", "-f", str(config)], stdout=log,
                                   stderr=subprocess.STDOUT, start_new_session=True)
    try:
        _wait_until_ready("haproxy", process, ready_url, log_path, timeout)
        yield HaproxyProcess(process, log_path)
    finally:
        _stop(process)
