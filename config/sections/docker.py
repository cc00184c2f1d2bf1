"""`docker`: the Docker engine the containers run on."""

from __future__ import annotations

from ..types import DockerHost, Text
from .base import Section


class DockerSettings(Section):
    host: DockerHost = "unix:///var/run/docker.sock"
    """Docker engine the containers run on: `unix:///var/run/docker.sock` (local), `ssh://user@host` or
    `tcp://host:port`."""
    ssh_opts: tuple[Text, ...] = ()
    """Extra `ssh` options for an `ssh://` Docker host."""
