# SPDX-License-Identifier: Apache-2.0
"""Filters over the CIDR core: the same math the cidr_allocation module uses."""

from __future__ import annotations

from typing import Any

from ansible.errors import AnsibleFilterError
from ansible_collections.scratch.kubernetes.plugins.module_utils import _cidr
from ansible_collections.scratch.kubernetes.plugins.module_utils._deps import missing


def _require_netaddr() -> None:
    # Raised on use, not on load, so that a missing netaddr does not hide this file's other filters.
    message = missing("netaddr")
    if message is not None:
        raise AnsibleFilterError(message)


def service_ips(service_cidr: str, cluster_dns_index: Any = 10) -> dict[str, str]:
    """``{kubernetes, dns}``: the kubernetes Service IP and the cluster DNS IP of ``service_cidr``."""
    _require_netaddr()
    try:
        # Extra vars (-e) arrive as strings.
        index = int(cluster_dns_index)
    except (TypeError, ValueError):
        raise AnsibleFilterError(
            f"cluster_dns_index must be an integer, not {cluster_dns_index!r}."
        ) from None
    try:
        kubernetes, dns = _cidr.service_ips(service_cidr, index)
    except _cidr.CidrError as error:
        raise AnsibleFilterError(str(error)) from error
    return {"kubernetes": kubernetes, "dns": dns}


def bridge_ip(pod_cidr: str) -> str:
    """First usable address of a node's pod block, where its bridge lives."""
    _require_netaddr()
    try:
        return _cidr.bridge_ip(pod_cidr)
    except _cidr.CidrError as error:
        raise AnsibleFilterError(str(error)) from error


class FilterModule:
    def filters(self) -> dict[str, Any]:
        return {"service_ips": service_ips, "bridge_ip": bridge_ip}
