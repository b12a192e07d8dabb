# SPDX-License-Identifier: Apache-2.0
"""The cluster works: nodes, pod addressing, pod-to-pod routing, Services and cluster DNS."""

from __future__ import annotations

import ipaddress
import json
import re
import secrets
import subprocess
from typing import Any

import pytest
from conftest import (
    CLUSTER_DNS_IP,
    CONTROL_PLANE_TAINT,
    KUBERNETES_SERVICE_IP,
    MASTER,
    MINIONS,
    NODES,
    SETTINGS,
    Node,
    apply,
    eventually,
    kubectl,
    kubectl_json,
    node_allocation,
    node_exec,
    pod_exec,
    pod_manifest,
    wait_ready,
)

from playbooks import playbook

WEB_NODE = MINIONS[-1]
# The nodes in a ring: each pings the next and the one before, so every node sends and answers.
RING = [(node, NODES[(index + 1) % len(NODES)]) for index, node in enumerate(NODES)]
WEB_PORT = 80
CLUSTER_DOMAIN = SETTINGS["cluster_domain"]


def probe_name(node: Node) -> str:
    return f"probe-{node.name}"


@pytest.fixture(scope="module")
def workload(namespace: str) -> dict[str, Any]:
    """One idle pod per node, and an httpd pod behind a ClusterIP Service, all Ready."""
    token = secrets.token_hex(8)
    page = f"hello from {WEB_NODE.name} {token}"
    web = pod_manifest(
        "web",
        WEB_NODE,
        f"mkdir -p /www && echo '{page}' > /www/index.html && exec httpd -f -p {WEB_PORT} -h /www",
        labels={"app": "web"},
    )
    web["spec"]["containers"][0]["readinessProbe"] = {"tcpSocket": {"port": WEB_PORT}, "periodSeconds": 2}
    service = {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {"name": "web"},
        "spec": {
            "type": "ClusterIP",
            "selector": {"app": "web"},
            "ports": [{"port": 80, "targetPort": WEB_PORT}],
        },
    }
    apply(
        namespace, *(pod_manifest(probe_name(node), node, "exec sleep 3600") for node in NODES), web, service
    )
    wait_ready(namespace, *(probe_name(node) for node in NODES), "web")
    pods = {pod["metadata"]["name"]: pod for pod in kubectl_json("-n", namespace, "get", "pods")["items"]}
    return {
        "namespace": namespace,
        "pods": pods,
        "page": page,
        "service_ip": kubectl_json("-n", namespace, "get", "service", "web")["spec"]["clusterIP"],
    }


def test_every_node_is_registered_and_ready(cluster: None) -> None:
    nodes = {item["metadata"]["name"]: item for item in kubectl_json("get", "nodes")["items"]}
    assert sorted(nodes) == sorted(node.name for node in NODES)
    for name, item in nodes.items():
        ready = [c for c in item["status"]["conditions"] if c["type"] == "Ready"]
        assert ready and ready[0]["status"] == "True", f"{name}: {ready}"


def test_only_masters_carry_the_control_plane_taint(cluster: None) -> None:
    for node in NODES:
        taints = kubectl_json("get", "node", node.name)["spec"].get("taints", [])
        tainted = any(t["key"] == CONTROL_PLANE_TAINT and t["effect"] == "NoSchedule" for t in taints)
        assert tainted == node.is_master, f"{node.name}: {taints}"


def test_kubectl_shows_the_masters_role(cluster: None) -> None:
    roles = dict(line.split()[:3:2] for line in kubectl("get", "nodes", "--no-headers").stdout.splitlines())
    assert roles == {node.name: "control-plane" if node.is_master else "<none>" for node in NODES}


