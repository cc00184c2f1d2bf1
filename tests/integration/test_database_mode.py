"""LiteLLM in database mode, for real: the proxy with the program's rendered config and environment
on real PostgreSQL (LiteLLM's own migrations) and real Redis; Ollama is a test double.

Prisma's engines come from the test-only shim in tests/prisma_shim (provenance in its docstring).
"""

from __future__ import annotations

import concurrent.futures
import contextlib
import copy
import json
import os
import subprocess
import time
import uuid

import pytest

from database_mode import declared_gateway, litellm_in_database_mode
from gateway_helpers import own_dev_config
from harness import ROOT
from ollama_double import OllamaDouble
from servers import postgres_cluster, redis_server


@pytest.fixture(scope="module")
def backend():
    doubles = {"ollama-dev": OllamaDouble("ollama-dev", ["qwen2.5:0.5b", "llama3.2:1b", "deepseek-r1:14b"]).start(),
               "db-backend": OllamaDouble("db-backend", ["stored-model:1b"]).start()}
    yield doubles
    for double in doubles.values():
        double.stop()


def hosts(backend) -> dict[str, str]:
    return {name: f"http://127.0.0.1:{double.port}" for name, double in backend.items()}


@pytest.fixture(scope="module")
def declared():
    return declared_gateway()


@pytest.fixture(scope="module")
def gateway(litellm_database, declared, backend):
    """One proxy, on a fresh database, with the dev stack's config and environment."""
    with redis_server(declared.env["REDIS_PASSWORD"]) as redis_port, litellm_in_database_mode(
        declared, litellm_database.fresh_database(), redis_port, hosts(backend)) as proxy:
        yield proxy


def start_together(*managers):
    """Enter several context managers at once (each proxy takes ~20 s to boot); yields their values."""
    stack = contextlib.ExitStack()
    with concurrent.futures.ThreadPoolExecutor(len(managers)) as pool:
        futures = [pool.submit(m.__enter__) for m in managers]
        values, errors = [], []
        for manager, future in zip(managers, futures):
            try:
                values.append(future.result())
                stack.push(manager.__exit__)
            except Exception as error:  # noqa: BLE001 - stop the others, then raise
                errors.append(error)
    if errors:
        stack.close()
        raise errors[0]
    return stack, values


def new_key(proxy, **params) -> str:
    response = proxy.call("POST", "/key/generate", json=params)
    assert response.status_code == 200, response.text
    return response.json()["key"]


def add_stored_model(proxy, backend, name="stored-model") -> None:
    """A model kept in the database: its litellm_params (api_base, api_key) are encrypted with the salt key."""
    response = proxy.call("POST", "/model/new", json={
        "model_name": name,
        "litellm_params": {"model": "ollama_chat/stored-model:1b", "api_base": hosts(backend)["db-backend"],
                           "api_key": "sk-stored-credential-" + uuid.uuid4().hex},
        "model_info": {"id": f"{name}-id"},
    })
    assert response.status_code == 200, response.text


# The rotation and restore tests store a model in the database (what an operator does through the
# admin UI); LiteLLM allows /model/new only with STORE_MODEL_IN_DB.
STORE_MODELS = {"STORE_MODEL_IN_DB": "True"}


# --- virtual keys and the admin UI --------------------------------------------------------------------

def test_virtual_keys_work_and_wrong_or_deleted_keys_are_refused(gateway):
    key = new_key(gateway, models=["qwen-small"], key_alias=f"ci-{uuid.uuid4().hex[:6]}")
    assert key.startswith("sk-")
    assert gateway.chat("qwen-small", "hello", key=key).status_code == 200
    assert gateway.chat("qwen-small", "hello", key="sk-" + uuid.uuid4().hex).status_code == 401
    assert gateway.chat("qwen-small", "hello", key=None).status_code == 200, "the master key works too"
    deleted = gateway.call("POST", "/key/delete", json={"keys": [key]})
    assert deleted.status_code == 200, deleted.text
    assert gateway.chat("qwen-small", "hello", key=key).status_code == 401
    info = gateway.call("GET", "/key/info", params={"key": key})  # kept for audit, marked deleted
    assert info.status_code == 404 or info.json()["info"]["status"] == "deleted", info.text


