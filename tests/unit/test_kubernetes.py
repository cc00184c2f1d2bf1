"""platform: kubernetes under Pulumi mocks: the settings each platform refuses, and the inputs of every object
the stack declares (replicas, probes, preStop, disruption budget, Job ordering, Secret references, no secret
in plain text). The objects' schemas and checkov's checks: test_kubernetes_manifests.py."""

from __future__ import annotations

import copy
import re

import pytest

from config.checks.platform import DOCKER_ONLY_KEYS
from config.errors import SettingsError
from config.parse import parse_settings
from harness import SECRET_MARKER, run_stack, stack_file_config, walk_plain
from kube_manifests import objects, pod_spec
from renderers import haproxy

PREFIX = "litellm-gateway-k8s"


def k8s_config() -> dict:
    return copy.deepcopy(stack_file_config("k8s"))


def problems_of(config: dict, secrets: frozenset = frozenset(), stack: str = "k8s") -> dict[str, str]:
    with pytest.raises(SettingsError) as error:
        parse_settings(config, secret_keys=secrets, stack=stack)
    found: dict[str, str] = {}
    for key, message in error.value.problems:
        found[key] = f"{found[key]} | {message}" if key in found else message
    return found


@pytest.fixture(scope="module")
def run():
    return run_stack(k8s_config(), stack="k8s")


# --- settings -------------------------------------------------------------------------------------------

_PROD = stack_file_config("prod")
_SAMPLES = {"backups.hostPath": "/srv/backups/litellm-gateway/k8s", "backups.volumeName": "k8s-dumps",
            "postgres.volumeName": "k8s-pgdata", "containers.logMaxSizeMb": 20, "containers.logMaxFiles": 5,
            "gateway.loadBalancer.maxConnectionsPerClient": 256, "gateway.loadBalancer.allowPlainHttp": "a named reason",
            "containers.limits.prometheus": {"memoryMb": 2048, "cpus": 1},
            "containers.limits.grafana": {"memoryMb": 512, "cpus": 1},
            "containers.limits.vaultDev": {"memoryMb": 256, "cpus": 0.5},
            "containers.limits.ollamaDev": {"memoryMb": 8192, "cpus": 4},
            "monitoring.allowPublicBind": False, "gateway.allowPublicBind": False,
            "gateway.loadBalancer.tls": {"enabled": True, "vault": {"path": "ops/gateway-tls"}}}


def _prod_value(path: str):
    if path in _SAMPLES:
        return _SAMPLES[path]
    node = _PROD
    for part in path.split("."):
        if not isinstance(node, dict) or part not in node:
            return _SAMPLES[path]
        node = node[part]
    return node


@pytest.mark.parametrize("path", sorted(DOCKER_ONLY_KEYS))
def test_every_docker_only_key_is_refused_on_kubernetes_naming_it(path):
    config = k8s_config()
    node = config
    *parents, last = path.split(".")
    for part in parents:
        node = node.setdefault(part, {})
    node[last] = _prod_value(path)
    found = problems_of(config)
    assert path in found and "applies only to platform docker" in found[path], found


def test_the_docker_section_vault_container_and_local_ollama_are_refused_on_kubernetes():
    config = k8s_config()
    config["docker"] = {"host": "unix:///var/run/docker.sock"}
    config["vault"] = {"mode": "dev-container"}
    config["gpuHosts"][0]["localContainer"] = {"image": "ollama/ollama:0.12.6"}
    found = problems_of({**config, "environment": "dev"}, stack="dev")  # dev: a Vault container is allowed there
    assert "applies only to platform docker" in found["docker"]
    assert "mode: external" in found["vault.mode"]
    assert "over the network" in found["gpuHosts[0].localContainer"]


def test_the_kubernetes_section_is_refused_on_docker():
    config = copy.deepcopy(stack_file_config("prod"))
    config["kubernetes"] = {"namespace": "gateway"}
    assert "platform is docker" in problems_of(config, stack="prod")["kubernetes"]


