"""Shared by the tests of external data stores: the stack declared under Pulumi mocks with the containers' CA
uploads written to a temporary directory, and Debian's exporters run with a declared container's environment."""

from __future__ import annotations

import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

import httpx
import yaml

from harness import run_stack
from renderers.data_stores import CA_DIR
from servers import free_port, require_program


@dataclass
class DeclaredStack:
    run: object
    ca_dir: Path          # where the replicas' CA uploads were written
    uploads: dict         # the first replica's uploads: path -> content
    settings_raw: dict    # the stack file's settings with the secret config keys

    def env(self, name: str) -> dict[str, str]:
        """A declared container's environment, its CA paths in `ca_dir`."""
        container = self.run.mocks.named(name)
        return {k: localized(v, self.ca_dir) for k, v in (item.split("=", 1) for item in container.plain("envs"))}

    def config(self) -> dict:
        """The replicas' rendered LiteLLM config, its CA paths in `ca_dir`."""
        return yaml.safe_load(localized(self.uploads["/app/config.yaml"], self.ca_dir))


def localized(text: str, ca_dir: Path) -> str:
    return text.replace(CA_DIR, str(ca_dir))


def declare(raw: dict, secrets: dict, ca_dir: Path) -> DeclaredStack:
    """Run the program on `raw` (with the secret config keys `secrets`) and write the replicas' CA uploads to
    `ca_dir`."""
    run = run_stack(raw, secrets)
    uploads = {u["file"]: u["content"] for u in run.mocks.named("gateway-litellm-0").plain("uploads")}
    for path, content in uploads.items():
        if path.startswith(CA_DIR + "/"):
            (ca_dir / Path(path).name).write_text(content)
    return DeclaredStack(run, ca_dir, uploads, {**raw, **secrets})


def exporter_metrics(program: str, env: dict[str, str], wanted: str) -> str:
    """Start a Debian exporter with `env` on a free loopback port, read /metrics once it shows `wanted`, stop it."""
    port = free_port()
    process = subprocess.Popen([require_program(program), f"--web.listen-address=127.0.0.1:{port}"],
                               env={**env, "PATH": "/usr/bin:/bin"}, stdout=subprocess.PIPE,
                               stderr=subprocess.STDOUT, start_new_session=True)
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                response = httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=10)
                if response.status_code == 200 and wanted in response.text:
                    return response.text
            except httpx.HTTPError:
                pass
            if process.poll() is not None or time.monotonic() > deadline:
                raise AssertionError(f"{program} did not serve metrics: {process.stdout.read().decode()[-2000:]}")
            time.sleep(0.3)
    finally:
        process.terminate()
        process.wait(timeout=15)
