#!/usr/bin/env python3
"""Test double for the `ollama` command-line client on a GPU host (Ollama cannot be installed here).

Installed as an executable named `ollama` on the remote PATH. It keeps the host's models in a JSON
state file (OLLAMA_DOUBLE_STATE) and mimics the real client's output and exit codes for
`ollama list`, `ollama pull <tag>` and `ollama rm <tag>` (checked against ollama 0.12):

    $ ollama list
    NAME           ID              SIZE      MODIFIED
    llama3.1:8b    46e0c10c039e    4.9 GB    2 weeks ago

Failure modes the tests switch on in the state file ("fail"): "down" (server not running),
"transient" (the next N pulls fail with a network error), "disk-full", "hang" (pull never ends).
A tag missing from the state's "registry" fails like an unknown tag does.
The client reaches its server where OLLAMA_HOST says, resolved as Ollama's envconfig.Host does (a
scheme, host and port each optional: default http, 127.0.0.1, 11434); a server listening elsewhere (the
state's "listen", default 127.0.0.1:11434) is not reached, as with the real client.
"""

import json
import os
import sys
import time

STATE = os.environ.get("OLLAMA_DOUBLE_STATE", "")


def load():
    with open(STATE) as handle:
        return json.load(handle)


def save(state):
    tmp = STATE + ".tmp"
    with open(tmp, "w") as handle:
        json.dump(state, handle)
    os.replace(tmp, STATE)


def full(tag):
    return tag if ":" in tag else tag + ":latest"


def server_address(value):
    """host:port the client connects to, from OLLAMA_HOST (Ollama's envconfig.Host, simplified to IPv4
    and names)."""
    value = (value or "").strip().strip("\"'")
    for scheme in ("http://", "https://"):
        if value.startswith(scheme):
            value = value[len(scheme):]
    value = value.split("/", 1)[0]
    host, _, port = value.rpartition(":") if ":" in value else (value, "", "")
    host = host or "127.0.0.1"
    if host == "0.0.0.0":  # a listen-everywhere address, dialled on this host
        host = "127.0.0.1"
    return f"{host}:{port or '11434'}"


def err(message, code=1):
    print(f"Error: {message}", file=sys.stderr)
    sys.exit(code)


def main(argv):
    if not STATE or not os.path.exists(STATE):
        err("test double: OLLAMA_DOUBLE_STATE is not set to a state file")
    state = load()
    state.setdefault("calls", []).append(argv)
    save(state)
    fail = state.get("fail") or {}
    if fail.get("mode") == "down" or server_address(os.environ.get("OLLAMA_HOST")) != state.get("listen", "127.0.0.1:11434"):
        err("could not connect to ollama server, run 'ollama serve' to start it")
    if not argv:
        print("Usage:\n  ollama [flags]\n  ollama [command]")
        return 0
    command, args = argv[0], argv[1:]
    if command == "list":
        print(f"{'NAME':<24}{'ID':<16}{'SIZE':<10}MODIFIED")
        for name, info in state["models"].items():
            print(f"{name:<24}{info['id']:<16}{info['size']:<10}2 weeks ago")
        return 0
    if command == "pull":
        tag = full(args[0])
        print("pulling manifest", file=sys.stderr)
        if fail.get("mode") == "hang":
            state = load()
            state.setdefault("hanging", []).append({"pid": os.getpid(), "since": time.time()})
            save(state)
            time.sleep(3600)
        if fail.get("mode") == "transient" and fail.get("remaining", 0) > 0:
            state = load()
            state["fail"]["remaining"] -= 1
            save(state)
            err('pull model manifest: Get "https://registry.ollama.ai/v2/library/x/manifests/y": '
                "dial tcp: lookup registry.ollama.ai: Temporary failure in name resolution")
        if tag not in state["registry"]:
            err("pull model manifest: file does not exist")
        if fail.get("mode") == "disk-full":
            print("pulling 8eeb52dfb3bb...  12% ▕██                ▏ 575 MB/4.9 GB", file=sys.stderr)
            err("write /usr/share/ollama/.ollama/models/blobs/sha256-8eeb52dfb3bb-partial: no space left on device")
        info = state["registry"][tag]
        print(f"pulling {info['id']}... 100% ▕████████████████▏ {info['size']}", file=sys.stderr)
        print("verifying sha256 digest\nwriting manifest\nsuccess", file=sys.stderr)
        state = load()
        state["models"][tag] = dict(info)
        state["pulls"] = state.get("pulls", 0) + 1
        save(state)
        return 0
    if command == "rm":
        tag = full(args[0])
        state = load()
        if tag not in state["models"]:
            err(f"model '{args[0]}' not found")
        del state["models"][tag]
        save(state)
        print(f"deleted '{args[0]}'")
        return 0
    err(f'unknown command "{command}" for "ollama"')


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
