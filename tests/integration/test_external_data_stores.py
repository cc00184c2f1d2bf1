"""External data stores for real (postgres.mode and redis.mode: external), on loopback.

The stack is declared with an external database (its URL a secret config key, `sslmode: verify-full` with a
test CA) and an external Redis (TLS with the server's name checked, an ACL user; Redis' `default` user is off,
so a client that names no user is refused). The servers are Debian's: PostgreSQL accepting TLS connections
only (pg_hba `hostssl`, everything else rejected) and redis-server with TLS only and ACL users. What runs
against them is what the program declared, unchanged but for the CA certificates' directory (the containers'
uploads, written to a temporary directory):
- the real LiteLLM proxy in database mode (its Prisma engine verifies the server's certificate: LiteLLM turns
  libpq's verify-full into Prisma's `sslaccept=strict`), keys written through it, answers cached in Redis;
- the rendered backup script's pg_dump, with the backup container's libpq environment;
- Debian's redis and postgres exporters, with the exporters' declared environment.
Certificates from another CA are refused by each of them. Ollama is a test double.
"""

from __future__ import annotations

import subprocess
import sys
import uuid
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import parse_qsl, urlsplit

import httpx
import pytest
import yaml

from database_mode import Declared, litellm_in_database_mode
from gateway_helpers import own_dev_config
from external_stores import declare, exporter_metrics
from harness import ROOT
from renderers.data_stores import CA_DIR
from ollama_double import OllamaDouble
from renderers import backup_scripts
from servers import make_certificates, postgres_cluster, redis_tls_server

sys.path.insert(0, str(ROOT / "tests" / "prisma_shim"))
import prisma_shim  # noqa: E402

REDIS_USER = "litellm"


@dataclass
class Stores:
    database_url: str      # the external database's URL as an operator gives it (no ssl parameters)
    redis_port: int
    redis_password: str
    certificates: object   # servers.TlsMaterial


@pytest.fixture(scope="module")
def stores(tmp_path_factory):
    tls = make_certificates(tmp_path_factory.mktemp("tls"), "external")
    password, redis_password = f"pg-{uuid.uuid4().hex}", f"redis-{uuid.uuid4().hex}"
    prisma_shim.generate_client()
    with postgres_cluster(password=password, certificates=tls) as url, \
            redis_tls_server(tls, {REDIS_USER: redis_password}) as redis_port:
        prisma_shim.apply_schema(f"{url}?sslmode=verify-full&sslrootcert={tls.ca}")
        yield Stores(url, redis_port, redis_password, tls)


def external_stack(stores: Stores) -> tuple[dict, dict]:
    """The dev stack with both data stores external (config, secret config)."""
    raw = own_dev_config()
    ca = stores.certificates.ca_pem
    raw["postgres"] = {"mode": "external", "image": raw["postgres"]["image"],
                       "external": {"sslmode": "verify-full", "caCertificate": ca}}
    raw["redis"] = {"mode": "external", "external": {"host": "127.0.0.1", "port": stores.redis_port, "tls": True,
                                                     "username": REDIS_USER, "caCertificate": ca}}
    for store in ("postgres", "redis"):
        raw.get("containers", {}).get("limits", {}).pop(store, None)
    raw["monitoring"]["redisExporter"]["enabled"] = raw["monitoring"]["postgresExporter"]["enabled"] = True
    return raw, {"postgresUrl": stores.database_url, "redisPassword": stores.redis_password}


@pytest.fixture(scope="module")
def declared(stores, tmp_path_factory):
    raw, secrets = external_stack(stores)
    found = declare(raw, secrets, tmp_path_factory.mktemp("ca"))
    assert sorted(p.name for p in found.ca_dir.iterdir()) == ["postgres.pem", "redis.pem"]
    return found


@pytest.fixture(scope="module")
def backend():
    double = OllamaDouble("ollama-dev", ["qwen2.5:0.5b"]).start()
    yield {"ollama-dev": f"http://127.0.0.1:{double.port}"}, double
    double.stop()


