# SPDX-License-Identifier: Apache-2.0
"""The CIDR core: stable allocation, pins, release, and one clear error per bad setting."""

from __future__ import annotations

import copy

import pytest
from ansible.errors import AnsibleFilterError
from ansible_collections.scratch.kubernetes.plugins.filter import cidr as cidr_filter
from ansible_collections.scratch.kubernetes.plugins.module_utils._cidr import (
    CidrError,
    NodeAllocation,
    bridge_ip,
    plan,
    pod_capacity,
    service_ips,
)

BASE = {"cluster_cidr": "10.200.0.0/16", "node_pod_prefix": 24, "service_cidr": "10.32.0.0/24"}


def nodes(*names: str, **pins: str) -> list[dict]:
    return [{"name": name, "node_ip": None, "pod_cidr": pins.get(name.replace("-", "_"))} for name in names]


def run(**overrides):
    return plan(**{**BASE, **overrides})


def fails(*phrases: str, **overrides) -> str:
    with pytest.raises(CidrError) as caught:
        run(**overrides)
    message = str(caught.value)
    for phrase in phrases:
        assert phrase in message
    return message


# Allocation and stability


def test_first_run_gives_lowest_blocks_in_node_order_with_bridge_and_service_ips():
    result = run(nodes=nodes("master-1", "minion-1", "minion-2"))
    assert result.allocations == {
        "master-1": NodeAllocation("10.200.0.0/24", "10.200.0.1"),
        "minion-1": NodeAllocation("10.200.1.0/24", "10.200.1.1"),
        "minion-2": NodeAllocation("10.200.2.0/24", "10.200.2.1"),
    }
    assert result.kubernetes_service_ip == "10.32.0.1"
    assert result.cluster_dns_ip == "10.32.0.10"
    assert result.new_nodes == ["master-1", "minion-1", "minion-2"]
    assert result.released == []


def test_rerun_with_returned_allocations_is_stable_even_when_nodes_are_reordered():
    first = run(nodes=nodes("a", "b", "c"))
    again = run(nodes=nodes("c", "a", "b"), allocations=first.cidr_map())
    assert again.allocations == first.allocations
    assert again.new_nodes == []
    assert again.released == []


def test_new_node_takes_lowest_free_block_and_existing_nodes_never_move():
    allocations = {"a": "10.200.0.0/24", "c": "10.200.2.0/24", "d": "10.200.3.0/24"}
    result = run(nodes=nodes("a", "c", "d", "e", "f"), allocations=allocations)
    assert result.cidr_map() == {**allocations, "e": "10.200.1.0/24", "f": "10.200.4.0/24"}
    assert result.new_nodes == ["e", "f"]


def test_allocation_of_node_missing_from_nodes_is_kept():
    result = run(nodes=nodes("b"), allocations={"gone": "10.200.0.0/24"})
    assert result.cidr_map() == {"gone": "10.200.0.0/24", "b": "10.200.1.0/24"}
    assert result.new_nodes == ["b"]


def test_allocations_come_out_in_address_order():
    result = run(nodes=nodes("z", "y"), allocations={"x": "10.200.7.0/24", "w": "10.200.1.0/24"})
    assert list(result.allocations) == ["z", "w", "y", "x"]


def test_inputs_are_not_modified():
    node_list = nodes("a", "b")
    allocations = {"old": "10.200.0.0/24"}
    before = copy.deepcopy((node_list, allocations))
    run(nodes=node_list, allocations=allocations)
    assert (node_list, allocations) == before


def test_huge_block_count_is_not_enumerated():
    # 10.0.0.0/8 in /30 blocks is 4 million blocks: enumerating them would take seconds.
    result = run(
        cluster_cidr="10.0.0.0/8",
        service_cidr="172.16.0.0/24",
        node_pod_prefix=30,
        max_pods=1,
        nodes=nodes("a", "b"),
    )
    assert result.cidr_map() == {"a": "10.0.0.0/30", "b": "10.0.0.4/30"}


