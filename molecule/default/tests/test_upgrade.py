# SPDX-License-Identifier: Apache-2.0
"""Upgrading a running cluster in place (scenario `ha`, which converges the previous release).

upgrade.yml rolls kube_version out while every node keeps calling the API through its balancer
and a Deployment of two replicas keeps answering through its Service. Afterwards every component
runs the new release and site.yml finds nothing to change. This goes before every other test
(marker `upgrade`), so the rest of the suite proves the upgraded cluster.

Runs only where the cluster runs the previous release (tests/testbed/previous-kube-version).
"""

from __future__ import annotations

import subprocess
import time
from collections.abc import Iterator

import pytest
from conftest import (
    BALANCER_URL,
    CONTROL_PLANE_TAINT,
    MASTERS,
    NODES,
    REPO,
    SETTINGS,
    TEST_IMAGE,
    Node,
    apply,
    eventually,
    get_from,
    kubectl,
    kubectl_json,
    node_exec,
    start_request_loop,
    stop_request_loops,
)

from playbooks import assert_recap_unchanged, playbook, site_yml

pytestmark = pytest.mark.upgrade

PREVIOUS = (REPO / "tests/testbed/previous-kube-version").read_text().strip()
CURRENT = SETTINGS["kube_version"]
APISERVER_PORT = SETTINGS["apiserver_port"]
# Each node's loops: a request every half second.
LOOP_INTERVAL = 0.5
APP = "upgrade-web"
APP_PORT = 8080


def kubelet_versions() -> dict[str, str]:
    nodes = kubectl_json("get", "nodes")["items"]
    return {node["metadata"]["name"]: node["status"]["nodeInfo"]["kubeletVersion"] for node in nodes}


def runs_previous_release() -> bool:
    return set(kubelet_versions().values()) == {f"v{PREVIOUS}"}


def web_manifests() -> list[dict[str, object]]:
    """Two replicas on two different nodes (masters allowed), a PodDisruptionBudget, a Service."""
    labels = {"app": APP}
    script = f"mkdir -p /www && hostname > /www/index.html && exec httpd -f -p {APP_PORT} -h /www"
    pod = {
        "metadata": {"labels": labels},
        "spec": {
            "tolerations": [{"key": CONTROL_PLANE_TAINT, "operator": "Exists", "effect": "NoSchedule"}],
            "affinity": {
                "podAntiAffinity": {
                    "requiredDuringSchedulingIgnoredDuringExecution": [
                        {"topologyKey": "kubernetes.io/hostname", "labelSelector": {"matchLabels": labels}}
                    ]
                }
            },
            "containers": [
                {
                    "name": "web",
                    "image": TEST_IMAGE,
                    "imagePullPolicy": "Never",
                    "command": ["/bin/sh", "-c", script],
                    "readinessProbe": {"httpGet": {"path": "/", "port": APP_PORT}, "periodSeconds": 1},
                    # An evicted pod keeps serving until every kube-proxy has dropped it.
                    "lifecycle": {"preStop": {"exec": {"command": ["sleep", "5"]}}},
                }
            ],
        },
    }
    return [
        {
            "apiVersion": "apps/v1",
            "kind": "Deployment",
            "metadata": {"name": APP},
            "spec": {"replicas": 2, "selector": {"matchLabels": labels}, "template": pod},
        },
        {
            "apiVersion": "policy/v1",
            "kind": "PodDisruptionBudget",
            "metadata": {"name": APP},
            "spec": {"minAvailable": 1, "selector": {"matchLabels": labels}},
        },
        {
            "apiVersion": "v1",
            "kind": "Service",
            "metadata": {"name": APP},
            "spec": {"selector": labels, "ports": [{"port": 80, "targetPort": APP_PORT}]},
        },
    ]


@pytest.fixture(scope="module")
def previous_release(cluster: None) -> None:
    if not runs_previous_release():
        pytest.skip(f"the cluster does not run the previous release {PREVIOUS}: {kubelet_versions()}")


@pytest.fixture(scope="module")
def web(previous_release: None, namespace: str) -> str:
    """The Deployment's Service address, once both replicas are available and every node's
    kube-proxy routes to them (until then a node refuses connections to the Service)."""
    apply(namespace, *web_manifests())
    kubectl("-n", namespace, "rollout", "status", f"deployment/{APP}", "--timeout=180s", timeout=210)
    address = kubectl_json("-n", namespace, "get", "service", APP)["spec"]["clusterIP"]
    for node in NODES:
        answered = eventually(
            lambda node=node: get_from(node, f"http://{address}/") == [200], timeout=60, interval=1
        )
        assert answered, f"the Service {address} does not answer on {node.name}"
    return address


@pytest.fixture
def client_loops(web: str) -> Iterator[dict[tuple[str, str], subprocess.Popen[str]]]:
    """On every node: one loop asking the API through the balancer, one asking the Deployment."""
    targets = {"api": f"{BALANCER_URL}/version", "web": f"http://{web}/"}
    loops = {
        (node.name, target): start_request_loop(node, url, LOOP_INTERVAL)
        for node in NODES
        for target, url in targets.items()
    }
    yield loops
    if any(loop.poll() is None for loop in loops.values()):
        stop_request_loops(loops)


def running_versions(node: Node) -> dict[str, str]:
    """Each Kubernetes binary's version on the node, or 'stale' when its process runs an older file."""
    components = ["kubelet", "kube-proxy"]
    if node in MASTERS:
        components += ["kube-apiserver", "kube-controller-manager", "kube-scheduler"]
    versions = {}
    for component in components:
        # A binary replaced under a running process shows as "(deleted)" behind /proc/PID/exe.
        script = (
            f"pid=$(systemctl show -p MainPID --value {component}); "
            f'case "$(readlink /proc/$pid/exe)" in *deleted*) echo stale ;; '
            f'*) /usr/local/bin/{component} --version | cut -d" " -f2 ;; esac'
        )
        versions[component] = node_exec(node, "bash", "-c", script).stdout.strip()
    return versions


@pytest.mark.skipif(len(MASTERS) < 3, reason="the scenario has a single master")
def test_upgrade_keeps_the_api_and_workloads_answering(
    testbed_lock: None, namespace: str, client_loops: dict[tuple[str, str], subprocess.Popen[str]]
) -> None:
    started = time.monotonic()
    upgrade = playbook("playbooks/upgrade.yml")
    wall_time = time.monotonic() - started
    assert upgrade.returncode == 0, upgrade.tail()

    failures = stop_request_loops(client_loops)
    print(
        f"upgrade.yml from {PREVIOUS} to {CURRENT}: {wall_time:.0f} s; (requests, failed) per loop: "
        f"{failures}"
    )
    assert all(not failed for _count, failed in failures.values()), failures

    assert set(kubelet_versions().values()) == {f"v{CURRENT}"}, kubelet_versions()
    for master in MASTERS:
        server = f"--server=https://{master.ip}:{APISERVER_PORT}"
        assert kubectl_json(server, "version")["serverVersion"]["gitVersion"] == f"v{CURRENT}", master.name
    stale = {
        node.name: versions
        for node in NODES
        if set((versions := running_versions(node)).values()) != {f"v{CURRENT}"}
    }
    assert not stale, stale
    deployment = kubectl_json("-n", namespace, "get", "deployment", APP)
    assert deployment["status"].get("availableReplicas") == 2, deployment["status"]
    assert not any(node["spec"].get("unschedulable") for node in kubectl_json("get", "nodes")["items"])

    assert_recap_unchanged(site_yml())
