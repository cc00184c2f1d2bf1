"""postgres.mode and redis.mode: external, under the Pulumi mocks: what the settings refuse (each naming its key),
what the program declares on both platforms, and the pure URL helpers. The real servers are in
tests/integration/test_external_data_stores.py."""

from __future__ import annotations

import copy
import json
from urllib.parse import parse_qsl, urlsplit

import pulumi
import pytest
import yaml

from config.errors import SettingsError
from components.vault_access import checked_field
from config.parse import parse_settings
from config.sections.data import VaultUrlRef
from config.values import libpq_environment, libpq_url, postgres_url_problem, with_query
from kube_manifests import objects, pod_spec
from harness import (REDIS_TOPOLOGIES, SECRET_MARKER, run_stack, stack_file_config, walk_plain,
                     with_external_data_stores, with_redis_topology)
from operations import offline
from operations.backup.adopt import not_adopted
from operations.backup.stack import StackFacts
from renderers.data_stores import POSTGRES_CA_PATH, REDIS_CA_PATH

CA = stack_file_config("ext")["postgres"]["external"]["caCertificate"]
URL = "postgresql://gateway:p%40ss%2Fw%23rd@db.example.internal:5433/litellm_prod"


def problems_of(raw: dict, stack: str, secrets: dict | None = None) -> dict[str, str]:
    raw = {**copy.deepcopy(raw), **(secrets or {})}
    with pytest.raises(SettingsError) as refused:
        parse_settings(raw, secret_keys=frozenset(secrets or {}), stack=stack)
    return dict(refused.value.problems)


def ext() -> dict:
    return copy.deepcopy(stack_file_config("ext"))


# --- settings ------------------------------------------------------------------------------------------------

def test_the_external_fixture_is_valid_and_reads_as_external():
    settings = parse_settings(ext(), stack="ext")
    assert (settings.postgres.mode, settings.redis.mode) == ("external", "external")
    assert settings.redis.external.username == "litellm" and settings.redis.external.tls


@pytest.mark.parametrize("change, key, words", [
    (lambda c: c["postgres"].update(volumeName="pgdata"), "postgres.volumeName", "postgres.mode: container"),
    (lambda c: c["postgres"].update(database="other"), "postgres.database", "in its URL"),
    (lambda c: c["postgres"].update(user="other"), "postgres.user", "in its URL"),
    (lambda c: c.setdefault("containers", {}).setdefault("limits", {}).update(postgres={"memoryMb": 512, "cpus": 1}),
     "containers.limits.postgres", "runs no database"),
    (lambda c: c["redis"].update(image="redis:7.4.6"), "redis.image", "redis.mode: container"),
    (lambda c: c["redis"].update(maxMemoryMb=512), "redis.maxMemoryMb", "redis.mode: container"),
    (lambda c: c["postgres"]["external"].update(sslmode="disable"), "postgres.external.sslmode", "in clear"),
    (lambda c: c["postgres"]["external"].pop("caCertificate"), "postgres.external.caCertificate", "required"),
    (lambda c: c["postgres"]["external"].update(sslmode="require"), "postgres.external.caCertificate", "not checked"),
    (lambda c: c["postgres"]["external"].update(caCertificate="not a certificate"), "postgres.external.caCertificate",
     "not a PEM certificate"),
    (lambda c: c["postgres"]["external"].update(caCertificate="-----BEGIN PRIVATE KEY-----\nMII\n-----END PRIVATE "
                                                              "KEY-----\n" + CA), "postgres.external.caCertificate",
     "private key"),
    (lambda c: c["postgres"]["external"].update(caCertificate="-----BEGIN CERTIFICATE-----\nbroken\n-----END "
                                                              "CERTIFICATE-----\n"), "postgres.external.caCertificate",
     "OpenSSL"),
    (lambda c: c["postgres"]["external"].update(caCertificate=CA + "\x00"), "postgres.external.caCertificate",
     "control character"),
    (lambda c: c["postgres"]["external"].pop("urlVault"), "postgresUrl", "required"),
    (lambda c: c["redis"]["external"].pop("host"), "redis.external.host", "required"),
    (lambda c: c["redis"]["external"].update(tls=False), "redis.external.tls", "in clear"),
    (lambda c: c["redis"]["external"].update(username="bad user"), "redis.external.username", "pattern"),
    (lambda c: c["redis"]["external"].update(host="bad host!"), "redis.external.host", ""),
    (lambda c: c["redis"]["external"].update(port=0), "redis.external.port", ""),
    (lambda c: c["redis"]["external"].pop("passwordVault"), "redisPassword", "required"),
    (lambda c: c["redis"].update(mode="container"), "redis.external.host", "redis.mode is container"),
    (lambda c: c["postgres"].update(mode="container"), "postgres.external.sslmode", "postgres.mode is container"),
    (lambda c: c["postgres"].update(mode="cluster"), "postgres.mode", ""),
])
def test_each_wrong_external_setting_is_refused_naming_its_key(change, key, words):
    config = ext()
    change(config)
    problems = problems_of(config, "ext")
    assert key in problems and words in problems[key], problems


