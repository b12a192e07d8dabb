# SPDX-License-Identifier: Apache-2.0
"""Pod CIDR allocation and Service addresses: the collection's one copy of the CIDR math.

The cluster CIDR is cut into equal blocks of ``node_pod_prefix`` bits, numbered from 0 at the
start of the range. Every decision is taken on those integer block indexes; netaddr only parses
and validates what users typed, so planning 5,000 nodes costs a few milliseconds and never
enumerates the blocks of a large cluster CIDR.

Only IPv4 is supported for now; IPv6 input is rejected with a message saying so.

Capacity of a block: a /N block has ``2**(32 - N)`` addresses, of which the network and broadcast
addresses are unusable and the first usable one is the node's bridge (the pod gateway). The rest,
``2**(32 - N) - 3``, are pod addresses and must cover ``max_pods``.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

# Absent on a host without netaddr: the cidr_allocation module and the filters check _deps first.
with contextlib.suppress(ImportError):
    from netaddr import AddrFormatError, IPAddress, IPNetwork

_BITS = 32
# Network, broadcast and bridge addresses of every pod block.
_RESERVED_PER_BLOCK = 3

# name, node_ip, pod_cidr pin (the last two may be None)
_Node = tuple[str, Any, Any]


class CidrError(ValueError):
    """A setting that cannot produce a valid address plan; the message names the fix."""


@dataclass(frozen=True)
class NodeAllocation:
    pod_cidr: str
    bridge_ip: str


@dataclass(frozen=True)
class Plan:
    """The complete address plan; built only when every input is valid."""

    allocations: dict[str, NodeAllocation]
    kubernetes_service_ip: str
    cluster_dns_ip: str
    new_nodes: list[str] = field(default_factory=list)
    released: list[str] = field(default_factory=list)

    def cidr_map(self) -> dict[str, str]:
        return {name: allocation.pod_cidr for name, allocation in self.allocations.items()}


def _ip(value: int) -> str:
    return str(IPAddress(value, 4))


def _bridge(first: int) -> str:
    return _ip(first + 1)


def _reject_ipv6(setting: str, text: str) -> None:
    if ":" in text:
        raise CidrError(f"{setting} {text} is IPv6, and IPv6 is not supported yet: use an IPv4 value.")


def parse_cidr(setting: str, text: Any) -> IPNetwork:
    """Parse an IPv4 ``address/prefix`` whose host bits are zero; ``setting`` names it in errors."""
    if not isinstance(text, str):
        raise CidrError(f"{setting} must be a CIDR string, e.g. 10.200.0.0/16, not {text!r}.")
    _reject_ipv6(setting, text)
    slash, prefix = text.partition("/")[1:]
    try:
        if not slash or not prefix.isdigit():
            raise AddrFormatError(text)
        network = IPNetwork(text)
    except (AddrFormatError, ValueError, TypeError):
        raise CidrError(
            f"{setting} {text!r} is not a valid CIDR: write it as address/prefix, e.g. 10.200.0.0/16."
        ) from None
    if network.value != network.first:
        raise CidrError(
            f"{setting} {text} is not aligned to its /{network.prefixlen} boundary (host bits are set): "
            f"use {network.cidr}."
        )
    return network


def parse_ip(setting: str, text: Any) -> int:
    """Parse an IPv4 address into an integer; ``setting`` names it in errors."""
    if not isinstance(text, str):
        raise CidrError(f"{setting} must be an IPv4 address string, e.g. 192.168.1.10, not {text!r}.")
    _reject_ipv6(setting, text)
    try:
        return int(IPAddress(text, 4))
    except (AddrFormatError, ValueError, TypeError):
        raise CidrError(f"{setting} {text!r} is not a valid IPv4 address, e.g. 192.168.1.10.") from None


def pod_capacity(prefix: int) -> int:
    """Pod addresses in one /prefix block: all addresses minus network, broadcast and bridge."""
    return max(2 ** (_BITS - prefix) - _RESERVED_PER_BLOCK, 0)


def _longest_prefix_for(max_pods: int) -> int:
    prefix = _BITS
    while prefix > 0 and pod_capacity(prefix) < max_pods:
        prefix -= 1
    return prefix


def bridge_ip(pod_cidr: str) -> str:
    """First usable address of a node's pod block, where its bridge (pod gateway) lives."""
    network = parse_cidr("pod_cidr", pod_cidr)
    if pod_capacity(network.prefixlen) < 1:
        raise CidrError(f"pod_cidr {pod_cidr} has no room for a bridge and pods: use a /30 or larger block.")
    return _bridge(network.first)