def test_an_unknown_platform_is_refused():
    config = k8s_config()
    config["platform"] = "nomad"
    assert "docker or kubernetes" in problems_of(config)["platform"]


@pytest.mark.parametrize("change, key, words", [
    (lambda c: c["kubernetes"]["ingress"].pop("host"), "kubernetes.ingress.host", "required"),
    (lambda c: c["kubernetes"]["ingress"].update(tls={"enabled": False}), "kubernetes.ingress.tls.enabled",
     "plain HTTP"),
    (lambda c: c["kubernetes"]["ingress"].update(tls={"enabled": False, "vault": {"path": "ops/tls"}}),
     "kubernetes.ingress.tls.enabled", "tls.vault is given"),
    (lambda c: c["kubernetes"]["ingress"]["tls"].pop("vault"), "kubernetes.ingress.tls", "certificate and key"),
    (lambda c: c["kubernetes"]["autoscaling"].update(minReplicas=5, maxReplicas=3),
     "kubernetes.autoscaling.minReplicas", "above maxReplicas"),
    (lambda c: c["gateway"].update(replicas=3), "gateway.replicas", "autoscaler owns"),
    (lambda c: c["kubernetes"].update(ingress={"enabled": False}), "access.managementUrl", "port-forward"),
    (lambda c: c["kubernetes"].update(namespace="litellm-gateway-prod"), "kubernetes.namespace",
     "names environment 'prod'"),
    (lambda c: c["kubernetes"]["autoscaling"].update(maxReplicas=20), "gateway.loadBalancer.maxReplicas",
     "cannot hold 20 replicas"),
    (lambda c: c["kubernetes"].update(autoscaling={"enabled": False}), "gateway.replicas", "at least 2"),
    (lambda c: c["kubernetes"].update(autoscaling={"enabled": False, "maxReplicas": 4}),
     "kubernetes.autoscaling.maxReplicas", "enabled is false"),
    (lambda c: c["kubernetes"]["ingress"].update(host="10.0.0.5"), "kubernetes.ingress.host", "a DNS name"),
    (lambda c: (c["kubernetes"].update(ingress={"enabled": False, "className": "nginx"}),
                c["access"].update(managementUrl="https://gw.example:4000")),
     "kubernetes.ingress.className", "enabled is false"),
    (lambda c: c["gpuHosts"][0].update(address="gpu-01"), "gpuHosts[0].address", "short name"),
    (lambda c: c["access"].update(managementUrl="http://gateway.example.internal"), "access.managementUrl",
     "kubernetes.ingress.allowPlainHttp"),
])
def test_kubernetes_settings_that_cannot_work_are_refused(change, key, words):
    config = k8s_config()
    change(config)
    found = problems_of(config)
    assert key in found and words in found[key], found


def test_a_dev_stack_may_run_one_replica_and_a_prod_one_with_an_autoscaler_needs_the_slots():
    config = k8s_config()
    config.update(environment="dev-k8s")
    config["kubernetes"]["autoscaling"] = {"enabled": False}
    parse_settings(config, stack="dev-k8s")
    config = k8s_config()
    config["kubernetes"]["autoscaling"]["maxReplicas"] = 20
    config["gateway"]["loadBalancer"] = {"maxReplicas": 21}
    parse_settings(config, stack="k8s")


def test_a_plain_http_ingress_outside_dev_passes_with_a_named_waiver():
    config = k8s_config()
    config["kubernetes"]["ingress"].update(tls={"enabled": False}, allowPlainHttp="TLS ends at the cloud load balancer")
    parse_settings(config, stack="k8s")


# --- the declared objects ---------------------------------------------------------------------------------

def test_nothing_is_placed_on_a_docker_engine(run):
    assert not [r for r in run.resources if r.type.startswith("docker:")]
    (provider,) = run.mocks.of_type("providers:kubernetes")
    assert provider.plain("context") == "prod-cluster" and provider.plain("namespace") == PREFIX


