#!/usr/bin/python
# SPDX-License-Identifier: Apache-2.0

from __future__ import annotations

DOCUMENTATION = r"""
module: balancer_servers
short_description: Drain apiservers from a node's balancer, or put them back
version_added: "0.3.0"
author: scratch.kubernetes developers (@scratch-kubernetes)
description:
  - Sets servers of the node's apiserver balancer (HAProxy, role C(apiserver_balancer)) to C(drain) or
    C(ready) through its runtime API socket. The change lasts until HAProxy reloads or restarts.
  - A drained apiserver gets no new connection; those under way finish. The control plane role drains an
    apiserver on every node's balancer before it restarts it, and puts it back once it is ready, so that
    a planned restart fails no request.
  - Reads every server's state first (C(show servers state)) and changes only those not in O(state) yet.
  - Where no balancer listens on the socket (none installed, or stopped by C(reset.yml)), none runs, and a
    balancer without a named server does not send it anything (a run limited to some nodes may leave another
    node's balancer without a new master). Neither is a change, nor an error.
extends_documentation_fragment:
  - scratch.kubernetes._attributes
attributes:
  check_mode:
    support: full
    details: Reads the servers' states and reports which would change.
  diff_mode:
    support: none
options:
  socket:
    description: The balancer's runtime API socket, with admin level.
    type: path
    required: true
  backend:
    description: The HAProxy backend of the apiservers.
    type: str
    default: apiservers
  servers:
    description:
      - The servers to set, by their names in the balancer's configuration (the masters' inventory names).
      - Omitted, every server of the backend.
    type: list
    elements: str
  state:
    description:
      - V(drain) sends no new connection to the servers. V(ready) takes them out of drain and out of
        maintenance set through the runtime API.
    type: str
    choices: [ready, drain]
    required: true
"""

EXAMPLES = r"""
- name: Take this master's apiserver out of every node's balancer
  scratch.kubernetes.balancer_servers:
    socket: /run/haproxy/apiserver-balancer.sock
    servers: ["{{ inventory_hostname }}"]
    state: drain
  delegate_to: "{{ item }}"
  loop: "{{ groups['minions'] }}"

- name: Put every apiserver back into this node's balancer
  scratch.kubernetes.balancer_servers:
    socket: /run/haproxy/apiserver-balancer.sock
    state: ready
"""

RETURN = r"""
servers:
  description: The servers whose state changed (or would).
  returned: success
  type: list
  elements: str
  sample: [k8s-master-2]
unknown:
  description: Named servers that the balancer does not have.
  returned: success
  type: list
  elements: str
  sample: []
running:
  description: Whether a balancer answered on O(socket).
  returned: success
  type: bool
  sample: true
"""

from ansible.module_utils.basic import AnsibleModule
from ansible_collections.scratch.kubernetes.plugins.module_utils._balancer import (
    STATES,
    BalancerError,
    BalancerNotRunning,
    RuntimeApi,
    set_servers_state,
)


def main() -> None:
    module = AnsibleModule(
        argument_spec={
            "socket": {"type": "path", "required": True},
            "backend": {"type": "str", "default": "apiservers"},
            "servers": {"type": "list", "elements": "str"},
            "state": {"type": "str", "choices": list(STATES), "required": True},
        },
        supports_check_mode=True,
    )
    path = module.params["socket"]
    try:
        report = set_servers_state(
            RuntimeApi(path),
            module.params["backend"],
            module.params["servers"],
            module.params["state"],
            check_mode=module.check_mode,
        )
    except BalancerNotRunning:
        module.exit_json(changed=False, servers=[], unknown=[], running=False)
    except (BalancerError, OSError) as error:
        module.fail_json(msg=f"balancer at {path}: {error}")
    module.exit_json(
        changed=bool(report.changed), servers=report.changed, unknown=report.unknown, running=True
    )


if __name__ == "__main__":
    main()
