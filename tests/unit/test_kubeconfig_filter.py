# SPDX-License-Identifier: Apache-2.0
"""The kubeconfig filter: a node component's kubeconfig that names its certificate files."""

from __future__ import annotations

from typing import Any

import pytest
import yaml
from ansible.errors import AnsibleFilterError
from ansible_collections.scratch.kubernetes.plugins.filter import kubeconfig as kubeconfig_filter

PKI = "/var/lib/kubelet/pki"


def kubelet_config(server: str = "https://10.0.0.1:6443") -> dict[str, Any]:
    """Called as roles/kubelet does: the server piped in, the rest by keyword."""
    kubeconfig = kubeconfig_filter.FilterModule().filters()["kubeconfig"]
    return kubeconfig(
        server,
        cluster="kubernetes",
        user="system:node:worker-1",
        ca=f"{PKI}/ca.crt",
        certificate=f"{PKI}/kubelet-client.crt",
        key=f"{PKI}/kubelet-client.key",
    )


def keys(value: Any) -> set[str]:
    """Every mapping key, at any depth."""
    if isinstance(value, dict):
        return set(value).union(*(keys(item) for item in value.values()))
    if isinstance(value, list):
        return set().union(*(keys(item) for item in value))
    return set()


def test_kubeconfig_names_the_files() -> None:
    assert kubelet_config() == {
        "apiVersion": "v1",
        "kind": "Config",
        "preferences": {},
        "clusters": [
            {
                "name": "kubernetes",
                "cluster": {"certificate-authority": f"{PKI}/ca.crt", "server": "https://10.0.0.1:6443"},
            }
        ],
        "users": [
            {
                "name": "system:node:worker-1",
                "user": {
                    "client-certificate": f"{PKI}/kubelet-client.crt",
                    "client-key": f"{PKI}/kubelet-client.key",
                },
            }
        ],
        "contexts": [
            {
                "name": "system:node:worker-1@kubernetes",
                "context": {"cluster": "kubernetes", "user": "system:node:worker-1"},
            }
        ],
        "current-context": "system:node:worker-1@kubernetes",
    }


def test_kubeconfig_embeds_no_credentials() -> None:
    config = kubelet_config()

    assert not [key for key in keys(config) if key.endswith("-data")]
    assert "PRIVATE" not in yaml.safe_dump(config)


def test_current_context_is_one_of_the_contexts() -> None:
    config = kubelet_config()

    (context,) = config["contexts"]
    assert config["current-context"] == context["name"] == "system:node:worker-1@kubernetes"
    assert context["context"]["cluster"] == config["clusters"][0]["name"]
    assert context["context"]["user"] == config["users"][0]["name"]


@pytest.mark.parametrize("server", ["http://10.0.0.1:6443", "10.0.0.1:6443", ""])
def test_server_that_is_no_https_url_fails(server: str) -> None:
    with pytest.raises(AnsibleFilterError, match=r"is not an https:// URL"):
        kubelet_config(server)