def test_an_external_database_without_tls_is_allowed_in_dev_only():
    config = with_external_data_stores(stack_file_config("dev"))
    config["postgres"]["external"].update(sslmode="disable")
    config["postgres"]["external"].pop("caCertificate")
    config["redis"]["external"].update(tls=False)
    config["redis"]["external"].pop("caCertificate")
    settings = parse_settings(config, stack="dev")
    assert settings.postgres.external.sslmode == "disable" and not settings.redis.external.tls


@pytest.mark.parametrize("url, words", [
    ("mysql://u:s3cr3tpw@db:3306/x", "must start with postgresql://"),
    ("postgresql://u:s3cr3tpw@/x", "names no host"),
    ("postgresql://db.internal:5432/x", "names no user"),
    ("postgresql://u:s3cr3tpw@db.internal:5432", "names no database"),
    ("postgresql://u:s3cr3tpw@db.internal:5432/x?sslmode=disable", "carries sslmode"),
    ("postgresql://u:s3cr3tpw@db.internal:5432/x?application_name=a&sslrootcert=/ca.pem", "carries sslrootcert"),
    ("postgresql://u:s3cr3tpw@a.internal,b.internal/x", "several hosts"),
    ("postgresql://u:s3cr3tpw@db.internal:99999/x", "port"),
    ("postgresql://u:s3cr3t pw@db.internal/x", "white space"),
])
def test_a_wrong_database_url_is_refused_without_showing_it(url, words):
    config = ext()
    config["postgres"]["external"].pop("urlVault")
    problems = problems_of(config, "ext", {"postgresUrl": url})
    assert words in problems["postgresUrl"], problems
    assert "s3cr3t" not in problems["postgresUrl"]


def test_database_urls_come_from_one_place_and_only_for_an_external_database():
    config = ext()
    problems = problems_of(config, "ext", {"postgresUrl": URL, "postgresPassword": "x" * 20})
    assert "both set" in problems["postgresUrl"] and "postgresPassword" in problems
    problems = problems_of(stack_file_config("prod"), "prod", {"postgresUrl": URL, "postgresReadReplicaUrl": URL})
    assert "postgres.mode is container" in problems["postgresUrl"]
    assert "postgres.mode is container" in problems["postgresReadReplicaUrl"]
    config = ext()
    config["redis"]["external"].pop("host")
    problems = problems_of(config, "ext", {"redisPassword": "r" * 20})
    assert "both set" in problems["redisPassword"]


def test_a_database_url_given_as_plain_config_is_refused():
    config = ext()
    config["postgres"]["external"].pop("urlVault")
    with pytest.raises(SettingsError) as refused:
        parse_settings({**config, "postgresUrl": URL}, stack="ext")
    assert "--secret postgresUrl" in dict(refused.value.problems)["postgresUrl"]


# --- the pure URL helpers ------------------------------------------------------------------------------------

