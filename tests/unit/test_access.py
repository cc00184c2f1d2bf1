"""The access section (BACKLOG-005) under mocks: validation with key paths, the declared teams, users
and keys, their secrecy, and each key's Vault path and read policy."""

from __future__ import annotations

import copy
import json

import pulumi
import pytest

from config.errors import SettingsError
from config.parse import parse_settings
from harness import SECRET_MARKER, run_stack, stack_file_config
from renderers.litellm_config import render_config_dict

ACCESS = {
    "defaults": {"upperBound": {"rpm": 100, "maxBudget": 50, "duration": "90d"}},
    "teams": [{"name": "ml", "models": ["qwen-small"], "members": ["ada"]}],
    "users": [{"id": "ada", "rpm": 50}, {"id": "bob"}],
    "keys": [{"alias": "ada-key", "user": "ada", "team": "ml", "models": ["qwen-small"], "rpm": 40, "maxBudget": 10,
              "expiresAfter": "30d"}],
}


def raw_with(access=None, stack="dev"):
    raw = copy.deepcopy(stack_file_config(stack))
    raw["access"] = copy.deepcopy(access if access is not None else ACCESS)
    return raw


def problems(access) -> dict[str, str]:
    with pytest.raises(SettingsError) as caught:
        parse_settings(raw_with(access))
    return dict(caught.value.problems)


def test_a_valid_access_section_parses():
    settings = parse_settings(raw_with())
    assert [k.alias for k in settings.access.keys] == ["ada-key"]


@pytest.mark.parametrize("mutate, key, words", [
    (lambda a: a["keys"][0].update(models=["gpt-5"]), "access.keys[0].models", "unknown model 'gpt-5'"),
    (lambda a: a["keys"][0].update(user="carol"), "access.keys[0].user", "unknown user 'carol'"),
    (lambda a: a["keys"][0].update(team="web"), "access.keys[0].team", "unknown team 'web'"),
    (lambda a: a["keys"][0].update(rpm=101), "access.keys[0].rpm", "above access.defaults.upperBound.rpm"),
    (lambda a: a["keys"][0].update(maxBudget=51), "access.keys[0].maxBudget", "above access.defaults.upperBound.maxBudget"),
    (lambda a: a["keys"][0].pop("rpm"), "access.keys[0].rpm", "required"),
    (lambda a: a["keys"][0].update(expiresAfter="1mo", ), None, None),
    (lambda a: a["keys"][0].update(expiresAfter="365d"), "access.keys[0].expiresAfter", "longer than"),
    (lambda a: a["keys"][0].update(expiresAfter="forever"), "access.keys[0].expiresAfter", "not a duration"),
    (lambda a: a["keys"].append(dict(a["keys"][0])), "access.keys", "key alias 'ada-key' is declared more than once"),
    (lambda a: a["users"].append({"id": "ada"}), "access.users", "user 'ada' is declared more than once"),
    (lambda a: a["keys"][0].update(user=None, team=None), "access.keys[0]", "name its owner"),
    (lambda a: a["keys"][0].update(user="bob"), "access.keys[0]", "not a member of team 'ml'"),
    (lambda a: a["teams"][0].update(members=["zed"]), "access.teams[0].members", "unknown user 'zed'"),
    (lambda a: a["users"][1].update(teams=["web"]), "access.users[1].teams", "unknown team 'web'"),
    (lambda a: a["users"][0].update(role="god"), "access.users[0].role", "must be one of"),
    (lambda a: a["users"][0].update(email="not-an-address"), "access.users[0].email", "not an e-mail"),
    (lambda a: a["teams"][0].update(modelRpm={"other": 5}), "access.teams[0].modelRpm", "unknown model 'other'"),
    (lambda a: a["teams"][0].update(name="ML Team"), "access.teams[0].name", "must be lowercase"),
    (lambda a: a.update(keyCacheTtlSeconds=0), "access.keyCacheTtlSeconds", "must be at least"),
    (lambda a: a["defaults"].update(keyGenerate={"rpm": 500}), "access.defaults.keyGenerate.rpm", "above"),
])
def test_invalid_access_settings_name_their_key(mutate, key, words):
    access = copy.deepcopy(ACCESS)
    mutate(access)
    if key is None:
        parse_settings(raw_with(access))
        return
    found = problems(access)
    assert key in found and words in found[key], found


