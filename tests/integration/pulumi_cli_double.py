"""Test double for the Pulumi CLI (it cannot be installed here): the commands the operator scripts
and the documentation run, with the CLI's arguments and behaviour, recording each call.

    pulumi version                               PULUMI_DOUBLE_VERSION (default v3.272.0)
    pulumi config --stack S --json               the stack's config as JSON (secrets shown as "[secret]")
    pulumi config set --secret --stack S KEY     the value from stdin, as `pulumi config set` takes a pipe
    pulumi stack export --stack S --file F       a version-3 deployment document; with --version N only on
                                                 Pulumi Cloud (https://): the file/S3/GCS/Azure (DIY) backends
                                                 refuse it with the CLI's message (pkg/cmd/pulumi/stack/
                                                 stack_export.go: no SpecificDeploymentExporter)
    pulumi stack import --stack S --file F       refuses a file that is not {"version", "deployment": {...}}
                                                 (a DIY history checkpoint is {"version", "checkpoint"}); the
                                                 CLI's own message there is Go's JSON error, this one names it
    pulumi stack select S [--create]             remembered per backend, as the CLI's workspace does
    pulumi preview [--expect-no-changes]         exit 0; with PULUMI_DOUBLE_PREVIEW=changes and
                                                 --expect-no-changes the CLI's exit 7 and message, with
                                                 PULUMI_DOUBLE_PREVIEW=fails exit 1 (exit_codes.go's
                                                 ExitNoChanges / ExitCodeError)
    preview/up --policy-pack DIR                 with PULUMI_DOUBLE_POLICY_VIOLATION=<policy>, the CLI's
                                                 "Policy Violations" block for a mandatory policy and exit 1
                                                 (a mandatory violation fails the update; exit_codes.go has
                                                 not wired ExitPolicyViolation yet, so it is ExitCodeError);
                                                 without --policy-pack no policy runs, as in the CLI
    secrets                                      a command that opens the stack's secrets (preview, up,
                                                 refresh, destroy, import, stack export --show-secrets,
                                                 config set --secret, and config --show-secrets when the
                                                 config holds a secret) on a self-managed backend fails
                                                 with exit 1 and the CLI's message
                                                 unless PULUMI_CONFIG_PASSPHRASE is set (even empty) or
                                                 PULUMI_CONFIG_PASSPHRASE_FILE names a readable file
                                                 (pkg/secrets/passphrase/manager.go, non-interactive)
    install, up, refresh, destroy, stack output/ls/history, state, cancel, config get/rm:
                                                 recorded only

Which backend a command reaches is resolved as the CLI does (pkg/workspace GetCurrentCloudURL): the
PULUMI_BACKEND_URL environment variable, else the `backend.url` of the nearest Pulumi.yaml from the
working directory (or --cwd/-C) upwards, else ~/.pulumi/credentials.json's "current"; a file:// URL
is made absolute against the working directory (pkg/backend/diy massageBlobPath). With none, the
command fails as the non-interactive CLI does.

State (config per stack, and every call with its arguments, working directory, resolved backend and
its source, and whether a value came on stdin) lives in the JSON file named by PULUMI_DOUBLE_STATE.
`install(bin_dir, state_file)` writes an executable `pulumi` into bin_dir.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import yaml

RECORDED_ONLY = {("install",), ("preview",), ("up",), ("refresh",), ("destroy",), ("stack", "output"),
                 ("stack", "ls"), ("stack", "history"), ("stack", "init"), ("state",),
                 ("cancel",), ("config", "get"), ("config", "rm"), ("import",)}


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


def resolve_backend(cwd: Path) -> tuple[str | None, str]:
    """(backend URL, where it came from), as the CLI resolves it."""
    url, source = os.environ.get("PULUMI_BACKEND_URL") or None, "env"
    if url is None:
        for directory in (cwd, *cwd.parents):
            project = directory / "Pulumi.yaml"
            if project.is_file():
                url = ((yaml.safe_load(project.read_text()) or {}).get("backend") or {}).get("url")
                source = "project"
                break
    if url is None:
        credentials = Path(os.path.expanduser("~/.pulumi/credentials.json"))
        if credentials.is_file():
            url, source = json.loads(credentials.read_text()).get("current"), "credentials"
    if url is None:
        return None, "none"
    if url.startswith("file://"):
        path = url[len("file://"):].split("?", 1)[0]
        if path.startswith("~"):
            path = os.path.expanduser(path)
        url = "file://" + os.path.abspath(os.path.join(cwd, path))
    return url, source


SECRETS_COMMANDS = {("preview",), ("up",), ("refresh",), ("destroy",), ("stack", "import")}


def opens_secrets(args: list[str], config_has_secret: bool) -> bool:
    """Whether the CLI creates the stack's secrets manager for this command: the engine's commands and
    import (a deployment's secrets are decrypted), `stack export --show-secrets`, `config set --secret`,
    and listing config with --show-secrets only when the config holds a secret value
    (pkg/cmd/pulumi/config/config.go: `cfg.HasSecureValue() && showSecrets`, else a blinding decrypter)."""
    if args[:2] == ["config", "set"]:
        return "--secret" in args
    if args[:1] == ["config"] and (len(args) == 1 or args[1].startswith("-")):
        return "--show-secrets" in args and config_has_secret
    if args[:2] == ["stack", "export"]:
        return "--show-secrets" in args
    return tuple(args[:1]) in SECRETS_COMMANDS or tuple(args[:2]) in SECRETS_COMMANDS


def passphrase_problem(args: list[str], backend: str, config_has_secret: bool = False) -> str | None:
    """The passphrase secrets manager's error for a command that needs it, or None."""
    if backend.startswith("https://"):
        return None  # Pulumi Cloud's own secrets manager
    if not opens_secrets(args, config_has_secret) or "PULUMI_CONFIG_PASSPHRASE" in os.environ:
        return None
    phrase_file = os.environ.get("PULUMI_CONFIG_PASSPHRASE_FILE", "")
    if phrase_file:
        try:
            Path(phrase_file).resolve().read_text()
        except OSError as error:
            return f"getting secrets manager: unable to read PULUMI_CONFIG_PASSPHRASE_FILE: {error}"
        return None
    return ("getting secrets manager: passphrase must be set with PULUMI_CONFIG_PASSPHRASE or "
            "PULUMI_CONFIG_PASSPHRASE_FILE environment variables")


def main(args: list[str]) -> int:
    state_path = Path(os.environ["PULUMI_DOUBLE_STATE"])
    state = json.loads(state_path.read_text())
    cwd = Path(_option(args, "--cwd") or _option(args, "-C") or os.getcwd()).resolve()
    backend, source = resolve_backend(cwd)
    call = {"args": args, "cwd": os.getcwd(), "backend": backend, "backend_source": source}
    state["calls"].append(call)
    if args[:1] == ["version"]:
        print(os.environ.get("PULUMI_DOUBLE_VERSION", "v3.272.0"))
        state_path.write_text(json.dumps(state))
        return 0
    if backend is None:
        state_path.write_text(json.dumps(state))
        print("error: PULUMI_ACCESS_TOKEN must be set for login during non-interactive CLI sessions", file=sys.stderr)
        return 255
    selected = state.setdefault("selected", {})
    stack = _option(args, "--stack") or _option(args, "-s") or os.environ.get("PULUMI_STACK") or selected.get(backend)
    code = 0
    if args[:2] == ["stack", "select"]:
        positional = [a for a in args[2:] if not a.startswith("-")]
        selected[backend] = positional[0] if positional else stack
    elif args[:1] == ["install"] or args[:2] == ["stack", "ls"]:
        pass
    elif stack is None:
        print("error: no stack selected; use `pulumi stack select` or --stack", file=sys.stderr)
        code = 255
    elif problem := passphrase_problem(args, backend, any(v["secret"] for v in state["config"].get(stack, {}).values())):
        print(f"error: {problem}", file=sys.stderr)
        code = 1
    elif (args[:1] in (["preview"], ["up"]) and "--policy-pack" in args
          and os.environ.get("PULUMI_DOUBLE_POLICY_VIOLATION")):
        pack = Path(_option(args, "--policy-pack")).name
        print("Policy Violations:\n"
              f"    [mandatory]  {pack} v0.0.1  {os.environ['PULUMI_DOUBLE_POLICY_VIOLATION']}"
              f" (urn:pulumi:{stack}::litellm-gateway::x)", file=sys.stdout)
        print("error: preview failed" if args[0] == "preview" else "error: update failed", file=sys.stderr)
        code = 1
    elif args[:1] == ["config"] and (len(args) == 1 or args[1].startswith("-")):
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
    elif args[:2] == ["stack", "export"] and _option(args, "--version") and not backend.startswith("https://"):
        import socket

        print(f"error: the current backend ({socket.gethostname() or 'diy'}) does not provide the ability to "
              "export previous deployments", file=sys.stderr)
        code = 1  # cmdutil.ExitCodeError: an unclassified error
    elif args[:2] == ["stack", "import"]:
        try:
            document = json.loads(Path(_option(args, "--file")).read_text()) if _option(args, "--file") else None
        except (OSError, ValueError) as error:
            document, reason = None, str(error)
        else:
            reason = "not a deployment: {\"version\", \"deployment\": {...}} expected"
        if not (isinstance(document, dict) and isinstance(document.get("deployment"), dict)
                and isinstance(document.get("version"), int)):
            print(f"error: could not read deployment: {reason}", file=sys.stderr)
            code = 1
        else:
            call["imported"] = document
    elif args[:1] == ["preview"] and os.environ.get("PULUMI_DOUBLE_PREVIEW") == "fails":
        print("error: preview failed", file=sys.stderr)  # a program or provider error
        code = 1
    elif args[:1] == ["preview"] and "--expect-no-changes" in args and os.environ.get("PULUMI_DOUBLE_PREVIEW") == "changes":
        # pkg/cmd/pulumi/operations/preview.go: backenderr.NoChangesExpectedError, exit_codes.go: ExitNoChanges
        print("error: no changes were expected but changes were proposed", file=sys.stderr)
        code = 7
    elif args[:2] == ["stack", "export"]:
        document = json.dumps({"version": 3, "deployment": {"resources": []}})
        if _option(args, "--file"):
            Path(_option(args, "--file")).write_text(document)
        else:
            print(document)
    elif tuple(args[:2]) in RECORDED_ONLY or tuple(args[:1]) in RECORDED_ONLY:
        pass
    else:
        print(f"error: the Pulumi CLI test double does not implement `pulumi {' '.join(args)}`", file=sys.stderr)
        code = 2
    state_path.write_text(json.dumps(state))
    return code


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
