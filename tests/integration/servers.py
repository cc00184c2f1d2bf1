"""Start real servers on loopback for the integration tests, wait for them, and always stop them."""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Iterator, Optional

import httpx


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


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
def redis_server(password: str) -> Iterator[int]:
    port = free_port()
    process = subprocess.Popen(
        [require_program("redis-server"), "--port", str(port), "--bind", "127.0.0.1", "--save", "",
         "--appendonly", "no", "--requirepass", password],
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


class LiteLLMProcess:
    def __init__(self, process: subprocess.Popen, port: int, log_path: Path):
        self.process = process
        self.port = port
        self.log_path = log_path

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

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


@contextlib.contextmanager
def litellm_proxy(config_text: str, env: dict[str, str], timeout: float = 120) -> Iterator[LiteLLMProcess]:
    """The real LiteLLM proxy (pip litellm[proxy]) on a free loopback port, ready when yielded."""
    workdir = Path(tempfile.mkdtemp(prefix="litellm-test-"))
    config_path = workdir / "config.yaml"
    config_path.write_text(config_text)
    log_path = workdir / "proxy.log"
    port = free_port()
    litellm_cli = shutil.which("litellm") or str(Path(sys.executable).parent / "litellm")
    with open(log_path, "wb") as log:
        process = subprocess.Popen(
            [litellm_cli, "--config", str(config_path), "--host", "127.0.0.1", "--port", str(port),
             "--num_workers", "1"],
            stdout=log, stderr=subprocess.STDOUT, env=litellm_env(env), cwd=workdir, start_new_session=True,
        )
    proxy = LiteLLMProcess(process, port, log_path)
    try:
        deadline = time.monotonic() + timeout
        while True:
            if process.poll() is not None:
                raise RuntimeError(f"litellm exited with {process.returncode}:\n{proxy.log()[-4000:]}")
            with contextlib.suppress(httpx.HTTPError):
                if httpx.get(f"{proxy.url}/health/liveliness", timeout=2).status_code == 200:
                    break
            if time.monotonic() > deadline:
                raise RuntimeError(f"litellm not ready after {timeout} s:\n{proxy.log()[-4000:]}")
            time.sleep(0.5)
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
        litellm_cli = shutil.which("litellm") or str(Path(sys.executable).parent / "litellm")
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