def test_the_defaults_and_the_cache_ttl_are_rendered_into_litellms_config():
    access = copy.deepcopy(ACCESS)
    access["defaults"]["keyGenerate"] = {"rpm": 20, "maxBudget": 5, "budgetDuration": "30d"}
    access["defaults"]["internalUser"] = {"maxBudget": 10, "models": ["qwen-small"]}
    # The stack's own users and keys say every value those defaults would fill in.
    for user in access["users"]:
        user.update(maxBudget=10, models=["qwen-small"])
    access["keys"][0]["budgetDuration"] = "30d"
    config = render_config_dict(parse_settings(raw_with(access)), redis_host="r")
    assert config["litellm_settings"]["default_key_generate_params"] == {"rpm_limit": 20, "max_budget": 5, "budget_duration": "30d"}
    assert config["litellm_settings"]["default_internal_user_params"] == {"max_budget": 10, "models": ["qwen-small"]}
    assert config["litellm_settings"]["upperbound_key_generate_params"] == {"rpm_limit": 100, "max_budget": 50, "duration": "90d"}
    assert config["general_settings"]["user_api_key_cache_ttl"] == 3


@pytest.fixture(scope="module")
def declared():
    return run_stack(raw_with())


def test_teams_users_and_keys_are_declared_after_the_gateway_with_the_master_key_secret(declared):
    team = declared.mocks.named("access-team-ml")
    assert team.plain("kind") == "team" and team.plain("ident") == "dev-ml"
    assert team.plain("spec") == {"team_alias": "ml", "models": ["qwen-small"]}
    assert team.plain("api_base") == "http://127.0.0.1:4000"
    assert team.is_secret("master_key")
    assert {"gateway-litellm-0"} <= declared.mocks.depends_on_names("access-team-ml")
    user = declared.mocks.named("access-user-ada")
    assert user.plain("spec") == {"user_role": "internal_user", "models": [], "teams": ["dev-ml"], "rpm_limit": 50}
    assert "access-team-ml" in declared.mocks.depends_on_names("access-user-ada")
    key = declared.mocks.named("access-key-ada-key")
    assert key.is_secret("ident") and key.plain("ident").startswith("sk-" + SECRET_MARKER)
    assert key.plain("spec") == {"key_alias": "ada-key", "models": ["qwen-small"], "rpm_limit": 40, "max_budget": 10.0,
                                 "user_id": "ada", "team_id": "dev-ml", "duration": "30d"}
    assert {"access-user-ada", "access-team-ml"} <= declared.mocks.depends_on_names("access-key-ada-key")
    # The Vault reference carries the dev-mode Vault's token: secret too.
    assert declared.mocks.options_of("access-key-ada-key").additional_secret_outputs == ["master_key", "ident", "vault",
                                                                                        "value"]


def test_each_key_has_its_own_vault_path_and_read_policy(declared):
    secret = declared.mocks.named("access-key-ada-key-vault")
    assert secret.plain("name") == "litellm-gateway/dev/keys/ada-key" and secret.is_secret("dataJson")
    value = json.loads(secret.plain("dataJson"))["api_key"]
    assert value == declared.mocks.named("access-key-ada-key").plain("ident")
    policy = declared.mocks.named("access-key-ada-key-policy")
    assert policy.plain("name") == "litellm-gateway-dev-key-ada-key"
    assert 'path "secret/data/litellm-gateway/dev/keys/ada-key"' in policy.plain("policy")
    assert "litellm-gateway/dev\"" not in policy.plain("policy"), "the key's policy reads its key only"
    assert declared.outputs["accessKeys"] == {"ada-key": {"vaultPath": "secret/litellm-gateway/dev/keys/ada-key",
                                                          "readPolicy": "litellm-gateway-dev-key-ada-key"}}


def test_prometheus_scrapes_with_its_own_metrics_only_key(declared):
    metrics = declared.mocks.named("access-key-prometheus-metrics")
    assert metrics.plain("spec")["allowed_routes"] == ["/metrics", "/metrics/"]
    uploads = {u["file"]: u["content"] for u in declared.mocks.named("monitoring-prometheus").plain("uploads")}
    assert uploads["/etc/prometheus/secrets/litellm-metrics-key"] == metrics.plain("ident")
    master = dict(e.split("=", 1) for e in declared.mocks.named("gateway-litellm-0").plain("envs"))["LITELLM_MASTER_KEY"]
    assert uploads["/etc/prometheus/secrets/litellm-metrics-key"] != master


