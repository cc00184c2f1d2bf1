"""TEST INFRASTRUCTURE: the stand-in images the engine tier runs instead of the stack's pinned images.

No container registry is reachable here, so every image the stack declares is replaced by a stand-in
built offline from Debian 12: a debootstrapped minbase (cached as a tarball), then each stand-in's
Dockerfile under images/<name>/, whose first lines say which real image it stands for and what differs.
Nothing here is part of what the stack deploys. Images are built once per machine and content (the tag
is a digest of the build context and the base image), two at a time, and shared by every test.

`standin_for(reference)` maps a declared image reference to its stand-in by repository; a repository
without one raises, naming the reason (Grafana), so a deployment never silently drops a container.
"""

from __future__ import annotations

import concurrent.futures
import hashlib
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Callable, Optional

from engine import CACHE, DOCKER_CLI

HERE = Path(__file__).resolve().parent
IMAGES = HERE / "images"
ROOT = HERE.parents[1]
PREFIX = "litellm-gateway-test"
MINBASE = f"{PREFIX}/debian-minbase:bookworm"
BASE = f"{PREFIX}/debian:bookworm"
ROOTFS_TAR = CACHE / "bookworm-minbase.tar"
WHEELS = CACHE / "wheels"

# The declared image's repository (tag and digest dropped) -> its stand-in under images/.
STANDINS = {
    "postgres": "postgres",
    "redis": "redis",
    "haproxy": "haproxy",
    "hashicorp/vault": "vault",
    "prom/prometheus": "prometheus",
    "oliver006/redis_exporter": "redis-exporter",
    "quay.io/prometheuscommunity/postgres-exporter": "postgres-exporter",
    "ollama/ollama": "ollama",
    "ghcr.io/berriai/litellm-database": "litellm",
}
# Declared images with no honest stand-in, and why (docs/testing.md lists them too).
NO_STANDIN = {
    "grafana/grafana": "Grafana is not packaged in Debian 12 or on PyPI and no registry is reachable to pull it; "
                       "its provisioning and dashboards are checked against a live Prometheus in "
                       "tests/integration/test_monitoring_live.py instead",
}


class NoStandIn(LookupError):
    """A declared image the engine tier has no stand-in for (with the reason)."""


def repository(reference: str) -> str:
    """`ghcr.io/berriai/litellm-database:main-v1` -> `ghcr.io/berriai/litellm-database` (tag/digest dropped)."""
    name = reference.split("@", 1)[0]
    last = name.rsplit("/", 1)[-1]
    if ":" in last:
        name = name[: len(name) - len(last)] + last.split(":", 1)[0]
    return name.removeprefix("docker.io/").removeprefix("library/")


def standin_name(reference: str) -> str:
    repo = repository(reference)
    if repo in STANDINS:
        return STANDINS[repo]
    if repo in NO_STANDIN:
        raise NoStandIn(f"{reference}: no stand-in image: {NO_STANDIN[repo]}")
    raise NoStandIn(f"{reference}: no stand-in image for repository {repo!r} (tests/engine/images.py STANDINS)")


def _cli(*args: str, **kwargs) -> subprocess.CompletedProcess:
    env = {**os.environ, "DOCKER_BUILDKIT": "0"}  # the legacy builder: no buildx on Debian 12
    return subprocess.run([DOCKER_CLI, *args], capture_output=True, text=True, env=env, **kwargs)


def _exists(tag: str) -> bool:
    return _cli("image", "inspect", tag).returncode == 0


def _apt_mirror() -> str:
    for source in Path("/etc/apt/sources.list.d").glob("*.sources"):
        for line in source.read_text().splitlines():
            if line.startswith("URIs:"):
                for uri in line.split()[1:]:
                    if uri.rstrip("/").endswith("/debian"):
                        return uri.rstrip("/")
    sources = Path("/etc/apt/sources.list")
    if sources.exists():
        for line in sources.read_text().splitlines():
            parts = line.split()
            if parts[:1] == ["deb"]:
                for part in parts[1:]:
                    if part.startswith("http") and part.rstrip("/").endswith("/debian"):
                        return part.rstrip("/")
    return "http://deb.debian.org/debian"


def minbase() -> None:
    """Debian 12 minbase from the apt mirror (debootstrap, about 20-100 s), cached as a tarball."""
    if _exists(MINBASE):
        return
    if not ROOTFS_TAR.is_file():
        debootstrap = shutil.which("debootstrap")
        if debootstrap is None:
            raise RuntimeError("the engine tier builds its base image with debootstrap (apt-get install debootstrap; "
                               ".ci/run installs it)")
        ROOTFS_TAR.parent.mkdir(parents=True, exist_ok=True)
        mirror = _apt_mirror()
        with tempfile.TemporaryDirectory(dir=ROOTFS_TAR.parent) as work:
            rootfs = Path(work) / "rootfs"
            done = subprocess.run([debootstrap, "--variant=minbase", "bookworm", str(rootfs), mirror],
                                  capture_output=True, text=True, timeout=1200)
            if done.returncode != 0:
                raise RuntimeError(f"debootstrap failed:\n{done.stdout[-2000:]}\n{done.stderr[-2000:]}")
            security = mirror.rsplit("/", 1)[0] + "/debian-security"
            (rootfs / "etc/apt/sources.list").write_text(
                f"deb {mirror} bookworm main\ndeb {mirror} bookworm-updates main\n"
                f"deb {security} bookworm-security main\n")
            for junk in [*(rootfs / "var/cache/apt/archives").glob("*.deb"), *(rootfs / "var/lib/apt/lists").glob("*")]:
                if junk.is_file():
                    junk.unlink()
            partial = ROOTFS_TAR.with_suffix(".partial")
            subprocess.run(["tar", "--numeric-owner", "-C", str(rootfs), "-cf", str(partial), "."], check=True)
            partial.replace(ROOTFS_TAR)
    with open(ROOTFS_TAR, "rb") as tarball:
        done = subprocess.run([DOCKER_CLI, "import", "-c", 'CMD ["/bin/bash"]', "-", MINBASE], stdin=tarball,
                              capture_output=True, text=True)
    if done.returncode != 0:
        raise RuntimeError(f"docker import of {ROOTFS_TAR} failed: {done.stderr}")


