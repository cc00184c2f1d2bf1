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
with the real client. The state file (DOCKER_DOUBLE_STATE) holds the daemon's address and the
containers: {"daemon": "unix:///var/run/docker.sock", "containers": {name: {"id", "running", "env"}}};
a "container" is a process on this machine started with the container's environment only.
"""

import json
import os
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
    if not argv or argv[0] != "exec":
        return fail(f"test double: only `docker exec` is implemented, not {argv[:1]}")
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
    done = subprocess.run(command, env=container["env"], stdin=None if interactive else subprocess.DEVNULL)
    return done.returncode


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
