#!/usr/bin/env python3
"""Test double for the `docker` command-line client (no Docker engine can run here).

Only what the dev stack and scripts/stack run: `docker info` (the daemon answers), and
`docker exec [-i|--interactive] CONTAINER COMMAND [ARG...]`, with the real client's messages and exit codes:

    $ docker exec -i gone true
    Error response from daemon: No such container: gone                    (exit 1)
    $ docker exec -i stopped true
    Error response from daemon: container 5c1e... is not running            (exit 1)
    $ DOCKER_HOST=unix:///elsewhere.sock docker exec -i c true
    Cannot connect to the Docker daemon at unix:///elsewhere.sock. Is the docker daemon running?  (exit 1)

Otherwise the command's own exit code. Its standard input reaches the command only with `-i`, as
with the real client. And `docker cp CONTAINER:PATH DEST` (a stopped container too, as with the real
client), with its messages:

    $ docker cp c:/backups/missing.dump .
    Error response from daemon: Could not find the file /backups/missing.dump in container c   (exit 1)

The state file (DOCKER_DOUBLE_STATE) holds the daemon's address and the containers:
{"daemon": "unix:///var/run/docker.sock", "containers": {name: {"id", "running", "env", "mounts"}}}.
A "container" is a process on this machine started with the container's environment only; what differs
from a real one: it has no file system of its own, so `mounts` ({container path: host directory}, as a
volume or bind mount gives it) is how its paths exist: an argument of `docker exec` under a mount's
container path, and the source of `docker cp`, are read in the host directory standing for it.
"""

import json
import os
import shutil
import subprocess
import sys

DEFAULT_HOST = "unix:///var/run/docker.sock"


def fail(message):
    print(message, file=sys.stderr)
    return 1


def main(argv):
    with open(os.environ["DOCKER_DOUBLE_STATE"]) as handle:
        state = json.load(handle)
    host = os.environ.get("DOCKER_HOST") or DEFAULT_HOST
    if host != state["daemon"]:
        return fail(f"Cannot connect to the Docker daemon at {host}. Is the docker daemon running?")
    if argv[:1] == ["info"]:
        print("Server Version: 28.2.2 (test double)")
        return 0
    if argv[:1] == ["cp"]:
        return copy_out(state, argv[1:])
    if not argv or argv[0] != "exec":
        return fail(f"test double: only `docker info`, `exec` and `cp` are implemented, not {argv[:1]}")
    args = argv[1:]
    interactive = False
    while args and args[0].startswith("-"):
        flag = args.pop(0)
        if flag not in ("-i", "--interactive"):
            return fail(f"test double: `docker exec {flag}` is not implemented")
        interactive = True
    if len(args) < 2:
        return fail('"docker exec" requires at least 2 arguments.')
    name, command = args[0], args[1:]
    container = state["containers"].get(name)
    if container is None:
        return fail(f"Error response from daemon: No such container: {name}")
    if not container["running"]:
        return fail(f"Error response from daemon: container {container['id']} is not running")
    mounts = container.get("mounts", {})
    command = [command[0], *(in_mounts(mounts, a) or a for a in command[1:])]
    done = subprocess.run(command, env=container["env"], stdin=None if interactive else subprocess.DEVNULL)
    return done.returncode


def in_mounts(mounts: dict, path: str):
    """The host path standing for a container path under one of its mounts, or None."""
    for target, source in mounts.items():
        if path == target or path.startswith(target.rstrip("/") + "/"):
            return source + path[len(target.rstrip("/")):]
    return None


def copy_out(state: dict, args: list[str]) -> int:
    if len(args) != 2 or ":" not in args[0]:
        return fail("test double: only `docker cp CONTAINER:SRC_PATH DEST_PATH` is implemented")
    name, path = args[0].split(":", 1)
    container = state["containers"].get(name)
    if container is None:
        return fail(f"Error response from daemon: No such container: {name}")
    source = in_mounts(container.get("mounts", {}), path)
    if source is None or not os.path.isfile(source):
        return fail(f"Error response from daemon: Could not find the file {path} in container {name}")
    destination = args[1]
    if os.path.isdir(destination):
        destination = os.path.join(destination, os.path.basename(path))
    shutil.copyfile(source, destination)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
