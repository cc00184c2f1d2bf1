"""TEST INFRASTRUCTURE: the build context of the LiteLLM stand-in image (images/litellm/).

The real `litellm-database` image carries Prisma's engines and a generated Prisma client; neither can
be downloaded here. The stand-in installs the pinned `litellm[proxy]` from wheels the host's pip
fetched, overlays the Prisma client the install step generated for this test environment (its paths
rewritten to the image's), and carries the same Prisma engine shim as the loopback tests
(tests/prisma_shim: the pinned library engine behind a small Node server). Where the real image's
`litellm` runs `prisma migrate deploy` at start, the stand-in's `litellm` applies the same migration
files (litellm-proxy-extras) with psql, under an advisory lock, then starts the real proxy with
DISABLE_SCHEMA_UPDATE=true.
"""

from __future__ import annotations

import re
import shutil
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]
sys.path.insert(0, str(ROOT / "tests" / "prisma_shim"))
import prisma_shim  # noqa: E402

# Installed in the image at these pins, read from requirements-test.txt (one LiteLLM version everywhere).
# The real image installs LiteLLM's requirements.txt too; of those, the proxy needs prometheus-client
# (the `prometheus` callback) and redis (cache, rate limits) at the tests' pins.
PINNED = ("litellm[proxy]", "litellm-proxy-extras", "prisma", "prometheus-client", "redis")
IMAGE_SITE = "/opt/litellm/lib/python3.11/site-packages"


def requirements() -> list[str]:
    found = {}
    for line in (ROOT / "requirements-test.txt").read_text().splitlines():
        line = line.split("#", 1)[0].strip()
        for name in PINNED:
            if line.startswith(name + "=="):
                found[name] = line
    missing = [name for name in PINNED if name not in found]
    if missing:
        raise AssertionError(f"requirements-test.txt pins none of {missing}")
    return [found[name] for name in PINNED]


def prepare_context(context: Path) -> None:
    from images import wheels

    # Debian 12's Python is 3.11.2: redis needs async-timeout below 3.11.3, which the tests' 3.11.7 does not.
    shutil.copytree(wheels([*requirements(), "async-timeout>=4.0.3"]), context / "wheels",
                    ignore=shutil.ignore_patterns(".complete"))
    # The generated client of this environment's prisma package (same prisma version as the image's).
    prisma_shim.generate_client()
    generated = prisma_shim._package_dir("prisma")
    target = context / "prisma-generated"
    shutil.copytree(generated, target, ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
    host_site = str(generated.parent)
    for path in target.rglob("*.py"):
        text = path.read_text()
        if host_site in text or str(prisma_shim.CACHE) in text:
            text = text.replace(host_site, IMAGE_SITE)
            text = re.sub(re.escape(str(prisma_shim.CACHE / "prisma" / "bin")) + r"/query-engine",
                          "/opt/prisma-shim/bin/query-engine", text)
            path.write_text(text)
    shim = context / "prisma-shim"
    shim.mkdir()
    shutil.copy(prisma_shim.engine_library(), shim / "libquery_engine.so.node")
    shutil.copy(prisma_shim.SERVER, shim / "query_engine_server.js")
    (shim / "EXPECTED_ENGINE_HASH").write_text(prisma_shim.EXPECTED_ENGINE_HASH + "\n")
    # The Prisma CLI the install step fetched with npm (prisma-client-py runs it for LiteLLM's schema
    # check at start; the image has no npm, and the container must not download it).
    shutil.copytree(prisma_shim.environment()["PRISMA_BINARY_CACHE_DIR"], context / "prisma-cli")
