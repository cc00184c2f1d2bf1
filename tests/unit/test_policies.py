"""The policy pack's validators, fed the inputs the program really declares (under mocks)."""

import copy
import sys

import pytest

from harness import ROOT, run_stack, stack_file_config

sys.path.insert(0, str(ROOT / "policy"))
import validators  # noqa: E402
from validators import POLICIES, PolicyResource  # noqa: E402


def policy_inputs(run, keep_secret_markers=True):
    resources = []
    for r in run.resources:
        props = copy.deepcopy(r.inputs) if keep_secret_markers else validators._plain(r.inputs)
        options = run.mocks.options.get((r.type, r.name))
        resources.append(PolicyResource(r.type, r.name, props, protect=bool(options and options.protect),
                                        secrets_marked=keep_secret_markers))
    return resources


def violations(resources, policy=None):
    checks = [POLICIES[policy][1]] if policy else [check for _, check in POLICIES.values()]
    return [m for resource in resources for check in checks for m in check(resource)]


@pytest.fixture(scope="module", params=["dev", "prod"])
def shipped(request):
    return request.param, run_stack(stack_file_config(request.param), stack=request.param)


def test_the_stacks_as_shipped_pass_every_policy(shipped):
    _, run = shipped
    assert violations(policy_inputs(run)) == []


def test_they_also_pass_as_a_real_preview_sees_them(shipped):
    """pulumi-policy gives validators plain values, without secret markers."""
    _, run = shipped
    assert violations(policy_inputs(run, keep_secret_markers=False)) == []


def named(resources, name):
    return next(r for r in resources if r.name == name)


def test_unpinned_images_are_violations(shipped):
    _, run = shipped
    resources = policy_inputs(run)
    image = named(resources, "gateway-redis-image")
    image.props["name"] = "redis:latest"
    assert violations([image], "images-pinned") == ["gateway-redis-image: image 'redis:latest' uses the moving tag 'latest'; pin a version"]
    image.props["name"] = "redis"
    assert "has no tag" in violations([image], "images-pinned")[0]


def test_a_published_datastore_is_a_violation(shipped):
    _, run = shipped
    for name in ("gateway-postgres", "gateway-redis"):
        container = named(policy_inputs(run), name)
        container.props["ports"] = [{"internal": 5432, "external": 5432, "ip": "0.0.0.0"}]
        (message,) = violations([container], "datastores-not-published")
        assert "must not be published" in message


def test_a_waiver_allows_loopback_only():
    run = run_stack(stack_file_config("dev"), stack="dev")  # only dev runs a Vault container
    vault = named(policy_inputs(run), "vault-dev-server")
    assert violations([vault], "datastores-not-published") == []
    vault.props["ports"] = [{"internal": 8200, "external": 8200, "ip": "0.0.0.0"}]
    assert "loopback only" in violations([vault], "datastores-not-published")[0]
    vault.props["labels"] = [l for l in vault.props["labels"] if "policy-waiver" not in l["label"]]
    vault.props["ports"] = [{"internal": 8200, "external": 8200, "ip": "127.0.0.1"}]
    assert "must not be published" in violations([vault], "datastores-not-published")[0]


def test_missing_healthcheck_or_restart_policy(shipped):
    _, run = shipped
    container = named(policy_inputs(run), "gateway-litellm-0")
    del container.props["healthcheck"]
    container.props["restart"] = "no"
    messages = violations([container], "containers-healthy-and-restarting")
    assert len(messages) == 2 and "healthcheck" in messages[0] and "restart policy" in messages[1]


def test_every_container_is_hardened_and_each_exception_is_a_named_waiver(shipped):
    _, run = shipped
    containers = [r for r in policy_inputs(run) if r.type == validators.CONTAINER]
    assert len(containers) >= 6
    for container in containers:
        props = validators._plain(container.props)
        assert "ALL" in props["capabilities"]["drops"], container.name
        assert props["logOpts"]["max-size"] and props["memory"] > 0 and props["destroyGraceSeconds"] > 0
        waivers = {label["label"].rsplit(".", 1)[1] for label in props["labels"] if ".policy-waiver." in label["label"]}
        assert props.get("readOnly") or "read-only-rootfs" in waivers, container.name
        assert props.get("user") not in (None, "", "root", "0") or "non-root-user" in waivers, container.name
    by_name = {c.name: validators._plain(c.props) for c in containers}
    assert by_name["gateway-postgres"]["readOnly"] and by_name["gateway-postgres"]["destroyGraceSeconds"] >= 60
    assert by_name["gateway-redis"]["user"] == "redis"


@pytest.mark.parametrize("damage, message", [
    (lambda p: p.update(securityOpts=[]), "no-new-privileges"),
    (lambda p: p.update(capabilities={"adds": ["SYS_ADMIN"]}), "drop ALL"),
    (lambda p: p.pop("logOpts"), "logs are not rotated"),
    (lambda p: p.pop("memory"), "no memory or CPU limit"),
    (lambda p: p.pop("destroyGraceSeconds"), "no stop grace period"),
    (lambda p: p.update(readOnly=False), "root filesystem is writable"),
    (lambda p: p.update(user="root"), "runs as root"),
])
def test_an_unhardened_container_is_a_violation(shipped, damage, message):
    _, run = shipped
    exporter = named(policy_inputs(run, keep_secret_markers=False), "monitoring-redis-exporter")
    assert violations([exporter], "containers-hardened") == []
    damage(exporter.props)
    (found,) = violations([exporter], "containers-hardened")
    assert message in found


