# SPDX-License-Identifier: Apache-2.0
"""scratch.kubernetes.cidr_allocation through real Ansible: check mode, run, reruns, diff, failure."""

from __future__ import annotations

ARGS = {
    "cluster_cidr": "10.200.0.0/16",
    "service_cidr": "10.32.0.0/24",
    "node_networks": ["192.168.56.0/24"],
    "nodes": [
        {"name": "master-1", "node_ip": "192.168.56.11"},
        {"name": "minion-1", "node_ip": "192.168.56.21"},
        {"name": "minion-2", "node_ip": "192.168.56.22", "pod_cidr": "10.200.9.0/24"},
    ],
}

EXPECTED = {
    "master-1": {"pod_cidr": "10.200.0.0/24", "bridge_ip": "10.200.0.1"},
    "minion-1": {"pod_cidr": "10.200.1.0/24", "bridge_ip": "10.200.1.1"},
    "minion-2": {"pod_cidr": "10.200.9.0/24", "bridge_ip": "10.200.9.1"},
}


RECORDED = {name: block["pod_cidr"] for name, block in EXPECTED.items()}


def test_check_run_and_reruns(run_module):
    checked = run_module("cidr_allocation", ARGS, check=True)
    assert not checked.get("failed"), checked.get("msg")
    assert checked["changed"] is True

    first = run_module("cidr_allocation", ARGS, diff=True)
    assert first["changed"] is True
    assert first["allocations"] == EXPECTED
    assert first["new_nodes"] == ["master-1", "minion-1", "minion-2"]
    assert first["released"] == []
    assert first["kubernetes_service_ip"] == "10.32.0.1"
    assert first["cluster_dns_ip"] == "10.32.0.10"
    assert first["diff"] == {"before": {}, "after": RECORDED}
    # The module only computes, so check mode returns the very same plan.
    for key in ("allocations", "kubernetes_service_ip", "cluster_dns_ip", "new_nodes", "released"):
        assert checked[key] == first[key]

    returned = {name: block["pod_cidr"] for name, block in first["allocations"].items()}
    for check in (True, False):
        again = run_module("cidr_allocation", {**ARGS, "allocations": returned}, check=check, diff=True)
        assert again["changed"] is False, f"check={check}"
        assert again["allocations"] == EXPECTED
        assert again["new_nodes"] == []
        assert again["diff"] == {"before": RECORDED, "after": RECORDED}


def test_release_frees_the_block(run_module):
    args = {
        **ARGS,
        "nodes": ARGS["nodes"][:2],
        "allocations": RECORDED,
        "state": "absent",
        "release": ["minion-2"],
    }
    result = run_module("cidr_allocation", args, diff=True)
    assert result["changed"] is True
    assert result["released"] == ["minion-2"]
    assert "minion-2" not in result["allocations"]
    assert result["diff"]["before"]["minion-2"] == "10.200.9.0/24"
    assert "minion-2" not in result["diff"]["after"]


def test_bad_setting_fails_with_one_clear_message(run_module):
    result = run_module("cidr_allocation", {**ARGS, "node_pod_prefix": 26})
    assert result["failed"] is True
    assert result["msg"] == (
        "node_pod_prefix /26 gives 61 pod addresses per node (64 minus network, broadcast and bridge "
        "addresses), fewer than max_pods=110: use node_pod_prefix 25 or smaller, or lower max_pods."
    )
    assert "allocations" not in result


def test_absent_needs_release(run_module):
    result = run_module("cidr_allocation", {**ARGS, "state": "absent"})
    assert result["failed"] is True
    assert result["msg"] == "state=absent needs release: list the nodes whose blocks to free."