def test_every_object_is_in_the_stack_namespace_which_is_kept_on_destroy(run):
    (namespace,) = objects(run, "Namespace").values()
    assert namespace["metadata"]["name"] == PREFIX
    assert namespace["metadata"]["labels"]["pod-security.kubernetes.io/enforce"] == "baseline"
    assert namespace["metadata"]["labels"]["pod-security.kubernetes.io/warn"] == "restricted"
    assert run.mocks.options_of("gateway-namespace").retain_on_delete is True
    for r in run.resources:
        if r.type.startswith("kubernetes:") and not r.type.endswith((":Namespace", ":kubernetes")):
            assert r.plain("metadata")["namespace"] == PREFIX, r.name


def test_the_replicas_roll_without_losing_capacity_and_spread_across_nodes(run):
    deployment = objects(run, "Deployment")[f"{PREFIX}-litellm"]
    spec = deployment["spec"]
    assert spec["strategy"] == {"type": "RollingUpdate", "rollingUpdate": {"maxUnavailable": 0, "maxSurge": 1}}
    assert "replicas" not in spec  # the fixture's autoscaler owns the count
    (spread,) = pod_spec(deployment)["topologySpreadConstraints"]
    assert spread["topologyKey"] == "kubernetes.io/hostname" and spread["maxSkew"] == 1
    assert spread["whenUnsatisfiable"] == "ScheduleAnyway"
    assert spread["labelSelector"]["matchLabels"] == spec["selector"]["matchLabels"] == spec["template"]["metadata"]["labels"]


def test_the_replica_probes_and_resources_follow_the_settings(run):
    container = pod_spec(objects(run, "Deployment")[f"{PREFIX}-litellm"])["containers"][0]
    gateway = stack_file_config("k8s")["gateway"]
    assert container["startupProbe"]["httpGet"]["path"] == "/health/liveliness"
    # 5 minutes to start, as the Docker healthcheck's start period.
    assert container["startupProbe"]["periodSeconds"] * container["startupProbe"]["failureThreshold"] == 300
    assert container["livenessProbe"]["httpGet"]["path"] == "/health/liveliness"
    assert container["readinessProbe"]["httpGet"]["path"] == "/health/readiness"
    assert container["resources"]["limits"] == container["resources"]["requests"] == {
        "cpu": f"{int(gateway['cpus'] * 1000)}m", "memory": f"{gateway['memoryMb']}Mi"}
    env = {e["name"]: e for e in container["env"]}
    assert env["DISABLE_SCHEMA_UPDATE"]["value"] == "true"
    assert container["securityContext"]["allowPrivilegeEscalation"] is False
    assert container["securityContext"]["capabilities"] == {"drop": ["ALL"]}


def test_the_stop_sequence_fits_in_the_grace_period_as_documented(run):
    """docs/operations.md: about 4 s for the load balancer to take a replica out, then in-flight requests
    finish within stopGraceSeconds - 9, then LiteLLM's own teardown."""
    spec = pod_spec(objects(run, "Deployment")[f"{PREFIX}-litellm"])
    grace = 60  # gateway.stopGraceSeconds' default: the fixture leaves it unset
    assert spec["terminationGracePeriodSeconds"] == grace
    container = spec["containers"][0]
    env = {e["name"]: e.get("value") for e in container["env"]}
    assert env["GRACEFUL_SHUTDOWN_TIMEOUT"] == str(grace - 9)
    hook = container["lifecycle"]["preStop"]["exec"]["command"]
    assert hook[:2] == ["/bin/sh", "-c"]
    assert "http://127.0.0.1:4000/health/drain" in hook[2] and re.search(r"^sleep 4$", hook[2], re.M)
    # The drain is authenticated with the token LiteLLM checks, from the Secret.
    assert env.get("DRAIN_ENDPOINT_TOKEN") is None
    token = next(e for e in container["env"] if e["name"] == "DRAIN_ENDPOINT_TOKEN")
    assert token["valueFrom"]["secretKeyRef"] == {"name": f"{PREFIX}-gateway", "key": "DRAIN_ENDPOINT_TOKEN"}