def test_libpq_environment_decodes_what_the_url_encodes():
    url = with_query(URL, sslmode="verify-full", sslrootcert=POSTGRES_CA_PATH)
    assert libpq_environment(url) == {
        "PGHOST": "db.example.internal", "PGPORT": "5433", "PGUSER": "gateway", "PGPASSWORD": "p@ss/w#rd",
        "PGDATABASE": "litellm_prod", "PGSSLMODE": "verify-full", "PGSSLROOTCERT": POSTGRES_CA_PATH}
    assert libpq_environment("postgresql://u:s3cr3tpw@[fd00::5]/db")["PGHOST"] == "fd00::5"
    assert libpq_environment("postgresql://u:s3cr3tpw@db/db")["PGPORT"] == "5432"


def test_prisma_parameters_are_dropped_for_libpq_and_tls_parameters_kept():
    url = "postgresql://u:s3cr3tpw@db/x?connection_limit=10&application_name=gw&schema=litellm&sslmode=verify-full"
    assert parse_qsl(urlsplit(libpq_url(url)).query) == [("application_name", "gw"), ("sslmode", "verify-full")]
    assert postgres_url_problem(URL) is None
    assert postgres_url_problem("postgresql://u:s3cr3tpw@db/x?connection_limit=5&options=-c%20statement_timeout%3D5s") is None


# --- the program, Docker platform ----------------------------------------------------------------------------

@pytest.fixture(scope="module")
def docker_run():
    return run_stack(ext(), stack="ext")


def envs(run, name: str) -> dict[str, str]:
    return dict(item.split("=", 1) for item in run.mocks.named(name).plain("envs"))


def test_the_stack_runs_no_database_or_redis_and_the_replicas_wait_for_neither(docker_run):
    names = {r.name for r in docker_run.mocks.resources}
    assert not names & {"gateway-postgres", "gateway-redis", "gateway-postgres-volume"}
    deps = docker_run.mocks.depends_on_names("gateway-litellm-0")
    assert not deps & {"gateway-postgres", "gateway-redis"}
    assert not docker_run.mocks.depends_on_names("backups-scheduler") & {"gateway-postgres"}


def test_the_replicas_get_both_urls_from_vault_with_the_tls_settings(docker_run):
    env = envs(docker_run, "gateway-litellm-0")
    for key in ("DATABASE_URL", "DATABASE_URL_READ_REPLICA"):
        url = urlsplit(env[key])
        assert url.hostname == "db.example.internal" and "vault-database-password" in url.password
        assert parse_qsl(url.query) == [("sslmode", "verify-full"), ("sslrootcert", POSTGRES_CA_PATH)]
    uploads = {u["file"]: u for u in docker_run.mocks.named("gateway-litellm-0").plain("uploads")}
    assert uploads[POSTGRES_CA_PATH]["content"] == uploads[REDIS_CA_PATH]["content"] == CA.rstrip("\n") + "\n"
    assert uploads[POSTGRES_CA_PATH]["permissions"] == "0644"
    assert "vault-redis-password" in env["REDIS_PASSWORD"]


def test_every_redis_client_of_litellm_uses_the_acl_user_and_verified_tls(docker_run):
    (upload,) = [u for u in docker_run.mocks.named("gateway-litellm-0").plain("uploads") if u["file"] == "/app/config.yaml"]
    config = yaml.safe_load(upload["content"])
    tls = {"username": "litellm", "ssl": True, "ssl_cert_reqs": "required", "ssl_check_hostname": True,
           "ssl_ca_certs": REDIS_CA_PATH}
    for section in (config["litellm_settings"]["cache_params"], config["general_settings"]["coordination_redis"]):
        assert (section["host"], section["port"]) == ("redis.example.internal", 6380)
        assert {k: section[k] for k in tls} == tls
    router = config["router_settings"]
    assert (router["redis_host"], router["redis_port"], router["cache_kwargs"]) == ("redis.example.internal", 6380, tls)


