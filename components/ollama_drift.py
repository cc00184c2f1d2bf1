"""A resource whose read checks a GPU host again: what models Ollama really has there.

`pulumi_command` cannot do this (remote.Command has no Read, pulumi-command#432, and refresh
empties its stdout, pulumi-command#1377). This dynamic provider runs the host script's `list`
action over SSH (paramiko) or `docker exec` (dev) on create, read and update:

- `pulumi refresh` stores what the host has now; a removed or replaced model shows up as a change
  of `models`, `missing`, `mismatched` and `status`;
- `pulumi preview --refresh --expect-no-changes` then also plans an update (diff reports drift),
  so the scheduled check fails;
- `pulumi up` after drift runs the update, which pulls the missing or replaced models again with
  the same script and verifies them;
- with `modelPulls.prune`, an update also removes (`ollama rm`) the tags that left the host's list
  since the last `up`: a model removed from the config, or the old tag of a model given a new one.
  Nothing else prunes: not a replaced pull, not a renamed host, not a removed host or a destroyed
  stack (their models stay on the host).

The provider is serialized into the state (Pulumi pickles it by value), so its methods import
what they need themselves and call nothing else from this repository.
"""

from __future__ import annotations

import contextlib
from typing import Any, Optional

import pulumi
import pulumi.dynamic as dynamic
from pulumi.dynamic import dynamic as dynamic_internals

from config.values import full_ollama_tag

_original_serialize_provider = dynamic_internals.serialize_provider


