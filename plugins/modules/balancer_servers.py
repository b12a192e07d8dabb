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
  - With O(start), first enables and starts the balancer's unit (O(unit)) where it is not, as
    M(scratch.kubernetes.services) does, so that the balancer role needs no task of its own for that.
  - With O(reload_if_changed), first reloads the balancer when its serving worker started before one of those
    files last changed, and waits for the new worker. HAProxy reloads rather than restarts, so its unit's
    start time cannot tell; this rule covers the reload after this run's change and the one a killed run
    never made.
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
  reload_if_changed:
    description:
      - Files the balancer reads (its configuration and certificate), such as
        RV(scratch.kubernetes.install_files#module:files) of the task that installed them.
      - Missing files are ignored.
    type: list
    elements: path
    default: []
  unit:
    description: The balancer's systemd unit, started for O(start) and reloaded for O(reload_if_changed).
    type: str
    default: haproxy
  start:
    description: Enable and start O(unit) first where it is not enabled or not running.
    type: bool
    default: false
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
started:
  description: Whether O(unit) was enabled or started (or would be) for O(start).
  returned: success
  type: bool
  sample: false
reloaded:
  description: Whether the balancer was reloaded (or would be) for O(reload_if_changed).
  returned: success
  type: bool
  sample: false
running:
  description: Whether a balancer answered on O(socket).
  returned: success
  type: bool
  sample: true
"""

import time

from ansible.module_utils.basic import AnsibleModule
from ansible_collections.scratch.kubernetes.plugins.module_utils._balancer import (
    STATES,
    BalancerError,
    BalancerNotRunning,
    RuntimeApi,
    reload_owed,
    set_servers_state,
)
from ansible_collections.scratch.kubernetes.plugins.module_utils._services import (
    ServiceError,
    ensure_running,
    newest_change,
)

RELOAD_TIMEOUT = 30.0


def changed_since_boot(paths: list[str]) -> float | None:
    """The latest modification time among the paths that exist, in seconds since boot, or None."""
    changed_at = newest_change(paths)
    if changed_at is None:
        return None
    return changed_at - (time.time() - time.clock_gettime(time.CLOCK_BOOTTIME))


def reload(module: AnsibleModule, api: RuntimeApi, changed_at: float) -> None:
    """Reloads the unit and waits until a worker that started after the change serves the socket."""
    module.run_command(["systemctl", "reload", module.params["unit"]], check_rc=True)
    deadline = time.monotonic() + RELOAD_TIMEOUT
    while True:
        try:
            if not reload_owed(api, changed_at):
                return
        except (BalancerNotRunning, FileNotFoundError):
            pass  # between the old worker and the new one
        if time.monotonic() > deadline:
            raise BalancerError(f"no new worker serves the balancer {RELOAD_TIMEOUT:.0f} s after its reload")
        time.sleep(0.2)


def main() -> None:
    module = AnsibleModule(
        argument_spec={
            "socket": {"type": "path", "required": True},
            "backend": {"type": "str", "default": "apiservers"},
            "servers": {"type": "list", "elements": "str"},
            "state": {"type": "str", "choices": list(STATES), "required": True},
            "reload_if_changed": {"type": "list", "elements": "path", "default": []},
            "unit": {"type": "str", "default": "haproxy"},
            "start": {"type": "bool", "default": False},
        },
        supports_check_mode=True,
    )
    path = module.params["socket"]
    api = RuntimeApi(path)
    changed_at = changed_since_boot(module.params["reload_if_changed"])
    started = False
    try:
        if module.params["start"]:
            started = ensure_running(
                [module.params["unit"]],
                lambda argv: module.run_command(list(argv)),
                check_mode=module.check_mode,
            ).changed
        reloaded = reload_owed(api, changed_at)
        if reloaded and not module.check_mode:
            reload(module, api, changed_at)
        report = set_servers_state(
            api,
            module.params["backend"],
            module.params["servers"],
            module.params["state"],
            check_mode=module.check_mode,
        )
    except BalancerNotRunning:
        module.exit_json(
            changed=started, servers=[], unknown=[], started=started, reloaded=False, running=False
        )
    except ServiceError as error:
        module.fail_json(msg=str(error))
    except (BalancerError, OSError) as error:
        module.fail_json(msg=f"balancer at {path}: {error}")
    module.exit_json(
        changed=started or reloaded or bool(report.changed),
        servers=report.changed,
        unknown=report.unknown,
        started=started,
        reloaded=reloaded,
        running=True,
    )


if __name__ == "__main__":
    main()
