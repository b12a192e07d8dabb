# SPDX-License-Identifier: Apache-2.0
"""Every node reaches the API through its local balancer (HAProxy on 127.0.0.1), which checks
every apiserver with a certificate of its own, anonymous access being off."""

from __future__ import annotations

import json

import pytest
from conftest import (
    BALANCER_PORT,
    BALANCER_URL,
    GET_THROUGH_BALANCER,
    MASTERS,
    NODES,
    SETTINGS,
    Node,
    node_exec,
)

READYZ_URL = f"{BALANCER_URL}/readyz"


def readyz(node: Node, count: int = 1) -> list[object]:
    result = node_exec(node, "python3", "-c", GET_THROUGH_BALANCER, READYZ_URL, str(count), "0")
    return json.loads(result.stdout)


@pytest.mark.parametrize("node", NODES, ids=lambda node: node.name)
def test_the_api_answers_through_the_node_balancer(cluster: None, node: Node) -> None:
    assert readyz(node, count=3) == [200, 200, 200]


@pytest.mark.parametrize("node", NODES, ids=lambda node: node.name)
def test_the_balancer_listens_on_loopback_only(cluster: None, node: Node) -> None:
    listening = node_exec(
        node, "ss", "--listening", "--tcp", "--numeric", "--processes", "--no-header"
    ).stdout
    balancer = [line.split()[3] for line in listening.splitlines() if '"haproxy"' in line]
    assert balancer and set(balancer) == {f"127.0.0.1:{BALANCER_PORT}"}, listening


@pytest.mark.parametrize("node", NODES, ids=lambda node: node.name)
def test_kubelet_and_kube_proxy_go_through_the_balancer(cluster: None, node: Node) -> None:
    for kubeconfig in ("/var/lib/kubelet/kubeconfig", "/var/lib/kube-proxy/kubeconfig"):
        content = node_exec(node, "cat", kubeconfig).stdout
        assert f"server: {BALANCER_URL}\n" in content, f"{node.name}:{kubeconfig}:\n{content}"


@pytest.mark.parametrize("node", NODES, ids=lambda node: node.name)
def test_the_balancer_checks_every_apiserver(cluster: None, node: Node) -> None:
    config = node_exec(node, "cat", "/etc/haproxy/haproxy.cfg").stdout
    servers = {
        line.split()[1]: line.split()[2] for line in config.splitlines() if line.strip().startswith("server ")
    }
    assert servers == {master.name: f"{master.ip}:{SETTINGS['apiserver_port']}" for master in MASTERS}
    assert "http-check send meth GET uri /readyz" in config and " check-ssl verify required " in config


@pytest.mark.parametrize("node", NODES, ids=lambda node: node.name)
def test_the_balancers_runtime_socket_is_for_root_only(cluster: None, node: Node) -> None:
    """Whoever may write to it can take every apiserver out of the node's balancer."""
    socket = SETTINGS["apiserver_balancer_socket"]
    assert node_exec(node, "stat", "--format=%F %a %U", socket).stdout.split() == ["socket", "600", "root"]
