"""Test double for the Pulumi CLI (it cannot be installed here): the few commands the operator
scripts run, with the CLI's arguments and behaviour, recording each call.

    pulumi config --stack S --json               the stack's config as JSON (secrets shown as "[secret]")
    pulumi config set --secret --stack S KEY     the value from stdin, as `pulumi config set` takes a pipe
    pulumi stack export --stack S --file F       a version-3 deployment document

State (config per stack, and every call with its arguments, working directory, PULUMI_BACKEND_URL
and whether a value came on stdin) lives in the JSON file named by PULUMI_DOUBLE_STATE.
`install(bin_dir, state_file)` writes an executable `pulumi` into bin_dir.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path


def install(bin_dir: Path, state_file: Path) -> Path:
    state_file.write_text(json.dumps({"config": {}, "calls": []}))
    executable = bin_dir / "pulumi"
    executable.write_text(f"#!/bin/sh\nPULUMI_DOUBLE_STATE='{state_file}' exec '{sys.executable}' '{__file__}' \"$@\"\n")
    executable.chmod(0o755)
    return executable


def _option(args: list[str], name: str) -> str | None:
    if name in args and args.index(name) + 1 < len(args):
        return args[args.index(name) + 1]
    return None


def main(args: list[str]) -> int:
    state_path = Path(os.environ["PULUMI_DOUBLE_STATE"])
    state = json.loads(state_path.read_text())
    call = {"args": args, "cwd": os.getcwd(), "backend": os.environ.get("PULUMI_BACKEND_URL")}
    state["calls"].append(call)
    stack = _option(args, "--stack")
    code = 0
    if stack is None:
        print("error: no stack selected; use `pulumi stack select` or --stack", file=sys.stderr)
        code = 255
    elif args[:1] == ["config"] and "set" not in args:
        shown = {f"litellm-gateway:{k}": ({"value": "[secret]", "secret": True} if v["secret"] else
                                          {"value": v["value"], "secret": False})
                 for k, v in state["config"].get(stack, {}).items()}
        print(json.dumps(shown))
    elif args[:2] == ["config", "set"]:
        positional = [a for i, a in enumerate(args[2:], 2) if not a.startswith("--") and args[i - 1] != "--stack"]
        key = positional[0]
        value = positional[1] if len(positional) > 1 else sys.stdin.read()
        call["value_on_stdin"] = len(positional) == 1
        state["config"].setdefault(stack, {})[key] = {"value": value, "secret": "--secret" in args}
    elif args[:2] == ["stack", "export"]:
        Path(_option(args, "--file")).write_text(json.dumps({"version": 3, "deployment": {"resources": []}}))
    else:
        print(f"error: the Pulumi CLI test double does not implement `pulumi {' '.join(args)}`", file=sys.stderr)
        code = 2
    state_path.write_text(json.dumps(state))
    return code


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