def service_ips(service_cidr: str, cluster_dns_index: int = 10) -> tuple[str, str]:
    """Return the ``kubernetes`` Service IP (network + 1) and the cluster DNS IP (network + index)."""
    network = parse_cidr("service_cidr", service_cidr)
    size = network.size
    if size < 4:
        raise CidrError(
            f"service_cidr {service_cidr} is too small: it needs at least 4 addresses (a /30) to hold "
            "the kubernetes Service and cluster DNS; use a shorter prefix such as /24."
        )
    # Index 0 is the network, 1 the kubernetes Service and size - 1 the broadcast address.
    if not 2 <= cluster_dns_index <= size - 2:
        raise CidrError(
            f"cluster_dns_index {cluster_dns_index} is outside service_cidr {service_cidr}, whose free "
            f"indexes are 2 to {size - 2}: pick an index in that range or a larger service_cidr."
        )
    return _ip(network.first + 1), _ip(network.first + cluster_dns_index)


def _overlaps(a: IPNetwork, b: IPNetwork) -> bool:
    return a.first <= b.last and b.first <= a.last


class _Blocks:
    """The cluster CIDR as numbered blocks of ``prefix`` bits."""

    def __init__(self, cluster: IPNetwork, prefix: int) -> None:
        self.cluster = cluster
        self.prefix = prefix
        self.shift = _BITS - prefix
        self.count = 2 ** (prefix - cluster.prefixlen)

    def index(self, setting: str, text: Any) -> int:
        network = parse_cidr(setting, text)
        if not (self.cluster.first <= network.first and network.last <= self.cluster.last):
            raise CidrError(
                f"{setting} {text} is outside cluster_cidr {self.cluster}: use a /{self.prefix} block "
                "inside cluster_cidr."
            )
        if network.prefixlen != self.prefix:
            raise CidrError(
                f"{setting} {text} is a /{network.prefixlen}, but node_pod_prefix is {self.prefix}: "
                f"use a /{self.prefix} block inside cluster_cidr {self.cluster}."
            )
        return (network.first - self.cluster.first) >> self.shift

    def cidr(self, index: int) -> str:
        return f"{_ip(self.cluster.first + (index << self.shift))}/{self.prefix}"

    def bridge(self, index: int) -> str:
        return _bridge(self.cluster.first + (index << self.shift))


def _check_prefix(cluster: IPNetwork, prefix: int, max_pods: int) -> None:
    if max_pods < 1:
        raise CidrError(f"max_pods must be at least 1, not {max_pods}.")
    if not cluster.prefixlen < prefix <= _BITS:
        raise CidrError(
            f"node_pod_prefix {prefix} must be longer than the cluster_cidr prefix /{cluster.prefixlen} "
            f"and at most {_BITS}: use a value between {cluster.prefixlen + 1} and {_BITS}, "
            "or a larger cluster_cidr."
        )
    capacity = pod_capacity(prefix)
    if capacity < max_pods:
        longest = _longest_prefix_for(max_pods)
        fix = (
            f"use node_pod_prefix {longest} or smaller"
            if longest > cluster.prefixlen
            else "use a larger cluster_cidr and a smaller node_pod_prefix"
        )
        raise CidrError(
            f"node_pod_prefix /{prefix} gives {capacity} pod addresses per node ({2 ** (_BITS - prefix)} "
            f"minus network, broadcast and bridge addresses), fewer than max_pods={max_pods}: "
            f"{fix}, or lower max_pods."
        )


