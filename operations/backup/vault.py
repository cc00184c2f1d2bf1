"""The stack's secret in Vault (KV v2), over Vault's HTTP API: read, check a token may write, write."""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from dataclasses import dataclass
from typing import Optional

from .errors import Refused


@dataclass
class Vault:
    address: str
    token: str
    mount: str
    path: str

    def _call(self, method: str, url_path: str, body: Optional[dict] = None) -> dict:
        request = urllib.request.Request(
            f"{self.address.rstrip('/')}/v1/{url_path}", method=method,
            data=json.dumps(body).encode() if body is not None else None,
            headers={"X-Vault-Token": self.token, "Content-Type": "application/json"},
        )
        try:
            with urllib.request.urlopen(request, timeout=30) as response:
                return json.loads(response.read() or b"{}")
        except urllib.error.HTTPError as error:
            detail = error.read().decode(errors="replace")[:200].replace("\\n", " ").replace("\\t", "")
            raise Refused(f"Vault {method} {url_path}: HTTP {error.code} {detail}") from None
        except urllib.error.URLError as error:
            raise Refused(f"Vault at {self.address} is not reachable: {error.reason}") from None
        except (ValueError, OSError) as error:
            raise Refused(f"Vault at {self.address} gave no usable answer: {error}") from None

    @property
    def data_path(self) -> str:
        return f"{self.mount}/data/{self.path}"

    def read(self) -> tuple[dict, int]:
        answer = self._call("GET", self.data_path)["data"]
        return answer["data"], int(answer["metadata"]["version"])

    def check_can_write(self) -> None:
        """Refused unless the token is valid and may write the secret (checked before any change)."""
        self._call("GET", "auth/token/lookup-self")
        answer = self._call("POST", "sys/capabilities-self", {"paths": [self.data_path]})
        capabilities = set(answer.get(self.data_path) or answer.get("capabilities") or [])
        if not capabilities & {"root", "sudo", "update", "create"} or "deny" in capabilities:
            raise Refused(f"the Vault token may not write {self.data_path} (its capabilities there: "
                          f"{', '.join(sorted(capabilities)) or 'none'})")

    def write(self, data: dict) -> int:
        return int(self._call("POST", self.data_path, {"data": data})["data"]["version"])