def test_five_thousand_nodes_fill_consecutive_blocks():
    names = [f"node-{i}" for i in range(5000)]
    result = run(cluster_cidr="10.0.0.0/8", service_cidr="172.16.0.0/24", nodes=nodes(*names))
    assert result.allocations["node-0"].pod_cidr == "10.0.0.0/24"
    assert result.allocations["node-4999"] == NodeAllocation("10.19.135.0/24", "10.19.135.1")
    assert len(result.new_nodes) == 5000


def test_exactly_as_many_nodes_as_blocks_fits():
    result = run(cluster_cidr="10.200.0.0/22", nodes=nodes("a", "b", "c", "d"))
    assert result.allocations["d"].pod_cidr == "10.200.3.0/24"


def test_node_ips_outside_ranges_and_node_networks_are_accepted():
    node_list = [{"name": "a", "node_ip": "192.168.56.11"}, {"name": "b", "node_ip": "192.168.56.12"}]
    result = run(nodes=node_list, node_networks=["192.168.56.0/24", "172.16.0.0/12"])
    assert result.new_nodes == ["a", "b"]


# Pins


def test_pin_is_honoured_and_reserved_before_unpinned_nodes():
    result = run(nodes=nodes("a", "b", "c", b="10.200.0.0/24"))
    assert result.cidr_map() == {"b": "10.200.0.0/24", "a": "10.200.1.0/24", "c": "10.200.2.0/24"}
    assert result.new_nodes == ["a", "b", "c"]


def test_pin_equal_to_existing_allocation_is_fine():
    result = run(nodes=nodes("a", a="10.200.5.0/24"), allocations={"a": "10.200.5.0/24"})
    assert result.new_nodes == []


def test_pin_outside_cluster_cidr():
    fails(
        "pod_cidr of node 'a' 10.201.0.0/24 is outside cluster_cidr 10.200.0.0/16",
        nodes=nodes("a", a="10.201.0.0/24"),
    )


def test_pin_misaligned():
    fails(
        "pod_cidr of node 'a' 10.200.1.128/24 is not aligned",
        "use 10.200.1.0/24",
        nodes=nodes("a", a="10.200.1.128/24"),
    )


def test_pin_of_wrong_size():
    fails("is a /25, but node_pod_prefix is 24", nodes=nodes("a", a="10.200.1.0/25"))


def test_pin_taken_by_existing_allocation():
    fails(
        "pod_cidr of node 'b' is 10.200.0.0/24, which already belongs to 'a'",
        "pin a free block or remove the pin",
        nodes=nodes("b", b="10.200.0.0/24"),
        allocations={"a": "10.200.0.0/24"},
    )


def test_pin_taken_by_another_pin():
    fails("already belongs to 'a'", nodes=nodes("a", "b", a="10.200.3.0/24", b="10.200.3.0/24"))


def test_pin_that_would_move_a_node():
    fails(
        "pod_cidr of node 'a' is 10.200.9.0/24, but the node already has 10.200.0.0/24",
        "a node never moves",
        nodes=nodes("a", a="10.200.9.0/24"),
        allocations={"a": "10.200.0.0/24"},
    )


# Release


def test_release_frees_block_for_the_next_new_node():
    freed = run(allocations={"a": "10.200.0.0/24", "b": "10.200.1.0/24"}, release=["a"])
    assert freed.cidr_map() == {"b": "10.200.1.0/24"}
    assert freed.released == ["a"]
    assert freed.new_nodes == []
    reused = run(nodes=nodes("b", "c"), allocations=freed.cidr_map())
    assert reused.allocations["c"].pod_cidr == "10.200.0.0/24"


def test_release_of_unknown_or_already_released_node_changes_nothing():
    result = run(allocations={"b": "10.200.1.0/24"}, release=["a", "a"])
    assert result.released == []
    assert result.cidr_map() == {"b": "10.200.1.0/24"}


def test_released_block_may_go_to_a_new_node_of_the_same_run():
    result = run(nodes=nodes("new"), allocations={"old": "10.200.0.0/24"}, release=["old"])
    assert result.cidr_map() == {"new": "10.200.0.0/24"}
    assert (result.released, result.new_nodes) == (["old"], ["new"])