def test_backups_and_exporters_reach_the_external_stores(docker_run):
    backup = envs(docker_run, "backups-scheduler")
    assert {k: backup[k] for k in ("PGHOST", "PGPORT", "PGUSER", "PGDATABASE", "PGSSLMODE", "PGSSLROOTCERT")} == {
        "PGHOST": "db.example.internal", "PGPORT": "5432", "PGUSER": "litellm", "PGDATABASE": "litellm",
        "PGSSLMODE": "verify-full", "PGSSLROOTCERT": POSTGRES_CA_PATH}
    assert "DATABASE_URL" not in backup   # the password only in PGPASSWORD, never in a URL on a command line
    redis = envs(docker_run, "monitoring-redis-exporter")
    assert redis["REDIS_ADDR"] == "rediss://redis.example.internal:6380" and redis["REDIS_USER"] == "litellm"
    assert redis["REDIS_EXPORTER_TLS_CA_CERT_FILE"] == REDIS_CA_PATH
    postgres = envs(docker_run, "monitoring-postgres-exporter")
    assert parse_qsl(urlsplit(postgres["DATA_SOURCE_NAME"]).query)[0] == ("sslmode", "verify-full")
    for name, ca in (("backups-scheduler", POSTGRES_CA_PATH), ("monitoring-redis-exporter", REDIS_CA_PATH),
                     ("monitoring-postgres-exporter", POSTGRES_CA_PATH)):
        container = docker_run.mocks.named(name)
        assert ca in {u["file"] for u in container.plain("uploads")}, name
    # A CA upload needs a writable root filesystem (Docker refuses uploads into a read-only one): waived by name.
    exporter = docker_run.mocks.named("monitoring-redis-exporter")
    assert exporter.plain("readOnly") is False
    assert any(label["label"].endswith("policy-waiver.read-only-rootfs") for label in exporter.plain("labels"))


def test_no_secret_of_the_external_stores_is_in_plain_text(docker_run):
    leaks = [(r.name, path) for r in docker_run.mocks.resources for path, value in walk_plain(r.inputs)
             if isinstance(value, str) and (SECRET_MARKER in value or offline.RecordingMocks.marker in value)]
    assert not leaks
    assert "backlog" in docker_run.outputs and not [p for p, v in walk_plain(docker_run.outputs)
                                                     if isinstance(v, str) and "vault-database-password" in v]


def test_the_evidence_says_where_the_data_lives(docker_run):
    backlog = docker_run.outputs["backlog"]
    assert backlog["BACKLOG-004"]["evidence"]["database"] == "external (sslmode verify-full, read replica)"
    assert backlog["BACKLOG-008"]["evidence"]["cache"]["external"] == "redis.example.internal:6380"
    assert backlog["BACKLOG-006"]["status"] == "done"   # database mode on the external database


@pytest.mark.parametrize("data, words", [
    ({"url": URL + "?sslmode=disable"}, "carries sslmode"),
    ({"url": "mysql://u:s3cr3tpw@db/x"}, "must start with postgresql://"),
    ({"other": URL}, "has no field 'url'"),
    (None, "has no field 'url'"),
])
def test_a_wrong_url_in_vault_fails_the_run_naming_the_key_never_the_value(data, words):
    ref = VaultUrlRef(path="ops/gateway-database")
    with pytest.raises(pulumi.RunError) as failed:
        checked_field(data, ref, "postgres.external.urlVault", postgres_url_problem)
    message = str(failed.value)
    assert message.startswith("litellm-gateway:postgres.external.urlVault: ") and words in message
    assert "s3cr3t" not in message and "p%40ss" not in message


def test_restore_leaves_what_the_stack_does_not_own(tmp_path):
    settings = parse_settings(ext(), stack="ext")
    assert not_adopted(StackFacts("ext", settings, tmp_path / "Pulumi.ext.yaml")) == {"postgresPassword",
                                                                                      "redisPassword"}
    own = parse_settings(stack_file_config("prod"), stack="prod")
    assert not_adopted(StackFacts("prod", own, tmp_path / "Pulumi.prod.yaml")) == set()


# --- the program, Kubernetes platform ------------------------------------------------------------------------

