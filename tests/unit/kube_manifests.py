"""The Kubernetes objects a stack declares, as the manifests pulumi-kubernetes would send (test helper).

Runs the program under the mocks (harness.run_stack) and turns every recorded `kubernetes:*` resource back
into the object the provider applies: `apiVersion` and `kind` from the resource (the provider adds them to
the inputs too), the SDK's camelCase inputs as they are. Two things differ from what reaches an API server,
both artefacts of the mocks: numbers arrive as floats (turned back into integers where they are whole), and
secret values are the mocks' marked fakes (unwrapped here, so a validator sees strings where strings go).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from harness import ROOT, run_stack, unwrap_all

SCHEMAS = ROOT / "tests" / "schemas" / "prometheus-operator"


def _integers(value: Any) -> Any:
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, dict):
        return {k: _integers(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_integers(v) for v in value]
    return value


def manifests_of(run) -> list[dict[str, Any]]:
    """Every declared Kubernetes object (not the provider), as a manifest."""
    out = []
    for resource in run.resources:
        if not resource.type.startswith("kubernetes:") or resource.type.startswith("pulumi:providers"):
            continue
        manifest = _integers(unwrap_all(resource.inputs))
        assert manifest.get("apiVersion") and manifest.get("kind"), resource
        manifest["_resource"] = resource.name  # the Pulumi resource name, for messages (removed on write)
        out.append(manifest)
    return out


def objects(run, kind: str) -> dict[str, dict]:
    """metadata.name -> plain inputs of every declared object of `kind`."""
    return {r.plain("metadata")["name"]: r.plain_inputs() for r in run.resources
            if r.type.startswith("kubernetes:") and r.type.endswith(f":{kind}")}


def pod_spec(obj: dict) -> dict:
    """The pod spec of a Deployment, StatefulSet, Job or CronJob."""
    spec = obj["spec"]
    spec = spec.get("jobTemplate", {}).get("spec", spec)
    return spec["template"]["spec"]


def stack_manifests(config: dict, secrets: dict | None = None, stack: str | None = None) -> list[dict[str, Any]]:
    return manifests_of(run_stack(config, secrets=secrets or {}, stack=stack))


def without_bookkeeping(manifest: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in manifest.items() if k != "_resource"}


def write_manifests(manifests: list[dict[str, Any]], directory: Path) -> list[Path]:
    """One JSON file per object (checkov reads a directory of them)."""
    directory.mkdir(parents=True, exist_ok=True)
    paths = []
    for index, manifest in enumerate(manifests):
        path = directory / f"{index:03d}-{manifest['kind'].lower()}-{manifest['metadata']['name']}.json"
        path.write_text(json.dumps(without_bookkeeping(manifest), indent=1))
        paths.append(path)
    return paths


def _strict(schema: Any) -> Any:
    """A CRD schema that refuses unknown fields, as the API server's strict field validation does (a
    structural schema prunes them otherwise, which would hide a misspelt field)."""
    if isinstance(schema, list):
        return [_strict(s) for s in schema]
    if not isinstance(schema, dict):
        return schema
    out = {k: _strict(v) for k, v in schema.items()}
    if isinstance(out.get("pattern"), str) and out["pattern"].startswith("^(?i)"):
        out["pattern"] = "(?i)^" + out["pattern"][len("^(?i)"):]  # Go allows inline flags anywhere, Python first
    if ("properties" in out and "additionalProperties" not in out
            and not out.get("x-kubernetes-preserve-unknown-fields")):
        out["additionalProperties"] = False
    return out


def crd_schema(api_version: str, kind: str) -> dict[str, Any]:
    """The vendored openAPIV3Schema of a prometheus-operator kind at `api_version`, made strict."""
    document = json.loads((SCHEMAS / f"{kind}.json").read_text())
    group, version = api_version.split("/")
    assert document["group"] == group, (api_version, document["group"])
    schema = _strict(document["versions"][version])
    # metadata is the API server's (ObjectMeta); the CRD schema leaves it open.
    schema.setdefault("properties", {})["metadata"] = {"type": "object"}
    return schema