def test_backlog_005_is_done_with_counts_and_limits(declared):
    entry = declared.outputs["backlog"]["BACKLOG-005"]
    assert entry["status"] == "done"
    assert (entry["evidence"]["teams"], entry["evidence"]["users"], entry["evidence"]["keys"]) == (1, 2, 1)
    assert entry["evidence"]["limits_in_force"]["keys"]["ada-key"] == {
        "owner": {"user": "ada", "team": "ml"}, "rpm": 40, "max_budget": 10.0}
    assert declared.outputs["backlog"]["BACKLOG-006"]["evidence"]["keys_managed_by_the_stack"] == 1


def test_a_stack_without_access_declarations_is_partial_for_backlog_005():
    raw = copy.deepcopy(stack_file_config("dev"))
    raw.pop("access", None)
    assert run_stack(raw).outputs["backlog"]["BACKLOG-005"]["status"] == "partial"


def test_bad_access_config_stops_before_any_resource():
    access = copy.deepcopy(ACCESS)
    access["keys"][0]["models"] = ["nope"]
    with pytest.raises(pulumi.RunError, match=r"access.keys\[0\].models: unknown model 'nope'"):
        run_stack(raw_with(access))


def test_a_key_may_not_list_models_its_team_may_not_use():
    raw = raw_with()
    raw["models"] = raw["models"] + [{"name": "other", "ollamaTag": "other:1b", "hosts": raw["models"][0]["hosts"]}]
    raw["access"]["keys"][0]["models"] = ["qwen-small", "other"]
    with pytest.raises(SettingsError) as caught:
        parse_settings(raw)
    found = dict(caught.value.problems)
    assert "'other' is not among the models of team 'ml'" in found["access.keys[0].models"]


def test_models_no_key_can_call_follow_keys_then_teams_then_users():
    from config.checks.access import models_no_key_can_call

    raw = raw_with()
    raw["models"] = raw["models"] + [{"name": "other", "ollamaTag": "other:1b", "hosts": raw["models"][0]["hosts"]}]
    settings = parse_settings(raw)
    assert models_no_key_can_call(settings.access, ["qwen-small", "other"]) == ["other"]
    raw["access"]["keys"][0]["models"] = []          # the key then has its team's models
    assert models_no_key_can_call(parse_settings(raw).access, ["qwen-small", "other"]) == ["other"]
    raw["access"]["teams"][0]["models"] = []         # then its user's (none: every model)
    assert models_no_key_can_call(parse_settings(raw).access, ["qwen-small", "other"]) == []
    raw["access"]["keys"] = []                       # no declared key: nothing to warn about
    assert models_no_key_can_call(parse_settings(raw).access, ["qwen-small", "other"]) == []


@pytest.mark.parametrize("mutate, key, words", [
    (lambda a: a["keys"].append({"alias": "prometheus-metrics", "user": "bob"}), "access.keys[1].alias",
     "the stack's own key for Prometheus"),
    (lambda a: a["keys"][0].update(budgetDuration="60d") or a["defaults"]["upperBound"].update(budgetDuration="30d"),
     "access.keys[0].budgetDuration", "60d is longer than 30d"),
    (lambda a: a["defaults"].update(keyGenerate={"duration": "1000d"}), "access.defaults.keyGenerate.duration",
     "1000d is longer than 90d"),
    (lambda a: a["keys"][0].update(expiresAfter="999999mo"), "access.keys[0].expiresAfter", "longer than 100 years"),
    (lambda a: a["users"].append({"id": "default_user_id"}), "access.users[2].id", "built-in admin user"),
    (lambda a: a["users"][0].update(email="Ada@Example.com") or a["users"][1].update(email="ada@example.com"),
     "access.users[1].email", "'ada'"),
])
def test_what_litellm_would_refuse_at_up_is_refused_first_by_key(mutate, key, words):
    access = copy.deepcopy(ACCESS)
    mutate(access)
    found = problems(access)
    assert key in found and words in found[key], found


class _Answers:
    """The access provider with its HTTP calls answered from a list (a test of its own decisions)."""

    def __new__(cls, answers):
        from components.litellm_objects import LiteLLMObjectProvider

        class Provider(LiteLLMObjectProvider):
            @staticmethod
            def call(api_base, master_key, method, path, body=None, query=None):
                return answers.pop(0)

        return Provider()


def test_a_delete_answered_400_is_gone_only_when_the_object_is_gone():
    props = {"kind": "team", "name": "ml", "api_base": "http://gw", "master_key": "sk-x", "ident": "dev-ml",
             "spec": {"team_alias": "ml"}, "vault": None}
    _Answers([(400, {"error": "Team not found"}), (404, {})]).delete("id", props)  # gone: fine
    still_there = _Answers([(400, {"error": {"message": "cannot delete: team has keys"}}),
                            (200, {"team_info": {"team_alias": "ml"}})])
    with pytest.raises(RuntimeError, match="answered HTTP 400: cannot delete: team has keys"):
        still_there.delete("id", props)