@pytest.fixture(scope="module")
def kube_run():
    return run_stack(with_external_data_stores(stack_file_config("k8s")), stack="k8s")


def test_on_kubernetes_no_database_or_redis_objects_and_no_policies_for_them(kube_run):
    prefix = "litellm-gateway-k8s"
    assert not objects(kube_run, "StatefulSet")
    assert f"{prefix}-redis" not in objects(kube_run, "Deployment")
    assert not {f"{prefix}-postgres", f"{prefix}-redis"} & set(objects(kube_run, "NetworkPolicy"))


def test_on_kubernetes_every_pod_that_connects_mounts_the_ca_certificates(kube_run):
    (ca_map,) = [m for name, m in objects(kube_run, "ConfigMap").items() if name.endswith("-ca")]
    assert ca_map["data"] == {"postgres.pem": CA.rstrip("\n") + "\n", "redis.pem": CA.rstrip("\n") + "\n"}
    workloads = {**objects(kube_run, "Deployment"), **objects(kube_run, "Job"),
                 **objects(kube_run, "CronJob")}
    needs = {"litellm", "migrate", "backup", "redis-exporter", "postgres-exporter"}
    found = set()
    for name, workload in workloads.items():
        component = workload["metadata"]["labels"]["app.kubernetes.io/component"]
        if component not in needs:
            continue
        found.add(component)
        (container,) = pod_spec(workload)["containers"]
        mounts = {m["mountPath"] for m in container.get("volumeMounts", [])}
        assert "/etc/litellm-gateway/ca" in mounts, name
    assert found == needs


def test_on_kubernetes_the_secret_holds_both_urls_and_the_backups_libpq_environment(kube_run):
    secret = next(o for n, o in objects(kube_run, "Secret").items() if n.endswith("-gateway"))["stringData"]
    assert "sslmode=verify-full" in secret["DATABASE_URL"] and "sslmode=verify-full" in secret["DATABASE_URL_READ_REPLICA"]
    assert (secret["PGHOST"], secret["PGSSLMODE"]) == ("db.example.internal", "verify-full")
    deployment = objects(kube_run, "Deployment")["litellm-gateway-k8s-litellm"]
    env = {e["name"] for e in deployment["spec"]["template"]["spec"]["containers"][0]["env"]}
    assert {"DATABASE_URL", "DATABASE_URL_READ_REPLICA"} <= env
    assert json.dumps(deployment).count("vault-database-password") == 0



def test_the_deploying_token_may_read_the_external_stores_secrets_and_nothing_else_there():
    from renderers.vault_policy import deployer_rules

    rules = {path: (caps, why) for path, caps, why in deployer_rules(parse_settings(ext(), stack="ext"))}
    assert rules["secret/data/ops/gateway-database"][0] == ["read"]
    assert "urlVault" in rules["secret/data/ops/gateway-database"][1]
    assert "readReplicaUrlVault" in rules["secret/data/ops/gateway-database"][1]
    assert rules["secret/data/ops/gateway-redis"][0] == ["read"]
    own = {path for path, _, _ in deployer_rules(parse_settings(stack_file_config("prod"), stack="prod"))}
    assert not own & {"secret/data/ops/gateway-database", "secret/data/ops/gateway-redis"}


@pytest.mark.parametrize("url, problem", [
    ("postgresql://u:a,b@db.internal:5432/x", None),                       # a comma in the password is fine
    ("postgresql://u:s3cr3tpw@h1:5432,h2:5432/x", "several hosts"),
    ("postgresql://u:s3cr3tpw@db.internal/x?host=other.internal", "carries host as a parameter"),
    ("postgresql://u:s3cr3tpw@db.internal/x?dbname=other", "carries dbname as a parameter"),
    ("postgresql://u:s3cr3tpw@db.internal/x?user=other&port=1", "carries port, user as a parameter"),
])
def test_the_url_names_one_server_and_database_in_one_place(url, problem):
    found = postgres_url_problem(url)
    assert (found is None) if problem is None else (problem in found and "s3cr3t" not in found), found


