"""TEST INFRASTRUCTURE ONLY: a Kubernetes stack's pod templates run as containers on the real Docker engine.

No Kubernetes API server or kubelet can run here (docs/testing.md). This does, for one pod template at a
time, what a kubelet would ask of its container runtime, with the Docker API: the image (a stand-in,
tests/engine/images.py), `command` as the entrypoint and `args` as the command, `workingDir`, the
environment with `secretKeyRef`s resolved from the Secrets the stack declares, the pod's and container's
securityContext (runAsUser/runAsGroup as the user, fsGroup as a supplementary group, readOnlyRootFilesystem,
capabilities drop/add, allowPrivilegeEscalation false as no-new-privileges, the runtime's default seccomp
profile), requests/limits as CPU and memory limits, the readiness probe as the healthcheck, and volumes:
Secret and ConfigMap items as files (mode `defaultMode`, group fsGroup, as the kubelet writes them; subPath
as one file), emptyDir as tmpfs, a claim as a named volume whose root is group fsGroup, setgid, 2775 (what
the kubelet's fsGroup handling leaves). Each Service that selects the pod becomes a network alias under its
short and its full cluster name, as cluster DNS answers them.

Differs from a cluster: one container per pod, no pod network namespace shared with sidecars (none are
declared), no admission (Pod Security, NetworkPolicies are not enforced), probes other than readiness are not
run, lifecycle hooks are not called, a pod is a container the test starts and removes. Anything in a pod
template this does not apply raises NotApplied, so nothing declared is silently dropped.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Callable, Optional

from deploy import NotApplied

APPLIED_CONTAINER = {"name", "image", "command", "args", "workingDir", "env", "ports", "resources",
                     "securityContext", "volumeMounts", "readinessProbe", "livenessProbe", "startupProbe", "lifecycle"}
APPLIED_POD = {"containers", "securityContext", "volumes", "automountServiceAccountToken", "terminationGracePeriodSeconds",
               "nodeSelector", "topologySpreadConstraints", "tolerations", "restartPolicy"}


def _cpus(value: str) -> float:
    return float(value[:-1]) / 1000 if value.endswith("m") else float(value)


def _memory_bytes(value: str) -> int:
    units = {"Ki": 1024, "Mi": 1024 ** 2, "Gi": 1024 ** 3}
    for unit, factor in units.items():
        if value.endswith(unit):
            return int(value[:-2]) * factor
    return int(value)


class PodRunner:
    """Runs pod templates of one stack on a Docker network of the test's, and removes all it made."""

    def __init__(self, client, manifests: list[dict[str, Any]], image_for: Callable[[str], str], workdir: Path,
                 network: str, cluster_domain: str = "cluster.local"):
        self.client, self.api = client, client.api
        self.manifests, self.image_for, self.workdir = manifests, image_for, workdir
        self.cluster_domain = cluster_domain
        self.network = client.networks.create(network, driver="bridge")
        self.containers: list[Any] = []
        self.volumes: list[Any] = []
        self.secrets = {m["metadata"]["name"]: m.get("stringData", {}) for m in manifests if m["kind"] == "Secret"}
        self.config_maps = {m["metadata"]["name"]: m.get("data", {}) for m in manifests if m["kind"] == "ConfigMap"}

    def workload(self, kind: str, name: str) -> dict[str, Any]:
        return next(m for m in self.manifests if m["kind"] == kind and m["metadata"]["name"] == name)

    @staticmethod
    def template(workload: dict[str, Any]) -> dict[str, Any]:
        spec = workload["spec"]
        return spec.get("jobTemplate", {}).get("spec", spec)["template"]

    def _aliases(self, labels: dict[str, str], namespace: str) -> list[str]:
        aliases = []
        for service in (m for m in self.manifests if m["kind"] == "Service"):
            selector = service["spec"].get("selector") or {}
            if selector and selector.items() <= labels.items():
                name = service["metadata"]["name"]
                aliases += [name, f"{name}.{namespace}.svc", f"{name}.{namespace}.svc.{self.cluster_domain}"]
        return aliases

    def _env(self, container: dict[str, Any]) -> list[str]:
        out = []
        for item in container.get("env") or []:
            if "value" in item:
                out.append(f"{item['name']}={item['value']}")
                continue
            ref = (item.get("valueFrom") or {}).get("secretKeyRef")
            if ref is None or set(item["valueFrom"]) != {"secretKeyRef"}:
                raise NotApplied(f"env {item['name']}: {item.get('valueFrom')}")
            secret = self.secrets[ref["name"]]
            if ref["key"] not in secret and ref.get("optional"):
                continue   # an optional key the Secret lacks: the kubelet leaves the variable unset
            out.append(f"{item['name']}={secret[ref['key']]}")
        return out

    def _files(self, volume: dict[str, Any], fs_group: Optional[int]) -> Path:
        """A Secret's or ConfigMap's items as files in a host directory, as the kubelet projects them."""
        if "secret" in volume:
            source, data, mode = volume["secret"], self.secrets[volume["secret"]["secretName"]], 0o644
        else:
            source, data, mode = volume["configMap"], self.config_maps[volume["configMap"]["name"]], 0o644
        mode = source.get("defaultMode", mode)
        items = source.get("items") or [{"key": key, "path": key} for key in data]
        directory = self.workdir / f"{volume['name']}-{len(self.containers)}"
        directory.mkdir(parents=True)
        os.chmod(directory, 0o755)
        for item in items:
            path = directory / item["path"]
            path.write_text(data[item["key"]])
            os.chown(path, 0, fs_group if fs_group is not None else 0)
            os.chmod(path, mode)
        return directory

    def _claim(self, name: str, image: str, fs_group: Optional[int]):
        volume = self.client.volumes.create(name=f"{self.network.name}-{name}")
        self.volumes.append(volume)
        if fs_group is not None:  # the kubelet's fsGroup: root-owned, group fsGroup, setgid, group-writable
            self.client.containers.run(image, entrypoint=["/bin/sh", "-c", f"chgrp {fs_group} /v && chmod 2775 /v"],
                                       user="0", volumes={volume.name: {"bind": "/v", "mode": "rw"}}, remove=True)
        return volume

    def start(self, workload: dict[str, Any], *, publish: Optional[dict[int, int]] = None,
              claims: Optional[dict[str, Any]] = None, name_suffix: str = "0") -> Any:
        """Start the workload's pod (its one container); `publish` maps a container port to a loopback port."""
        from docker.types import Mount

        template = self.template(workload)
        pod, labels = template["spec"], template["metadata"]["labels"]
        namespace = workload["metadata"]["namespace"]
        if set(pod) - APPLIED_POD:
            raise NotApplied(f"pod fields {sorted(set(pod) - APPLIED_POD)}")
        (container,) = pod["containers"]
        if set(container) - APPLIED_CONTAINER:
            raise NotApplied(f"container fields {sorted(set(container) - APPLIED_CONTAINER)}")
        image = self.image_for(container["image"])
        pod_context, context = pod.get("securityContext") or {}, container.get("securityContext") or {}
        user, group = context.get("runAsUser", pod_context.get("runAsUser")), context.get("runAsGroup", pod_context.get("runAsGroup"))
        fs_group = pod_context.get("fsGroup")
        if (pod_context.get("seccompProfile") or {}).get("type", "RuntimeDefault") != "RuntimeDefault":
            raise NotApplied("a seccomp profile other than RuntimeDefault")
        volumes = {v["name"]: v for v in pod.get("volumes") or []}
        claim_volumes = dict(claims or {})
        for template_claim in workload["spec"].get("volumeClaimTemplates", []):
            claim_volumes[template_claim["metadata"]["name"]] = self._claim(template_claim["metadata"]["name"], image, fs_group)
        mounts, tmpfs = [], {}
        for mount in container.get("volumeMounts") or []:
            read_only = bool(mount.get("readOnly"))
            if mount["name"] in claim_volumes:
                mounts.append(Mount(mount["mountPath"], claim_volumes[mount["name"]].name, type="volume", read_only=read_only))
                continue
            volume = volumes[mount["name"]]
            if "emptyDir" in volume:
                size = volume["emptyDir"].get("sizeLimit", "64Mi")
                tmpfs[mount["mountPath"]] = f"rw,nosuid,nodev,mode=1777,size={_memory_bytes(size)}"
            elif "secret" in volume or "configMap" in volume:
                directory = self._files(volume, fs_group)
                source = directory / mount["subPath"] if mount.get("subPath") else directory
                mounts.append(Mount(mount["mountPath"], str(source), type="bind", read_only=True))
            elif "persistentVolumeClaim" in volume:
                claim = claim_volumes[volume["persistentVolumeClaim"]["claimName"]]
                mounts.append(Mount(mount["mountPath"], claim.name, type="volume", read_only=read_only))
            else:
                raise NotApplied(f"volume {volume}")
        capabilities = context.get("capabilities") or {}
        limits = (container.get("resources") or {}).get("limits") or {}
        ports = {int(p["containerPort"]): ("127.0.0.1", host) for p in container.get("ports") or []
                 for port, host in (publish or {}).items() if int(p["containerPort"]) == port}
        probe = container.get("readinessProbe")
        healthcheck = None
        if probe:
            if "exec" in probe:
                test = ["CMD", *probe["exec"]["command"]]
            elif "httpGet" in probe:
                port = probe["httpGet"]["port"]
                if isinstance(port, str):
                    port = next(int(p["containerPort"]) for p in container["ports"] if p["name"] == port)
                test = ["CMD-SHELL", f"wget -q -O /dev/null http://127.0.0.1:{port}{probe['httpGet']['path']} || "
                        f"python3 -c \"import urllib.request; urllib.request.urlopen('http://127.0.0.1:{port}"
                        f"{probe['httpGet']['path']}', timeout=4)\""]
            else:
                raise NotApplied(f"probe {probe}")
            healthcheck = {"test": test, "interval": int(probe.get("periodSeconds", 10)) * 10 ** 9,
                           "timeout": int(probe.get("timeoutSeconds", 1)) * 10 ** 9,
                           "retries": int(probe.get("failureThreshold", 3))}
        cpus = min(_cpus(limits["cpu"]), float(os.cpu_count() or 1)) if "cpu" in limits else None
        host_config = self.api.create_host_config(
            read_only=bool(context.get("readOnlyRootFilesystem")),
            cap_drop=capabilities.get("drop") or None, cap_add=capabilities.get("add") or None,
            security_opt=["no-new-privileges:true"] if context.get("allowPrivilegeEscalation") is False else None,
            privileged=bool(context.get("privileged")), group_add=[str(fs_group)] if fs_group is not None else None,
            mounts=mounts or None, tmpfs=tmpfs or None, port_bindings=ports or None,
            mem_limit=_memory_bytes(limits["memory"]) if "memory" in limits else None,
            nano_cpus=int(cpus * 1e9) if cpus else None, network_mode=self.network.name)
        name = f"{workload['metadata']['name']}-{name_suffix}"
        networking = self.api.create_networking_config({self.network.name: self.api.create_endpoint_config(
            aliases=self._aliases(labels, namespace) + [name])})
        created = self.api.create_container(
            image, name=name, entrypoint=container.get("command"), command=container.get("args"),
            working_dir=container.get("workingDir"), environment=self._env(container),
            user=f"{user}:{group if group is not None else user}" if user is not None else None,
            healthcheck=healthcheck, ports=list(ports) or None, host_config=host_config, networking_config=networking,
            labels={"litellm-gateway-test.pod": name})
        handle = self.client.containers.get(created["Id"])
        self.containers.append(handle)
        handle.start()
        return handle

    def remove_all(self) -> list[str]:
        failed = []
        for container in reversed(self.containers):
            try:
                container.remove(force=True, v=True)
            except Exception as error:  # noqa: BLE001
                failed.append(f"container {container.name}: {error}")
        for volume in self.volumes:
            try:
                volume.remove(force=True)
            except Exception as error:  # noqa: BLE001
                failed.append(f"volume {volume.name}: {error}")
        try:
            self.network.remove()
        except Exception as error:  # noqa: BLE001
            failed.append(f"network {self.network.name}: {error}")
        return failed

