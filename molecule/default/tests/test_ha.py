# SPDX-License-Identifier: Apache-2.0
"""A highly available control plane (scenario `ha`): the API, scheduling and etcd's quorum survive
the loss of a master, and a master leaves and joins again.

Runs only where the scenario has three masters or more.
"""

from __future__ import annotations

import json
import secrets
import subprocess
import time
from collections.abc import Iterator

import pytest
from conftest import (
    BALANCER_URL,
    GET_THROUGH_BALANCER,
    MASTERS,
    NODES,
    SETTINGS,
    Node,
    etcd_url,
    eventually,
    get_from,
    healthy_endpoints,
    kubectl,
    kubectl_json,
    member_names,
    node_exec,
    run,
    start_request_loop,
    stop_request_loops,
)

from playbooks import assert_recap_unchanged, playbook, site_yml

pytestmark = pytest.mark.skipif(len(MASTERS) < 3, reason="the scenario has a single master")

APISERVER_PORT = SETTINGS["apiserver_port"]
# The loop each surviving node runs through its balancer while a master goes: one request every
# half second for 30 s, each given 3 s.
LOOP_REQUESTS = 60
LOOP_INTERVAL = 0.5
# Requests that may fail on a node while the balancer notices the loss: those in flight to the
# master when it went, and those sent before two failed health checks (1 s apart) took it out.
MAX_FAILED_REQUESTS = 6


def lease_holder(name: str) -> str:
    holder = kubectl_json("-n", "kube-system", "get", "lease", name)["spec"]["holderIdentity"]
    return holder.split("_", 1)[0]


@pytest.fixture
def lost_master() -> Iterator[Node]:
    """The master that holds the controller-manager's lease, killed; started again afterwards."""
    holder = lease_holder("kube-controller-manager")
    victim = MASTERS[[node.name for node in MASTERS].index(holder)]
    yield victim
    run("docker", "start", victim.name)
    survivor = other_master(victim)
    back = eventually(
        lambda: len(healthy_endpoints(survivor, MASTERS)) == len(MASTERS), timeout=240, interval=3
    )
    assert back, f"{victim.name}'s etcd member did not rejoin: {healthy_endpoints(survivor, MASTERS)}"
    ready = eventually(lambda: _node_ready(victim, via=survivor), timeout=240, interval=3)
    assert ready, f"{victim.name} did not become Ready again"


def other_master(master: Node) -> Node:
    return MASTERS[1] if master == MASTERS[0] else MASTERS[0]


def _node_ready(node: Node, via: Node) -> bool:
    nodes = json.loads(kubectl_via(via, "get", "node", node.name, "-o", "json").stdout or "{}")
    conditions = nodes.get("status", {}).get("conditions", [])
    return any(c["type"] == "Ready" and c["status"] == "True" for c in conditions)