class OllamaHostModelsProvider(dynamic.ResourceProvider):
    """props: host, transport, script, expected {model: {tag, digest}}, read_timeout, pull_timeout, prune."""

    @staticmethod
    def run(transport: dict, command: str, stdin: str, timeout: float) -> tuple[int, str, str]:
        """Run `command` on the host with `stdin`; (exit code, stdout, stderr). Raises on no connection,
        PermissionError when the host's SSH key is not the pinned one, TimeoutError after `timeout`."""
        import base64
        import io
        import os
        import shlex
        import subprocess
        import time

        if transport["kind"] == "docker":
            env = dict(os.environ)
            if transport.get("docker_host"):
                env["DOCKER_HOST"] = transport["docker_host"]
            done = subprocess.run(
                ["docker", "exec", "-i", transport["container"], *shlex.split(command)],
                input=stdin, capture_output=True, text=True, timeout=timeout, env=env,
            )
            return done.returncode, done.stdout, done.stderr

        import paramiko

        key_text = transport["private_key"]
        pkey = None
        for key_class in ("Ed25519Key", "ECDSAKey", "RSAKey"):
            if hasattr(paramiko, key_class):
                try:
                    pkey = getattr(paramiko, key_class).from_private_key(io.StringIO(key_text))
                    break
                except (paramiko.SSHException, ValueError):
                    continue
        if pkey is None:
            raise RuntimeError(f"host {transport['host']}: the SSH private key could not be read")
        client = paramiko.SSHClient()
        address, port = transport["address"], int(transport["port"])
        if transport.get("host_key"):
            key_type, key_b64 = transport["host_key"].split()[:2]
            known = paramiko.PKey.from_type_string(key_type, base64.b64decode(key_b64))
            client.get_host_keys().add(address if port == 22 else f"[{address}]:{port}", key_type, known)
            client.set_missing_host_key_policy(paramiko.RejectPolicy())
        elif transport.get("unpinned_host_key_waiver"):
            # gpuSsh.allowUnpinnedHostKeys says why this host's key is not checked.
            client.set_missing_host_key_policy(paramiko.AutoAddPolicy())
        else:
            raise PermissionError(f"host {transport['host']}: no pinned SSH host key (gpuHosts[].ssh.hostKey) "
                                  "and no gpuSsh.allowUnpinnedHostKeys waiver; not connecting")
        deadline = time.monotonic() + timeout
        try:
            try:
                client.connect(address, port=port, username=transport["user"], pkey=pkey, timeout=15,
                               banner_timeout=15, auth_timeout=15, allow_agent=False, look_for_keys=False)
            except paramiko.BadHostKeyException as error:
                raise PermissionError(
                    f"host {transport['host']}: SSH host key mismatch at {address}:{port}: the host offered "
                    f"{error.key.get_name()} {error.key.get_base64()}, the stack pins {transport['host_key']}. "
                    "If the host was reinstalled, check the new key on its console and update "
                    "gpuHosts[].ssh.hostKey; otherwise something is intercepting the connection") from None
            except paramiko.SSHException as error:
                if "known_hosts" in str(error):  # RejectPolicy: the host offered a key of another type
                    raise PermissionError(f"host {transport['host']}: SSH host key not accepted: {error} "
                                          f"(pinned: {transport['host_key']})") from None
                raise
            channel_in, channel_out, channel_err = client.exec_command(command, timeout=timeout)
            channel_in.write(stdin)
            channel_in.channel.shutdown_write()
            out = channel_out.read().decode(errors="replace")
            err = channel_err.read().decode(errors="replace")
            # The command may close its output and keep running: bound the wait for its exit too.
            if not channel_out.channel.status_event.wait(max(0.0, deadline - time.monotonic())):
                raise TimeoutError(f"host {transport['host']}: `{command}` did not exit within {timeout:g} s")
            return channel_out.channel.recv_exit_status(), out, err
        finally:
            client.close()

    @staticmethod
    def parse_models(text: str) -> dict[str, dict[str, str]]:
        """`OLLAMA_MODEL key=value ...` lines -> {tag: {digest, size, status}}."""
        models = {}
        for line in text.splitlines():
            if not line.startswith("OLLAMA_MODEL "):
                continue
            fields = dict(part.split("=", 1) for part in line.split()[1:] if "=" in part)
            models[fields["model"]] = {k: fields.get(k, "") for k in ("digest", "size", "status")}
        return models

    # The one tag normaliser (config.values), which the settings' checks use too; pickled with the
    # class (it reads no globals), so the dynamic-provider host needs nothing from this repository.
    full_tag = staticmethod(full_ollama_tag)

    def observe(self, props: dict) -> dict[str, Any]:
        """What the host has now, compared with what it should have."""
        try:
            code, out, err = self.run(props["transport"], "bash -s -- list", props["script"],
                                      float(props.get("read_timeout", 60)))
        except PermissionError:
            raise  # a host key that is not the pinned one is an error, never drift to be "healed"
        except Exception as error:  # noqa: BLE001 - any connection failure is reported as state
            return {"models": {}, "missing": sorted(props["expected"]), "mismatched": [],
                    "status": f"unreachable: {type(error).__name__}: {error}"}
        if code != 0:
            reason = (err.strip().splitlines() or [f"exit {code}"])[-1]
            return {"models": {}, "missing": sorted(props["expected"]), "mismatched": [],
                    "status": f"error: {reason}"}
        listed = {self.full_tag(tag): found for tag, found in self.parse_models(out).items()}
        models, missing, mismatched = {}, [], []
        for name, want in sorted(props["expected"].items()):
            found = listed.get(self.full_tag(want["tag"]))
            if found is None:
                missing.append(name)
                continue
            models[name] = {"tag": want["tag"], "digest": found["digest"], "size": found["size"]}
            pinned = (want.get("digest") or "").removeprefix("sha256:")
            if pinned and not (pinned.startswith(found["digest"]) or found["digest"].startswith(pinned)):
                mismatched.append(name)
        status = "in-sync" if not missing and not mismatched else "drift"
        return {"models": models, "missing": missing, "mismatched": mismatched, "status": status}

    def heal(self, props: dict) -> None:
        """Pull again every expected model the host lacks or has in another version."""
        import shlex

        state = self.observe(props)
        if state["status"].startswith(("unreachable", "error")):
            raise RuntimeError(f"host {props['host']}: {state['status']}")
        for name in state["missing"] + state["mismatched"]:
            want = props["expected"][name]
            command = "bash -s -- pull " + shlex.quote(want["tag"])
            if want.get("digest"):
                command += " " + shlex.quote(want["digest"])
            code, out, err = self.run(props["transport"], command, props["script"],
                                      float(props.get("pull_timeout", 3600)))
            if code != 0:
                raise RuntimeError((err.strip().splitlines() or [f"host {props['host']}: pull of {want['tag']} "
                                                                  f"failed with exit {code}"])[-1])

    def prune(self, olds: dict, news: dict) -> list[str]:
        """`ollama rm` each tag that was expected before and is not now; the tags removed."""
        import shlex

        wanted = {self.full_tag(w["tag"]) for w in news["expected"].values()}
        gone = sorted({self.full_tag(w["tag"]) for w in (olds.get("expected") or {}).values()} - wanted)
        for tag in gone:
            code, _, err = self.run(news["transport"], "bash -s -- prune " + shlex.quote(tag), news["script"],
                                    float(news.get("read_timeout", 60)))
            if code != 0:
                raise RuntimeError((err.strip().splitlines() or [f"host {news['host']}: prune of {tag} "
                                                                  f"failed with exit {code}"])[-1])
        return gone

    def create(self, props):
        observed = self.observe(props)
        if observed["status"] != "in-sync":
            raise RuntimeError(f"host {props['host']}: models not as expected after the pulls: {observed}")
        return dynamic.CreateResult(id_=f"ollama-models-{props['host']}", outs={**props, **observed})

    def read(self, id_, props):
        return dynamic.ReadResult(id_=id_, outs={**props, **self.observe(props)})

    def diff(self, id_, olds, news):
        inputs_changed = any(olds.get(k) != news.get(k)
                             for k in ("host", "transport", "script", "expected", "prune"))
        drifted = olds.get("status") != "in-sync"
        return dynamic.DiffResult(changes=inputs_changed or drifted, replaces=[], delete_before_replace=False)

    def update(self, id_, olds, news):
        self.heal(news)
        pruned = self.prune(olds, news) if news.get("prune") else []
        return dynamic.UpdateResult(outs={**news, **self.create(news).outs, "pruned": pruned})

    def delete(self, id_, props):
        return None  # a removed host or a destroyed stack leaves the models where they are


