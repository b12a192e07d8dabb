#!/usr/bin/python
# SPDX-License-Identifier: Apache-2.0

from __future__ import annotations

DOCUMENTATION = r"""
module: cidr_allocation
short_description: Plan pod CIDR blocks per node and the Service IPs of a cluster
version_added: "0.1.0"
author: scratch.kubernetes developers (@scratch-kubernetes)
description:
  - Cuts O(cluster_cidr) into blocks of O(node_pod_prefix) bits and gives each node one block for its
    pods. The first usable address of a block is the node's bridge (the pods' gateway).
  - Stable. A node that already has a block (in O(allocations)) keeps it forever, also when it is not
    listed in O(nodes); a new node takes the lowest free block, in the order of O(nodes). A pinned
    O(nodes[].pod_cidr) is honoured. A block is freed only with O(state=absent) and the node named in
    O(release).
  - Also computes the C(kubernetes) Service IP (first usable address of O(service_cidr)) and the cluster
    DNS IP (the address at O(cluster_dns_index) in O(service_cidr)).
  - Validates the whole address plan first and fails with one message naming the setting and the fix, with
    no partial result. Checked are malformed CIDRs, overlaps between O(cluster_cidr), O(service_cidr) and
    O(node_networks), node addresses inside the pod or Service ranges, blocks too small for O(max_pods),
    more nodes than blocks, bad pins and invalid recorded allocations.
  - The module only computes; it reads and writes nothing on any host. Keeping the result (for example in
    each node's local facts) and feeding it back through O(allocations) is the caller's job. Run it once on
    the controller, with C(delegate_to=localhost) and C(run_once=true).
  - Only IPv4 is supported yet; any IPv6 value is rejected with a message saying so.
extends_documentation_fragment:
  - scratch.kubernetes._attributes
  - scratch.kubernetes._attributes.FULL
attributes:
  check_mode:
    details: The module changes nothing, so check mode returns exactly what a real run returns.
  diff_mode:
    details: The diff maps node names to pod CIDRs, before and after.
requirements:
  - netaddr
options:
  cluster_cidr:
    description: IPv4 CIDR from which every node's pod block is cut.
    type: str
    required: true
  node_pod_prefix:
    description:
      - Prefix length of each node's pod block; must be longer than the prefix of O(cluster_cidr).
      - A /N block holds V(2^(32-N\) - 3) pods. The network, broadcast and bridge addresses are not
        available to pods, so a /24 holds 253 pods, a /25 125 and a /26 61.
    type: int
    default: 24
  service_cidr:
    description: IPv4 CIDR of the cluster's Services; at least a /30.
    type: str
    required: true
  nodes:
    description: The nodes that need a block, in the order in which new nodes receive free blocks.
    type: list
    elements: dict
    default: []
    suboptions:
      name:
        description: Node name, unique.
        type: str
        required: true
      node_ip:
        description:
          - The node's address, unique among the nodes; must lie outside O(cluster_cidr) and O(service_cidr).
        type: str
      pod_cidr:
        description:
          - Pin this block, a /O(node_pod_prefix) block inside O(cluster_cidr) that no other node has.
          - A node never moves, so a pin that differs from the node's recorded allocation is an error.
        type: str
  allocations:
    description:
      - Recorded allocations, node name to pod CIDR, as returned by earlier runs (for example kept in each
        node's local facts).
    type: dict
    default: {}
  registered:
    description:
      - The blocks the cluster already holds, node name to C(node.spec.podCIDR) of each Node object in the
        API.
      - The cluster is the source of truth, and nothing is guessed when sources disagree. A node whose entry
        here differs from its entry in O(allocations) is an error, as is a node registered here that is
        neither in O(nodes) nor in O(release) (a Node the inventory lacks).
    type: dict
    default: {}
    version_added: "0.2.0"
  max_pods:
    description: The kubelet's maxPods; every block must hold at least this many pod addresses.
    type: int
    default: 110
  cluster_dns_index:
    description: Index of the cluster DNS IP in O(service_cidr), from 2 to the size of the range minus 2.
    type: int
    default: 10
  node_networks:
    description: IPv4 CIDRs the nodes live on; none may overlap O(cluster_cidr) or O(service_cidr).
    type: list
    elements: str
    default: []
  state:
    description:
      - V(present) keeps every recorded allocation and gives new nodes a block.
      - V(absent) additionally frees the blocks of the nodes in O(release) first; a freed block may go to a
        new node of the same run.
    type: str
    choices: [present, absent]
    default: present
  release:
    description:
      - Names of nodes whose blocks are freed; required with O(state=absent), not allowed otherwise.
      - A released node must no longer be in O(nodes). Naming a node without a block changes nothing.
    type: list
    elements: str
    default: []
notes:
  - The result is deterministic; the same input always gives the same plan.
seealso:
  - name: Kubernetes cluster networking
    description: How pods, Services and nodes are addressed.
    link: https://kubernetes.io/docs/concepts/cluster-administration/networking/
"""

