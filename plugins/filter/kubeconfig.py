# SPDX-License-Identifier: Apache-2.0
"""The kubeconfig of a node's component, naming its certificate files instead of embedding them."""

from __future__ import annotations

from typing import Any

from ansible.errors import AnsibleFilterError


def kubeconfig(server: str, cluster: str, user: str, ca: str, certificate: str, key: str) -> dict[str, Any]:
    if not server.startswith("https://"):
        raise AnsibleFilterError(f"kubeconfig: server {server!r} is not an https:// URL")
    context = f"{user}@{cluster}"
    return {
        "apiVersion": "v1",
        "kind": "Config",
        "preferences": {},
        "clusters": [{"name": cluster, "cluster": {"certificate-authority": ca, "server": server}}],
        "users": [{"name": user, "user": {"client-certificate": certificate, "client-key": key}}],
        "contexts": [{"name": context, "context": {"cluster": cluster, "user": user}}],
        "current-context": context,
    }


class FilterModule:
    def filters(self) -> dict[str, Any]:
        return {"kubeconfig": kubeconfig}
