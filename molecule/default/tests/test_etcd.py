# SPDX-License-Identifier: Apache-2.0
"""etcd in every scenario: one healthy member per etcd machine (the masters, or machines of its
own), mutual TLS between the members, and every apiserver pointed at every member.

Where etcd has machines of its own (scenario `dedicated-etcd`), they run nothing but etcd, and one
of them leaves (remove_node.yml) and joins again (site.yml).
"""

from __future__ import annotations

import pytest
from conftest import (
    DEDICATED_ETCD,
    ETCD_MEMBERS,
    ETCD_PKI,
    MASTERS,
    NODES,
    SETTINGS,
    STATIC_PODS,
    Node,
    etcd_url,
    healthy_endpoints,
    kubectl,
    kubectl_json,
    member_names,
    node_exec,
)

from playbooks import assert_recap_unchanged, playbook, site_yml

dedicated = pytest.mark.skipif(not DEDICATED_ETCD, reason="etcd runs on the masters")


def apiserver_etcd_servers(master: Node) -> list[str]:
    """The etcd servers of the apiserver that runs on master, from its command line."""
    command_line = node_exec(master, "sh", "-c", "tr '\\0' '\\n' </proc/$(pgrep -xo kube-apiserver)/cmdline")
    flags = [line for line in command_line.stdout.splitlines() if line.startswith("--etcd-servers=")]
    assert len(flags) == 1, command_line.stdout
    return sorted(flags[0].removeprefix("--etcd-servers=").split(","))


def assert_etcd_is(members: list[Node]) -> None:
    """etcd has exactly these members, all healthy, and every apiserver uses exactly them."""
    names, urls = sorted(node.name for node in members), sorted(etcd_url(node) for node in members)
    for member in members:
        assert member_names(member) == names, member.name
    assert healthy_endpoints(members[0], members) == urls
    for master in MASTERS:
        assert apiserver_etcd_servers(master) == urls, master.name


def test_etcd_has_one_healthy_member_per_etcd_machine(cluster: None) -> None:
    assert_etcd_is(ETCD_MEMBERS)


def test_etcd_members_refuse_a_peer_without_certificate(cluster: None) -> None:
    # Mutual TLS between members: the peer port answers no client that lacks an etcd certificate.
    peer = f"https://{ETCD_MEMBERS[-1].ip}:{SETTINGS['etcd_peer_port']}/members"
    result = node_exec(
        ETCD_MEMBERS[0], "python3", "-c",
        "import ssl, sys, urllib.request\n"
        f"context = ssl.create_default_context(cafile='{ETCD_PKI}/etcd-ca.crt')\n"
        "try:\n"
        f"    urllib.request.urlopen('{peer}', context=context, timeout=5)\n"
        "except Exception as error:\n"
        "    print(type(error).__name__, error)\n"
        "else:\n"
        "    print('answered')\n",
    )  # fmt: skip
    assert "answered" not in result.stdout and result.stdout.strip(), result.stdout


@pytest.mark.parametrize("member", ETCD_MEMBERS, ids=lambda member: member.name)
def test_etcd_runs_as_its_own_user_who_alone_owns_the_data(cluster: None, member: Node) -> None:
    user = SETTINGS["etcd_user"]
    assert node_exec(member, "ps", "-o", "user=", "-C", "etcd").stdout.split() == [user]
    data = node_exec(member, "stat", "-c", "%a %U %G", SETTINGS["etcd_data_dir"])
    assert data.stdout.split() == ["700", user, user]
    # Its keys stay root's: the unit hands etcd a copy (LoadCredential). A static pod reads them
    # itself, as the etcd user, who alone may.
    keys = node_exec(member, "stat", "-c", "%a %U", f"{ETCD_PKI}/server.key", f"{ETCD_PKI}/peer.key")
    owner = user if STATIC_PODS else "root"
    assert keys.stdout.split() == ["600", owner, "600", owner]


def unit_files(machine: Node) -> set[str]:
    """The collection's units on the machine (systemctl exits 1 when there is none)."""
    listed = node_exec(
        machine, "systemctl", "list-unit-files", "--no-legend", "etcd.service", "kube*", "containerd.service",
        "haproxy.service", "pod-network.service", check=False,
    ).stdout  # fmt: skip
    return {line.split()[0] for line in listed.splitlines()}


@dedicated
def test_dedicated_etcd_machines_run_etcd_alone(cluster: None) -> None:
    for machine in DEDICATED_ETCD:
        assert unit_files(machine) == {"etcd.service"}, machine.name
    for node in NODES:
        assert "etcd.service" not in unit_files(node), node.name
    registered = {node["metadata"]["name"] for node in kubectl_json("get", "nodes")["items"]}
    assert registered == {node.name for node in NODES}


@dedicated
def test_an_etcd_machine_leaves_and_joins_again(cluster: None, testbed_lock: None) -> None:
    """remove_node.yml takes a dedicated etcd machine out of etcd and every apiserver's etcd servers,
    and wipes it; site.yml, whose inventory still lists it, brings it back as a new member."""
    leaving = DEDICATED_ETCD[-1]
    staying = [member for member in ETCD_MEMBERS if member != leaving]

    removed = playbook("playbooks/remove_node.yml", "-e", f"node={leaving.name}")
    assert removed.returncode == 0, removed.tail()
    assert_etcd_is(staying)
    assert unit_files(leaving) == set(), leaving.name
    assert kubectl("get", "--raw", "/readyz").stdout == "ok"

    joined = site_yml("-e", "nodes_serial=1")
    assert joined.returncode == 0, joined.tail()
    assert_etcd_is(ETCD_MEMBERS)
    assert kubectl("get", "--raw", "/readyz").stdout == "ok"
    assert_recap_unchanged(site_yml())