def _ca_files(context: Path) -> None:
    (context / "ca").mkdir()
    for crt in Path("/usr/local/share/ca-certificates").glob("*.crt"):
        shutil.copy(crt, context / "ca" / crt.name)
    shutil.copy("/etc/ssl/certs/ca-certificates.crt", context / "ca-certificates.crt")


def wheels(requirements: list[str]) -> Path:
    """Wheels for the LiteLLM stand-in, fetched once by the host's pip (its index and mirrors). The tests'
    interpreter is CPython 3.11 on x86_64 glibc, as is Debian 12's python3 in the image."""
    key = hashlib.sha256("\n".join(requirements).encode()).hexdigest()[:12]
    target = WHEELS / key
    if (target / ".complete").is_file():
        return target
    target.mkdir(parents=True, exist_ok=True)
    done = subprocess.run([sys.executable, "-m", "pip", "download", "-q", "--disable-pip-version-check",
                           "--only-binary=:all:", "-d", str(target), *requirements],
                          capture_output=True, text=True, timeout=1800)
    if done.returncode != 0:
        raise RuntimeError(f"pip download for the LiteLLM stand-in failed:\n{done.stderr[-3000:]}")
    (target / ".complete").write_text("ok\n")
    return target


def _digest(context: Path, base_id: str) -> str:
    digest = hashlib.sha256(base_id.encode())
    for path in sorted(p for p in context.rglob("*") if p.is_file()):
        digest.update(str(path.relative_to(context)).encode())
        digest.update(b"\0")
        if path.stat().st_size > 64 << 20:  # large files (wheels): name and size
            digest.update(str(path.stat().st_size).encode())
        else:
            digest.update(path.read_bytes())
    return digest.hexdigest()[:16]


def _build(context: Path, tag: str, log: Path) -> None:
    done = _cli("build", "--network", "bridge", "--force-rm", "-t", tag, str(context), timeout=1800)
    log.write_text(done.stdout + done.stderr)
    if done.returncode != 0:
        raise RuntimeError(f"building {tag} failed (log {log}):\n{(done.stdout + done.stderr)[-3000:]}")


def base() -> str:
    """The base image (minbase + this machine's CAs), built every run; returns its image id."""
    minbase()
    with tempfile.TemporaryDirectory() as work:
        context = Path(work)
        shutil.copy(IMAGES / "base" / "Dockerfile", context / "Dockerfile")
        _ca_files(context)
        CACHE.mkdir(parents=True, exist_ok=True)
        _build(context, BASE, CACHE / "build-base.log")
    return _cli("image", "inspect", "-f", "{{.Id}}", BASE).stdout.strip()


# Files a stand-in's build context needs from outside its directory.
def _extras_litellm(context: Path) -> None:
    from litellm_standin import prepare_context

    prepare_context(context)


def _extras_ollama(context: Path) -> None:
    for name in ("ollama_double.py", "ollama_cli_double.py"):
        shutil.copy(ROOT / "tests" / "integration" / name, context / name)


def _extras_vault(context: Path) -> None:
    sys.path.insert(0, str(ROOT / "tests" / "integration"))
    from openbao import bao_program

    shutil.copy(bao_program(), context / "bao")


EXTRAS: dict[str, Callable[[Path], None]] = {
    "litellm": _extras_litellm, "ollama": _extras_ollama, "vault": _extras_vault,
}


def build(name: str, base_id: str) -> str:
    """Build images/<name> (unless an image of the same content exists); returns its tag."""
    with tempfile.TemporaryDirectory() as work:
        context = Path(work) / name
        shutil.copytree(IMAGES / name, context)
        if name in EXTRAS:
            EXTRAS[name](context)
        tag = f"{PREFIX}/{name}:{_digest(context, base_id)}"
        if not _exists(tag):
            _build(context, tag, CACHE / f"build-{name}.log")
            # Older builds of this stand-in are not used again: free their space.
            listed = _cli("image", "ls", "--format", "{{.Repository}}:{{.Tag}}", f"{PREFIX}/{name}")
            stale = [line for line in listed.stdout.split() if line != tag]
            if stale:
                _cli("image", "rm", *stale)
    return tag


def build_all(names: Optional[list[str]] = None, parallel: int = 2) -> dict[str, str]:
    """Every stand-in (or `names`), `parallel` builds at a time: {name: tag}."""
    base_id = base()
    names = names or sorted(set(STANDINS.values()))
    # The slowest build first, so the other worker takes the rest meanwhile.
    names = sorted(names, key=lambda n: n != "litellm")
    with concurrent.futures.ThreadPoolExecutor(max_workers=parallel) as pool:
        futures = {name: pool.submit(build, name, base_id) for name in names}
        return {name: future.result() for name, future in futures.items()}


if __name__ == "__main__":  # python3 tests/engine/images.py: build them all now (the fixture would anyway)
    from engine import docker_engine

    with docker_engine():
        for image_name, image_tag in build_all().items():
            print(image_name, image_tag)