def test_an_external_redis_password_is_its_owners_a_generated_ones_length_is_not_required():
    config = ext()
    config["redis"]["external"].pop("passwordVault")
    settings = parse_settings({**config, "redisPassword": "short-pw"}, secret_keys=frozenset({"redisPassword"}),
                              stack="ext")
    assert settings.supplied_secrets.get("redisPassword") == "short-pw"
    problems = problems_of(stack_file_config("prod"), "prod", {"redisPassword": "short-pw"})
    assert "too short" in problems["redisPassword"]


def test_a_new_database_url_rolls_the_pods_and_migrates_the_new_database_on_kubernetes():
    def declared(url: str):
        config = with_external_data_stores(stack_file_config("k8s"))
        config["postgres"]["external"].pop("urlVault")
        run = run_stack(config, secrets={"postgresUrl": url}, stack="k8s")
        replicas = objects(run, "Deployment")["litellm-gateway-k8s-litellm"]
        exporter = objects(run, "Deployment")["litellm-gateway-k8s-postgres-exporter"]
        return (replicas["spec"]["template"]["metadata"]["annotations"]["litellm-gateway/data-stores"],
                exporter["spec"]["template"]["metadata"]["annotations"]["litellm-gateway/data-stores"],
                sorted(objects(run, "Job")))

    first, second = declared(URL), declared(URL.replace("litellm_prod", "litellm_new"))
    assert first[0] == first[1] and second[0] == second[1] and first[0] != second[0]
    assert first[2] != second[2] and all(name.startswith("litellm-gateway-k8s-migrate-") for name in first[2] + second[2])
    assert URL.split("@")[0].split(":")[-1] not in first[0]   # a keyed digest, not the password


def test_operations_need_no_database_container_for_an_external_database(tmp_path, monkeypatch):
    monkeypatch.delenv("DATABASE_URL", raising=False)
    from types import SimpleNamespace

    from operations.backup.cli import database_from
    from operations.backup.errors import Refused

    facts = StackFacts("ext", parse_settings(ext(), stack="ext"), tmp_path / "Pulumi.ext.yaml")
    with pytest.raises(Refused, match="no database container"):
        database_from(SimpleNamespace(docker_container="litellm-gateway-ext-postgres", database_url=None), facts)
    with pytest.raises(Refused, match="sslmode=verify-full"):
        database_from(SimpleNamespace(docker_container=None, database_url=None), facts)


# --- Redis behind Sentinel, or a cluster -------------------------------------------------------------------------

SENTINELS = REDIS_TOPOLOGIES["sentinel"]["nodes"]
CLUSTER = REDIS_TOPOLOGIES["cluster"]["nodes"]


def test_a_redis_behind_sentinel_or_in_a_cluster_is_valid():
    sentinel = parse_settings(with_redis_topology(ext(), "sentinel"), stack="ext")
    assert [(n.host, n.port) for n in sentinel.redis.external.sentinel.nodes] == [
        ("sentinel-a.example.internal", 26379), ("sentinel-b.example.internal", 26380)]
    cluster = parse_settings(with_redis_topology(ext(), "cluster"), stack="ext")
    assert [(n.host, n.port) for n in cluster.redis.external.cluster.nodes] == [
        ("cache-1.example.internal", 7000), ("cache-2.example.internal", 6379)]