def test_release_of_node_still_listed():
    fails(
        "release names 'a', which is still in nodes",
        "remove the node from nodes",
        nodes=nodes("a"),
        allocations={"a": "10.200.0.0/24"},
        release=["a"],
    )


# Malformed input


@pytest.mark.parametrize(
    ("overrides", "phrase"),
    [
        ({"cluster_cidr": "10.200.0/16"}, "cluster_cidr '10.200.0/16' is not a valid CIDR"),
        ({"cluster_cidr": "10.200.0.0"}, "cluster_cidr '10.200.0.0' is not a valid CIDR"),
        ({"cluster_cidr": "10.200.0.0/255.255.0.0"}, "cluster_cidr '10.200.0.0/255.255.0.0' is not a valid"),
        ({"cluster_cidr": "10.200.0.0/33"}, "cluster_cidr '10.200.0.0/33' is not a valid CIDR"),
        ({"cluster_cidr": 42}, "cluster_cidr must be a CIDR string"),
        ({"service_cidr": "10.32.0.300/24"}, "service_cidr '10.32.0.300/24' is not a valid CIDR"),
        ({"node_networks": ["192.168.1.0/24", "bogus"]}, "node_networks entry 'bogus' is not a valid CIDR"),
        ({"allocations": {"a": "nope"}}, "allocations entry of node 'a' 'nope' is not a valid CIDR"),
        ({"allocations": {"a": None}}, "allocations entry of node 'a' must be a CIDR string"),
        ({"nodes": nodes("a", a="x/24")}, "pod_cidr of node 'a' 'x/24' is not a valid CIDR"),
        (
            {"nodes": [{"name": "a", "node_ip": "192.168.1"}]},
            "node_ip of node 'a' '192.168.1' is not a valid IPv4 address",
        ),
    ],
)
def test_malformed_values_name_the_setting(overrides, phrase):
    message = fails(phrase, **overrides)
    assert "e.g." in message


def test_cluster_cidr_with_host_bits():
    fails(
        "cluster_cidr 10.200.5.0/16 is not aligned to its /16 boundary",
        "use 10.200.0.0/16",
        cluster_cidr="10.200.5.0/16",
    )


def test_duplicate_node_names():
    fails("nodes lists 'a' twice: node names must be unique", nodes=nodes("a", "b", "a"))


def test_node_without_name():
    fails("nodes entry 1 has no name", nodes=[{"name": "a"}, {"name": ""}])


# Overlaps


@pytest.mark.parametrize(
    ("overrides", "phrases"),
    [
        (
            {"service_cidr": "10.200.128.0/24"},
            ("cluster_cidr 10.200.0.0/16 overlaps service_cidr 10.200.128.0/24", "outside cluster_cidr"),
        ),
        (
            {"cluster_cidr": "10.0.0.0/8", "service_cidr": "10.32.0.0/24"},
            ("cluster_cidr 10.0.0.0/8 overlaps service_cidr 10.32.0.0/24",),
        ),
        (
            {"node_networks": ["192.168.0.0/16", "10.200.4.0/22"]},
            (
                "node_networks entry 10.200.4.0/22 overlaps cluster_cidr 10.200.0.0/16",
                "choose a cluster_cidr",
            ),
        ),
        (
            {"node_networks": ["10.0.0.0/8"]},
            ("node_networks entry 10.0.0.0/8 overlaps cluster_cidr",),
        ),
        (
            {"node_networks": ["10.32.0.128/25"]},
            (
                "node_networks entry 10.32.0.128/25 overlaps service_cidr 10.32.0.0/24",
                "choose a service_cidr",
            ),
        ),
        (
            {"nodes": [{"name": "a", "node_ip": "10.200.3.4"}]},
            ("node_ip 10.200.3.4 of node 'a' lies inside cluster_cidr 10.200.0.0/16", "change cluster_cidr"),
        ),
        (
            {"nodes": [{"name": "a", "node_ip": "10.32.0.255"}]},
            ("node_ip 10.32.0.255 of node 'a' lies inside service_cidr 10.32.0.0/24",),
        ),
    ],
)
def test_overlaps(overrides, phrases):
    fails(*phrases, **overrides)


