"""BACKLOG-005 for real: the stack's teams, users and keys, through the provider's own
create/read/diff/update/delete (unpickled as Pulumi's dynamic-provider host does), against two
LiteLLM replicas in database mode with the program's rendered config, one PostgreSQL and Redis."""

from __future__ import annotations

import base64
import copy
import time
import uuid

import dill
import pytest
from pulumi.dynamic.dynamic import serialize_provider

from components.litellm_access import key_spec, metrics_key_spec, team_id, team_spec, user_spec
from components.litellm_objects import LiteLLMObjectProvider
from components.ollama_drift import pickled_by_value
from config.names import REPLICA_SERVICE
from config.parse import parse_settings
from database_mode import declared_gateway, litellm_in_database_mode
from dns_double import DnsDouble
from harness import run_stack
from gateway_helpers import own_dev_config, replicas_up
from ollama_double import OllamaDouble
from renderers.haproxy import Listen, render_haproxy_config
from servers import free_port, haproxy_server, loopback_subnet, redis_server
from test_database_mode import burst_within_one_minute, start_together

ACCESS = {
    "defaults": {"upperBound": {"rpm": 100, "maxBudget": 50}, "keyGenerate": {"rpm": 10, "maxBudget": 5}},
    "teams": [{"name": "ml", "models": ["qwen-small"], "rpm": 200, "maxBudget": 40}],
    "users": [{"id": "ada", "email": "ada@example.com", "teams": ["ml"], "rpm": 100, "maxBudget": 50},
              {"id": "bob", "rpm": 4, "maxBudget": 50}],
    "keys": [],
}


def host_provider() -> LiteLLMObjectProvider:
    """The provider as the dynamic-provider host gets it: pickled by value, loaded by dill."""
    with pickled_by_value(LiteLLMObjectProvider):
        blob = serialize_provider(LiteLLMObjectProvider())
    return dill.loads(base64.b64decode(blob))


# The replicas on addresses of their own with one port, as on the gateway network; the rendered load
# balancer in front finds them through a DNS double, and the provider reaches them through it, as
# `pulumi up` does (access.managementUrl defaults to the load balancer's gatewayUrl).
SUBNET = loopback_subnet()


@pytest.fixture(scope="module")
def stack(litellm_database, tmp_path_factory):
    raw = own_dev_config()
    raw["access"] = copy.deepcopy(ACCESS)
    # A model with a price (USD 0.10 a token) so a request really spends: budgets are about spend.
    raw["models"].append({"name": "qwen-priced", "ollamaTag": "qwen2.5:1.5b", "hosts": ["ollama-dev"],
                          "costPerMillionInputTokens": 100_000, "costPerMillionOutputTokens": 100_000})
    declared = declared_gateway(raw)
    assert declared.config["general_settings"]["user_api_key_cache_ttl"] == 3
    assert declared.config["litellm_settings"]["upperbound_key_generate_params"] == {"rpm_limit": 100, "max_budget": 50}
    settings = parse_settings(raw)
    run = run_stack(raw, stack="dev")
    management = {r.plain("api_base") for r in run.resources if r.name.startswith("access-")
                  and r.type == "pulumi-python:dynamic:Resource"}
    assert management == {run.outputs["gatewayUrl"]}, "the access objects are managed through the load balancer"
    double = OllamaDouble("ollama-dev", ["qwen2.5:0.5b", "qwen2.5:1.5b"]).start()
    hosts = {"ollama-dev": f"http://127.0.0.1:{double.port}"}
    database = litellm_database.fresh_database()
    port, http, stats = free_port(), free_port(), free_port()
    dns = DnsDouble()
    dns.set(REPLICA_SERVICE, [f"{SUBNET}.2", f"{SUBNET}.3"])
    listen = Listen(http=f"127.0.0.1:{http}", stats=f"127.0.0.1:{stats}", nameserver=dns.address,
                    service=REPLICA_SERVICE, replica_port=port)
    try:
        with redis_server(declared.env["REDIS_PASSWORD"]) as redis_port, haproxy_server(
                render_haproxy_config(settings, listen), tmp_path_factory.mktemp("lb"),
                f"http://127.0.0.1:{stats}/healthz") as balancer:
            replicas, (first, second) = start_together(
                litellm_in_database_mode(declared, database, redis_port, hosts, host=f"{SUBNET}.2", port=port),
                litellm_in_database_mode(declared, database, redis_port, hosts, host=f"{SUBNET}.3", port=port))
            with replicas:
                wait_until_both_replicas_are_up(f"http://127.0.0.1:{stats}", balancer)
                first.management_url = second.management_url = f"http://127.0.0.1:{http}"
                yield settings, first, second
    finally:
        dns.stop()
        double.stop()