def test_plaintext_secrets_are_found(shipped):
    _, run = shipped
    resources = policy_inputs(run)
    litellm = named(resources, "gateway-litellm-0")
    # The environment unwrapped from its secret: every secret in it is now a violation.
    litellm.props["envs"] = validators._plain(litellm.props["envs"])
    messages = violations([litellm], "no-plaintext-secrets")
    assert any("envs" in m and "secret variable" in m for m in messages)
    assert any("URL with a password" in m for m in messages)
    # Without markers (a real preview), a key on a command line is still caught.
    redis = PolicyResource(litellm.type, "gateway-redis", {"command": ["redis-server", "--requirepass", "sk-" + "a" * 40]})
    assert violations([redis], "no-plaintext-secrets") == [
        "gateway-redis: command[2] holds an API key (sk-...) in plain text"]


def test_an_unprotected_salt_key_is_a_violation(shipped):
    _, run = shipped
    salt = named(policy_inputs(run), "secrets-saltKey")
    assert violations([salt], "salt-key-protected") == []
    salt.protect = False
    assert "must be protected" in violations([salt], "salt-key-protected")[0]


def test_the_pack_adapts_every_validator_to_pulumi_policy(monkeypatch):
    """Load policy/__main__.py with PolicyPack captured (it would start serving the engine) and
    call each policy the way pulumi-policy does: validate(args, report_violation)."""
    import runpy
    import types

    import pulumi_policy

    captured = {}
    monkeypatch.setattr(pulumi_policy, "PolicyPack", lambda **kwargs: captured.update(kwargs))
    runpy.run_path(str(ROOT / "policy" / "__main__.py"), run_name="__policy_pack__")
    assert captured["name"] == "litellm-gateway"
    assert captured["enforcement_level"] == pulumi_policy.EnforcementLevel.MANDATORY
    policies = {p.name: p for p in captured["policies"]}
    assert set(policies) == set(POLICIES)
    args = types.SimpleNamespace(resource_type="random:index/randomPassword:RandomPassword", name="secrets-saltKey",
                                 props={"length": 48}, opts=types.SimpleNamespace(protect=False), urn="urn:x")
    reported = []
    policies["salt-key-protected"].validate(args, reported.append)
    assert len(reported) == 1 and "must be protected" in reported[0]
    args.opts.protect = True
    reported.clear()
    policies["salt-key-protected"].validate(args, reported.append)
    assert reported == []


def test_a_published_replica_is_a_violation(shipped):
    _, run = shipped
    replica = named(policy_inputs(run), "gateway-litellm-0")
    assert violations([replica], "replicas-not-published") == []
    replica.props["ports"] = [{"internal": 4000, "external": 4000, "ip": "10.20.0.10"}]
    (message,) = violations([replica], "replicas-not-published")
    assert "10.20.0.10:4000" in message and "load balancer" in message
    assert violations([named(policy_inputs(run), "gateway-lb")], "replicas-not-published") == []


# --- platform: kubernetes ------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def kubernetes_run():
    return run_stack(stack_file_config("k8s"), stack="k8s")


@pytest.mark.parametrize("markers", [True, False])
def test_the_kubernetes_stack_passes_every_policy(kubernetes_run, markers):
    resources = policy_inputs(kubernetes_run, keep_secret_markers=markers)
    assert [r for r in resources if r.type in validators.K8S_WORKLOADS]
    assert violations(resources) == []


def _deployment(kubernetes_run, markers=False):
    resources = policy_inputs(kubernetes_run, keep_secret_markers=markers)
    return named(resources, "gateway-litellm")


@pytest.mark.parametrize("damage, message", [
    (lambda c, s: c.update(image="ghcr.io/berriai/litellm-database:latest"), "image"),
    (lambda c, s: c["securityContext"].update(allowPrivilegeEscalation=True), "may gain privileges"),
    (lambda c, s: c["securityContext"]["capabilities"].update(drop=[]), "capabilities.drop lacks ALL"),
    (lambda c, s: c["securityContext"].update(privileged=True), "is privileged"),
    (lambda c, s: c["resources"].pop("limits"), "no cpu and memory limits"),
    (lambda c, s: s.pop("automountServiceAccountToken"), "service-account token"),
    (lambda c, s: s["securityContext"].pop("seccompProfile"), "seccompProfile"),
    (lambda c, s: c["env"].append({"name": "LITELLM_MASTER_KEY", "value": "sk-" + "a1b2c3d4" * 6}), "plain text"),
])
def test_a_weakened_pod_is_a_violation(kubernetes_run, damage, message):
    deployment = _deployment(kubernetes_run)
    pod = deployment.props["spec"]["template"]["spec"]
    damage(pod["containers"][0], pod)
    found = violations([deployment])
    assert any(message in m for m in found), found


def test_a_secret_in_a_configmap_is_a_violation_in_a_real_preview(kubernetes_run):
    resources = policy_inputs(kubernetes_run, keep_secret_markers=False)
    config_map = next(r for r in resources if r.type == "kubernetes:core/v1:ConfigMap")
    config_map.props["data"] = {**config_map.props["data"], "leak": "master_key: sk-" + "0f1e2d3c" * 6}
    assert any("plain text" in m for m in violations([config_map], "no-plaintext-secrets"))


@pytest.mark.parametrize("markers", [True, False])
def test_a_stack_with_external_data_stores_passes_every_policy(markers):
    """The ext fixture: no database or Redis container, the CA files uploaded into the exporters (waived)."""
    run = run_stack(stack_file_config("ext"), stack="ext")
    assert violations(policy_inputs(run, keep_secret_markers=markers)) == []
