"""The backlog entries follow the facts they are given; nothing is fixed in advance."""

from components.evidence import BACKLOG, DeclaredFacts, backlog_evidence

ROUTES = [{"model": "llama", "host": "gpu-01"}, {"model": "llama", "host": "gpu-02"}]


def verified(model, host):
    return {"model": model, "host": host, "tag": "llama3.1:8b", "digest": "46e0c10c039e", "status": "verified"}


def test_nothing_declared_means_nothing_done():
    entries = backlog_evidence(DeclaredFacts())
    assert sorted(entries) == sorted(BACKLOG)
    assert {e["status"] for e in entries.values()} == {"not started"}


def test_model_pulls_decide_backlog_002():
    all_pulled = DeclaredFacts(routes=ROUTES, model_pulls=[verified("llama", "gpu-01"), verified("llama", "gpu-02")])
    assert backlog_evidence(all_pulled)["BACKLOG-002"]["status"] == "done"
    one_missing = DeclaredFacts(routes=ROUTES, model_pulls=[
        verified("llama", "gpu-01"), {"model": "llama", "host": "gpu-02", "status": "missing"}])
    entry = backlog_evidence(one_missing)["BACKLOG-002"]
    assert entry["status"] == "partial"
    assert entry["evidence"]["routes_without_pull"] == ["llama@gpu-02"]
    wrong_digest = DeclaredFacts(routes=ROUTES, model_pulls=[
        verified("llama", "gpu-01"), dict(verified("llama", "gpu-02"), status="digest mismatch")])
    assert backlog_evidence(wrong_digest)["BACKLOG-002"]["status"] == "partial"


def test_vault_needs_the_secret_the_policy_and_the_gateway_using_it():
    base = dict(vault_secret_path="secret/x", vault_policy="x-read", vault_secret_version=3)
    assert backlog_evidence(DeclaredFacts(**base, master_key_from_vault_secret=True))["BACKLOG-001"]["status"] == "done"
    assert backlog_evidence(DeclaredFacts(**base))["BACKLOG-001"]["status"] == "not started"


def test_cache_and_ui_and_monitoring():
    facts = DeclaredFacts(cache={"type": "redis", "ttl_seconds": 60}, database=True, admin_ui_url="http://g/ui",
                          admin_ui_password_in_vault=True, metrics_callback=True)
    entries = backlog_evidence(facts)
    assert entries["BACKLOG-008"]["status"] == "done"
    assert entries["BACKLOG-006"]["status"] == "done"
    assert entries["BACKLOG-003"]["status"] == "partial", "metrics without a Prometheus scraping them"
    assert entries["BACKLOG-007"]["status"] == "partial"
    facts.prometheus_scrape_jobs = {"litellm": ["litellm-0:4000"]}
    facts.alert_rules = ["LiteLLMGatewayDown"]
    assert backlog_evidence(facts)["BACKLOG-003"]["status"] == "done"


def test_the_backlog_document_lists_every_item_the_output_reports():
    from components.evidence import BACKLOG
    from harness import ROOT

    text = (ROOT / "docs" / "backlog.md").read_text()
    rows = {line.split("|")[1].strip(): line for line in text.splitlines() if line.startswith("| BACKLOG-")}
    assert set(rows) == set(BACKLOG)
    for item, (title, priority) in BACKLOG.items():
        assert f"| {priority} | {title} |" in rows[item], item