@pytest.fixture(scope="module")
def gateway(declared, stores, backend):
    env = declared.env("gateway-litellm-0")
    with litellm_in_database_mode(Declared(declared.config(), env, declared.settings_raw), env["DATABASE_URL"],
                                  stores.redis_port, backend[0]) as proxy:
        yield proxy


def test_the_declared_urls_and_redis_settings_carry_the_tls_settings(declared, stores):
    found, uploads = declared, declared.uploads
    env = found.env("gateway-litellm-0")
    url = urlsplit(env["DATABASE_URL"])
    assert url._replace(query="").geturl() == stores.database_url
    assert parse_qsl(url.query) == [("sslmode", "verify-full"), ("sslrootcert", f"{found.ca_dir}/postgres.pem")]
    config = yaml.safe_load(uploads["/app/config.yaml"])
    tls = {"username": REDIS_USER, "ssl": True, "ssl_cert_reqs": "required", "ssl_check_hostname": True,
           "ssl_ca_certs": f"{CA_DIR}/redis.pem"}
    for section in (config["litellm_settings"]["cache_params"], config["general_settings"]["coordination_redis"]):
        assert {k: section[k] for k in tls} == tls and section["host"] == "127.0.0.1"
    assert config["router_settings"]["cache_kwargs"] == tls
    # The stack runs neither store.
    assert not [r for r in found.run.mocks.resources if r.name in ("gateway-postgres", "gateway-redis")]


def test_litellm_keeps_its_keys_in_the_external_database_over_verified_tls(gateway, stores):
    readiness = httpx.get(f"{gateway.url}/health/readiness", timeout=30).json()
    assert readiness["db"] == "connected", readiness
    response = gateway.call("POST", "/key/generate", json={"key_alias": f"ext-{uuid.uuid4().hex[:8]}"})
    assert response.status_code == 200, response.text
    assert gateway.call("GET", "/key/info", key=response.json()["key"]).status_code == 200
    # Every connection of the proxy's user to the database is TLS (pg_hba refuses any other).
    rows = psql(stores, "SELECT count(*), bool_and(s.ssl) FROM pg_stat_activity a JOIN pg_stat_ssl s USING (pid) "
                        "WHERE a.usename = 'litellm' AND a.pid <> pg_backend_pid()")
    count, all_tls = rows.split("|")
    assert int(count) >= 1 and all_tls == "t", rows


def test_answers_are_cached_in_the_external_redis_as_its_acl_user(gateway, backend, stores):
    double = backend[1]
    content = f"cache me {uuid.uuid4()}"
    before = len(double.chats_for("qwen2.5:0.5b"))
    first = gateway.chat("qwen-small", content)
    second = gateway.chat("qwen-small", content)
    assert first.status_code == second.status_code == 200, (first.text, second.text)
    assert len(double.chats_for("qwen2.5:0.5b")) == before + 1, "the second answer must come from the cache"
    cache_key = second.headers.get("x-litellm-cache-key")
    assert cache_key and redis_cli(stores, "EXISTS", cache_key) == "1"
    # Redis' default user is off: a client that names no user gets nothing.
    anonymous = subprocess.run(["redis-cli", "--tls", "--cacert", str(stores.certificates.ca), "-h", "127.0.0.1",
                                "-p", str(stores.redis_port), "--no-auth-warning", "-a", stores.redis_password,
                                "EXISTS", cache_key], capture_output=True, text=True)
    assert "NOAUTH" in anonymous.stdout + anonymous.stderr, anonymous


def test_the_backup_dumps_the_external_database_over_verified_tls(declared, stores, gateway, tmp_path):
    found = declared
    assert gateway.call("POST", "/key/generate", json={}).status_code == 200   # at least one key to dump
    env = found.env("backups-scheduler")
    assert env["PGSSLMODE"] == "verify-full" and env["PGSSLROOTCERT"] == f"{found.ca_dir}/postgres.pem"
    done = run_backup(env, tmp_path / "dumps")
    assert done.returncode == 0, done.stdout + done.stderr
    (dump,) = (tmp_path / "dumps").glob("litellm-*.dump")
    keys = subprocess.run(["pg_restore", "--data-only", "--table=LiteLLM_VerificationToken", "-f", "-", str(dump)],
                          capture_output=True, text=True, check=True).stdout
    rows = keys.split("FROM stdin;\n", 1)[1].split("\\.\n", 1)[0].splitlines()
    assert len(rows) == int(psql(stores, 'SELECT count(*) FROM "LiteLLM_VerificationToken"')) >= 1


