"""LiteLLM gateway in front of Ollama GPU hosts: settings -> components -> stack outputs."""

import pulumi
import pulumi_docker as docker

from components.backups import DatabaseBackups, DatabaseBackupsArgs
from components.evidence import backlog_evidence, collect_facts
from components.gateway import Gateway, GatewayArgs, GatewaySecretValues, private_network
from components.kube_backups import KubeBackups, KubeBackupsArgs
from components.kube_gateway import KubeGateway, KubeGatewayArgs
from components.kube_monitoring import KubeMonitoring, KubeMonitoringArgs
from components.kube_objects import kubernetes_provider
from components.litellm_access import Access, AccessArgs
from components.model_fleet import ModelFleet, ModelFleetArgs, ssh_private_key
from components.monitoring import Monitoring, MonitoringArgs
from components.secrets import GatewaySecrets, GatewaySecretsArgs
from components.vault_access import VaultAccess, VaultAccessArgs
from config.loader import load_settings

settings = load_settings()  # stops here, before any resource, if the config is invalid

# platform: docker places every container on one Docker engine; kubernetes declares native objects in a
# cluster (the GPU hosts, Vault and the access objects are the same on both).
cluster = kubernetes_provider(settings) if settings.on_kubernetes else None
docker_provider = None if cluster else docker.Provider(
    "docker", host=settings.docker.host, ssh_opts=list(settings.docker.ssh_opts) or None)
vault_access = VaultAccess("vault", VaultAccessArgs(settings, docker_provider))
secrets = GatewaySecrets("secrets", GatewaySecretsArgs(settings, vault_access.provider))
network = None if cluster else private_network(settings, docker_provider)
fleet = ModelFleet("models", ModelFleetArgs(
    settings, docker_provider, network.name if network else None, ssh_private_key(settings, vault_access.provider),
))
secret_values = GatewaySecretValues(
    master_key=secrets.master_key,
    salt_key=secrets.salt_key,
    ui_password=secrets.ui_password,
    postgres_password=secrets.postgres_password,
    redis_password=secrets.redis_password,
    database_url=secrets.database_url,
    read_replica_url=secrets.read_replica_url,
)
if cluster:
    gateway = KubeGateway("gateway", KubeGatewayArgs(
        settings, secret_values, cluster, secrets.secret_version,
        routes_ready=fleet.routes_ready,  # no route goes live before its model is on its hosts
        vault_provider=vault_access.provider,
    ))
else:
    gateway = Gateway("gateway", GatewayArgs(
        settings, secret_values, docker_provider, network.name,
        routes_ready=fleet.routes_ready,  # no route goes live before its model is on its hosts
        vault_provider=vault_access.provider,
    ))
# Teams, users and keys through the gateway's management API, once the replicas are healthy.
access = Access("access", AccessArgs(settings, secrets.master_key, vault_access.provider, gateway.litellm_containers,
                                     vault_address=vault_access.address, vault_dev_token=vault_access.dev_token))

monitoring = None
if settings.monitoring.enabled and cluster:
    monitoring = KubeMonitoring("monitoring", KubeMonitoringArgs(
        settings, cluster, gateway, metrics_key=access.metrics_key,
    ), opts=pulumi.ResourceOptions(depends_on=[access.metrics]))
elif settings.monitoring.enabled:
    monitoring = Monitoring("monitoring", MonitoringArgs(
        settings, docker_provider, network.name,
        metrics_key=access.metrics_key,  # may read /metrics and nothing else
        redis_password=secrets.redis_password,
        database_url=secrets.database_url,
        grafana_admin_password=secrets.grafana_admin_password,
        prometheus_password=secrets.prometheus_password,
        prometheus_password_hash=secrets.prometheus_password_hash,
    ), opts=pulumi.ResourceOptions(depends_on=[*gateway.litellm_containers, access.metrics]))

backups = None
if settings.backups.enabled and cluster:
    backups = KubeBackups("backups", KubeBackupsArgs(settings, cluster, gateway))
elif settings.backups.enabled:
    backups = DatabaseBackups("backups", DatabaseBackupsArgs(
        settings, docker_provider, network.name, secrets.database_url, gateway.postgres,
    ))

pulumi.export("environment", settings.environment)
pulumi.export("platform", settings.platform)
pulumi.export("gatewayUrl", gateway.url)
pulumi.export("adminUiUrl", gateway.url.apply(lambda url: f"{url}/ui"))
pulumi.export("vaultSecretPath", secrets.secret_path)
pulumi.export("vaultSecretVersion", secrets.secret_version)
pulumi.export("vaultReadPolicy", secrets.policy_name)
pulumi.export("models", fleet.models)
pulumi.export("accessKeys", access.key_outputs())
pulumi.export("gpuHostModels", fleet.observed_models())
if monitoring is not None and monitoring.prometheus_url is not None:  # the stack's own (Docker platform)
    pulumi.export("prometheusUrl", monitoring.prometheus_url)
    pulumi.export("grafanaUrl", monitoring.grafana_url)
pulumi.export("backlog", collect_facts(settings, secrets, gateway, fleet, monitoring, backups).apply(backlog_evidence))