def test_the_config_checksum_and_the_vault_version_are_on_the_pod_template(run):
    deployment = objects(run, "Deployment")[f"{PREFIX}-litellm"]
    annotations = deployment["spec"]["template"]["metadata"]["annotations"]
    config_map = objects(run, "ConfigMap")[f"{PREFIX}-litellm-config"]
    import hashlib

    assert annotations["litellm-gateway/config-sha256"] == hashlib.sha256(
        config_map["data"]["config.yaml"].encode()).hexdigest()
    assert annotations["litellm-gateway/vault-secret-version"] == str(run.outputs["vaultSecretVersion"])
    mount = next(m for m in pod_spec(deployment)["containers"][0]["volumeMounts"] if m["name"] == "config")
    assert mount == {"name": "config", "mountPath": "/app/config.yaml", "subPath": "config.yaml", "readOnly": True}


def test_a_new_config_or_vault_version_changes_the_pod_template():
    base = run_stack(k8s_config(), stack="k8s")
    changed = k8s_config()
    changed["router"] = {"retries": 4}
    other = run_stack(changed, stack="k8s")

    def template(r):
        return objects(r, "Deployment")[f"{PREFIX}-litellm"]["spec"]["template"]["metadata"]["annotations"]

    assert template(base)["litellm-gateway/config-sha256"] != template(other)["litellm-gateway/config-sha256"]


def test_one_migration_job_per_litellm_version_runs_before_the_deployment(run):
    (job,) = objects(run, "Job").values()
    container = pod_spec(job)["containers"][0]
    assert container["command"] == ["python3", "litellm/proxy/prisma_migration.py"] and container["workingDir"] == "/app"
    assert "DISABLE_SCHEMA_UPDATE" not in {e["name"] for e in container["env"]}
    assert pod_spec(job)["restartPolicy"] == "Never"
    assert run.mocks.depends_on_names("gateway-litellm") >= {"gateway-migrate"}
    assert run.mocks.depends_on_names("gateway-migrate") >= {"gateway-postgres"}
    timeouts = run.mocks.options_of("gateway-migrate").custom_timeouts
    assert timeouts.create == "600s"
    # A failed Job is replaced by the next `pulumi up`, not waited for again.
    assert job["metadata"]["annotations"]["pulumi.com/replaceUnready"] == "true"
    # A new LiteLLM version is a new Job (a Job's pod spec is immutable), named after the image.
    newer = k8s_config()
    newer["gateway"]["image"] = "ghcr.io/berriai/litellm-database:main-v1.108.8-stable"
    (other,) = objects(run_stack(newer, stack="k8s"), "Job").values()
    assert other["metadata"]["name"] != job["metadata"]["name"]
    # The replicas name their Job, so the pod template changes with it too.
    annotations = objects(run, "Deployment")[f"{PREFIX}-litellm"]["spec"]["template"]["metadata"]["annotations"]
    assert annotations["litellm-gateway/migration"] == job["metadata"]["name"]


def test_the_access_objects_wait_for_the_whole_path_to_the_replicas(run):
    teams = [r.name for r in run.resources if r.name.startswith("access-team-")]
    assert teams and run.mocks.depends_on_names(teams[0]) >= {"gateway-litellm", "gateway-lb", "gateway-ingress"}


def test_the_load_balancer_carries_a_stream_to_its_end_when_it_is_replaced(run):
    spec = pod_spec(objects(run, "Deployment")[f"{PREFIX}-lb"])
    timeout = stack_file_config("k8s")["gateway"]["requestTimeoutSeconds"]
    assert spec["terminationGracePeriodSeconds"] >= timeout + 30
    hook = spec["containers"][0]["lifecycle"]["preStop"]["exec"]["command"][2]
    assert "kill -USR1 1" in hook  # HAProxy's soft stop
    assert objects(run, "Deployment")[f"{PREFIX}-lb"]["spec"]["strategy"]["rollingUpdate"] == {
        "maxUnavailable": 0, "maxSurge": 1}


def test_a_new_volume_size_does_not_replace_the_database():
    run = run_stack(k8s_config(), stack="k8s")
    assert "spec.volumeClaimTemplates" in run.mocks.options_of("gateway-postgres").ignore_changes