def test_adjacent_ranges_do_not_overlap():
    result = run(
        cluster_cidr="10.200.0.0/16", service_cidr="10.201.0.0/24", node_networks=["10.199.255.0/24"]
    )
    assert result.kubernetes_service_ip == "10.201.0.1"


# Prefix and max_pods


@pytest.mark.parametrize(("prefix", "capacity"), [(24, 253), (25, 125), (26, 61), (30, 1), (31, 0), (32, 0)])
def test_pod_capacity_excludes_network_broadcast_and_bridge(prefix, capacity):
    assert pod_capacity(prefix) == capacity


@pytest.mark.parametrize(("prefix", "max_pods"), [(24, 110), (24, 253), (25, 110), (25, 125), (26, 61)])
def test_max_pods_that_fit(prefix, max_pods):
    assert run(node_pod_prefix=prefix, max_pods=max_pods, nodes=nodes("a")).new_nodes == ["a"]


@pytest.mark.parametrize(
    ("prefix", "max_pods", "message"),
    [
        (
            26,
            110,
            "node_pod_prefix /26 gives 61 pod addresses per node (64 minus network, broadcast and bridge "
            "addresses), fewer than max_pods=110: use node_pod_prefix 25 or smaller, or lower max_pods.",
        ),
        (26, 62, "node_pod_prefix /26 gives 61 pod addresses per node"),
        (25, 126, "node_pod_prefix /25 gives 125 pod addresses per node (128 minus"),
        (24, 254, "node_pod_prefix /24 gives 253 pod addresses per node (256 minus"),
    ],
)
def test_block_too_small_for_max_pods(prefix, max_pods, message):
    assert message in fails(node_pod_prefix=prefix, max_pods=max_pods)


def test_block_too_small_suggests_larger_cluster_when_no_prefix_fits():
    fails(
        "fewer than max_pods=300: use a larger cluster_cidr and a smaller node_pod_prefix, or lower max_pods",
        cluster_cidr="10.200.0.0/24",
        node_pod_prefix=25,
        max_pods=300,
    )


def test_max_pods_must_be_positive():
    fails("max_pods must be at least 1, not 0", max_pods=0)


@pytest.mark.parametrize("prefix", [16, 8, 33])
def test_node_pod_prefix_must_be_longer_than_cluster_prefix(prefix):
    fails(
        f"node_pod_prefix {prefix} must be longer than the cluster_cidr prefix /16",
        "use a value between 17 and 32",
        node_pod_prefix=prefix,
    )


# More nodes than blocks


def test_more_nodes_than_blocks():
    fails(
        "cluster_cidr 10.200.0.0/22 with node_pod_prefix 24 has 4 blocks, but 5 nodes need one "
        "(2 already allocated, 3 new): use a larger cluster_cidr (a /21) or node_pod_prefix 25.",
        cluster_cidr="10.200.0.0/22",
        nodes=nodes("c", "d", "e"),
        allocations={"a": "10.200.0.0/24", "b": "10.200.1.0/24"},
    )


def test_more_nodes_than_blocks_omits_prefix_advice_that_breaks_max_pods():
    message = fails(
        "has 4 blocks, but 5 nodes need one (0 already allocated, 5 new): use a larger cluster_cidr (a /21).",
        cluster_cidr="10.200.0.0/22",
        max_pods=200,
        nodes=nodes("a", "b", "c", "d", "e"),
    )
    assert "node_pod_prefix 25" not in message


def test_released_blocks_count_as_free_for_capacity():
    result = run(
        cluster_cidr="10.200.0.0/23",
        nodes=nodes("b", "c"),
        allocations={"a": "10.200.0.0/24", "b": "10.200.1.0/24"},
        release=["a"],
    )
    assert result.cidr_map() == {"c": "10.200.0.0/24", "b": "10.200.1.0/24"}


# Recorded allocations


