# SPDX-License-Identifier: Apache-2.0
"""The cluster_hosts filter: the parts of the cluster that the inventory's groups name."""

from __future__ import annotations

import pytest
from ansible.errors import AnsibleFilterError
from ansible_collections.scratch.kubernetes.plugins.filter import inventory

cluster_hosts = inventory.FilterModule().filters()["cluster_hosts"]
HA = {"masters": ["m1", "m2", "m3"], "minions": ["w1"], "etcd": ["e1", "e2", "e3"]}


def test_nodes_are_the_masters_then_the_minions() -> None:
    assert cluster_hosts(HA, "nodes") == ["m1", "m2", "m3", "w1"]


def test_etcd_members_are_the_etcd_group_when_there_is_one() -> None:
    assert cluster_hosts(HA, "etcd") == ["e1", "e2", "e3"]
    assert cluster_hosts(HA, "machines") == ["m1", "m2", "m3", "w1", "e1", "e2", "e3"]


@pytest.mark.parametrize("etcd", [{}, {"etcd": []}])
def test_etcd_runs_on_the_masters_without_an_etcd_group(etcd: dict[str, list[str]]) -> None:
    groups = {"masters": ["m1"], "minions": ["w1", "w2"], **etcd}
    assert cluster_hosts(groups, "etcd") == ["m1"]
    assert cluster_hosts(groups, "machines") == ["m1", "w1", "w2"]


def test_a_host_in_two_groups_is_named_once() -> None:
    groups = {"masters": ["m1"], "minions": ["m1", "w1"], "etcd": ["m1", "e1"]}
    assert cluster_hosts(groups, "nodes") == ["m1", "w1"]
    assert cluster_hosts(groups, "machines") == ["m1", "w1", "e1"]


def test_missing_groups_are_empty() -> None:
    assert cluster_hosts({"all": ["x"], "ungrouped": []}, "machines") == []


def test_an_unknown_part_is_refused() -> None:
    with pytest.raises(AnsibleFilterError, match="unknown part 'workers'"):
        cluster_hosts(HA, "workers")
