"""`platform` and `kubernetes`: where the gateway's containers run when it outgrows one Docker host.

With `platform: kubernetes` the same settings (gateway, models, router, redis, postgres, access,
monitoring alerts) and the same rendered LiteLLM config become native Kubernetes objects built with
pulumi-kubernetes (components/kube_gateway.py); this section says which cluster and namespace, and
what only a cluster has (Ingress, autoscaling, disruption budget, storage).
"""

from __future__ import annotations

from typing import Literal, Optional

from pydantic import Field

from ..types import DnsLabel, DnsSubdomain, HostAddress, LabelKey, Text, Waiver
from .base import Section
from .vault import TlsVaultRef

PLATFORMS = ("docker", "kubernetes")
Platform = Literal["docker", "kubernetes"]
PLATFORM_DESCRIPTION = (
    "Where the containers run: `docker` (one Docker host, the default) or `kubernetes` (native objects in a "
    "cluster, settings in `kubernetes`). docs/kubernetes.md says when to choose which.")


class IngressTlsSettings(Section):
    """TLS at the Ingress: a `kubernetes.io/tls` Secret the stack writes from Vault or from the secret config
    keys gatewayTlsCertificate and gatewayTlsKey."""

    enabled: bool = True
    """Terminate TLS at the Ingress (the controller serves the certificate)."""
    vault: Optional[TlsVaultRef] = None
    """`{mount, path, certificateField, keyField}` of a Vault KV v2 secret holding the certificate chain and key.
    Unset: the secret config keys `gatewayTlsCertificate` and `gatewayTlsKey`."""


class IngressSettings(Section):
    enabled: bool = True
    """An Ingress in front of the gateway's Service (`networking.k8s.io/v1`). `false`: only the ClusterIP
    Service (reach it from inside the cluster, or put your own route in front)."""
    host: Optional[HostAddress] = None
    """The gateway's DNS name (required with the Ingress); `gatewayUrl` is `https://<host>`."""
    class_name: Optional[DnsSubdomain] = None
    """`ingressClassName` (for example `nginx`). Unset: the cluster's default IngressClass."""
    annotations: dict[LabelKey, Text] = {}
    """Extra annotations for your controller (timeouts, body size). Streams need a read timeout of at least
    `gateway.requestTimeoutSeconds`: set your controller's (for ingress-nginx
    `nginx.ingress.kubernetes.io/proxy-read-timeout`)."""
    tls: IngressTlsSettings = IngressTlsSettings()
    """TLS at the Ingress (see `kubernetes.ingress.tls.*`)."""
    allow_plain_http: Optional[Waiver] = None
    """The named waiver for an Ingress without TLS outside dev stacks (10-300 characters)."""


class AutoscalingSettings(Section):
    enabled: bool = False
    """A HorizontalPodAutoscaler (`autoscaling/v2`, on CPU) owns the replica count: the Deployment declares none
    (so `pulumi up` never resets what the autoscaler chose) and `gateway.replicas` must be left out. LiteLLM's tpm pre-call check is per pod while rpm is shared through Redis: a key's
    tpm limit is multiplied by the pod count (docs/kubernetes.md)."""
    min_replicas: int = Field(default=2, ge=1, le=256)
    """Fewest pods the autoscaler keeps."""
    max_replicas: int = Field(default=6, ge=1, le=256)
    """Most pods the autoscaler starts."""
    target_cpu_percent: int = Field(default=70, ge=10, le=100)
    """Average CPU use, percent of each pod's request (`gateway.cpus`), the autoscaler keeps."""


class KubernetesSettings(Section):
    kubeconfig: Optional[Text] = None
    """Path of the kubeconfig file Pulumi uses. Unset: `KUBECONFIG`, else `~/.kube/config`."""
    context: Optional[Text] = None
    """The kubeconfig context (cluster and user). Unset: the kubeconfig's current context."""
    namespace: Optional[DnsLabel] = None
    """Namespace of every object. Unset: `litellm-gateway-<environment>`."""
    cluster_domain: DnsSubdomain = "cluster.local"
    """The cluster's DNS domain: the load balancer finds the replicas by their Service's full name
    (`litellm.<namespace>.svc.<clusterDomain>`), as HAProxy's resolver uses no search domains."""
    create_namespace: bool = True
    """Declare the namespace (Pod Security `baseline` enforced, `restricted` warned and audited: LiteLLM's image
    runs as root). `false`: it exists and is not the stack's (a platform team made it)."""
    spread: Literal["ScheduleAnyway", "DoNotSchedule"] = "ScheduleAnyway"
    """`whenUnsatisfiable` of the replicas' topology spread across nodes (`kubernetes.io/hostname`).
    `DoNotSchedule` keeps a node's failure from taking more than its share, but a pod stays Pending when no
    other node has room."""
    node_selector: dict[LabelKey, Text] = {}
    """`nodeSelector` of the gateway's pods (LiteLLM, Postgres, Redis)."""
    monitoring_namespaces: tuple[DnsLabel, ...] = ("monitoring",)
    """Namespaces whose pods (the cluster's Prometheus) may reach the gateway's metrics ports; the
    NetworkPolicies admit nothing else there."""
    monitoring_labels: dict[LabelKey, Text] = {}
    """Labels on the ServiceMonitors, ScrapeConfigs and the PrometheusRule, so the cluster's Prometheus selects
    them (for kube-prometheus-stack, its `release` label: `{release: kube-prometheus-stack}`)."""
    storage_class: Optional[DnsSubdomain] = None
    """StorageClass of the database's and the backups' volumes. Unset: the cluster's default."""
    postgres_storage_gb: int = Field(default=20, ge=1, le=65536)
    """Size of the in-cluster database's volume, GiB."""
    backup_storage_gb: int = Field(default=20, ge=1, le=65536)
    """Size of the backups' volume, GiB."""
    migration_timeout_seconds: int = Field(default=600, ge=60, le=86400)
    """How long `pulumi up` waits for a LiteLLM version's migration Job before it fails (the Deployment is
    not touched until the Job completed)."""
    ingress: IngressSettings = IngressSettings()
    """The Ingress in front of the gateway (see `kubernetes.ingress.*`)."""
    autoscaling: AutoscalingSettings = AutoscalingSettings()
    """The optional HorizontalPodAutoscaler (see `kubernetes.autoscaling.*`)."""
