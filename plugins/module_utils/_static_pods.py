# SPDX-License-Identifier: Apache-2.0
"""Static pods running, and restarted after their files changed, as ``_services`` does for units.

The kubelet starts a static pod once its manifest is in its manifest directory, and replaces the
pod when the manifest changes; it does not notice a change in the files the pod reads
(certificates, configuration). So the rule is the systemd one, with the container's creation time
for the unit's start time: a container created before one of its files last changed is stopped,
and the kubelet, which keeps static pods running, starts it anew. The caller then waits for a
container created after the change, which has read every file as it is now.

The runtime is asked through ``crictl``, so this holds for every CRI runtime the kubelet uses.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from ansible_collections.scratch.kubernetes.plugins.module_utils._services import Report, Runner, ServiceError

# Static pods are in this namespace, whatever their manifest says.
_NAMESPACE_LABEL = "io.kubernetes.pod.namespace=kube-system"


@dataclass(frozen=True)
class Container:
    id: str
    created: float  # seconds since the epoch


def parse_containers(output: str, name: str) -> list[Container]:
    """The containers named ``name`` in ``crictl ps --output json`` output (crictl matches a pattern)."""
    try:
        listed = json.loads(output or "{}").get("containers") or []
    except ValueError as error:
        raise ServiceError(f"crictl ps printed something that is not JSON: {error}") from None
    return [
        Container(id=item["id"], created=int(item.get("createdAt", "0")) / 1e9)
        for item in listed
        if item.get("metadata", {}).get("name") == name
    ]


def _running(run: Runner, name: str) -> list[Container]:
    argv = [
        "crictl",
        "ps",
        "--state",
        "running",
        "--label",
        _NAMESPACE_LABEL,
        "--name",
        f"^{name}$",
        "--output",
        "json",
    ]
    rc, out, err = run(argv)
    if rc != 0:
        raise ServiceError(f"crictl ps failed ({rc}): {(err or out).strip()}")
    return parse_containers(out, name)


def _current(containers: Sequence[Container], changed_at: float | None) -> bool:
    return any(changed_at is None or container.created >= changed_at for container in containers)


def ensure_running(
    names: Sequence[str],
    run: Runner,
    *,
    check_mode: bool = False,
    files_changed_at: float | None = None,
    timeout: float = 300.0,
    stop_timeout: int = 90,
    clock: Callable[[], float] = time.monotonic,
    sleep: Callable[[float], None] = time.sleep,
) -> Report:
    """Every static pod in ``names`` has a running container created after ``files_changed_at``.

    ``started``: pods with no running container, waited for (the kubelet starts them).
    ``restarted``: pods whose running container predates the change; it is stopped gracefully
    (``stop_timeout`` seconds, as systemd's stop) and the new one waited for.
    """
    report = Report()
    containers = {name: _running(run, name) for name in names}
    report.started = [name for name in names if not containers[name]]
    report.restarted = [
        name for name in names if containers[name] and not _current(containers[name], files_changed_at)
    ]
    if check_mode:
        return report
    for name in report.restarted:
        for container in containers[name]:
            rc, out, err = run(["crictl", "stop", "--timeout", str(stop_timeout), container.id])
            # A container that exited meanwhile is not there to stop: the kubelet restarts it all the same.
            if rc != 0 and "not found" not in (err or out):
                raise ServiceError(
                    f"crictl stop {container.id} ({name}) failed ({rc}): {(err or out).strip()}"
                )
    waiting = set(report.started + report.restarted)
    deadline = clock() + timeout
    while waiting:
        waiting = {name for name in waiting if not _current(_running(run, name), files_changed_at)}
        if not waiting:
            break
        if clock() > deadline:
            raise ServiceError(
                f"the kubelet did not start {', '.join(sorted(waiting))} within {timeout:.0f} s of its files"
                " last changing: see `crictl ps -a` and `journalctl -u kubelet` on this node"
            )
        sleep(1.0)
    return report
