"""The gateway's load balancer and rolling replacement, under mocks: what Pulumi will do."""

from __future__ import annotations

import copy

import pulumi
import pulumi_docker as docker
import pytest

from config.errors import SettingsError
from config.parse import parse_settings
from harness import run_stack, stack_file_config

CERT = "-----BEGIN CERTIFICATE-----\nMIIBfake\n-----END CERTIFICATE-----\n"
KEY = "-----BEGIN PRIVATE KEY-----\nMIIEfake\n-----END PRIVATE KEY-----\n"


def prod_raw() -> dict:
    """The prod example with two replicas, whatever the file says (users edit it)."""
    raw = copy.deepcopy(stack_file_config("prod"))
    raw["gateway"]["replicas"] = 2
    return raw


def replica_names(run) -> list[str]:
    return [run.mocks.named(f"gateway-litellm-{i}").plain("name") for i in range(2)]


def test_a_config_change_gives_every_replica_a_new_name_so_successors_start_beside_them():
    raw = prod_raw()
    before = replica_names(run_stack(raw))
    assert len(set(before)) == 2 and all(n.startswith("litellm-gateway-prod-litellm-") for n in before)
    assert replica_names(run_stack(copy.deepcopy(raw))) == before, "the same config keeps the names"
    raw["models"][0]["rpm"] = (raw["models"][0].get("rpm") or 1) + 1   # a routine change of the rendered config
    after = replica_names(run_stack(raw))
    assert set(after).isdisjoint(before)
    run = run_stack(raw)
    for i in range(2):
        options = run.mocks.options_of(f"gateway-litellm-{i}")
        # Explicitly False: unset (None) leaves the choice to the provider, and pulumi-docker asks for
        # delete-before-replace on every container (provider/resources.go: DeleteBeforeReplace: true).
        assert options.delete_before_replace is False, "create before delete, overriding the provider's default"
        revision = run.mocks.named(f"gateway-litellm-{i}-revision")
        assert revision.is_secret("keepers"), "the revision digest covers secret values: keep it secret"


def test_a_rotated_master_key_also_rolls_the_replicas():
    raw = prod_raw()
    first = run_stack(raw, secrets={"masterKey": "sk-" + "a" * 40})
    second = run_stack(raw, secrets={"masterKey": "sk-" + "b" * 40})
    assert set(replica_names(first)).isdisjoint(replica_names(second))


def test_the_load_balancer_config_names_the_replicas_alias_and_retries():
    run = run_stack(prod_raw())
    lb = run.mocks.named("gateway-lb")
    (config,) = [u["content"] for u in lb.plain("uploads") if u["file"].endswith("haproxy.cfg")]
    assert "server-template replica 16 litellm:4000" in config
    assert "retry-on conn-failure empty-response" in config and "option redispatch" in config
    assert "http-check send meth GET uri /health/readiness" in config
    for i in range(2):
        aliases = run.mocks.named(f"gateway-litellm-{i}").plain("networksAdvanced")[0]["aliases"]
        assert "litellm" in aliases
    assert lb.plain("stopSignal") == "SIGUSR1"


def tls_raw(**tls):
    raw = prod_raw()
    raw["gateway"]["loadBalancer"] = {"tls": {"enabled": True, **tls}}
    return raw


def test_tls_from_secret_config_is_uploaded_as_a_secret_and_published_on_the_gateway_port():
    run = run_stack(tls_raw(serverName="llm.example.com", httpRedirectPort=8081),
                    secrets={"gatewayTlsCertificate": CERT, "gatewayTlsKey": KEY})
    lb = run.mocks.named("gateway-lb")
    assert lb.is_secret("uploads")
    files = {u["file"]: u["content"] for u in lb.plain("uploads")}
    assert files["/usr/local/etc/haproxy/certs/gateway.pem"] == CERT + KEY
    assert "ssl crt /usr/local/etc/haproxy/certs/gateway.pem" in files["/usr/local/etc/haproxy/haproxy.cfg"]
    assert [(p["internal"], p["external"]) for p in lb.plain("ports")] == [(8443, 4000), (8080, 8081)]
    assert run.outputs["gatewayUrl"] == "https://llm.example.com:4000"


def test_tls_from_vault_reads_the_certificate_and_key_fields(monkeypatch):
    import harness

    original = harness.RecordingMocks.call

    def call(self, args):
        if args.token == "vault:kv/getSecretV2:getSecretV2" and args.args.get("name") == "tls/gateway":
            return {"data": {"certificate": CERT, "private_key": KEY}}
        return original(self, args)

    monkeypatch.setattr(harness.RecordingMocks, "call", call)
    run = run_stack(tls_raw(vault={"path": "tls/gateway"}))
    files = {u["file"]: u["content"] for u in run.mocks.named("gateway-lb").plain("uploads")}
    assert files["/usr/local/etc/haproxy/certs/gateway.pem"] == CERT + KEY


