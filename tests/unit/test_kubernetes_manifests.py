"""Every Kubernetes object a kubernetes stack declares, checked offline as far as this machine can (no API
server can run here, docs/testing.md):

- core objects with `kubernetes-validate --strict` (its bundled OpenAPI schemas) against the oldest and the
  newest Kubernetes version this project supports: wrong types and unknown fields fail;
- prometheus-operator objects against their CRDs' schemas, vendored and pinned (tests/schemas/), with unknown
  fields refused as the API server's strict field validation does;
- checkov's Kubernetes checks (`checkov --framework kubernetes`, pinned in requirements-checkov.txt, in a
  virtual environment of its own): no failed check; every skipped one is a named waiver with its reason on the
  object, and a waiver that no longer waives a failing check fails the test.

For several variants of the stack (the fixture, and with the Ingress, autoscaler, TLS, namespace, monitoring
and backups set otherwise), so a branch of the components is checked too."""

from __future__ import annotations

import copy
import json
import os
import subprocess
from pathlib import Path

import jsonschema
import kubernetes_validate
import pytest

from harness import ROOT, stack_file_config, with_external_data_stores
from kube_manifests import crd_schema, stack_manifests, without_bookkeeping, write_manifests

# The oldest Kubernetes release still in upstream support when this was written, and the newest
# kubernetes-validate knows; docs/kubernetes.md says the same.
KUBERNETES_VERSIONS = ("1.32.0", "1.35.0")
CHECKOV = Path(os.environ.get("LITELLM_GATEWAY_TEST_CACHE", Path.home() / ".cache" / "litellm-gateway-tests")) / \
    "checkov" / "bin" / "checkov"
TLS_PEM = ("-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----",
           "-----BEGIN PRIVATE KEY-----\nMIIE\n-----END PRIVATE KEY-----")


def _variant(name: str) -> tuple[dict, dict]:
    config = copy.deepcopy(stack_file_config("k8s"))
    secrets: dict = {}
    kube = config["kubernetes"]
    if name == "no-autoscaler-supplied-tls":
        kube["autoscaling"] = {"enabled": False}
        config["gateway"]["replicas"] = 3
        kube["ingress"]["tls"] = {"enabled": True}
        secrets = {"gatewayTlsCertificate": TLS_PEM[0], "gatewayTlsKey": TLS_PEM[1]}
    elif name == "no-ingress-existing-namespace":
        kube.update(ingress={"enabled": False}, createNamespace=False, namespace="platform-gateways",
                    spread="DoNotSchedule", nodeSelector={"node.kubernetes.io/pool": "gateway"})
        config["access"]["managementUrl"] = "http://127.0.0.1:14000"
    elif name == "external-data-stores":
        config = with_external_data_stores(config)
    elif name == "bare":
        config.update(monitoring={"enabled": False}, backups={"enabled": False}, cache={"enabled": False})
    return config, secrets


VARIANTS = ("fixture", "no-autoscaler-supplied-tls", "no-ingress-existing-namespace", "external-data-stores", "bare")


class Manifests(list):
    variant: str


@pytest.fixture(scope="module", params=VARIANTS)
def manifests(request):
    config, secrets = _variant(request.param)
    found = Manifests(stack_manifests(config, secrets, stack="k8s"))
    found.variant = request.param
    return found


def _is_custom(manifest: dict) -> bool:
    return manifest["apiVersion"].startswith("monitoring.coreos.com/")


def _validate(manifest: dict, version: str) -> None:
    body = without_bookkeeping(manifest)
    if _is_custom(manifest):
        jsonschema.Draft7Validator(crd_schema(manifest["apiVersion"], manifest["kind"])).validate(body)
    else:
        kubernetes_validate.validate(body, version, strict=True)


@pytest.mark.parametrize("version", KUBERNETES_VERSIONS)
def test_every_object_is_valid_for_the_api(manifests, version):
    kinds = {m["kind"] for m in manifests}
    assert {"Deployment", "Service", "Secret", "ConfigMap", "Job", "NetworkPolicy"} <= kinds
    assert ("StatefulSet" in kinds) == (manifests.variant != "external-data-stores")   # the in-cluster database
    problems = []
    for manifest in manifests:
        try:
            _validate(manifest, version)
        except (kubernetes_validate.ValidationError, jsonschema.ValidationError) as error:
            problems.append(f"{manifest['kind']} {manifest['metadata']['name']}: {error.message}")
    assert not problems, "\n".join(problems)