@pytest.mark.parametrize("node", NODES, ids=lambda node: node.name)
def test_crictl_on_the_node_shows_its_pods_containers(workload: dict[str, Any], node: Node) -> None:
    """crictl needs no flags on a node: it finds the runtime from /etc/crictl.yaml."""
    pods = node_exec(
        node, "crictl", "pods", "--namespace", workload["namespace"], "--name", probe_name(node), "--quiet"
    ).stdout.split()
    assert len(pods) == 1, pods
    containers = json.loads(node_exec(node, "crictl", "ps", "--pod", pods[0], "--output", "json").stdout)
    assert [(c["metadata"]["name"], c["state"]) for c in containers["containers"]] == [
        ("main", "CONTAINER_RUNNING")
    ]


@pytest.mark.parametrize("node", NODES, ids=lambda node: node.name)
def test_node_pod_cidr_is_the_recorded_allocation(cluster: None, node: Node) -> None:
    recorded = node_allocation(node)
    spec = kubectl_json("get", "node", node.name)["spec"]
    assert spec.get("podCIDR") == recorded["pod_cidr"]
    assert spec.get("podCIDRs") == [recorded["pod_cidr"]]
    block = ipaddress.IPv4Network(recorded["pod_cidr"])
    assert block.subnet_of(ipaddress.IPv4Network(SETTINGS["cluster_cidr"]))
    assert block.prefixlen == SETTINGS["node_pod_prefix"]
    # The bridge holds the block's first address.
    assert recorded["bridge_ip"] == str(block[1])


def test_pod_blocks_are_disjoint(cluster: None) -> None:
    blocks = [ipaddress.ip_network(node_allocation(node)["pod_cidr"]) for node in NODES]
    for i, block in enumerate(blocks):
        for other in blocks[i + 1 :]:
            assert not block.overlaps(other), f"{block} overlaps {other}"


@pytest.mark.parametrize("node", NODES, ids=lambda node: node.name)
def test_pod_gets_an_address_in_its_node_block(workload: dict[str, Any], node: Node) -> None:
    pod = workload["pods"][probe_name(node)]
    assert pod["spec"]["nodeName"] == node.name
    block = ipaddress.ip_network(node_allocation(node)["pod_cidr"])
    assert ipaddress.ip_address(pod["status"]["podIP"]) in block, f"{pod['status']['podIP']} not in {block}"


@pytest.mark.parametrize(
    ("source", "target"),
    RING + [(target, source) for source, target in RING],
    ids=lambda node: node.name,
)
def test_pod_pings_pod_on_another_node(workload: dict[str, Any], source: Node, target: Node) -> None:
    target_ip = workload["pods"][probe_name(target)]["status"]["podIP"]
    result = pod_exec(workload["namespace"], probe_name(source), "ping", "-c", "3", "-W", "2", target_ip)
    assert result.returncode == 0, (
        f"{source.name} -> {target.name} ({target_ip}):\n{result.stdout}{result.stderr}"
    )
    assert " 0% packet loss" in result.stdout


def _fetch(workload: dict[str, Any], client: Node, url: str) -> str:
    """The page at url as fetched from the client node's pod, retried while kube-proxy catches up."""
    last_error = ""

    def attempt() -> str | None:
        nonlocal last_error
        try:
            # busybox 1.35's `wget -T` dies of SIGSEGV: the kubectl timeout bounds each try instead.
            result = pod_exec(
                workload["namespace"], probe_name(client), "wget", "-q", "-O", "-", url, timeout=15
            )
        except subprocess.TimeoutExpired:
            last_error = "wget got no answer within 15s"
            return None
        if result.returncode != 0:
            last_error = f"wget exited {result.returncode}: {result.stderr.strip()}"
            return None
        return result.stdout

    page = eventually(attempt, timeout=60)
    assert page is not None, f"{url} from the pod on {client.name}: {last_error}"
    return page


@pytest.mark.parametrize("client", [node for node in NODES if node != WEB_NODE], ids=lambda node: node.name)
def test_cluster_ip_service_reaches_pod_on_another_node(workload: dict[str, Any], client: Node) -> None:
    service_ip = workload["service_ip"]
    assert ipaddress.ip_address(service_ip) in ipaddress.ip_network(SETTINGS["service_cidr"])
    assert _fetch(workload, client, f"http://{service_ip}:80/").strip() == workload["page"]