@contextlib.contextmanager
def pickled_by_value(cls: Optional[type] = None):
    """Let dill pickle the provider class itself rather than a reference to this module.

    Pulumi's dynamic-provider host unpickles the provider without this repository on its path
    (pulumi/pulumi#7453); dill pickles a class by value only when it lives in `__main__`.
    """
    cls = cls or OllamaHostModelsProvider
    original_serialize = dynamic_internals.serialize_provider
    members = [cls] + [getattr(m, "__func__", m) for m in vars(cls).values() if callable(getattr(m, "__func__", m))]
    originals = [(m, m.__module__) for m in members]
    for member in members:
        member.__module__ = "__main__"
    # Every host's reader carries the same provider: pickle it once (dill takes ~50 ms a time).
    dynamic_internals.serialize_provider = _serialize_once
    try:
        yield
    finally:
        dynamic_internals.serialize_provider = original_serialize
        for member, module in originals:
            member.__module__ = module


_serialized: dict[type, str] = {}


def _serialize_once(provider) -> str:
    if type(provider) not in _serialized:
        _serialized[type(provider)] = _original_serialize_provider(provider)
    return _serialized[type(provider)]


class OllamaHostModels(dynamic.Resource):
    """Models observed on one GPU host (read again on every refresh)."""

    models: pulumi.Output[dict]
    missing: pulumi.Output[list]
    mismatched: pulumi.Output[list]
    status: pulumi.Output[str]

    def __init__(self, name: str, host: str, transport: pulumi.Input[dict], script: str,
                 expected: dict[str, dict[str, Optional[str]]], pull_timeout: int, prune: bool = False,
                 opts: Optional[pulumi.ResourceOptions] = None):
        with pickled_by_value():
            self._declare(name, host, transport, script, expected, pull_timeout, prune, opts)

    def _declare(self, name, host, transport, script, expected, pull_timeout, prune, opts):
        super().__init__(
            OllamaHostModelsProvider(), name,
            {"host": host, "transport": transport, "script": script, "expected": expected,
             "read_timeout": 60, "pull_timeout": pull_timeout, "prune": prune, "pruned": None,
             "models": None, "missing": None, "mismatched": None, "status": None},
            pulumi.ResourceOptions.merge(opts, pulumi.ResourceOptions(additional_secret_outputs=["transport"])),
        )
