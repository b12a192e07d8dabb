# SPDX-License-Identifier: Apache-2.0
"""A machine that reboots comes back as it was, by itself: a minion first, then the master.

A node container's restart is its reboot: a new network namespace (no routes, no iptables rules,
no bridge, kernel network settings at their defaults), an empty /run (containerd's state gone),
and every unit started again by systemd. Nothing of the collection runs in between.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator

import pytest
from conftest import (
    MASTER,
    MINIONS,
    NODES,
    Node,
    apply,
    eventually,
    kubectl,
    kubectl_json,
    node_allocation,
    node_exec,
    pod_exec,
    pod_manifest,
    run,
    wait_ready,
)

pytestmark = pytest.mark.last

# From the boot to the node Ready with its pod running again in a new container.
BACK_WITHIN_SECONDS = 60
# Written by the prereqs role for every boot; a new network namespace starts without them.
KERNEL_SETTINGS = {"net.ipv4.ip_forward": "1", "net.bridge.bridge-nf-call-iptables": "1"}
BRIDGE = "cbr0"


def idle_pod(node: Node) -> str:
    return f"idle-{node.name}"


@pytest.fixture(scope="module")
def pods(namespace: str) -> Iterator[str]:
    """One pod per node, which the kubelet must start again after its node's reboot."""
    apply(namespace, *(pod_manifest(idle_pod(node), node, "exec sleep 36000") for node in NODES))
    wait_ready(namespace, *(idle_pod(node) for node in NODES))
    yield namespace


def _container(namespace: str, node: Node) -> str | None:
    """The ID of the running container of the node's pod once it is Ready (with its node), else None."""
    # check=False: a rebooting master's apiserver refuses connections for a while.
    answers = [
        kubectl("get", "node", node.name, "-o", "json", check=False),
        kubectl("-n", namespace, "get", "pod", idle_pod(node), "-o", "json", check=False),
    ]
    if any(answer.returncode != 0 for answer in answers):
        return None
    node_status, pod_status = (json.loads(answer.stdout)["status"] for answer in answers)
    if not all(
        any(c["type"] == "Ready" and c["status"] == "True" for c in status.get("conditions", []))
        for status in (node_status, pod_status)
    ):
        return None
    running = [s for s in pod_status.get("containerStatuses", []) if "running" in s.get("state", {})]
    return running[0]["containerID"] if running else None


def reboot(namespace: str, node: Node) -> float:
    """Restart the node's container; the seconds until it is back (or the test fails).

    Back means Ready, with its pod Ready in a new container: the API keeps reporting the old one
    (and the node Ready) until the kubelet has started again.
    """
    before = _container(namespace, node)
    assert before, f"the pod on {node.name} is not running before the reboot"
    restarted = time.monotonic()
    run("docker", "restart", "--time", "10", node.name, timeout=120)
    booted = time.monotonic()

    def back() -> bool:
        return _container(namespace, node) not in (None, before)

    is_back = eventually(back, timeout=BACK_WITHIN_SECONDS + 60)
    seconds = time.monotonic() - booted
    if not is_back:
        described = kubectl("-n", namespace, "describe", "pod", idle_pod(node), check=False).stdout
        pytest.fail(f"{node.name} not back {seconds:.0f}s after its reboot:\n{described}")
    print(f"{node.name}: shut down and booted in {booted - restarted:.1f}s, back {seconds:.1f}s later")
    assert seconds <= BACK_WITHIN_SECONDS, f"{node.name} took {seconds:.0f}s to come back"
    return seconds


def assert_network_restored(namespace: str, node: Node) -> None:
    settings = {key: node_exec(node, "sysctl", "-n", key).stdout.strip() for key in KERNEL_SETTINGS}
    assert settings == KERNEL_SETTINGS
    routes = node_exec(node, "ip", "-4", "route").stdout
    for other in NODES:
        if other != node:
            assert f"{node_allocation(other)['pod_cidr']} via {other.ip} " in routes, routes
    assert node_exec(node, "ip", "link", "show", BRIDGE, check=False).returncode == 0, f"no {BRIDGE}"
    masquerade = node_exec(node, "iptables", "-t", "nat", "-S", "POSTROUTING").stdout
    assert "pod-network" in masquerade, masquerade
    # Pod to pod across nodes, both ways: the bridge, the routes and the forwarding rules at once.
    addresses = {
        pod["metadata"]["name"]: pod["status"]["podIP"]
        for pod in kubectl_json("-n", namespace, "get", "pods")["items"]
    }
    other = next(other for other in NODES if other != node)
    for source, target in ((node, other), (other, node)):
        result = pod_exec(
            namespace, idle_pod(source), "ping", "-c", "3", "-W", "2", addresses[idle_pod(target)]
        )
        assert " 0% packet loss" in result.stdout, f"{source.name} -> {target.name}: {result.stdout}"


@pytest.mark.parametrize("node", [MINIONS[0], MASTER], ids=lambda node: node.name)
def test_rebooted_node_comes_back_ready_with_its_network(pods: str, testbed_lock: None, node: Node) -> None:
    reboot(pods, node)
    assert_network_restored(pods, node)
    if node.is_master:
        assert kubectl("get", "--raw", "/readyz").stdout.strip() == "ok"