EXAMPLES = r"""
- name: Plan pod CIDRs and Service IPs; master-1 keeps its recorded block, minion-2 is pinned
  scratch.kubernetes.cidr_allocation:
    cluster_cidr: 10.200.0.0/16
    service_cidr: 10.32.0.0/24
    nodes:
      - name: master-1
        node_ip: 192.168.56.11
      - name: minion-1
        node_ip: 192.168.56.21
      - name: minion-2
        node_ip: 192.168.56.22
        pod_cidr: 10.200.9.0/24
    allocations:
      master-1: 10.200.0.0/24
  delegate_to: localhost
  run_once: true
  register: __plan
# __plan.allocations:
#   master-1: {pod_cidr: 10.200.0.0/24, bridge_ip: 10.200.0.1}
#   minion-1: {pod_cidr: 10.200.1.0/24, bridge_ip: 10.200.1.1}
#   minion-2: {pod_cidr: 10.200.9.0/24, bridge_ip: 10.200.9.1}
# __plan.kubernetes_service_ip: 10.32.0.1, __plan.cluster_dns_ip: 10.32.0.10

- name: Free the block of minion-2, decommissioned; the earlier result is fed back as allocations
  scratch.kubernetes.cidr_allocation:
    cluster_cidr: 10.200.0.0/16
    service_cidr: 10.32.0.0/24
    allocations: >-
      {{ dict(__plan.allocations.keys() | zip(__plan.allocations.values() | map(attribute='pod_cidr'))) }}
    state: absent
    release: [minion-2]
  delegate_to: localhost
  run_once: true
"""

RETURN = r"""
allocations:
  description: Every node's block, the recorded ones included, keyed by node name, in address order.
  returned: success
  type: dict
  sample:
    master-1: {pod_cidr: 10.200.0.0/24, bridge_ip: 10.200.0.1}
    minion-1: {pod_cidr: 10.200.1.0/24, bridge_ip: 10.200.1.1}
  contains:
    pod_cidr:
      description: The node's pod CIDR.
      type: str
      returned: success
    bridge_ip:
      description: First usable address of the block, for the node's bridge.
      type: str
      returned: success
kubernetes_service_ip:
  description: ClusterIP of the C(kubernetes) Service, the first usable address of O(service_cidr).
  returned: success
  type: str
  sample: 10.32.0.1
cluster_dns_ip:
  description: Cluster DNS IP, the address at O(cluster_dns_index) in O(service_cidr).
  returned: success
  type: str
  sample: 10.32.0.10
new_nodes:
  description: Nodes that received a block in this run, in the order of O(nodes).
  returned: success
  type: list
  elements: str
  sample: [minion-1]
released:
  description: Nodes whose block was freed in this run.
  returned: success
  type: list
  elements: str
  sample: []
"""

from ansible.module_utils.basic import AnsibleModule
from ansible_collections.scratch.kubernetes.plugins.module_utils._cidr import CidrError, plan
from ansible_collections.scratch.kubernetes.plugins.module_utils._deps import require


def main() -> None:
    module = AnsibleModule(
        argument_spec=dict(
            cluster_cidr=dict(type="str", required=True),
            node_pod_prefix=dict(type="int", default=24),
            service_cidr=dict(type="str", required=True),
            nodes=dict(
                type="list",
                elements="dict",
                default=[],
                options=dict(
                    name=dict(type="str", required=True),
                    node_ip=dict(type="str"),
                    pod_cidr=dict(type="str"),
                ),
            ),
            allocations=dict(type="dict", default={}),
            registered=dict(type="dict", default={}),
            max_pods=dict(type="int", default=110),
            cluster_dns_index=dict(type="int", default=10),
            node_networks=dict(type="list", elements="str", default=[]),
            state=dict(type="str", choices=["present", "absent"], default="present"),
            release=dict(type="list", elements="str", default=[]),
        ),
        supports_check_mode=True,
    )
    require(module, "netaddr")

    params = module.params
    # release defaults to [], which required_if would count as given.
    if params["state"] == "absent" and not params["release"]:
        module.fail_json(msg="state=absent needs release: list the nodes whose blocks to free.")
    if params["state"] == "present" and params["release"]:
        module.fail_json(msg="release frees blocks only with state=absent: set state=absent or drop release.")
    try:
        result = plan(
            cluster_cidr=params["cluster_cidr"],
            node_pod_prefix=params["node_pod_prefix"],
            service_cidr=params["service_cidr"],
            nodes=params["nodes"],
            allocations=params["allocations"],
            max_pods=params["max_pods"],
            cluster_dns_index=params["cluster_dns_index"],
            node_networks=params["node_networks"],
            release=params["release"],
            registered=params["registered"],
        )
    except CidrError as error:
        module.fail_json(msg=str(error))
    output = dict(
        changed=bool(result.new_nodes or result.released),
        allocations={
            name: dict(pod_cidr=block.pod_cidr, bridge_ip=block.bridge_ip)
            for name, block in result.allocations.items()
        },
        kubernetes_service_ip=result.kubernetes_service_ip,
        cluster_dns_ip=result.cluster_dns_ip,
        new_nodes=result.new_nodes,
        released=result.released,
    )
    if module._diff:
        output["diff"] = dict(before=dict(params["allocations"]), after=result.cidr_map())
    module.exit_json(**output)


if __name__ == "__main__":
    main()