@pytest.mark.parametrize(
    ("allocations", "phrases"),
    [
        ({"a": "10.201.0.0/24"}, ("allocations entry of node 'a' 10.201.0.0/24 is outside cluster_cidr",)),
        (
            {"a": "10.200.0.0/23"},
            ("allocations entry of node 'a' 10.200.0.0/23 is a /23, but node_pod_prefix is 24",),
        ),
        ({"a": "10.200.0.7/24"}, ("allocations entry of node 'a' 10.200.0.7/24 is not aligned",)),
        (
            {"a": "10.200.3.0/24", "b": "10.200.3.0/24"},
            ("nodes 'a' and 'b' both claim pod block 10.200.3.0/24", "reset one of them"),
        ),
    ],
)
def test_invalid_recorded_allocations(allocations, phrases):
    fails(*phrases, allocations=allocations)


# The cluster's Node objects as a second record


def test_registered_blocks_are_kept_like_recorded_ones_and_new_nodes_avoid_them():
    result = run(nodes=nodes("a", "b", "new"), registered={"a": "10.200.0.0/24", "b": "10.200.1.0/24"})
    assert result.cidr_map() == {"a": "10.200.0.0/24", "b": "10.200.1.0/24", "new": "10.200.2.0/24"}
    assert result.new_nodes == ["new"]


def test_records_and_registrations_are_merged_when_they_agree():
    result = run(
        nodes=nodes("a", "b", "c"),
        allocations={"a": "10.200.0.0/24", "c": "10.200.5.0/24"},
        registered={"a": "10.200.0.0/24", "b": "10.200.3.0/24"},
    )
    assert result.cidr_map() == {"a": "10.200.0.0/24", "b": "10.200.3.0/24", "c": "10.200.5.0/24"}
    assert result.new_nodes == []


def test_record_that_differs_from_the_node_object_is_an_error():
    fails(
        "node 'a' records pod block 10.200.4.0/24 on the node, but its Node object in the cluster has "
        "podCIDR 10.200.0.0/24",
        "reset the node",
        nodes=nodes("a"),
        allocations={"a": "10.200.4.0/24"},
        registered={"a": "10.200.0.0/24"},
    )


def test_block_claimed_by_a_record_and_by_another_nodes_object_is_an_error():
    fails(
        "both claim pod block 10.200.1.0/24",
        nodes=nodes("a", "b"),
        allocations={"b": "10.200.1.0/24"},
        registered={"a": "10.200.1.0/24"},
    )


def test_registered_node_missing_from_the_inventory_is_an_error():
    fails(
        "node 'ghost' is registered in the cluster with podCIDR 10.200.7.0/24 but is not in the inventory",
        "playbooks/remove_node.yml -e node=ghost",
        nodes=nodes("a"),
        registered={"ghost": "10.200.7.0/24"},
    )


def test_registered_node_being_released_frees_its_block():
    result = run(
        nodes=nodes("a", "next"), registered={"a": "10.200.0.0/24", "gone": "10.200.1.0/24"}, release=["gone"]
    )
    assert result.cidr_map() == {"a": "10.200.0.0/24", "next": "10.200.1.0/24"}
    assert result.released == ["gone"]


def test_two_nodes_with_one_address_is_an_error():
    fails(
        "node_ip 192.168.5.20 is used by both 'a' and 'b'",
        nodes=[{"name": "a", "node_ip": "192.168.5.20"}, {"name": "b", "node_ip": "192.168.5.20"}],
    )


# Service CIDR


def test_cluster_dns_index_is_configurable():
    assert run(cluster_dns_index=53).cluster_dns_ip == "10.32.0.53"


@pytest.mark.parametrize("index", [0, 1, 255, 256])
def test_cluster_dns_index_out_of_range(index):
    fails(
        f"cluster_dns_index {index} is outside service_cidr 10.32.0.0/24, whose free indexes are 2 to 254",
        "pick an index in that range or a larger service_cidr",
        cluster_dns_index=index,
    )


@pytest.mark.parametrize("index", [2, 254])
def test_cluster_dns_index_bounds(index):
    assert run(cluster_dns_index=index).cluster_dns_ip == f"10.32.0.{index}"