def test_the_admin_ui_logs_in_with_the_password_the_stack_keeps_in_vault(gateway, declared):
    import httpx

    stored = declared_vault_secret(declared)
    assert stored["UI_PASSWORD"] == declared.env["UI_PASSWORD"], "the container gets the Vault-held password"
    page = httpx.get(f"{gateway.url}/ui/", timeout=30, follow_redirects=True)
    assert page.status_code == 200 and "<html" in page.text.lower()
    login = httpx.post(f"{gateway.url}/login", timeout=30, follow_redirects=False,
                       data={"username": declared.env["UI_USERNAME"], "password": stored["UI_PASSWORD"]})
    assert login.status_code == 303, login.text
    assert "token" in login.cookies
    wrong = httpx.post(f"{gateway.url}/login", timeout=30, follow_redirects=False,
                       data={"username": declared.env["UI_USERNAME"], "password": stored["UI_PASSWORD"] + "x"})
    assert wrong.status_code == 401


def declared_vault_secret(declared) -> dict:
    from harness import run_stack

    run = run_stack(copy.deepcopy(declared.settings_raw))
    return json.loads(run.mocks.named("secrets-kv").plain("dataJson"))


# --- master key rotation ------------------------------------------------------------------------------

def test_master_key_rotation_keeps_virtual_keys_and_stored_credentials(litellm_database, declared, backend):
    """The master key rotation of docs/operations.md: a new master key, the same salt key, the containers replaced."""
    database = litellm_database.fresh_database()
    new_master = "sk-" + uuid.uuid4().hex + uuid.uuid4().hex
    with redis_server(declared.env["REDIS_PASSWORD"]) as redis_port:
        with litellm_in_database_mode(declared, database, redis_port, hosts(backend), STORE_MODELS) as before:
            key = new_key(before, models=["qwen-small", "stored-model"])
            add_stored_model(before, backend)
            old_master = before.master_key
        with litellm_in_database_mode(declared, database, redis_port, hosts(backend),
                                      {**STORE_MODELS, "LITELLM_MASTER_KEY": new_master}) as after:
            assert after.chat("qwen-small", "old master", key=old_master).status_code == 401
            assert after.chat("qwen-small", "new master", key=new_master).status_code == 200
            assert after.chat("qwen-small", "virtual key", key=key).status_code == 200
            served = len(backend["db-backend"].chat_requests)
            stored = after.chat("stored-model", "decrypted?", key=key)
            assert stored.status_code == 200, stored.text
            assert len(backend["db-backend"].chat_requests) == served + 1, "the stored api_base was decrypted"


# --- limits shared by replicas -----------------------------------------------------------------------