def _check_overlaps(
    cluster: IPNetwork, service: IPNetwork, node_networks: Sequence[IPNetwork], nodes: Sequence[_Node]
) -> None:
    if _overlaps(cluster, service):
        raise CidrError(
            f"cluster_cidr {cluster} overlaps service_cidr {service}: choose a service_cidr outside "
            "cluster_cidr."
        )
    for network in node_networks:
        for setting, other in (("cluster_cidr", cluster), ("service_cidr", service)):
            if _overlaps(network, other):
                raise CidrError(
                    f"node_networks entry {network} overlaps {setting} {other}: choose a {setting} "
                    "that does not share addresses with the networks the nodes live on."
                )
    for name, node_ip, _pin in nodes:
        if node_ip is None:
            continue
        address = parse_ip(f"node_ip of node {name!r}", node_ip)
        for setting, other in (("cluster_cidr", cluster), ("service_cidr", service)):
            if other.first <= address <= other.last:
                raise CidrError(
                    f"node_ip {node_ip} of node {name!r} lies inside {setting} {other}: node addresses "
                    f"must stay outside the pod and Service ranges; change {setting} or the node's node_ip."
                )


def _normalise_nodes(nodes: Iterable[Mapping[str, Any]]) -> list[_Node]:
    seen: set[str] = set()
    address_owner: dict[Any, str] = {}
    result = []
    for position, node in enumerate(nodes):
        name = node.get("name")
        if not isinstance(name, str) or not name:
            raise CidrError(f"nodes entry {position} has no name: give every node a unique name.")
        if name in seen:
            raise CidrError(f"nodes lists {name!r} twice: node names must be unique.")
        seen.add(name)
        node_ip = node.get("node_ip")
        if node_ip is not None:
            if node_ip in address_owner:
                raise CidrError(
                    f"node_ip {node_ip} is used by both {address_owner[node_ip]!r} and {name!r}: every "
                    "node needs an address of its own; correct the node_ip (or the inventory entry) of one "
                    "of them."
                )
            address_owner[node_ip] = name
        result.append((name, node_ip, node.get("pod_cidr")))
    return result


def _merge_records(
    recorded: Mapping[str, str], registered: Mapping[str, str], listed: set[str], releasing: set[str]
) -> dict[str, str]:
    """One allocation map from the nodes' own records and the blocks the cluster's Node objects hold.

    The cluster wins nothing silently: a node whose two records differ, or a registered node the
    inventory lacks, is an error, because either way one of the sources is wrong and routing on a
    guess would send pods' traffic to the wrong node.
    """
    for name in sorted(recorded.keys() & registered.keys()):
        if recorded[name] != registered[name]:
            raise CidrError(
                f"node {name!r} records pod block {recorded[name]} on the node, but its Node object in "
                f"the cluster has podCIDR {registered[name]}: the API cannot change a podCIDR, so make the "
                f"node match it (write {registered[name]} in the node's record, or reset the node and add "
                "it again)."
            )
    for name in sorted(registered.keys() - listed - releasing):
        raise CidrError(
            f"node {name!r} is registered in the cluster with podCIDR {registered[name]} but is not in the "
            f"inventory: add it back to the inventory, or remove it from the cluster "
            f"(playbooks/remove_node.yml -e node={name})."
        )
    return {**recorded, **registered}


def _capacity_error(blocks: _Blocks, kept: int, new: int, max_pods: int) -> CidrError:
    needed = kept + new
    extra_bits = (needed - 1).bit_length()
    cluster_prefix = blocks.prefix - extra_bits
    larger = f"a larger cluster_cidr (a /{cluster_prefix})" if cluster_prefix > 0 else "a larger cluster_cidr"
    longer_prefix = blocks.cluster.prefixlen + extra_bits
    longer = (
        f" or node_pod_prefix {longer_prefix}"
        if longer_prefix <= _BITS and pod_capacity(longer_prefix) >= max_pods
        else ""
    )
    return CidrError(
        f"cluster_cidr {blocks.cluster} with node_pod_prefix {blocks.prefix} has {blocks.count} blocks, "
        f"but {needed} nodes need one ({kept} already allocated, {new} new): use {larger}{longer}."
    )


