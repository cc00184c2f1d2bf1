"""The fleet's cross-references: every routed host exists and pulls what it serves, no two names
collide as resources, no tag is pulled twice on a host, and every SSH host can be reached safely."""

from __future__ import annotations

from ..stack import Parsed
from ..values import duplicates as _duplicates, endpoint_identity, full_ollama_tag, slug


def check_fleet(parsed: Parsed, problems) -> None:
    models, hosts = parsed.models, parsed.gpu_hosts
    if models is not None:
        if not models:
            problems.append(("models", "declare at least one model"))
        for i, model in enumerate(models):
            for dup in _duplicates(list(model.hosts)):
                problems.append((f"models[{i}].hosts", f"host '{dup}' is listed twice"))
        for dup in _duplicates([m.name for m in models]):
            problems.append(("models", f"model name '{dup}' is declared more than once"))
        # Resource names are built from a slug of the model name: two names, one slug, one resource.
        by_slug: dict[str, str] = {}
        for i, model in enumerate(models):
            first = by_slug.setdefault(slug(model.name), model.name)
            if first != model.name:
                problems.append((f"models[{i}].name", f"'{model.name}' and '{first}' differ only in case or "
                                 f"punctuation; both would be named '{slug(model.name)}' in the stack"))
    if hosts is not None:
        if not hosts:
            problems.append(("gpuHosts", "declare at least one GPU host"))
        for dup in _duplicates([h.name for h in hosts]):
            problems.append(("gpuHosts", f"host name '{dup}' is declared more than once"))
        for dup in _duplicates([endpoint_identity(h.address, h.ollama_port) for h in hosts]):
            problems.append(("gpuHosts", f"two hosts share the Ollama endpoint {dup}"))
    if models is None or hosts is None:
        return
    host_names = {h.name for h in hosts}
    model_names = {m.name for m in models}
    models_by_name = {m.name: m for m in models}
    for i, model in enumerate(models):
        for host_name in model.hosts:
            if host_name not in host_names:
                problems.append((f"models[{i}].hosts", f"unknown GPU host '{host_name}' (declared: {sorted(host_names)})"))
    pull_names: dict[str, tuple[str, str]] = {}
    for i, host in enumerate(hosts):
        for model_name in host.models or ():
            if model_name not in model_names:
                problems.append((f"gpuHosts[{i}].models", f"unknown model '{model_name}' (declared: {sorted(model_names)})"))
        if host.models is not None:
            for dup in _duplicates(list(host.models)):
                problems.append((f"gpuHosts[{i}].models", f"model '{dup}' is listed twice"))
            for model in models:
                if host.name in model.hosts and model.name not in host.models:
                    problems.append(
                        (f"gpuHosts[{i}].models",
                         f"model '{model.name}' is routed to '{host.name}' (models[].hosts) but the host does not pull it")
                    )
        pulled = host.models if host.models is not None else [m.name for m in models if host.name in m.hosts]
        # Pruning removes a tag when its model leaves the config: two models sharing a tag on one
        # host would delete weights the other still routes to. One model per tag and host.
        by_tag: dict[str, str] = {}
        for model_name in dict.fromkeys(pulled):
            model = models_by_name.get(model_name)
            if model is None:
                continue
            first = by_tag.setdefault(full_ollama_tag(model.ollama_tag), model.name)
            if first != model.name:
                problems.append((f"gpuHosts[{i}]", (
                    f"models '{first}' and '{model.name}' both pull {full_ollama_tag(model.ollama_tag)!r} on "
                    f"'{host.name}'; removing one would prune the weights the other serves. Declare the tag once "
                    "(use LiteLLM model aliases for a second name)")))
            pair = f"{host.name}-{slug(model.name)}"
            other = pull_names.setdefault(pair, (host.name, model.name))
            if other != (host.name, model.name):
                problems.append((f"gpuHosts[{i}]", (
                    f"host '{host.name}' with model '{model.name}' and host '{other[0]}' with model '{other[1]}' "
                    f"would both declare the pull resource '{pair}'; rename one of them")))


def check_fleet_access(parsed: Parsed, problems) -> None:
    hosts, ssh, pulls, supplied = parsed.gpu_hosts, parsed.gpu_ssh, parsed.model_pulls, parsed.supplied
    if pulls is not None and pulls.attempt_timeout_seconds > pulls.timeout_seconds:
        problems.append(("modelPulls.attemptTimeoutSeconds", "is longer than modelPulls.timeoutSeconds"))
    if hosts is None or ssh is None:
        return
    ssh_hosts = [h.name for h in hosts if h.local_container is None]
    from_config = "gpuSshPrivateKey" in supplied
    from_vault = ssh.private_key_vault is not None
    if ssh_hosts and not (from_config or from_vault):
        problems.append(("gpuSshPrivateKey", (
            f"required: GPU hosts {ssh_hosts} are reached over SSH to pull their models; set it with "
            "`pulumi config set --secret gpuSshPrivateKey < ~/.ssh/id_ed25519`, or set gpuSsh.privateKeyVault")))
    if from_config and from_vault:
        problems.append(("gpuSsh.privateKeyVault", "set both this and gpuSshPrivateKey; keep one source for the key"))
    if ssh.allow_unpinned_host_keys is None:
        for i, host in enumerate(hosts):
            if host.local_container is None and host.ssh.host_key is None:
                problems.append((f"gpuHosts[{i}].ssh.hostKey", (
                    f"required: pin the SSH host key of '{host.name}' (`ssh-keyscan -t ed25519 -p "
                    f"{host.ssh.port or ssh.port} {host.address}`, the part after the address), or set "
                    "gpuSsh.allowUnpinnedHostKeys to the reason the keys cannot be pinned")))
