"""`docker`: the Docker engine the containers run on."""

from __future__ import annotations

from typing import Optional

from ..types import DockerHost, Text, Waiver
from .base import Section


class DockerSettings(Section):
    host: DockerHost = "unix:///var/run/docker.sock"
    """Docker engine the containers run on: `unix:///var/run/docker.sock` (local), `ssh://user@host` or
    `tcp://host:port`."""
    allow_plain_tcp: Optional[Waiver] = None
    """The named waiver for a `tcp://` Docker host outside dev stacks (10-300 characters). Unset, they need
    `ssh://`: the Docker API on TCP carries every container's secrets, unauthenticated and in clear text."""
    ssh_opts: tuple[Text, ...] = ()
    """Extra `ssh` options for an `ssh://` Docker host."""