def test_the_dashboards_use_the_clusters_prometheus_data_source(run):
    import json as _json

    boards = [obj for obj in objects(run, "ConfigMap").values() if obj["metadata"]["labels"].get("grafana_dashboard")]
    for board in boards:
        (text,) = board["data"].values()
        model = _json.loads(text)
        assert model["templating"]["list"][0]["type"] == "datasource"
        assert "litellm-gateway-prometheus" not in text and "${datasource}" in text


def test_the_deployment_waits_for_every_model_pull(run):
    pulls = {r.name for r in run.resources if r.name.startswith("models-observed-")}
    assert pulls and run.mocks.depends_on_names("gateway-litellm") >= pulls


def test_the_disruption_budget_and_autoscaler_select_the_replicas(run):
    deployment = objects(run, "Deployment")[f"{PREFIX}-litellm"]
    labels = deployment["spec"]["template"]["metadata"]["labels"]
    (pdb,) = objects(run, "PodDisruptionBudget").values()
    assert pdb["spec"]["maxUnavailable"] == 1 and pdb["spec"]["selector"]["matchLabels"] == labels
    assert pdb["spec"]["unhealthyPodEvictionPolicy"] == "AlwaysAllow"
    (hpa,) = objects(run, "HorizontalPodAutoscaler").values()
    scaling = stack_file_config("k8s")["kubernetes"]["autoscaling"]
    assert hpa["spec"]["scaleTargetRef"] == {"apiVersion": "apps/v1", "kind": "Deployment", "name": f"{PREFIX}-litellm"}
    assert (hpa["spec"]["minReplicas"], hpa["spec"]["maxReplicas"]) == (scaling["minReplicas"], scaling["maxReplicas"])
    assert hpa["spec"]["metrics"][0]["resource"]["target"]["averageUtilization"] == scaling["targetCpuPercent"]


def test_without_an_autoscaler_the_deployment_declares_the_replica_count():
    config = k8s_config()
    config["kubernetes"]["autoscaling"] = {"enabled": False}
    config["gateway"]["replicas"] = 3
    run = run_stack(config, stack="k8s")
    assert objects(run, "Deployment")[f"{PREFIX}-litellm"]["spec"]["replicas"] == 3
    assert not objects(run, "HorizontalPodAutoscaler")


def test_every_reference_between_objects_resolves(run):
    secrets = {name: obj.get("stringData", {}) for name, obj in objects(run, "Secret").items()}
    config_maps = {name: obj.get("data", {}) for name, obj in objects(run, "ConfigMap").items()}
    claims = set(objects(run, "PersistentVolumeClaim"))
    workloads = {**objects(run, "Deployment"), **objects(run, "StatefulSet"), **objects(run, "Job"),
                 **objects(run, "CronJob")}
    pod_labels = []
    for name, obj in workloads.items():
        spec = pod_spec(obj)
        template = obj["spec"].get("jobTemplate", {}).get("spec", obj["spec"])["template"]
        pod_labels.append(template["metadata"]["labels"])
        for container in spec["containers"]:
            for env in container.get("env", []):
                ref = env.get("valueFrom", {}).get("secretKeyRef")
                if ref:  # an optional one (the backups' libpq keys) is read only when the URL gives it
                    assert ref["key"] in secrets[ref["name"]] or ref.get("optional"), (name, ref)
        volumes = {v["name"]: v for v in spec.get("volumes") or []}
        for container in spec["containers"]:
            for mount in container.get("volumeMounts", []):
                assert mount["name"] in volumes or any(
                    t["metadata"]["name"] == mount["name"] for t in obj["spec"].get("volumeClaimTemplates", [])), (name, mount)
        for volume in volumes.values():
            if "secret" in volume:
                for item in volume["secret"].get("items", []) or list(secrets[volume["secret"]["secretName"]]):
                    key = item["key"] if isinstance(item, dict) else item
                    assert key in secrets[volume["secret"]["secretName"]], (name, volume)
            if "configMap" in volume:
                assert volume["configMap"]["name"] in config_maps, (name, volume)
            if "persistentVolumeClaim" in volume:
                assert volume["persistentVolumeClaim"]["claimName"] in claims, (name, volume)
    for name, service in objects(run, "Service").items():
        selector = service["spec"]["selector"]
        assert any(selector.items() <= labels.items() for labels in pod_labels), (name, selector)
    (ingress,) = objects(run, "Ingress").values()
    backend = ingress["spec"]["rules"][0]["http"]["paths"][0]["backend"]["service"]
    service = objects(run, "Service")[backend["name"]]
    assert backend["port"]["name"] in {p["name"] for p in service["spec"]["ports"]}
    assert ingress["spec"]["tls"][0]["secretName"] in secrets
    assert ingress["spec"]["rules"][0]["host"] == ingress["spec"]["tls"][0]["hosts"][0] == "gateway.example.internal"


