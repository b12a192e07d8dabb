# SPDX-License-Identifier: Apache-2.0
"""Which inventory hosts play which part in the cluster, said once for every play and role."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from ansible.errors import AnsibleFilterError

PARTS = ("nodes", "etcd", "machines")


def cluster_hosts(groups: Mapping[str, Sequence[str]], part: str) -> list[str]:
    """The hosts of a part of the cluster, in inventory order, each once.

    nodes: the Kubernetes nodes (masters, then minions). etcd: the etcd members (the `etcd`
    group, or the masters when it is empty or missing). machines: every machine the collection
    manages (the nodes and the etcd members).
    """
    if part not in PARTS:
        raise AnsibleFilterError(f"cluster_hosts: unknown part {part!r}, expected one of {', '.join(PARTS)}.")
    nodes = [*groups.get("masters", []), *groups.get("minions", [])]
    etcd = list(groups.get("etcd") or groups.get("masters", []))
    chosen = {"nodes": nodes, "etcd": etcd, "machines": nodes + etcd}[part]
    return list(dict.fromkeys(chosen))


class FilterModule:
    def filters(self) -> dict[str, Any]:
        return {"cluster_hosts": cluster_hosts}
