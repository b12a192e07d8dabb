# SPDX-License-Identifier: Apache-2.0
"""One node's certificate requests, shared by the batched PKI tests (unit and through Ansible).

Two certificates signed by the cluster CA (the first relying on the default ``ca``) and one by
the etcd CA, with SANs and both extended key usages between them.
"""

from __future__ import annotations

from typing import Any

REQUESTS: list[dict[str, Any]] = [
    {
        "name": "kubelet-client",
        "common_name": "system:node:worker-1",
        "organization": ["system:nodes"],
    },
    {
        "name": "kubelet-server",
        "ca": "ca",
        "common_name": "system:node:worker-1",
        "dns_names": ["worker-1"],
        "ip_addresses": ["10.0.0.11"],
        "extended_key_usage": ["server_auth"],
    },
    {
        "name": "etcd-peer",
        "ca": "etcd-ca",
        "common_name": "worker-1",
        "dns_names": ["worker-1"],
        "ip_addresses": ["10.0.0.11"],
        "extended_key_usage": ["client_auth", "server_auth"],
    },
]
NAMES = [request["name"] for request in REQUESTS]
