"""Test double for HashiCorp Vault's KV v2 HTTP API. The tests' Vault is OpenBao (openbao.py), a real
server with the same API; this double is kept for the one case a real server cannot be made to do
on time: sealing between a client's checks and its write (`seal_on_write`, the restore's exit 4).

Serves what the backup and restore scripts use, with Vault's response shapes
(https://developer.hashicorp.com/vault/api-docs/secret/kv/kv-v2): GET and POST
/v1/<mount>/data/<path> (each write is a new version; ?version=N reads an older one), and the token
checks a careful client makes first: GET /v1/auth/token/lookup-self and POST
/v1/sys/capabilities-self (https://developer.hashicorp.com/vault/api-docs/system/capabilities-self).
Requests without a known X-Vault-Token get 403 like Vault's permission denied. A read-only token is
given the KV paths its policy grants `read` on (`read_only_tokens={token: (path, ...)}`, as the
stack's rendered read policy does for one path): it reads those, gets 403 on any other path and on
writes, and capabilities-self answers "deny" for the others, as Vault does. A version that does not
exist answers 404, as Vault's KV v2 does. With `seal_on_write`, the double seals when a secret write
arrives (Vault sealed between a client's checks and its write): 503 "Vault is sealed" from then on.
"""

from __future__ import annotations

import json
import threading
from datetime import datetime, timezone
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlparse


class VaultDouble:
    def __init__(self, token: str, mount: str = "secret", read_only_tokens: dict[str, tuple[str, ...]] | None = None):
        self.token = token
        self.read_only_tokens = dict(read_only_tokens or {})
        self.mount = mount
        self.versions: dict[str, list[dict]] = {}
        # Vault sealed (by an operator or an outage) the moment a secret write arrives: that write and
        # every request after it get Vault's 503 "Vault is sealed".
        self.seal_on_write = False
        self.sealed = False
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        threading.Thread(target=self._server.serve_forever, daemon=True).start()

    @property
    def address(self) -> str:
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()

    def put(self, path: str, data: dict) -> int:
        self.versions.setdefault(path, []).append(data)
        return len(self.versions[path])

    def _handler(self):
        double = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def _send(self, status, body):
                payload = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

            def _capabilities(self, path: str | None = None) -> list[str]:
                """The token's capabilities on KV `path` (None: whether the token is known at all)."""
                token = self.headers.get("X-Vault-Token")
                if token == double.token:
                    return ["root"]
                if token not in double.read_only_tokens:
                    return []
                return ["read"] if path is None or path in double.read_only_tokens[token] else ["deny"]

            def _path(self, write: bool = False):
                url = urlparse(self.path)
                prefix = f"/v1/{double.mount}/data/"
                path = url.path[len(prefix):] if url.path.startswith(prefix) else None
                capabilities = self._capabilities(path)
                if not capabilities or "deny" in capabilities or (write and "root" not in capabilities):
                    self._send(403, {"errors": ["1 error occurred:\n\t* permission denied\n\n"]})
                    return None, None
                if path is None:
                    self._send(404, {"errors": []})
                    return None, None
                return path, parse_qs(url.query)

            def _metadata(self, version):
                return {"created_time": datetime.now(timezone.utc).isoformat(), "custom_metadata": None,
                        "deletion_time": "", "destroyed": False, "version": version}

            def do_GET(self):
                if double.sealed:
                    return self._send(503, {"errors": ["Vault is sealed"]})
                if urlparse(self.path).path == "/v1/auth/token/lookup-self":
                    capabilities = self._capabilities()
                    if not capabilities:
                        return self._send(403, {"errors": ["permission denied"]})
                    policies = ["root"] if "root" in capabilities else ["default", "litellm-gateway-read"]
                    return self._send(200, {"data": {"policies": policies, "ttl": 0 if "root" in policies else 3600}})
                path, query = self._path()
                if path is None:
                    return
                history = double.versions.get(path)
                if not history:
                    return self._send(404, {"errors": []})
                version = int(query.get("version", [len(history)])[0])
                if not 1 <= version <= len(history):  # Vault: 404 with no data for a version it never had
                    return self._send(404, {"errors": []})
                self._send(200, {"data": {"data": history[version - 1], "metadata": self._metadata(version)}})

            def do_POST(self):
                if double.sealed:
                    return self._send(503, {"errors": ["Vault is sealed"]})
                if urlparse(self.path).path == "/v1/sys/capabilities-self":
                    capabilities = self._capabilities()
                    if not capabilities:
                        return self._send(403, {"errors": ["permission denied"]})
                    body = json.loads(self.rfile.read(int(self.headers.get("Content-Length") or 0)))
                    kv = f"{double.mount}/data/"
                    by_path = {p: self._capabilities(p[len(kv):] if p.startswith(kv) else "") for p in body["paths"]}
                    first = by_path[body["paths"][0]] if body["paths"] else []
                    return self._send(200, {**by_path, "capabilities": first, "data": by_path})
                path, _ = self._path(write=True)
                if path is None:
                    return
                body = json.loads(self.rfile.read(int(self.headers.get("Content-Length") or 0)))
                if double.seal_on_write:
                    double.sealed = True
                    return self._send(503, {"errors": ["Vault is sealed"]})
                version = double.put(path, body["data"])
                self._send(200, {"data": self._metadata(version)})

        return Handler