def kubectl_via(master: Node, *args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    """kubectl with the admin identity against one master: the admin kubeconfig names the first."""
    return kubectl(f"--server=https://{master.ip}:{APISERVER_PORT}", *args, check=False, timeout=timeout)


def test_losing_a_master_keeps_the_api_scheduling_and_etcd(cluster: None, lost_master: Node) -> None:
    survivors = [node for node in NODES if node != lost_master]
    surviving_master = other_master(lost_master)
    loops = {
        node.name: subprocess.Popen(
            [
                "docker",
                "exec",
                node.name,
                "python3",
                "-c",
                GET_THROUGH_BALANCER,
                f"{BALANCER_URL}/readyz",
                str(LOOP_REQUESTS),
                str(LOOP_INTERVAL),
            ],
            stdout=subprocess.PIPE,
            text=True,
        )
        for node in survivors
    }
    time.sleep(5)
    run("docker", "kill", lost_master.name)
    killed_at = time.monotonic()

    # A new Deployment is scheduled and runs while the master is gone. Writes fail for as long as
    # etcd elects a new leader, when the lost master's member led it: kubectl is retried meanwhile.
    name = f"after-loss-{secrets.token_hex(3)}"
    image = f"registry.k8s.io/pause:{SETTINGS['pause_version']}"
    created = eventually(
        lambda: (
            kubectl_via(
                surviving_master, "create", "deployment", name, f"--image={image}", "--replicas=2"
            ).returncode
            == 0
        ),
        timeout=60,
        interval=1,
    )
    writable_after = time.monotonic() - killed_at
    assert created, f"no write was accepted within 60 s of losing {lost_master.name}"
    try:
        available = kubectl_via(
            surviving_master,
            "wait",
            f"deployment/{name}",
            "--for=condition=Available",
            "--timeout=180s",
            timeout=210,
        )
        assert available.returncode == 0, (
            available.stderr + kubectl_via(surviving_master, "get", "pods", "-o", "wide").stdout
        )

        # etcd keeps its quorum with the remaining members.
        remaining = [node for node in MASTERS if node != lost_master]
        assert healthy_endpoints(surviving_master, remaining) == sorted(etcd_url(n) for n in remaining)
    finally:
        kubectl_via(surviving_master, "delete", "deployment", name, "--wait=false")

    failures = {}
    for node_name, loop in loops.items():
        answers = json.loads(loop.communicate(timeout=LOOP_REQUESTS * (LOOP_INTERVAL + 5))[0])
        failures[node_name] = [answer for answer in answers if answer != 200]
    print(
        f"writes accepted again {writable_after:.1f} s after the loss; failed requests per node: {failures}"
    )
    assert all(len(failed) <= MAX_FAILED_REQUESTS for failed in failures.values()), failures


def apiserver_started_at(master: Node) -> str:
    return node_exec(
        master, "systemctl", "show", "-p", "ActiveEnterTimestampMonotonic", "kube-apiserver"
    ).stdout


def test_an_apiserver_restarted_on_purpose_fails_no_request(cluster: None, testbed_lock: None) -> None:
    """A planned restart takes the apiserver out of every node's balancer before it stops, and puts
    it back once it is ready: requests under way finish, new ones go to the other masters. Fifty
    requests a second from every node catch a balancer that cuts the connections to an apiserver it
    finds stopping. The restart is owed as after any change: a file of the apiserver changed after it
    started (here its unit, touched), which is the one rule by which the role restarts it."""
    restarted = MASTERS[1]
    started_at = apiserver_started_at(restarted)
    node_exec(restarted, "touch", "/etc/systemd/system/kube-apiserver.service")
    loops = {(node.name, "api"): start_request_loop(node, f"{BALANCER_URL}/version", 0.02) for node in NODES}
    try:
        time.sleep(2)
        result = site_yml("--limit", restarted.name)
        assert result.returncode == 0, result.tail()
        assert apiserver_started_at(restarted) != started_at
        # The balancers have sent it requests again.
        time.sleep(3)
    finally:
        failures = stop_request_loops(loops)
    print(f"(requests, failed) per node while {restarted.name}'s apiserver restarted: {failures}")
    assert all(not failed for _count, failed in failures.values()), failures


def balancer_servers(node: Node) -> list[str]:
    config = node_exec(node, "cat", "/etc/haproxy/haproxy.cfg").stdout
    return sorted(line.split()[1] for line in config.splitlines() if line.strip().startswith("server "))


def test_a_master_leaves_and_joins_again(cluster: None, testbed_lock: None) -> None:
    """remove_node.yml takes a master out of etcd and every balancer; site.yml, whose inventory still
    lists it, brings it back as a new etcd member (`member add`, then a start with `existing`)."""
    leaving = MASTERS[-1]
    staying = [node for node in NODES if node != leaving]
    staying_masters = [node for node in MASTERS if node != leaving]

    removed = playbook("playbooks/remove_node.yml", "-e", f"node={leaving.name}")
    assert removed.returncode == 0, removed.tail()
    assert member_names(MASTERS[0]) == sorted(node.name for node in staying_masters)
    assert leaving.name not in {node["metadata"]["name"] for node in kubectl_json("get", "nodes")["items"]}
    for node in staying:
        assert balancer_servers(node) == sorted(master.name for master in staying_masters), node.name
        assert get_from(node, f"{BALANCER_URL}/readyz") == [200], node.name

    joined = site_yml("-e", "nodes_serial=1")
    assert joined.returncode == 0, joined.tail()
    assert member_names(MASTERS[0]) == sorted(node.name for node in MASTERS)
    assert healthy_endpoints(MASTERS[0], MASTERS) == sorted(etcd_url(node) for node in MASTERS)
    assert eventually(lambda: _node_ready(leaving, via=MASTERS[0]), timeout=180, interval=3), leaving.name
    for node in NODES:
        assert balancer_servers(node) == sorted(master.name for master in MASTERS), node.name
    assert_recap_unchanged(site_yml())
