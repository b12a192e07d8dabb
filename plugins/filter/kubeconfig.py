# SPDX-License-Identifier: Apache-2.0
"""The kubeconfig of a node's component, naming its certificate files instead of embedding them."""

from __future__ import annotations

from typing import Any

from ansible.errors import AnsibleFilterError
from ansible_collections.scratch.kubernetes.plugins.module_utils._pki_kubeconfig import kubeconfig_document


def kubeconfig(server: str, cluster: str, user: str, ca: str, certificate: str, key: str) -> dict[str, Any]:
    if not server.startswith("https://"):
        raise AnsibleFilterError(f"kubeconfig: server {server!r} is not an https:// URL")
    return kubeconfig_document(
        cluster,
        server,
        {"certificate-authority": ca},
        user,
        {"client-certificate": certificate, "client-key": key},
    )


class FilterModule:
    def filters(self) -> dict[str, Any]:
        return {"kubeconfig": kubeconfig}
