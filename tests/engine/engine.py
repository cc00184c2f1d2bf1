"""The real Docker engine the engine tier runs on: Debian 12's docker.io (20.10.24), not a double.

This machine has no systemd, so `dockerd` is started by hand when nothing answers on the socket, waited
for, and stopped afterwards only if these tests started it (an engine that was already running is left
as it was). The measurements behind each step are in ../shared/engine/README.md of the project's
workplace: overlay2 works here (vfs is the fallback), dockerd sets iptables' FORWARD policy to DROP,
and a stopped dockerd leaves an nsfs mount at /run/docker/netns/default.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import time
from pathlib import Path
from typing import Iterator, Optional

CACHE = Path(os.environ.get("LITELLM_GATEWAY_TEST_CACHE", Path.home() / ".cache" / "litellm-gateway-tests")) / "engine"
SOCKET = "/var/run/docker.sock"
# Debian's CLI (20.10): a newer /usr/local/bin/docker may come first in PATH, and its BuildKit needs buildx.
DOCKER_CLI = "/usr/bin/docker"


class EngineUnavailable(RuntimeError):
    """What is missing to run the engine tier, said plainly (the tests fail, never skip)."""


def _client(timeout: int = 300):
    import docker

    return docker.DockerClient(base_url=f"unix://{SOCKET}", timeout=timeout, version="1.41")


def _answers() -> bool:
    try:
        client = _client(timeout=5)
        try:
            return bool(client.ping())
        finally:
            client.close()
    except Exception:  # noqa: BLE001 - not up (yet)
        return False


def _forward_policy() -> Optional[str]:
    done = subprocess.run(["iptables", "-S", "FORWARD"], capture_output=True, text=True)
    for line in done.stdout.splitlines():
        if line.startswith("-P FORWARD "):
            return line.split()[2]
    return None


class Engine:
    """A Docker engine that answers on SOCKET; `started` says whether this process started it."""

    def __init__(self) -> None:
        self.started = False
        self.process: Optional[subprocess.Popen] = None
        self.log = CACHE / "dockerd.log"
        self._forward: Optional[str] = None
        self.client = None

    def start(self, deadline_seconds: float = 60) -> "Engine":
        if not _answers():
            dockerd = shutil.which("dockerd")
            if dockerd is None or not Path(DOCKER_CLI).exists():
                raise EngineUnavailable("the engine tier needs Debian's docker.io (apt-get install docker.io; "
                                        ".ci/run installs it)")
            if os.geteuid() != 0:
                raise EngineUnavailable("starting dockerd needs root: run the tests as root, as CI does")
            CACHE.mkdir(parents=True, exist_ok=True)
            self._forward = _forward_policy()
            for driver in ("overlay2", "vfs"):
                with open(self.log, "ab") as log:
                    self.process = subprocess.Popen(
                        [dockerd, f"--storage-driver={driver}", "--host", f"unix://{SOCKET}"],
                        stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, start_new_session=True)
                end = time.monotonic() + deadline_seconds
                while time.monotonic() < end and self.process.poll() is None and not _answers():
                    time.sleep(0.25)
                if _answers():
                    self.started = True
                    break
                self._terminate()
            else:
                tail = self.log.read_text(errors="replace")[-2000:] if self.log.exists() else ""
                raise EngineUnavailable(f"dockerd did not come up (log {self.log}):\n{tail}")
        self.client = _client()
        return self

    def _terminate(self) -> None:
        if self.process is None:
            return
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=60)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=10)
        self.process = None

    def stop(self) -> None:
        if self.client is not None:
            self.client.close()
            self.client = None
        if not self.started:
            return
        self._terminate()
        self.started = False
        # What a stopped dockerd leaves behind (../shared/engine/README.md, "Pitfalls seen").
        with open("/proc/mounts") as mounts:
            leftovers = [line.split()[1] for line in mounts if line.split()[1].startswith("/run/docker/netns")]
        for mount in sorted(leftovers, reverse=True):
            subprocess.run(["umount", "-l", mount], capture_output=True)
        if self._forward and self._forward != _forward_policy():
            subprocess.run(["iptables", "-P", "FORWARD", self._forward], capture_output=True)


@contextlib.contextmanager
def docker_engine() -> Iterator[Engine]:
    engine = Engine().start()
    try:
        yield engine
    finally:
        engine.stop()