def test_a_stack_key_or_user_must_say_what_the_ui_defaults_would_fill_in():
    """LiteLLM fills a request's unset values from keyGenerate / internalUser (meant for objects made in
    the admin UI): with the prod example's defaults a key without its own lifetime expired after 90 days
    and a user without limits got maxBudget 100."""
    access = copy.deepcopy(ACCESS)
    access["defaults"]["keyGenerate"] = {"duration": "30d", "tpm": 1000}
    access["defaults"]["internalUser"] = {"maxBudget": 100, "models": ["qwen-small"]}
    access["keys"][0].pop("expiresAfter")
    found = problems(access)
    assert "keyGenerate.duration (30d)" in found["access.keys[0].expiresAfter"]
    assert "keyGenerate.tpm (1000)" in found["access.keys[0].tpm"]
    assert "internalUser.maxBudget (100.0)" in found["access.users[1].maxBudget"]
    assert "internalUser.models" in found["access.users[0].models"]


def test_the_metrics_key_has_an_explicit_lifetime_within_the_upper_bound(declared):
    key = declared.mocks.named("access-key-prometheus-metrics")
    spec = key.plain("spec")
    assert spec["duration"] == ACCESS["defaults"]["upperBound"]["duration"] and spec["renew"] is True
    assert spec["rpm_limit"] == ACCESS["defaults"]["upperBound"]["rpm"]


def test_a_key_rotation_draws_a_new_value_and_nothing_else_changes():
    before = run_stack(raw_with())
    access = copy.deepcopy(ACCESS)
    access["keys"][0]["rotation"] = 1
    after = run_stack(raw_with(access))
    value = "access-key-ada-key-value"
    assert before.mocks.named(value).plain("keepers") in (None, {}) and after.mocks.named(value).plain("keepers") == {"rotation": "1"}
    # (The provider replaces a RandomPassword whose keepers change: the key object and its Vault secret
    # then get the new value.) The key's policy and alias stay.
    assert before.mocks.named("access-key-ada-key-policy").plain("policy") == after.mocks.named("access-key-ada-key-policy").plain("policy")
    assert after.mocks.named("access-key-ada-key").plain("spec")["key_alias"] == "ada-key"


def access_objects(run) -> dict[str, object]:
    """Resource name -> its `ident` (team/user id, key value) for the access objects and key values."""
    return {r.name: r.plain("ident") for r in run.resources
            if r.name.startswith("access-") and r.type == "pulumi-python:dynamic:Resource"}


@pytest.mark.parametrize("change, gone, new", [
    # docs/operations.md, Access control, "Changes": only a new key alias, user id or team name replaces.
    (lambda a: a["keys"][0].update(alias="ada-laptop"), {"access-key-ada-key"}, {"access-key-ada-laptop"}),
    (lambda a: (a["users"][1].update(id="bobby")), {"access-user-bob"}, {"access-user-bobby"}),
    (lambda a: (a["teams"][0].update(name="research"), a["keys"][0].update(team="research")),
     {"access-team-ml"}, {"access-team-research"}),
])
def test_a_new_alias_user_id_or_team_name_is_a_new_object_and_the_old_one_goes(change, gone, new):
    """A different resource name is, to Pulumi, a new object created and the old one deleted."""
    before = access_objects(run_stack(raw_with()))
    access = copy.deepcopy(ACCESS)
    change(access)
    after = access_objects(run_stack(raw_with(access)))
    assert set(before) - set(after) == gone and set(after) - set(before) == new
    if gone == {"access-key-ada-key"}:  # a renamed key gets a value of its own, never the old one
        assert after["access-key-ada-laptop"] != before["access-key-ada-key"]
    if gone == {"access-team-ml"}:
        assert after["access-team-research"] == "dev-research"


def test_a_new_limit_or_owner_keeps_every_object_and_the_keys_value():
    before = access_objects(run_stack(raw_with()))
    access = copy.deepcopy(ACCESS)
    access["keys"][0].update(rpm=20, maxBudget=5)
    access["users"][0].update(rpm=10)
    access["teams"][0].update(models=["qwen-small"], rpm=70)
    after = access_objects(run_stack(raw_with(access)))
    assert after == before, "limits are updates in place: same objects, same key value"
