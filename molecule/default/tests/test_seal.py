# SPDX-License-Identifier: Apache-2.0
"""The test bed's seal holds: nodes and pods reach each other and the mirror, nothing outside.

The "outside" is a host of the test bed's own (a network namespace on the controller); no other
address off the node network is ever contacted.
"""

from __future__ import annotations

import re
import socket
import urllib.request

import pytest
from conftest import (
    MACHINES,
    MIRROR_URL,
    NODES,
    OUTSIDE_HOST,
    SETTINGS,
    Node,
    apply,
    icmp_echo,
    node_exec,
    pod_exec,
    pod_manifest,
    run,
    wait_ready,
)

BRIDGE = "k8stb0"
OUTSIDE_PORT = 80
CHECKSUM_URL = f"{MIRROR_URL}/dl.k8s.io/release/v{SETTINGS['kube_version']}/bin/linux/amd64/kubelet.sha256"


def seal_drops() -> int:
    """Packets counted by the seal rule: DOCKER-USER -i k8stb0 ! -o k8stb0 -j DROP."""
    listing = run("iptables", "-L", "DOCKER-USER", "-v", "-x", "-n").stdout
    for line in listing.splitlines():
        fields = line.split()
        if len(fields) >= 7 and fields[2] == "DROP" and fields[5] == BRIDGE and fields[6] == f"!{BRIDGE}":
            return int(fields[0])
    pytest.fail(f"the seal rule is missing from DOCKER-USER:\n{listing}")


def test_outside_host_answers_the_controller() -> None:
    # Positive control: the outside host exists and answers, so silence from a node means the seal.
    assert icmp_echo(OUTSIDE_HOST), f"{OUTSIDE_HOST} does not answer ping from the controller"
    # Nothing listens there: a reachable host answers a connect with a reset at once.
    with pytest.raises(ConnectionRefusedError):
        socket.create_connection((OUTSIDE_HOST, OUTSIDE_PORT), timeout=3).close()


@pytest.mark.parametrize("node", MACHINES, ids=lambda node: node.name)
def test_node_cannot_reach_the_outside_host(node: Node) -> None:
    before = seal_drops()
    connect = node_exec(
        node, "timeout", "3", "bash", "-c", f"exec 3<>/dev/tcp/{OUTSIDE_HOST}/{OUTSIDE_PORT}", check=False
    )
    # 124: the connect timed out (dropped), where a delivered SYN would have been refused at once.
    assert connect.returncode == 124, f"connect exited {connect.returncode}: {connect.stderr}"
    ping = node_exec(node, "ping", "-c", "1", "-W", "2", OUTSIDE_HOST, check=False)
    assert ping.returncode != 0, ping.stdout
    assert seal_drops() > before


@pytest.mark.parametrize("node", MACHINES, ids=lambda node: node.name)
def test_node_reaches_the_release_mirror(node: Node) -> None:
    fetch = (
        f"import urllib.request; print(urllib.request.urlopen({CHECKSUM_URL!r}, timeout=10).read().decode())"
    )
    from_node = node_exec(node, "python3", "-c", fetch).stdout
    assert re.match(r"[0-9a-f]{64}\b", from_node), from_node
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    with opener.open(CHECKSUM_URL, timeout=10) as response:
        assert from_node.strip() == response.read().decode().strip()


@pytest.fixture(scope="module")
def pods(namespace: str) -> str:
    apply(namespace, *(pod_manifest(f"probe-{node.name}", node, "exec sleep 3600") for node in NODES))
    wait_ready(namespace, *(f"probe-{node.name}" for node in NODES))
    return namespace


@pytest.mark.parametrize("node", NODES, ids=lambda node: node.name)
def test_pod_cannot_reach_the_outside_host(pods: str, node: Node) -> None:
    pod = f"probe-{node.name}"
    peer = next(other for other in NODES if other != node)
    # Positive control: the pod's traffic does leave its node.
    reach = pod_exec(pods, pod, "ping", "-c", "1", "-W", "2", peer.ip)
    assert reach.returncode == 0, (
        f"{pod} cannot ping node {peer.name} ({peer.ip}): {reach.stdout}{reach.stderr}"
    )
    before = seal_drops()
    ping = pod_exec(pods, pod, "ping", "-c", "2", "-W", "2", OUTSIDE_HOST)
    assert ping.returncode != 0, ping.stdout
    assert " 100% packet loss" in ping.stdout, ping.stdout
    assert seal_drops() > before