@pytest.mark.parametrize("name", ["web.{namespace}.svc." + CLUSTER_DOMAIN, "web"])
def test_service_is_reached_by_its_dns_name(workload: dict[str, Any], name: str) -> None:
    url = f"http://{name.format(namespace=workload['namespace'])}/"
    assert _fetch(workload, MASTER, url).strip() == workload["page"]


@pytest.mark.parametrize("node", NODES, ids=lambda node: node.name)
def test_pod_resolver_points_at_cluster_dns(workload: dict[str, Any], node: Node) -> None:
    resolv = pod_exec(workload["namespace"], probe_name(node), "cat", "/etc/resolv.conf").stdout
    assert re.search(rf"^nameserver {re.escape(CLUSTER_DNS_IP)}$", resolv, re.M), resolv
    search = re.search(r"^search (.*)$", resolv, re.M)
    assert search, resolv
    assert search.group(1).split()[:3] == [
        f"{workload['namespace']}.svc.{CLUSTER_DOMAIN}",
        f"svc.{CLUSTER_DOMAIN}",
        CLUSTER_DOMAIN,
    ]


@pytest.mark.parametrize("node", NODES, ids=lambda node: node.name)
def test_cluster_dns_resolves_the_kubernetes_service(workload: dict[str, Any], node: Node) -> None:
    name = f"kubernetes.default.svc.{CLUSTER_DOMAIN}"
    result = pod_exec(workload["namespace"], probe_name(node), "nslookup", name)
    answer = re.search(rf"^Name:\s*{re.escape(name)}\s*\nAddress:\s*(\S+)\s*$", result.stdout, re.M)
    assert answer, (
        f"nslookup {name} from {node.name} exited {result.returncode}:\n{result.stdout}{result.stderr}"
    )
    assert answer.group(1) == KUBERNETES_SERVICE_IP
    assert re.search(rf"^Server:\s*{re.escape(CLUSTER_DNS_IP)}\s*$", result.stdout, re.M), result.stdout


@pytest.mark.parametrize("node", NODES, ids=lambda node: node.name)
def test_short_name_kubernetes_default_resolves_through_the_search_path(
    workload: dict[str, Any], node: Node
) -> None:
    # busybox nslookup sends a name as given, ignoring the search list; ping resolves it with the
    # C library, as applications do. Only the resolved address counts: a ClusterIP answers no ping.
    result = pod_exec(
        workload["namespace"], probe_name(node), "ping", "-c", "1", "-W", "1", "kubernetes.default"
    )
    resolved = re.match(r"PING kubernetes\.default \((\S+)\)", result.stdout)
    assert resolved, f"kubernetes.default from {node.name} did not resolve:\n{result.stdout}{result.stderr}"
    assert resolved.group(1) == KUBERNETES_SERVICE_IP


def test_validate_playbook_passes_on_this_cluster(cluster: None, testbed_lock: None) -> None:
    """playbooks/validate.yml, the operators' check, passes every check on every scenario's cluster."""
    result = playbook("playbooks/validate.yml")
    assert result.returncode == 0, result.tail()
    pairs = re.findall(r"PASS a pod on (\S+) reaches a pod on (\S+)", result.output)
    assert len(set(pairs)) == len(NODES) * (len(NODES) - 1), result.tail()
    assert "FAIL" not in result.output, result.tail()


# Once is enough to show that a failed check fails the run (the default scenario runs "last").
@pytest.mark.last
def test_validate_playbook_fails_and_names_a_broken_route(cluster: None, testbed_lock: None) -> None:
    minion, block = MINIONS[0], node_allocation(MASTER)["pod_cidr"]
    node_exec(minion, "ip", "route", "del", block)
    try:
        broken = playbook("playbooks/validate.yml")
    finally:
        node_exec(minion, "systemctl", "restart", "pod-network")
    assert broken.returncode != 0, broken.tail()
    assert f"FAIL a pod on {minion.name} reaches a pod on {MASTER.name}" in broken.output, broken.tail()