@pytest.mark.parametrize("change, key, words", [
    (lambda e: e.update(sentinel={"masterName": "gateway", "nodes": SENTINELS}), "redis.external.sentinel",
     "both set"),
    (lambda e: e.update(cluster={"nodes": CLUSTER}), "redis.external.cluster", "both set"),
    (lambda e: (e.pop("host"), e.update(sentinel={"masterName": "gateway", "nodes": SENTINELS})),
     "redis.external.port", "each Sentinel's or cluster node's port"),
    (lambda e: (e.pop("host"), e.pop("port"), e.update(sentinel={"masterName": "g", "nodes": SENTINELS},
                                                       cluster={"nodes": CLUSTER})), "redis.external.cluster",
     "both set"),
    (lambda e: (e.pop("host"), e.pop("port"), e.update(sentinel={"nodes": SENTINELS})),
     "redis.external.sentinel.masterName", "required"),
    (lambda e: (e.pop("host"), e.pop("port"), e.update(sentinel={"masterName": "gateway", "nodes": []})),
     "redis.external.sentinel.nodes", "at least 1"),
    (lambda e: (e.pop("host"), e.pop("port"), e.update(sentinel={"masterName": "bad name", "nodes": SENTINELS})),
     "redis.external.sentinel.masterName", "pattern"),
    (lambda e: (e.pop("host"), e.pop("port"), e.update(sentinel={"masterName": "gateway", "nodes": [
        {"host": "Sentinel-A.example.internal"}, {"host": "sentinel-a.example.internal", "port": 26379}]})),
     "redis.external.sentinel.nodes", "listed twice"),
    (lambda e: (e.pop("host"), e.pop("port"), e.update(cluster={"nodes": [{"host": "::1"}, {"host": "0:0::1"}]})),
     "redis.external.cluster.nodes", "'[::1]:6379' is listed twice"),
    (lambda e: (e.pop("host"), e.pop("port"), e.update(cluster={"nodes": [{"host": "cache.example."},
                                                                          {"host": "Cache.Example"}]})),
     "redis.external.cluster.nodes", "listed twice"),
    (lambda e: (e.pop("host"), e.pop("port"), e.update(sentinel={"masterName": "g", "nodes": [
        {"host": "10.0.0.7"}, {"host": "::ffff:10.0.0.7"}]})), "redis.external.sentinel.nodes", "listed twice"),
    (lambda e: (e.pop("host"), e.pop("port"), e.update(cluster={"nodes": [{"host": "bad host!"}]})),
     "redis.external.cluster.nodes[0].host", ""),
    (lambda e: (e.pop("host"), e.pop("port"), e.update(cluster={"nodes": [{"host": "c", "port": 70000}]})),
     "redis.external.cluster.nodes[0].port", ""),
    (lambda e: (e.pop("host"), e.pop("port"), e.update(cluster={"nodes": [{"host": "c", "extra": 1}]})),
     "redis.external.cluster.nodes[0].extra", ""),
])
def test_each_wrong_sentinel_or_cluster_setting_is_refused_naming_its_key(change, key, words):
    config = ext()
    change(config["redis"]["external"])
    problems = problems_of(config, "ext")
    assert key in problems and words in problems[key], problems


def test_topology_keys_are_refused_for_the_stacks_own_redis():
    config = with_redis_topology(ext(), "cluster")
    config["redis"] = {"mode": "container", "external": {"cluster": config["redis"]["external"]["cluster"]}}
    config.get("containers", {}).get("limits", {}).pop("redis", None)
    problems = problems_of(config, "ext")
    assert "redis.mode is container" in problems["redis.external.cluster"], problems


def rendered_config(run) -> dict:
    (upload,) = [u for u in run.mocks.named("gateway-litellm-0").plain("uploads") if u["file"] == "/app/config.yaml"]
    return yaml.safe_load(upload["content"])


TLS = {"username": "litellm", "ssl": True, "ssl_cert_reqs": "required", "ssl_check_hostname": True,
       "ssl_ca_certs": REDIS_CA_PATH}