def test_the_rendered_config_reaches_the_data_stores_and_the_dispatcher_by_their_service_names(run):
    services = set(objects(run, "Service"))
    text = objects(run, "ConfigMap")[f"{PREFIX}-litellm-config"]["data"]["config.yaml"]
    for name in (f"{PREFIX}-redis", f"{PREFIX}-lb"):
        assert name in services and name in text
    lb = objects(run, "ConfigMap")[f"{PREFIX}-lb-config"]["data"]["haproxy.cfg"]
    assert f"{PREFIX}-litellm.{PREFIX}.svc.cluster.local:4000" in lb and "parse-resolv-conf" in lb
    assert "sc_conn_cur" not in lb  # behind an Ingress every client shares the controller's addresses


def test_no_secret_is_in_plain_text_in_any_object(run):
    found = [(r.name, path) for r in run.resources if r.type.startswith("kubernetes:")
             for path, value in walk_plain(r.inputs) if isinstance(value, str) and SECRET_MARKER in value]
    assert not found
    secrets = [r for r in run.resources if r.type == "kubernetes:core/v1:Secret"]
    assert {r.plain("metadata")["name"] for r in secrets} == {
        f"{PREFIX}-gateway", f"{PREFIX}-redis-config", f"{PREFIX}-tls", f"{PREFIX}-metrics-key"}
    for secret in secrets:  # every value a Pulumi secret, encrypted in the state
        assert secret.plain("stringData") and not list(walk_plain(secret.inputs["stringData"])), secret.name


def test_tls_from_the_secret_config_keys_becomes_the_ingress_secret():
    config = k8s_config()
    config["kubernetes"]["ingress"]["tls"] = {"enabled": True}
    pem = "-----BEGIN CERTIFICATE-----\nMOCKSECRET-cert\n-----END CERTIFICATE-----"
    key = "-----BEGIN PRIVATE KEY-----\nMOCKSECRET-key\n-----END PRIVATE KEY-----"
    run = run_stack(config, secrets={"gatewayTlsCertificate": pem, "gatewayTlsKey": key}, stack="k8s")
    secret = objects(run, "Secret")[f"{PREFIX}-tls"]
    assert secret["type"] == "kubernetes.io/tls"
    assert secret["stringData"] == {"tls.crt": pem + "\n", "tls.key": key + "\n"}
    recorded = next(r for r in run.resources if r.name == "gateway-tls")
    assert [path for path, _ in walk_plain(recorded.inputs.get("stringData"))] == []


def test_network_policies_admit_each_pod_only_from_where_it_is_needed(run):
    policies = objects(run, "NetworkPolicy")
    deny = policies[f"{PREFIX}-default-deny"]["spec"]
    assert deny["policyTypes"] == ["Ingress"] and "ingress" not in deny
    postgres = policies[f"{PREFIX}-postgres"]["spec"]["ingress"][0]
    allowed = postgres["from"][0]["podSelector"]["matchExpressions"][0]["values"]
    assert sorted(allowed) == ["backup", "litellm", "migrate", "postgres-exporter"]
    assert postgres["ports"] == [{"port": 5432, "protocol": "TCP"}]
    lb = policies[f"{PREFIX}-loadbalancer"]["spec"]["ingress"]
    dispatcher = next(rule for rule in lb if rule["ports"][0]["port"] == 11400)
    assert dispatcher["from"][0]["podSelector"]["matchExpressions"][0]["values"] == ["litellm"]
    assert any("from" not in rule and rule["ports"][0]["port"] == haproxy.HTTP_PORT for rule in lb)