@pytest.mark.parametrize("tls, secrets, key", [
    ({}, {}, "gateway.loadBalancer.tls"),
    ({"vault": {"path": "tls/gw"}}, {"gatewayTlsCertificate": CERT, "gatewayTlsKey": KEY}, "gateway.loadBalancer.tls.vault"),
    ({}, {"gatewayTlsCertificate": "not a pem", "gatewayTlsKey": KEY}, "gatewayTlsCertificate"),
])
def test_tls_needs_one_source_for_certificate_and_key(tls, secrets, key):
    raw = tls_raw(**tls)
    raw.update(secrets)
    with pytest.raises(SettingsError) as caught:
        parse_settings(raw, frozenset(secrets))
    assert key in dict(caught.value.problems)


def test_tls_material_without_tls_is_refused():
    raw = copy.deepcopy(stack_file_config("dev"))
    raw["gatewayTlsCertificate"] = CERT
    with pytest.raises(SettingsError, match="gateway.loadBalancer.tls.enabled is false"):
        parse_settings(raw, frozenset({"gatewayTlsCertificate"}))


def test_an_unpinned_load_balancer_image_is_refused():
    raw = copy.deepcopy(stack_file_config("dev"))
    raw["gateway"]["loadBalancer"] = {"image": "haproxy:latest"}
    with pytest.raises(pulumi.RunError, match="gateway.loadBalancer.image"):
        run_stack(raw)


def test_the_backlog_shows_the_load_balancer_and_the_replica_count():
    run = run_stack(prod_raw())
    gateway = run.outputs["backlog"]["BACKLOG-002"]["evidence"]["gateway"]
    assert gateway["replicas"] == 2
    assert gateway["load_balancer"].startswith("haproxy:") and gateway["url"] == run.outputs["gatewayUrl"]


def test_the_runbooks_replace_target_exists_and_renames_the_replica():
    """docs/RUNBOOK.md replaces the revision, not the container: same-name replacement would clash."""
    import re

    from harness import ROOT

    runbook = (ROOT / "docs" / "RUNBOOK.md").read_text()
    (urn,) = re.findall(r"--replace '(urn:[^']+)'", runbook)
    run = run_stack(prod_raw())
    type_token, name = urn.split("$", 1)[1].split("::")
    assert any(r.type == type_token and r.name == name for r in run.resources), urn


def test_connection_reuse_and_threads_are_rendered_as_set():
    from renderers.haproxy import render_haproxy_config

    raw = prod_raw()
    default = render_haproxy_config(parse_settings(raw))
    assert "http-server-close" not in default and "http-reuse never" not in default and "nbthread 1" in default
    # Every idle connection serves any request (HAProxy's default, "safe", opens one per client connection).
    assert "\n    http-reuse always\n" in default
    # Replaying a request that meets a closing connection needs all of it in hand before it is sent.
    assert "retry-on conn-failure empty-response" in default and "option http-buffer-request" in default
    raw["gateway"]["loadBalancer"] = {**raw["gateway"].get("loadBalancer", {}), "reuseServerConnections": False,
                                      "threads": 4}
    fresh = render_haproxy_config(parse_settings(raw))
    assert "option http-server-close" in fresh and "http-reuse never" in fresh and "nbthread 4" in fresh
    assert "http-reuse always" not in fresh
    assert "option http-buffer-request" in fresh


@pytest.mark.parametrize("change", ["labels", "capabilities", "user", "network aliases"])
def test_every_input_that_replaces_a_replica_also_renames_it(monkeypatch, change):
    """pulumi-docker replaces a container when any of these change; under the same name the successor could
    not start beside the old replica (Docker refuses the name), so each must be in the revision."""
    import components.gateway as gateway_module

    before = replica_names(run_stack(prod_raw()))
    if change == "labels":
        original = gateway_module.labels
        monkeypatch.setattr(gateway_module, "labels", lambda *a, **k: [*original(*a, **k), docker.ContainerLabelArgs(
            label="example.org/new", value="1")])
    elif change in ("capabilities", "user"):
        original = gateway_module.hardening

        def changed(*args, **kwargs):
            hardened = original(*args, **kwargs)
            if change == "user":
                hardened["user"] = "65534"
            else:
                hardened["capabilities"] = docker.ContainerCapabilitiesArgs(drops=["ALL"], adds=["NET_BIND_SERVICE"])
            return hardened
        monkeypatch.setattr(gateway_module, "hardening", changed)
    else:
        monkeypatch.setattr(gateway_module, "REPLICA_SERVICE", "litellm-replicas")
    after = replica_names(run_stack(prod_raw()))
    assert set(after).isdisjoint(before), (change, before, after)