@pytest.mark.parametrize("service", ["10.32.0.0/31", "10.32.0.0/32"])
def test_service_cidr_too_small(service):
    fails(f"service_cidr {service} is too small: it needs at least 4 addresses (a /30)", service_cidr=service)


def test_smallest_service_cidr():
    assert service_ips("10.32.0.0/30", 2) == ("10.32.0.1", "10.32.0.2")


def test_default_dns_index_does_not_fit_a_slash_29():
    fails(
        "cluster_dns_index 10 is outside service_cidr 10.32.0.0/29, whose free indexes are 2 to 6",
        service_cidr="10.32.0.0/29",
    )


# IPv6 is rejected, everywhere


@pytest.mark.parametrize(
    ("overrides", "setting"),
    [
        ({"cluster_cidr": "fd00:10::/48"}, "cluster_cidr fd00:10::/48"),
        ({"service_cidr": "fd00:20::/112"}, "service_cidr fd00:20::/112"),
        ({"node_networks": ["2001:db8::/64"]}, "node_networks entry 2001:db8::/64"),
        ({"nodes": [{"name": "a", "node_ip": "2001:db8::1"}]}, "node_ip of node 'a' 2001:db8::1"),
        ({"nodes": nodes("a", a="fd00::/64")}, "pod_cidr of node 'a' fd00::/64"),
        (
            {"allocations": {"a": "::ffff:10.200.0.0/120"}},
            "allocations entry of node 'a' ::ffff:10.200.0.0/120",
        ),
    ],
)
def test_ipv6_is_not_supported_yet(overrides, setting):
    fails(f"{setting} is IPv6, and IPv6 is not supported yet: use an IPv4 value.", **overrides)


# No partial output


def test_error_after_partial_work_returns_nothing_and_leaves_inputs_alone():
    allocations = {"a": "10.200.0.0/24", "b": "10.200.1.0/24"}
    node_list = nodes("a", "c", "d", "e")
    before = copy.deepcopy((allocations, node_list))
    result = None
    with pytest.raises(CidrError):
        result = run(cluster_cidr="10.200.0.0/22", nodes=node_list, allocations=allocations)
    assert result is None
    assert (allocations, node_list) == before


# Helpers shared with the filter plugin


def test_bridge_ip():
    assert bridge_ip("10.200.7.0/24") == "10.200.7.1"
    assert bridge_ip("10.200.7.4/30") == "10.200.7.5"


@pytest.mark.parametrize(
    ("value", "phrase"),
    [
        ("10.200.7.0/31", "pod_cidr 10.200.7.0/31 has no room for a bridge and pods"),
        ("10.200.7.1/24", "pod_cidr 10.200.7.1/24 is not aligned"),
        ("fd00::/64", "IPv6 is not supported yet"),
    ],
)
def test_bridge_ip_errors(value, phrase):
    with pytest.raises(CidrError, match=phrase):
        bridge_ip(value)


def test_service_ips():
    assert service_ips("10.96.0.0/12") == ("10.96.0.1", "10.96.0.10")


def test_filters_use_the_core():
    filters = cidr_filter.FilterModule().filters()
    assert filters["service_ips"]("10.32.0.0/24") == {"kubernetes": "10.32.0.1", "dns": "10.32.0.10"}
    assert filters["service_ips"]("10.32.0.0/24", "53") == {"kubernetes": "10.32.0.1", "dns": "10.32.0.53"}
    assert filters["bridge_ip"]("10.200.3.0/24") == "10.200.3.1"


@pytest.mark.parametrize(
    ("name", "args", "phrase"),
    [
        ("service_ips", ("10.32.0.0/24", 300), "cluster_dns_index 300 is outside service_cidr"),
        ("service_ips", ("10.32.0.0/24", "ten"), "cluster_dns_index must be an integer, not 'ten'"),
        ("bridge_ip", ("10.200.3.0",), "pod_cidr '10.200.3.0' is not a valid CIDR"),
    ],
)
def test_filter_errors_are_filter_errors(name, args, phrase):
    with pytest.raises(AnsibleFilterError, match=phrase):
        cidr_filter.FilterModule().filters()[name](*args)