def wait_until_both_replicas_are_up(stats_url: str, balancer, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if replicas_up(stats_url) == 2:
            return
        time.sleep(0.5)
    raise AssertionError(f"the replicas are not both UP behind HAProxy:\n{balancer.log_path.read_text()[-2000:]}")


def props(settings, proxy, kind, ident, spec, master_key=None):
    return {"kind": kind, "name": ident if kind != "key" else spec.get("key_alias"), "api_base": proxy.management_url,
            "master_key": master_key or proxy.master_key, "ident": ident, "spec": spec}


def declare_team_and_users(settings, proxy, provider):
    team = settings.access.teams[0]
    created = [provider.create(props(settings, proxy, "team", team_id(settings, team.name), team_spec(team)))]
    for user in settings.access.users:
        created.append(provider.create(props(settings, proxy, "user", user.id, user_spec(settings, user))))
    return created


def key_props(settings, proxy, alias, **fields):
    key = type("Key", (), {"alias": alias, "user": None, "team": None, "models": ("qwen-small",), "rpm": None,
                           "tpm": None, "max_parallel_requests": None, "max_budget": 5.0, "budget_duration": None,
                           "expires_after": None, **fields})
    return props(settings, proxy, "key", "sk-" + uuid.uuid4().hex + uuid.uuid4().hex, key_spec(settings, key))


def burst(proxies, key, count, model="qwen-small"):
    return [proxies[i % len(proxies)].chat(model, f"burst {uuid.uuid4()}", key=key).status_code for i in range(count)]


def test_declared_team_user_and_key_exist_with_their_limits_and_the_key_works(stack):
    settings, first, second = stack
    provider = host_provider()
    created = declare_team_and_users(settings, first, provider)
    assert all(c.outs["status"] == "in-sync" for c in created), [c.outs for c in created]
    assert created[0].id == "team-dev-ml" and created[1].id == "user-ada"
    wanted = key_props(settings, first, "ada-laptop", user="ada", team="ml", rpm=30)
    made = provider.create(wanted)
    assert made.outs["status"] == "in-sync" and made.id.startswith("key-") and wanted["ident"] not in made.id
    info = first.call("GET", "/key/info", params={"key": wanted["ident"]}).json()["info"]
    assert (info["key_alias"], info["user_id"], info["team_id"], info["rpm_limit"]) == ("ada-laptop", "ada", "dev-ml", 30)
    team = first.call("GET", "/team/info", params={"team_id": "dev-ml"}).json()["team_info"]
    assert (team["rpm_limit"], team["max_budget"], team["models"]) == (200, 40.0, ["qwen-small"])
    user = first.call("GET", "/user/info", params={"user_id": "ada"}).json()["user_info"]
    assert user["rpm_limit"] == 100 and "dev-ml" in user["teams"]
    assert second.chat("qwen-small", "hello", key=wanted["ident"]).status_code == 200
    again = provider.create(wanted)  # a re-run after a failure adopts, never duplicates
    assert again.id == made.id
    listed = first.call("GET", "/key/list", params={"key_alias": "ada-laptop", "return_full_object": "true"}).json()
    assert len(listed["keys"]) == 1


def test_a_burst_above_the_keys_rpm_is_refused_across_replicas(stack):
    settings, first, second = stack
    provider = host_provider()

    def attempt(_):
        wanted = key_props(settings, first, f"burst-{uuid.uuid4().hex[:6]}", rpm=3)
        provider.create(wanted)
        return burst([first, second], wanted["ident"], 7)

    codes = burst_within_one_minute(attempt)
    assert codes.count(200) == 3 and codes.count(429) == 4, codes


def test_a_user_limit_holds_across_that_users_two_keys(stack):
    settings, first, second = stack
    provider = host_provider()
    declare_team_and_users(settings, first, provider)  # idempotent: adopts what exists

    def attempt(n):
        keys = [key_props(settings, first, f"bob-{i}-{uuid.uuid4().hex[:4]}", user="bob") for i in range(2)]
        for wanted in keys:
            provider.create(wanted)
        return [(first, second)[i % 2].chat("qwen-small", f"u{n}-{i}", key=keys[i % 2]["ident"]).status_code
                for i in range(8)]

    codes = burst_within_one_minute(attempt)
    assert codes.count(200) == 4 and codes.count(429) == 4, codes


def test_an_exceeded_budget_is_refused(stack):
    """A request on a priced model spends (the deployment's per-token prices, models[].costPerMillion*);
    once a key's spend passes its max_budget, the next request is refused on every replica."""
    settings, first, second = stack
    provider = host_provider()
    wanted = key_props(settings, first, f"budget-{uuid.uuid4().hex[:6]}", max_budget=0.5, models=("qwen-priced",))
    provider.create(wanted)
    spent = first.chat("qwen-priced", "within budget", key=wanted["ident"])  # 12 tokens: USD 1.20
    assert spent.status_code == 200, spent.text
    usage = spent.json()["usage"]
    # Priced from the deployment's model_info: USD 0.10 a token, in and out.
    assert float(spent.headers["x-litellm-response-cost"]) == pytest.approx(0.1 * usage["total_tokens"]), spent.headers
    # The spend is recorded after the response (LiteLLM's success callback): a moment later it counts.
    deadline = time.monotonic() + 10
    while True:
        time.sleep(2)
        refused = second.chat("qwen-priced", "over budget", key=wanted["ident"])
        if refused.status_code != 200 or time.monotonic() > deadline:
            break
    # LiteLLM 1.108 answers 422 with type budget_exceeded.
    assert refused.status_code == 422 and refused.json()["error"]["type"] == "budget_exceeded", refused.text
    again = first.chat("qwen-priced", "still over budget", key=wanted["ident"])
    assert again.status_code == 422 and again.json()["error"]["type"] == "budget_exceeded", again.text


def test_an_update_of_limits_keeps_the_key_and_takes_effect(stack):
    settings, first, _ = stack
    provider = host_provider()

    def attempt(_):  # both bursts and the update in one counting window
        olds = key_props(settings, first, f"grow-{uuid.uuid4().hex[:6]}", rpm=2)
        created = provider.create(olds).outs
        news = dict(olds, spec=dict(olds["spec"], rpm_limit=5))
        diff = provider.diff("id", created, news)
        assert diff.changes and diff.replaces == [], "a new limit is an update in place, never a new key"
        before = burst([first], olds["ident"], 3)
        updated = provider.update("id", created, news).outs
        assert updated["ident"] == olds["ident"] and updated["observed"]["rpm_limit"] == 5
        return before + burst([first], olds["ident"], 4)

    # LiteLLM counts a refused request in the window too: 3 of 5 used, so 2 more pass after the update
    # (with the old limit of 2, none would).
    assert burst_within_one_minute(attempt) == [200, 200, 429] + [200, 200, 429, 429]


def test_a_limit_changed_behind_the_stacks_back_is_drift_and_update_puts_it_back(stack):
    settings, first, second = stack
    provider = host_provider()
    wanted = key_props(settings, first, f"drift-{uuid.uuid4().hex[:6]}", rpm=7)
    created = provider.create(wanted).outs
    assert provider.diff("id", created, wanted).changes is False, "no drift, no change"
    changed = second.call("POST", "/key/update", json={"key": wanted["ident"], "rpm_limit": 99})  # the admin UI
    assert changed.status_code == 200, changed.text
    refreshed = provider.read("id", created).outs
    assert refreshed["status"] == "drift" and refreshed["observed"]["rpm_limit"] == 99
    assert provider.diff("id", refreshed, wanted).changes is True, "preview --expect-no-changes must fail"
    healed = provider.update("id", refreshed, wanted).outs
    assert healed["status"] == "in-sync"
    assert first.call("GET", "/key/info", params={"key": wanted["ident"]}).json()["info"]["rpm_limit"] == 7


def test_a_deleted_key_is_refused_on_every_replica_within_the_key_cache_ttl_and_never_comes_back_with_its_value(stack):
    """docs/operations.md: replicas trust a cached key for access.keyCacheTtlSeconds (3 s), so a deleted key
    is refused by every replica within that time. Measured by when each request *started*: every request
    begun more than the TTL after the deletion returned must be refused (round trips do not count)."""
    settings, first, second = stack
    ttl = settings.access.key_cache_ttl_seconds
    assert ttl == 3
    provider = host_provider()
    # The polling below sends many requests: give the key the upper bound, not the default rpm of 10.
    wanted = key_props(settings, first, f"gone-{uuid.uuid4().hex[:6]}", rpm=100)
    created = provider.create(wanted).outs
    for replica in (first, second):  # both replicas have the key cached
        assert replica.chat("qwen-small", "cache me", key=wanted["ident"]).status_code == 200
    provider.delete("id", created)
    deleted = time.monotonic()
    answers = {"first": [], "second": []}  # (seconds after the deletion the request started, status)
    while time.monotonic() - deleted < ttl + 2:
        for name, replica in (("first", first), ("second", second)):
            began = time.monotonic() - deleted
            answers[name].append((began, replica.chat("qwen-small", "still?", key=wanted["ident"]).status_code))
        time.sleep(0.2)
    last_accepted = {name: max([t for t, code in got if code == 200], default=None) for name, got in answers.items()}
    print(f"deleted key last accepted (s after the deletion): {last_accepted}")  # the figure in docs/operations.md
    for name, got in answers.items():
        assert {code for _, code in got} <= {200, 401}, got
        late = [(t, code) for t, code in got if t > ttl + 0.5]
        assert late and all(code == 401 for _, code in late), f"{name}: {got}"
    gone = provider.read("id", created).outs
    # Deleted behind the stack's back (the admin UI's revoke): drift, and `up` brings the key back with a
    # new value, never the possibly leaked one (the stack writes the new one to the key's Vault path).
    assert gone["status"] == "revoked" and provider.diff("id", gone, wanted).changes
    back = provider.update("id", gone, wanted).outs
    assert back["status"] == "in-sync" and back["value"] != wanted["ident"] and back["value"].startswith("sk-")
    assert first.chat("qwen-small", "the old value", key=wanted["ident"]).status_code == 401
    assert first.chat("qwen-small", "the new value", key=back["value"]).status_code == 200
    refreshed = provider.read("id", back).outs  # and it stays the key's value on refresh
    assert refreshed["status"] == "in-sync" and refreshed["value"] == back["value"]
    rotated = dict(wanted, ident="sk-" + uuid.uuid4().hex + uuid.uuid4().hex)  # the new value a rotation draws
    assert provider.diff("id", refreshed, rotated).replaces == ["ident"], "a rotation replaces the key object"


def test_the_metrics_key_reads_metrics_and_nothing_else(stack):
    settings, first, _ = stack
    provider = host_provider()
    wanted = props(settings, first, "key", "sk-" + uuid.uuid4().hex * 2, metrics_key_spec())
    wanted["spec"] = dict(wanted["spec"], key_alias=f"metrics-{uuid.uuid4().hex[:6]}")
    provider.create(wanted)
    assert first.call("GET", "/metrics/", key=wanted["ident"]).status_code == 200
    assert first.chat("qwen-small", "not allowed", key=wanted["ident"]).status_code == 403
    assert first.call("POST", "/key/generate", key=wanted["ident"], json={}).status_code == 403


def test_an_unreachable_gateway_or_a_wrong_master_key_is_a_clear_error(stack):
    settings, first, _ = stack
    provider = host_provider()
    wanted = key_props(settings, first, f"err-{uuid.uuid4().hex[:6]}")
    closed = dict(wanted, api_base=f"http://127.0.0.1:{free_port()}")
    with pytest.raises(ConnectionError, match=r"management API at http://127.0.0.1:\d+ is not reachable"):
        provider.create(closed)
    with pytest.raises(PermissionError, match="refused the master key"):
        provider.create(dict(wanted, master_key="sk-" + "w" * 40))
    above = dict(wanted, spec=dict(wanted["spec"], rpm_limit=1000))  # above the upper bound (100)
    with pytest.raises(RuntimeError, match="answered HTTP 4"):
        provider.create(above)


def test_a_second_key_with_a_taken_alias_is_refused_not_duplicated(stack):
    settings, first, _ = stack
    provider = host_provider()
    alias = f"taken-{uuid.uuid4().hex[:6]}"
    provider.create(key_props(settings, first, alias))
    with pytest.raises(RuntimeError, match=r"/key/generate answered HTTP 4\d\d: .*alias"):
        provider.create(key_props(settings, first, alias))  # another value, same alias
    listed = first.call("GET", "/key/list", params={"key_alias": alias}).json()
    assert len(listed["keys"]) == 1


def test_an_expired_key_is_drift_a_key_the_stack_renews_is_renewed_and_a_users_key_names_the_fix(stack):
    settings, first, _ = stack
    provider = host_provider()
    renewing = props(settings, first, "key", "sk-" + uuid.uuid4().hex * 2,
                     dict(metrics_key_spec(), key_alias=f"metrics-{uuid.uuid4().hex[:6]}", duration="3s"))
    users = key_props(settings, first, f"short-{uuid.uuid4().hex[:6]}", expires_after="3s")
    created = {"renewing": provider.create(renewing).outs, "users": provider.create(users).outs}
    assert created["renewing"]["status"] == "expiring", created  # 3 s left: within a week, so renewed on the next up
    time.sleep(4)
    read = {name: provider.read("id", outs).outs for name, outs in created.items()}
    assert read["users"]["status"] == "expired" and read["renewing"]["status"] == "expired", read
    assert provider.diff("id", read["renewing"], renewing).changes, "the drift check fails on an expired key"
    # `up`: the stack's own key gets its lifetime again (a long one, as metrics_key_spec(settings) gives it)
    renewed_spec = dict(renewing["spec"], duration="30d")
    renewed = provider.update("id", read["renewing"], dict(renewing, spec=renewed_spec)).outs
    assert renewed["status"] == "in-sync", renewed
    assert first.call("GET", "/metrics/", key=renewing["ident"]).status_code == 200
    with pytest.raises(RuntimeError, match=r"expired at .*change its expiresAfter"):
        provider.update("id", read["users"], users)


def test_the_stacks_metrics_key_gets_an_explicit_lifetime_not_the_ui_keys_default(stack):
    settings, first, _ = stack
    spec = metrics_key_spec(settings)
    assert spec["duration"] == (settings.access.defaults.upper_bound.duration or "36500d")
    provider = host_provider()
    wanted = props(settings, first, "key", "sk-" + uuid.uuid4().hex * 2, dict(spec, key_alias=f"m-{uuid.uuid4().hex[:6]}"))
    made = provider.create(wanted).outs
    assert made["status"] == "in-sync" and made["expires"], made
    import datetime as dt

    expires = dt.datetime.fromisoformat(made["expires"].replace("Z", "+00:00"))
    assert expires - dt.datetime.now(dt.timezone.utc) > dt.timedelta(days=300), "not keyGenerate's short default"


def test_a_users_team_membership_follows_the_config(stack):
    """LiteLLM's /user/update has no `teams`: adding a team to a declared user, or removing one, went
    nowhere and every later `up` failed on the mismatch."""
    settings, first, _ = stack
    provider = host_provider()
    declare_team_and_users(settings, first, provider)
    other = f"dev-{uuid.uuid4().hex[:6]}"
    provider.create(props(settings, first, "team", other, {"team_alias": other, "models": ["qwen-small"]}))
    bob = next(u for u in settings.access.users if u.id == "bob")
    spec = user_spec(settings, bob)
    created = provider.create(props(settings, first, "user", "bob", spec)).outs
    joined = dict(props(settings, first, "user", "bob", spec), spec=dict(spec, teams=sorted([*spec["teams"], other])))
    assert provider.diff("id", created, joined).changes
    updated = provider.update("id", created, joined).outs
    assert updated["status"] == "in-sync" and other in updated["observed"]["teams"], updated
    assert other in first.call("GET", "/user/info", params={"user_id": "bob"}).json()["user_info"]["teams"]
    left = provider.update("id", updated, dict(joined, spec=spec)).outs
    assert left["status"] == "in-sync" and other not in left["observed"]["teams"], left


def test_no_master_key_or_key_value_is_in_the_replicas_logs(stack):
    """Last in this module: after every access test above, the replicas' logs hold no master key and no
    key value (LiteLLM logs keys by their hash)."""
    import re

    _, first, second = stack
    for replica in (first, second):
        log = replica.log()
        assert replica.master_key not in log
        assert not re.search(r"sk-[0-9a-f]{32,}", log), re.search(r".{60}sk-[0-9a-f]{32,}.{20}", log)


def test_a_renamed_key_is_replaced_as_pulumi_replaces_it_and_the_old_value_stops_working(stack):
    """A new alias is a new object (tests/unit/test_access.py): Pulumi creates the new key (a new value)
    and then deletes the old one. Both steps through the load balancer, the result on both replicas."""
    settings, first, second = stack
    provider = host_provider()
    old = key_props(settings, first, f"old-{uuid.uuid4().hex[:6]}", rpm=50)
    created = provider.create(old).outs
    renamed = key_props(settings, first, f"new-{uuid.uuid4().hex[:6]}", rpm=50)
    assert renamed["ident"] != old["ident"]
    provider.create(renamed)
    provider.delete("id", created)
    time.sleep(settings.access.key_cache_ttl_seconds + 0.5)  # a replica may trust its cache that long
    for replica in (first, second):
        assert replica.chat("qwen-small", "old", key=old["ident"]).status_code == 401
        assert replica.chat("qwen-small", "new", key=renamed["ident"]).status_code == 200
    listed = first.call("GET", "/key/list", params={"key_alias": old["spec"]["key_alias"]}).json()
    assert listed["keys"] == []


def test_a_renamed_team_is_a_new_team_its_members_move_and_the_old_team_goes(stack):
    """The order Pulumi runs it in: the new team is created, the user (its teams changed) updated in place,
    then the old team deleted."""
    settings, first, _ = stack
    provider = host_provider()
    old_team, new_team = f"t{uuid.uuid4().hex[:6]}", f"t{uuid.uuid4().hex[:6]}"
    spec = team_spec(settings.access.teams[0])
    team = provider.create(props(settings, first, "team", team_id(settings, old_team), dict(spec, team_alias=old_team))).outs
    user = f"u-{uuid.uuid4().hex[:6]}"
    member = props(settings, first, "user", user, dict(user_spec(settings, settings.access.users[0]),
                                                         teams=[team_id(settings, old_team)]))
    member["spec"].pop("user_email", None)
    joined = provider.create(member).outs
    provider.create(props(settings, first, "team", team_id(settings, new_team), dict(spec, team_alias=new_team)))
    moved = dict(member, spec=dict(member["spec"], teams=[team_id(settings, new_team)]))
    diff = provider.diff("id", joined, moved)
    assert diff.changes and diff.replaces == [], "the user is updated in place, never replaced"
    provider.update("id", joined, moved)
    provider.delete("id", team)
    info = first.call("GET", "/user/info", params={"user_id": user}).json()
    assert team_id(settings, new_team) in [t["team_id"] for t in info["teams"]]
    assert team_id(settings, old_team) not in [t["team_id"] for t in info["teams"]]
    assert first.call("GET", "/team/info", params={"team_id": team_id(settings, old_team)}).status_code == 404