def test_behind_sentinel_every_client_asks_the_sentinels_and_the_router_takes_coordination_redis():
    run = run_stack(with_redis_topology(ext(), "sentinel"), stack="ext")
    config = rendered_config(run)
    expected = {"sentinel_nodes": [["sentinel-a.example.internal", 26379], ["sentinel-b.example.internal", 26380]],
                "service_name": "gateway", "sentinel_password": "os.environ/REDIS_PASSWORD",
                "password": "os.environ/REDIS_PASSWORD", **TLS}
    cache = config["litellm_settings"]["cache_params"]
    assert {k: cache[k] for k in expected} == expected and "host" not in cache
    assert config["general_settings"]["coordination_redis"] == expected
    # LiteLLM's router client takes one host and port: none named, LiteLLM gives it coordination_redis' client.
    assert not [k for k in config["router_settings"] if k.startswith("redis") or k == "cache_kwargs"]
    exporter = envs(run, "monitoring-redis-exporter")
    assert exporter["REDIS_ADDR"] == "rediss://sentinel-a.example.internal:26379"
    backlog = run.outputs["backlog"]
    assert backlog["BACKLOG-008"]["evidence"]["cache"]["external"] == (
        "sentinel gateway via sentinel-a.example.internal:26379, sentinel-b.example.internal:26380")
    assert backlog["BACKLOG-005"]["evidence"]["limit_store"] == (
        "redis (general_settings.coordination_redis, the router's too)")


def test_in_a_cluster_every_client_takes_the_startup_nodes_in_its_own_spelling():
    run = run_stack(with_redis_topology(ext(), "cluster"), stack="ext")
    config = rendered_config(run)
    nodes = [{"host": "cache-1.example.internal", "port": 7000}, {"host": "cache-2.example.internal", "port": 6379}]
    cache = config["litellm_settings"]["cache_params"]
    assert cache["redis_startup_nodes"] == nodes and "host" not in cache and "startup_nodes" not in cache
    assert config["general_settings"]["coordination_redis"] == {"startup_nodes": nodes,
                                                                "password": "os.environ/REDIS_PASSWORD", **TLS}
    assert not [k for k in config["router_settings"] if k.startswith("redis") or k == "cache_kwargs"]
    assert envs(run, "monitoring-redis-exporter")["REDIS_ADDR"] == "rediss://cache-1.example.internal:7000"
    scrape = yaml.safe_load(next(u["content"] for u in run.mocks.named("monitoring-prometheus").plain("uploads")
                                 if u["file"].endswith("prometheus.yml")))
    (redis_job,) = [j for j in scrape["scrape_configs"] if j["job_name"] == "redis"]
    assert redis_job["static_configs"][0]["labels"]["host"] == "cache-1.example.internal"


def test_a_sentinel_stack_on_kubernetes_declares_no_redis_and_the_same_config():
    raw = with_redis_topology(with_external_data_stores(stack_file_config("k8s")), "sentinel")
    run = run_stack(raw, stack="k8s")
    assert "litellm-gateway-k8s-redis" not in objects(run, "Deployment")
    (config_map,) = [m for name, m in objects(run, "ConfigMap").items() if "config.yaml" in m.get("data", {})]
    config = yaml.safe_load(config_map["data"]["config.yaml"])
    assert config["general_settings"]["coordination_redis"]["service_name"] == "gateway"


def test_a_list_whose_only_item_is_wrong_is_not_also_called_too_short():
    config = with_redis_topology(ext(), "cluster")
    config["redis"]["external"]["cluster"]["nodes"] = [{"host": "bad host!"}]
    problems = problems_of(config, "ext")
    assert "redis.external.cluster.nodes[0].host" in problems and "redis.external.cluster.nodes" not in problems
    config["redis"]["external"]["cluster"]["nodes"] = []
    assert "at least 1" in problems_of(config, "ext")["redis.external.cluster.nodes"]


def test_a_list_too_short_even_with_its_wrong_items_is_still_called_so():
    """pydantic counts only the valid items: a list of 2 with 1 wrong item against min_length 2 is long enough,
    a list of 1 wrong item is not."""
    from pydantic import BaseModel, Field, ValidationError

    from config.parse import _pydantic_problems

    class Pair(BaseModel):
        items: tuple[int, ...] = Field(min_length=2)

    def problems(value):
        with pytest.raises(ValidationError) as error:
            Pair(items=value)
        return dict(_pydantic_problems("pair", error.value))

    assert set(problems(["a", 1])) == {"pair.items[0]"}
    assert set(problems(["a"])) == {"pair.items[0]", "pair.items"}
    assert set(problems([])) == {"pair.items"}