def test_a_server_certificate_from_another_ca_is_refused(declared, stores, tmp_path):
    found = declared
    other = make_certificates(tmp_path / "other", "other")
    env = {**found.env("backups-scheduler"), "PGSSLROOTCERT": str(other.ca)}
    done = run_backup(env, tmp_path / "dumps")
    assert done.returncode != 0 and "certificate verify failed" in done.stdout + done.stderr
    exporter = {**found.env("monitoring-redis-exporter"), "REDIS_EXPORTER_TLS_CA_CERT_FILE": str(other.ca)}
    assert "redis_up 0" in exporter_metrics("prometheus-redis-exporter", exporter, "redis_up")


def test_litellm_refuses_a_database_whose_certificate_another_ca_signed(declared, stores, backend, tmp_path):
    """Prisma verifies the chain (LiteLLM turns verify-full into sslaccept=strict): with another CA's certificate
    in place of the database's, the proxy never reaches the database."""
    found = declared
    other = make_certificates(tmp_path / "other", "other")
    env = found.env("gateway-litellm-0")
    config = found.config()
    database_url = env["DATABASE_URL"].replace(f"{found.ca_dir}/postgres.pem", str(other.ca))
    # The same URL, config and environment as the gateway fixture's, which connects: only the CA differs.
    with pytest.raises(RuntimeError, match="litellm exited"):   # LiteLLM stops at start without its database
        with litellm_in_database_mode(Declared(config, env, found.settings_raw), database_url, stores.redis_port, backend[0]) as proxy:
            readiness = httpx.get(f"{proxy.url}/health/readiness", timeout=30)
            pytest.fail(f"the proxy started with another CA's certificate: {readiness.text}")


def test_the_exporters_reach_both_external_stores(declared):
    found = declared
    redis = found.env("monitoring-redis-exporter")
    assert redis["REDIS_ADDR"].startswith("rediss://") and redis["REDIS_USER"] == REDIS_USER
    assert "redis_up 1" in exporter_metrics("prometheus-redis-exporter", redis, "redis_up")
    postgres = found.env("monitoring-postgres-exporter")
    assert "sslmode=verify-full" in postgres["DATA_SOURCE_NAME"]
    assert "pg_up 1" in exporter_metrics("prometheus-postgres-exporter", postgres, "pg_up")


# --- helpers -------------------------------------------------------------------------------------------------

def psql(stores: Stores, sql: str) -> str:
    done = subprocess.run(["psql", f"{stores.database_url}?sslmode=verify-full&sslrootcert={stores.certificates.ca}",
                           "-X", "-A", "-t", "-c", sql], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    return done.stdout.strip()


def redis_cli(stores: Stores, *command: str) -> str:
    done = subprocess.run(["redis-cli", "--tls", "--cacert", str(stores.certificates.ca), "-h", "127.0.0.1", "-p",
                           str(stores.redis_port), "--user", REDIS_USER, "--no-auth-warning", *command],
                          capture_output=True, text=True, env={"REDISCLI_AUTH": stores.redis_password, "PATH": "/usr/bin"})
    assert done.returncode == 0, done.stderr
    return done.stdout.strip()


def run_backup(env: dict[str, str], directory: Path) -> subprocess.CompletedProcess:
    """The rendered backup script, as the scheduler runs it, with the backup container's environment."""
    script = directory.parent / f"backup-{uuid.uuid4().hex[:6]}.sh"
    script.write_text(backup_scripts.render_backup_script(3, "dev"))
    env = {**env, "BACKUP_DIR": str(directory), "PATH": "/usr/bin:/bin"}
    return subprocess.run(["bash", str(script)], env=env, capture_output=True, text=True, timeout=120)
