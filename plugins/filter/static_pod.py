# SPDX-License-Identifier: Apache-2.0
"""A control-plane component's static pod manifest, from the same command line as its systemd unit."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from ansible.errors import AnsibleFilterError


def static_pod(
    command: Sequence[str],
    name: str,
    image: str,
    host_paths: Sequence[Mapping[str, Any]] = (),
    run_as: Mapping[str, int] | None = None,
) -> dict[str, Any]:
    """The manifest of a static pod that runs ``command`` (the binary's path, then its flags).

    Every host path is mounted at the same path in the container, so that the flags read the
    files where the systemd unit's flags do. Items: ``path``, ``writable`` (default false), and
    ``type`` (a hostPath type, default ``Directory``: the roles make them first).
    """
    if not command:
        raise AnsibleFilterError(f"static_pod: the command of {name} is empty.")
    mounts, volumes = [], []
    for index, item in enumerate(host_paths):
        if "path" not in item:
            raise AnsibleFilterError(f"static_pod: host path {index} of {name} has no `path`.")
        volume = f"host-path-{index}"
        mounts.append(
            {"name": volume, "mountPath": item["path"], "readOnly": not item.get("writable", False)}
        )
        volumes.append(
            {"name": volume, "hostPath": {"path": item["path"], "type": item.get("type", "Directory")}}
        )
    container: dict[str, Any] = {
        "name": name,
        "image": image,
        # The image comes from the release's archive, imported before the manifest is written.
        "imagePullPolicy": "IfNotPresent",
        "command": list(command),
        "volumeMounts": mounts,
    }
    security: dict[str, Any] = {"seccompProfile": {"type": "RuntimeDefault"}}
    if run_as:
        security.update({"runAsUser": run_as["uid"], "runAsGroup": run_as["gid"], "runAsNonRoot": True})
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {
            "name": name,
            "namespace": "kube-system",
            "labels": {"component": name, "tier": "control-plane"},
        },
        "spec": {
            "hostNetwork": True,
            "priorityClassName": "system-node-critical",
            "securityContext": security,
            "containers": [container],
            "volumes": volumes,
        },
    }


class FilterModule:
    def filters(self) -> dict[str, Any]:
        return {"static_pod": static_pod}