@pytest.mark.parametrize("kind, mutate", [
    ("Deployment", lambda m: m["spec"].update(replica=2)),                        # a misspelt field
    ("Deployment", lambda m: m["spec"]["template"]["spec"]["containers"][0].update(ports=[{"containerPort": "http"}])),
    ("PodDisruptionBudget", lambda m: m["spec"].update(maxUnavailable=[1])),     # a wrong type
    ("ServiceMonitor", lambda m: m["spec"]["endpoints"][0].update(bearerTokenFiles="/x")),
    ("PrometheusRule", lambda m: m["spec"]["groups"][0]["rules"][0].update(expression="up")),
])
def test_the_checks_catch_a_broken_object(kind, mutate):
    config, secrets = _variant("fixture")
    manifest = copy.deepcopy(next(m for m in stack_manifests(config, secrets, stack="k8s") if m["kind"] == kind))
    _validate(manifest, KUBERNETES_VERSIONS[0])
    mutate(manifest)
    with pytest.raises((kubernetes_validate.ValidationError, jsonschema.ValidationError)):
        _validate(manifest, KUBERNETES_VERSIONS[0])


def _checkov(directory: Path) -> dict:
    assert CHECKOV.exists(), (
        f"checkov is not installed at {CHECKOV}: run the README's test commands "
        "(python3 -m venv ~/.cache/litellm-gateway-tests/checkov && "
        "~/.cache/litellm-gateway-tests/checkov/bin/pip install -r requirements-checkov.txt)")
    # Not --quiet: it drops the skipped checks (the waivers) from the report.
    result = subprocess.run([str(CHECKOV), "-d", str(directory), "--framework", "kubernetes", "--compact",
                             "--output", "json", "--skip-download"], capture_output=True, text=True, timeout=600,
                            env={**os.environ, "BC_SKIP_MAPPING": "TRUE", "CHECKOV_RUN_SCA_PACKAGE_SCAN_V2": "false"})
    assert result.returncode in (0, 1), result.stderr[-2000:]
    report = json.loads(result.stdout)
    report = report[0] if isinstance(report, list) else report
    assert report["summary"]["parsing_errors"] == 0, report["summary"]
    return report


def _failed(report: dict) -> set[tuple[str, str]]:
    return {(c["check_id"], c["resource"]) for c in report["results"]["failed_checks"]}


def test_checkov_passes_with_only_named_waivers(tmp_path):
    config, secrets = _variant("fixture")
    manifests = stack_manifests(config, secrets, stack="k8s")
    write_manifests(manifests, tmp_path / "declared")
    report = _checkov(tmp_path / "declared")
    assert report["summary"]["resource_count"] >= len(manifests) * 0.8
    assert _failed(report) == set(), sorted(_failed(report))
    skipped = report["results"]["skipped_checks"]
    assert skipped, "the stack declares waivers; checkov read none"
    for check in skipped:
        assert len(check["check_result"].get("suppress_comment", "")) >= 10 and \
            check["check_result"]["suppress_comment"] != "No comment provided", check
    # Without its waivers, each waived check fails on the object that waives it: none is stale.
    for manifest in manifests:
        annotations = manifest["metadata"].get("annotations") or {}
        for key in [k for k in annotations if k.startswith("checkov.io/skip")]:
            del annotations[key]
    write_manifests(manifests, tmp_path / "unwaived")
    unwaived = _failed(_checkov(tmp_path / "unwaived"))
    waived = {(c["check_id"], c["resource"]) for c in skipped}
    assert waived <= unwaived, sorted(waived - unwaived)


def test_the_vendored_crd_schemas_are_the_pinned_release():
    for path in (ROOT / "tests" / "schemas" / "prometheus-operator").glob("*.json"):
        document = json.loads(path.read_text())
        assert "prometheus-operator@" in document["source"] and "(v0.93.0)" in document["source"], path
