"""`containers`: log rotation and resource limits of every container."""

from __future__ import annotations

from typing import Optional

from pydantic import Field

from ..types import MAX_CPUS, MAX_MEMORY_MB
from .base import Section


class Limits(Section):
    memory_mb: int = Field(ge=16, le=MAX_MEMORY_MB)
    """Memory limit, MB."""
    cpus: float = Field(gt=0, le=MAX_CPUS)
    """CPU limit (fractions allowed); at most the Docker host's CPU count, or Docker refuses the container ("Range of CPUs is from 0.01 to N")."""


class ContainerLimits(Section):
    """Memory and CPU limits per container (the LiteLLM replicas: gateway.memoryMb and gateway.cpus)."""

    postgres: Limits = Limits(memory_mb=2048, cpus=2)
    """Postgres."""
    redis: Optional[Limits] = None
    """Redis. Unset: `redis.maxMemoryMb` plus a quarter (at least 64 MB) for buffers and connections, 1 CPU."""
    prometheus: Limits = Limits(memory_mb=2048, cpus=1)
    """Prometheus."""
    grafana: Limits = Limits(memory_mb=512, cpus=1)
    """Grafana."""
    redis_exporter: Limits = Limits(memory_mb=128, cpus=0.25)
    """The Redis exporter."""
    postgres_exporter: Limits = Limits(memory_mb=128, cpus=0.25)
    """The Postgres exporter."""
    backup: Limits = Limits(memory_mb=1024, cpus=1)
    """The backup scheduler."""
    vault_dev: Limits = Limits(memory_mb=256, cpus=0.5)
    """The dev-mode Vault (dev stacks)."""
    ollama_dev: Limits = Limits(memory_mb=8192, cpus=4)
    """A dev stack's local Ollama container."""
    loadbalancer: Limits = Limits(memory_mb=256, cpus=1)
    """The HAProxy load balancer."""


class ContainersSettings(Section):
    log_max_size_mb: int = Field(default=20, ge=1, le=10240)
    """Docker json-file log size per container before it rotates, MB."""
    log_max_files: int = Field(default=5, ge=1, le=100)
    """Rotated log files kept per container."""
    limits: ContainerLimits = ContainerLimits()
    """`{memoryMb, cpus}` per container role (the LiteLLM replicas: `gateway.memoryMb` and `gateway.cpus`)."""