def test_the_monitoring_objects_carry_the_metrics_key_and_the_jobs_the_rules_use(run):
    monitors = objects(run, "ServiceMonitor")
    litellm = monitors[f"{PREFIX}-litellm"]["spec"]["endpoints"][0]
    assert litellm["authorization"] == {"type": "Bearer", "credentials": {"name": f"{PREFIX}-metrics-key", "key": "token"}}
    assert {"targetLabel": "job", "replacement": "litellm"} in litellm["relabelings"]
    jobs = {next(r["replacement"] for r in m["spec"]["endpoints"][0]["relabelings"] if r["targetLabel"] == "job")
            for m in monitors.values()} | {next(r["replacement"] for r in s["spec"]["relabelings"])
                                           for s in objects(run, "ScrapeConfig").values()}
    (rules,) = objects(run, "PrometheusRule").values()
    used = set(re.findall(r'job=~?"([^"]+)"', " ".join(r["expr"] for r in rules["spec"]["groups"][0]["rules"])))
    for job in used:
        for alternative in job.split("|"):
            assert alternative in jobs, alternative
    boards = [obj for obj in objects(run, "ConfigMap").values() if obj["metadata"]["labels"].get("grafana_dashboard") == "1"]
    assert len(boards) == len(run.outputs["backlog"]["BACKLOG-007"]["evidence"]["dashboards"]) >= 1


def test_backups_run_the_rendered_script_as_a_cronjob_per_time():
    config = k8s_config()
    config["backups"]["timesUtc"] = ["03:00", "15:30"]
    run = run_stack(config, stack="k8s")
    jobs = objects(run, "CronJob")
    assert sorted(j["spec"]["schedule"] for j in jobs.values()) == ["0 3 * * *", "30 15 * * *"]
    job = jobs[f"{PREFIX}-backup-0"]
    assert job["spec"]["timeZone"] == "Etc/UTC" and job["spec"]["concurrencyPolicy"] == "Forbid"
    spec = pod_spec(job)
    assert spec["securityContext"]["runAsUser"] == 999
    # libpq's environment from the Secret, derived from the database's URL: the stack's own database here.
    env = {e["name"]: e["valueFrom"]["secretKeyRef"] for e in spec["containers"][0]["env"] if "valueFrom" in e}
    secret = objects(run, "Secret")[env["PGHOST"]["name"]]["stringData"]
    assert {name: secret.get(ref["key"]) for name, ref in env.items()} == {
        "PGHOST": f"{PREFIX}-postgres", "PGPORT": "5432", "PGUSER": "litellm", "PGDATABASE": "litellm",
        "PGPASSWORD": secret["POSTGRES_PASSWORD"], "PGSSLMODE": None, "PGSSLROOTCERT": None,
        "PGCONNECT_TIMEOUT": None, "PGAPPNAME": None, "PGOPTIONS": None, "PGTARGETSESSIONATTRS": None}
    assert all(ref["optional"] for ref in env.values())
    assert run.mocks.options_of("backups-volume").retain_on_delete is True


@pytest.mark.parametrize("change, absent", [
    (lambda c: c.update(monitoring={"enabled": False}), ("ServiceMonitor", "PrometheusRule", "ScrapeConfig")),
    (lambda c: c.update(backups={"enabled": False}), ("CronJob",)),
    (lambda c: c["kubernetes"].update(createNamespace=False, namespace="platform-gateways"), ("Namespace",)),
])
def test_what_a_setting_turns_off_is_not_declared(change, absent):
    config = k8s_config()
    change(config)
    run = run_stack(config, stack="k8s")
    for kind in absent:
        assert not objects(run, kind), kind