def burst_within_one_minute(send, attempts: int = 3) -> list[int]:
    """LiteLLM counts rpm per calendar minute: a burst that crosses a minute boundary is counted in two
    windows and proves nothing. Run `send(attempt)` (its status codes) at the start of a minute, and
    again in a later fresh minute (at most `attempts` times) if it still crossed one."""
    for attempt in range(attempts):
        time.sleep(60 - time.time() % 60 + 0.2 if attempt or 60 - time.time() % 60 < 15 else 0)
        began = time.time()
        codes = send(attempt)
        if int(began // 60) == int(time.time() // 60):
            return codes
    raise AssertionError(f"no burst of requests fitted in one calendar minute in {attempts} attempts")


def test_key_and_model_limits_hold_across_two_replicas(litellm_database, backend):
    raw = own_dev_config()
    # A model whose name has a colon (usage-based routing would split its Redis keys there).
    raw["models"] = [dict(raw["models"][0], name="deepseek-r1:14b", ollamaTag="deepseek-r1:14b", rpm=4),
                     dict(raw["models"][0], name="qwen-small", rpm=None)]
    declared = declared_gateway(raw)
    assert declared.config["router_settings"]["optional_pre_call_checks"] == ["enforce_model_rate_limits"]
    database = litellm_database.fresh_database()
    with redis_server(declared.env["REDIS_PASSWORD"]) as redis_port:
        stack, (first, second) = start_together(
            litellm_in_database_mode(declared, database, redis_port, hosts(backend)),
            litellm_in_database_mode(declared, database, redis_port, hosts(backend)))
        with stack:
            unlimited = new_key(first, models=["qwen-small", "deepseek-r1:14b"])

            def key_burst(attempt):  # a new key per attempt: its counter starts at zero
                limited = new_key(first, models=["qwen-small", "deepseek-r1:14b"], rpm_limit=3)
                return [(first if i % 2 == 0 else second).chat("qwen-small", f"k{attempt}-{i}", key=limited).status_code
                        for i in range(8)]

            codes = burst_within_one_minute(key_burst)
            assert codes.count(200) == 3 and codes.count(429) == 5, codes
            codes = burst_within_one_minute(lambda attempt: [
                (first if i % 2 == 0 else second).chat("deepseek-r1:14b", f"m{attempt}-{i}", key=unlimited).status_code
                for i in range(9)])
            assert codes.count(200) == 4 and codes.count(429) == 5, codes
            assert second.chat("qwen-small", "other model", key=unlimited).status_code == 200


# --- restore drill (BACKLOG-004) -----------------------------------------------------------------------

def run_script(name: str, *args: str, env: dict) -> subprocess.CompletedProcess:
    return subprocess.run([str(ROOT / "scripts" / name), *args], capture_output=True, text=True,
                          env={**os.environ, **env}, timeout=600)


def psql(url: str, sql: str) -> str:
    done = subprocess.run(["psql", url, "-X", "-A", "-t", "-v", "ON_ERROR_STOP=1", "-c", sql], capture_output=True,
                          text=True)
    assert done.returncode == 0, done.stderr
    return done.stdout.strip()


def test_restore_drill_with_live_keys(litellm_database, declared, backend, tmp_path, openbao):
    """Live proxy -> scripts/backup -> a fresh PostgreSQL -> scripts/restore -> a new proxy."""
    # Spend is written in batches (general_settings.proxy_batch_write_at, 60 s): compressed here.
    quick = copy.deepcopy(declared)
    quick.config["general_settings"]["proxy_batch_write_at"] = 1
    source = litellm_database.fresh_database()
    vault = openbao  # a real Vault API
    vault.reset()
    vault.put("litellm-gateway/dev", declared_vault_secret(declared))
    env = {"VAULT_ADDR": vault.address, "VAULT_TOKEN": vault.token, "BACKUP_PASSPHRASE": "drill " + uuid.uuid4().hex}
    try:
        with redis_server(declared.env["REDIS_PASSWORD"]) as redis_port:
            with litellm_in_database_mode(quick, source, redis_port, hosts(backend), STORE_MODELS) as live:
                team = live.call("POST", "/team/new", json={"team_alias": "ml-platform", "models": ["qwen-small"]})
                assert team.status_code == 200, team.text
                team_id = team.json()["team_id"]
                keys = [new_key(live, models=["qwen-small", "stored-model"]),
                        new_key(live, team_id=team_id, models=["qwen-small"])]
                add_stored_model(live, backend)
                for i, key in enumerate(keys):
                    assert live.chat("qwen-small", f"spend {i}", key=key).status_code == 200
                deadline = time.monotonic() + 60
                while int(psql(source, 'SELECT count(*) FROM "LiteLLM_SpendLogs"')) < 2 and time.monotonic() < deadline:
                    time.sleep(1)
            spend_rows = int(psql(source, 'SELECT count(*) FROM "LiteLLM_SpendLogs"'))
            assert spend_rows >= 2

            backup = run_script("backup", "dev", "--out", str(tmp_path / "backups"), "--database-url", source,
                                "--no-pulumi-export", env=env)
            assert backup.returncode == 0, backup.stderr
            (folder,) = (tmp_path / "backups").iterdir()
            with postgres_cluster() as fresh:
                restored = run_script("restore", str(folder), "--stack", "dev", "--database-url", fresh, "--yes",
                                      env=env)
                assert restored.returncode == 0, restored.stderr
                assert int(psql(fresh, 'SELECT count(*) FROM "LiteLLM_SpendLogs"')) == spend_rows
                assert psql(fresh, 'SELECT team_alias FROM "LiteLLM_TeamTable"') == "ml-platform"

                with litellm_in_database_mode(declared, fresh, redis_port, hosts(backend), STORE_MODELS) as same_salt:
                    for key in keys:
                        assert same_salt.chat("qwen-small", "after restore", key=key).status_code == 200
                    served = len(backend["db-backend"].chat_requests)
                    assert same_salt.chat("stored-model", "decrypts", key=keys[0]).status_code == 200
                    assert len(backend["db-backend"].chat_requests) == served + 1

                other_salt = {**STORE_MODELS, "LITELLM_SALT_KEY": "sk-not-the-backed-up-salt-" + uuid.uuid4().hex}
                with litellm_in_database_mode(declared, fresh, redis_port, hosts(backend), other_salt) as wrong_salt:
                    assert wrong_salt.chat("qwen-small", "keys are hashes", key=keys[0]).status_code == 200
                    served = len(backend["db-backend"].chat_requests)
                    refused = wrong_salt.chat("stored-model", "cannot decrypt", key=keys[0])
                    # What the runbook warns of: the stored model's params stay ciphertext, so LiteLLM
                    # cannot load it and the model does not exist for clients.
                    assert refused.status_code == 400 and "Invalid model name" in refused.text, refused.text
                    assert len(backend["db-backend"].chat_requests) == served
                    assert "Error upserting deployment stored-model" in wrong_salt.log()
    finally:
        vault.reset()