def plan(
    *,
    cluster_cidr: str,
    node_pod_prefix: int,
    service_cidr: str,
    nodes: Iterable[Mapping[str, Any]] = (),
    allocations: Mapping[str, str] | None = None,
    max_pods: int = 110,
    cluster_dns_index: int = 10,
    node_networks: Iterable[str] = (),
    release: Iterable[str] = (),
    registered: Mapping[str, str] | None = None,
) -> Plan:
    """Compute the address plan, or raise :class:`CidrError` without returning anything partial.

    Existing allocations (``allocations``, the nodes' own records, and ``registered``, the blocks
    the cluster's Node objects hold) are kept, also for nodes not in ``nodes``, unless named in
    ``release``; the two sources must agree, and every registered node must be in ``nodes`` or
    ``release``. Pins (``pod_cidr`` of a node) are reserved next; the remaining new nodes then take
    the lowest free blocks, in the order of ``nodes``. A block released here may go to a new node
    at once.
    """
    cluster = parse_cidr("cluster_cidr", cluster_cidr)
    service = parse_cidr("service_cidr", service_cidr)
    networks = [parse_cidr("node_networks entry", text) for text in node_networks]
    _check_prefix(cluster, node_pod_prefix, max_pods)
    kubernetes_ip, dns_ip = service_ips(service_cidr, cluster_dns_index)
    node_list = _normalise_nodes(nodes)
    _check_overlaps(cluster, service, networks, node_list)
    listed = {name for name, _node_ip, _pin in node_list}
    allocations = _merge_records(allocations or {}, registered or {}, listed, set(release))

    blocks = _Blocks(cluster, node_pod_prefix)
    owner: dict[int, str] = {}
    index_of: dict[str, int] = {}
    for name, text in allocations.items():
        index = blocks.index(f"allocations entry of node {name!r}", text)
        if index in owner:
            raise CidrError(
                f"nodes {owner[index]!r} and {name!r} both claim pod block {text} (in their records on the "
                "nodes or their Node objects in the cluster): a block belongs to one node; reset one of them "
                "and add it again."
            )
        owner[index] = name
        index_of[name] = index

    released = []
    for name in dict.fromkeys(release):
        if name in listed:
            raise CidrError(
                f"release names {name!r}, which is still in nodes: remove the node from nodes "
                "(the inventory) before releasing its block."
            )
        if name in index_of:
            del owner[index_of.pop(name)]
            released.append(name)

    kept = len(owner)
    new_nodes = [name for name, _node_ip, _pin in node_list if name not in index_of]
    for name, _node_ip, pin in node_list:
        if pin is None:
            continue
        index = blocks.index(f"pod_cidr of node {name!r}", pin)
        if name in index_of:
            if index_of[name] != index:
                current = blocks.cidr(index_of[name])
                raise CidrError(
                    f"pod_cidr of node {name!r} is {pin}, but the node already has {current}: a node never "
                    f"moves; set its pod_cidr to {current} or remove the pin."
                )
        elif index in owner:
            raise CidrError(
                f"pod_cidr of node {name!r} is {pin}, which already belongs to {owner[index]!r}: "
                "pin a free block or remove the pin."
            )
        else:
            owner[index] = name
            index_of[name] = index

    if kept + len(new_nodes) > blocks.count:
        raise _capacity_error(blocks, kept, len(new_nodes), max_pods)
    candidate = 0
    for name in new_nodes:
        if name in index_of:  # pinned
            continue
        while candidate in owner:
            candidate += 1
        owner[candidate] = name

    return Plan(
        allocations={
            owner[index]: NodeAllocation(blocks.cidr(index), blocks.bridge(index)) for index in sorted(owner)
        },
        kubernetes_service_ip=kubernetes_ip,
        cluster_dns_ip=dns_ip,
        new_nodes=new_nodes,
        released=released,
    )
