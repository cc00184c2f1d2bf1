"""The `backlog` stack output: one entry per seed backlog item, computed from what the stack declares.

A status is never written by hand: each entry's status follows from facts about the declared
resources (which the caller passes in), so an item shows `done` only while the stack really does it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Optional

from config.stack import StackSettings
from config.values import host_port
from renderers.data_stores import redis_topology

BACKLOG = {
    "BACKLOG-001": ("The LiteLLM master key lives in HashiCorp Vault", "P1"),
    "BACKLOG-002": ("Every Ollama model the gateway routes to is pulled and verified on its GPU hosts", "P1"),
    "BACKLOG-003": ("Prometheus monitoring of the gateway and the GPU hosts", "P2"),
    "BACKLOG-004": ("Backup, restore and rollback procedures", "P2"),
    "BACKLOG-005": ("Per-user rate limits", "P3"),
    "BACKLOG-006": ("A web UI for API key management (LiteLLM's admin UI)", "P3"),
    "BACKLOG-007": ("Model usage analytics", "P4"),
    "BACKLOG-008": ("A Redis caching layer", "P4"),
}


@dataclass
class DeclaredFacts:
    """What the program declared, resolved to plain values (no secrets)."""

    vault_secret_path: Optional[str] = None
    vault_secret_version: Optional[int] = None
    vault_policy: Optional[str] = None
    master_key_from_vault_secret: bool = False
    routes: list[dict[str, Any]] = field(default_factory=list)
    model_pulls: list[dict[str, Any]] = field(default_factory=list)
    metrics_callback: bool = False
    prometheus_scrape_jobs: dict[str, list[str]] = field(default_factory=dict)
    alert_rules: list[str] = field(default_factory=list)
    backup_schedule: Optional[str] = None
    backup_retention: Optional[int] = None
    backup_location: Optional[str] = None
    runbook: Optional[str] = None
    database: bool = False
    database_store: Optional[str] = None   # "container postgres:16.10" or "external (sslmode verify-full)"
    shared_limit_store: Optional[str] = None
    deployment_limits: int = 0
    admin_ui_url: Optional[str] = None
    admin_ui_password_in_vault: bool = False
    dashboards: list[str] = field(default_factory=list)
    cache: Optional[dict[str, Any]] = None
    access: Optional[dict[str, Any]] = None  # declared teams/users/keys and their limits
    gateway: Optional[dict[str, Any]] = None  # the load balancer and the replicas behind it


def _entry(item: str, status: str, evidence: dict[str, Any]) -> dict[str, Any]:
    title, priority = BACKLOG[item]
    return {"title": title, "priority": priority, "status": status, "evidence": evidence}


def backlog_evidence(facts: DeclaredFacts) -> dict[str, dict[str, Any]]:
    entries = {}

    vault_done = bool(facts.vault_secret_path and facts.master_key_from_vault_secret and facts.vault_policy)
    entries["BACKLOG-001"] = _entry("BACKLOG-001", "done" if vault_done else "not started", {
        "vault_secret": facts.vault_secret_path,
        "kv_version": facts.vault_secret_version,
        "read_policy": facts.vault_policy,
        "gateway_master_key_source": "vault secret" if facts.master_key_from_vault_secret else None,
    })

    pulled = {(p["model"], p["host"]) for p in facts.model_pulls if p["status"] == "verified"}
    routed = {(r["model"], r["host"]) for r in facts.routes}
    if routed and routed <= pulled:
        status_002 = "done"
    elif routed:
        status_002 = "partial"
    else:
        status_002 = "not started"
    entries["BACKLOG-002"] = _entry("BACKLOG-002", status_002, {
        "routes": facts.routes,
        "pulls": facts.model_pulls,
        "routes_without_pull": sorted(f"{m}@{h}" for m, h in routed - pulled),
        "gateway": facts.gateway,
    })

    entries["BACKLOG-003"] = _entry(
        "BACKLOG-003",
        "done" if facts.metrics_callback and "litellm" in facts.prometheus_scrape_jobs and facts.alert_rules else ("partial" if facts.metrics_callback else "not started"),
        {"litellm_metrics_endpoint": "/metrics (bearer key)" if facts.metrics_callback else None,
         "scrape_jobs": facts.prometheus_scrape_jobs, "alert_rules": len(facts.alert_rules),
         "alerts": facts.alert_rules},
    )

    entries["BACKLOG-004"] = _entry(
        "BACKLOG-004",
        "done" if facts.backup_schedule and facts.runbook else ("partial" if facts.backup_schedule else "not started"),
        {"backup_schedule": facts.backup_schedule, "retention": facts.backup_retention,
         "location": facts.backup_location, "runbook": facts.runbook, "database": facts.database_store},
    )

    # Per-user limits: teams, users and keys declared in the stack and kept in line with the gateway.
    limits_ready = bool(facts.database and facts.shared_limit_store)
    declared = facts.access or {}
    managed = limits_ready and bool(declared.get("users") or declared.get("keys") or declared.get("teams"))
    entries["BACKLOG-005"] = _entry("BACKLOG-005", "done" if managed else ("partial" if limits_ready else "not started"), {
        "limit_store": facts.shared_limit_store,
        "deployments_with_rpm_or_tpm": facts.deployment_limits,
        "teams": len(declared.get("teams", {})), "users": len(declared.get("users", {})),
        "keys": len(declared.get("keys", {})),
        "limits_in_force": declared or None,
        "missing": None if managed else ("teams, users or keys in the stack's access section" if limits_ready else None),
    })

    ui_done = bool(facts.admin_ui_url and facts.database and facts.admin_ui_password_in_vault)
    entries["BACKLOG-006"] = _entry("BACKLOG-006", "done" if ui_done else "not started", {
        "admin_ui": facts.admin_ui_url,
        "keys_managed_by_the_stack": len((facts.access or {}).get("keys", {})),
        "credentials": "UI_USERNAME from config, UI_PASSWORD in the Vault secret" if facts.admin_ui_password_in_vault else None,
        # What tests/integration/test_database_mode.py checks on every CI run against the real proxy
        # in database mode with this config and environment.
        "verified": ("/ui/ served; login with UI_USERNAME and the Vault-held UI_PASSWORD answers 303 with a "
                     "session cookie, a wrong password 401; virtual keys minted, used, refused when wrong or "
                     "deleted") if ui_done else None,
    })

    analytics = "done" if facts.dashboards else ("partial" if facts.database and facts.metrics_callback else "not started")
    entries["BACKLOG-007"] = _entry("BACKLOG-007", analytics, {
        "spend_logs": "LiteLLM spend logs in Postgres" if facts.database else None,
        "dashboards": facts.dashboards,
    })

    entries["BACKLOG-008"] = _entry("BACKLOG-008", "done" if facts.cache else "not started", {
        "cache": facts.cache,
    })
    return entries


def _access_summary(settings) -> Optional[dict[str, Any]]:
    """The declared teams, users and keys with the limits the stack keeps in force (no key values)."""
    access = getattr(settings, "access", None)
    if access is None:
        return None

    def limits(entry) -> dict[str, Any]:
        return {k: v for k, v in (("rpm", entry.rpm), ("tpm", entry.tpm), ("max_parallel_requests", entry.max_parallel_requests),
                                  ("max_budget", entry.max_budget), ("budget_duration", entry.budget_duration)) if v is not None}

    return {
        "teams": {t.name: limits(t) for t in access.teams},
        "users": {u.id: limits(u) for u in access.users},
        "keys": {k.alias: {"owner": {"user": k.user, "team": k.team}, **limits(k)} for k in access.keys},
        "key_cache_ttl_seconds": access.key_cache_ttl_seconds,
    }


def _gateway_summary(settings, url: str) -> dict[str, Any]:
    summary = {"platform": settings.platform, "load_balancer": settings.gateway.load_balancer.image,
               "replicas": settings.gateway.replicas, "url": url, "tls": settings.gateway.load_balancer.tls.enabled,
               "replacement": "rolling (create before delete)"}
    if settings.platform == "kubernetes":
        kube = settings.kubernetes
        summary.update(namespace=settings.namespace, tls=kube.ingress.enabled and kube.ingress.tls.enabled,
                       replacement="rolling Deployment (maxUnavailable 0) after the version's migration Job")
        if kube.autoscaling.enabled:
            summary["replicas"] = {"autoscaled": [kube.autoscaling.min_replicas, kube.autoscaling.max_replicas]}
    return summary


def collect_facts(settings, secrets, gateway, fleet, monitoring=None, backups=None):
    """DeclaredFacts (as an Output) read off the declared components and the rendered LiteLLM config."""
    import pulumi  # kept local: the rest of this module is pure and tested without Pulumi

    config = gateway.config
    general = config.get("general_settings", {})
    litellm_settings = config.get("litellm_settings", {})
    cache_params = litellm_settings.get("cache_params") if litellm_settings.get("cache") else None
    # The stack's own database or an external one (postgres.mode): LiteLLM runs in database mode either way.
    database = "database_url" in general and (gateway.postgres is not None or settings.postgres.mode == "external")
    # One route per (model, GPU host) the dispatcher sends the model's requests to.
    routes = [
        {"model": d["model_name"], "host": host, "deployment": d["model_info"]["id"],
         "ollama_model": d["litellm_params"]["model"], "api_base": d["litellm_params"]["api_base"]}
        for d in config.get("model_list", []) for host in d["model_info"]["gpu_hosts"]
    ]

    def build(resolved: dict) -> DeclaredFacts:
        return DeclaredFacts(
            vault_secret_path=secrets.secret_path,
            vault_secret_version=resolved["version"],
            vault_policy=resolved["policy"],
            master_key_from_vault_secret="LITELLM_MASTER_KEY" in secrets.stored_fields
            and general.get("master_key") == "os.environ/LITELLM_MASTER_KEY",
            routes=routes,
            model_pulls=[
                {"host": host, "model": name, "tag": info["tag"], "digest": info["digest"], "size": info["size"],
                 "status": "verified" if name not in resolved["mismatched"][host] else "digest mismatch"}
                for host, models in sorted(resolved["observed"].items()) for name, info in sorted((models or {}).items())
            ] + [
                {"host": host, "model": name, "status": "missing"}
                for host, missing in sorted(resolved["missing"].items()) for name in (missing or [])
            ],
            metrics_callback="prometheus" in litellm_settings.get("callbacks", []),
            prometheus_scrape_jobs=dict(monitoring.scrape_jobs) if monitoring else {},
            alert_rules=list(monitoring.alert_rules) if monitoring else [],
            dashboards=list(monitoring.dashboards) if monitoring else [],
            backup_schedule=backups.schedule if backups else None,
            backup_retention=backups.retention if backups else None,
            backup_location=backups.location if backups else None,
            runbook="docs/RUNBOOK.md" if backups else None,
            database=database,
            database_store=(f"container {settings.postgres.image}" if settings.postgres.mode == "container" else
                            f"external (sslmode {settings.postgres.external.sslmode}"
                            f"{', read replica' if secrets.read_replica_url is not None else ''})"),
            shared_limit_store=_shared_limit_store(config),
            deployment_limits=sum(
                1 for d in config.get("model_list", []) if {"rpm", "tpm"} & set(d["litellm_params"])
            ),
            admin_ui_url=f"{resolved['url']}/ui" if database else None,
            admin_ui_password_in_vault="UI_PASSWORD" in secrets.stored_fields,
            access=_access_summary(settings),
            gateway=_gateway_summary(settings, resolved["url"]),
            cache={"type": cache_params["type"], "ttl_seconds": cache_params["ttl"],
                   "namespace": cache_params["namespace"], **_redis_store(settings)}
            if cache_params else None,
        )

    return pulumi.Output.all(
        version=secrets.secret_version, policy=secrets.policy_name, url=gateway.url,
        observed={h: r.models for h, r in fleet.observed.items()},
        missing={h: r.missing for h, r in fleet.observed.items()},
        mismatched={h: r.mismatched for h, r in fleet.observed.items()},
    ).apply(build)


def _shared_limit_store(config: dict[str, Any]) -> str | None:
    """Where the replicas share their limits and counters: the router's Redis and coordination_redis, or
    coordination_redis alone (behind Sentinel or in a cluster, LiteLLM gives the router its client)."""
    if not config["general_settings"].get("coordination_redis"):
        return None
    if config.get("router_settings", {}).get("redis_host"):
        return "redis (router_settings and general_settings.coordination_redis)"
    return "redis (general_settings.coordination_redis, the router's too)"


def _redis_store(settings: StackSettings) -> dict[str, Any]:
    """Where the cache lives: the stack's Redis (its image), or the external one (address or topology, TLS,
    user)."""
    if settings.redis.mode == "container":
        return {"image": settings.redis.image}
    external = settings.redis.external
    topology = redis_topology(settings)
    if topology == "standalone":
        where = host_port(external.host, external.port)
    else:
        group = getattr(external, topology)
        nodes = ", ".join(host_port(node.host, node.port) for node in group.nodes)
        where = (f"sentinel {group.master_name} via {nodes}" if topology == "sentinel" else f"cluster via {nodes}")
    return {"external": where, "tls": external.tls, "user": external.username or "default"}
