# SPDX-License-Identifier: Apache-2.0
"""A node's apiserver balancer (HAProxy), told through its runtime API which apiservers to use.

HAProxy reloads (new workers, the unit's start time unchanged), so whether it serves its
configuration as it is now is read from its worker: a worker that started before the files last
changed is owed a reload, after this run's change or one a killed run made.

Before a planned restart, an apiserver is drained on every balancer: no new connection goes to it,
the ones under way finish. Its own health check would take it out too, but only once it fails,
and HAProxy then cuts every connection still open to it (``on-marked-down shutdown-sessions``, which
a master that dies needs), requests half answered included. Once the apiserver is ready again it
is put back.
"""

from __future__ import annotations

import os
import socket
from collections.abc import Sequence
from dataclasses import dataclass, field

# srv_admin_state bits (HAProxy's SRV_ADMF_*): maintenance and drain forced from the runtime API.
_FORCED_MAINTENANCE = 0x01
_FORCED_DRAIN = 0x08
STATES = ("ready", "drain")


class BalancerError(Exception):
    """The runtime API refused a command or answered what this module cannot read."""


class BalancerNotRunning(Exception):
    """No balancer listens on the socket: none was installed, or it was stopped (a machine that
    reset.yml wiped keeps the socket file until it reboots). Nothing goes through it."""


def parse_servers_state(output: str) -> dict[str, int]:
    """Each server's srv_admin_state, from ``show servers state BACKEND``: a version line, a
    ``# name name ...`` header, then one space-separated row per server."""
    lines = [line for line in output.splitlines() if line.strip()]
    header = next((line[1:].split() for line in lines if line.startswith("#")), None)
    if not header or "srv_name" not in header or "srv_admin_state" not in header:
        raise BalancerError(f"no server state table in the balancer's answer: {output.strip()[:200]!r}")
    name, admin = header.index("srv_name"), header.index("srv_admin_state")
    rows = [line.split() for line in lines[1:] if not line.startswith("#")]
    return {row[name]: int(row[admin]) for row in rows if len(row) > max(name, admin)}


def is_in_state(admin_state: int, state: str) -> bool:
    """Whether a server with this srv_admin_state is drained, or ready (neither drained nor in
    maintenance, as ``set server ... state ready`` leaves it)."""
    if state == "drain":
        return bool(admin_state & _FORCED_DRAIN)
    return not admin_state & (_FORCED_DRAIN | _FORCED_MAINTENANCE)


@dataclass
class Report:
    changed: list[str] = field(default_factory=list)
    unknown: list[str] = field(default_factory=list)


class RuntimeApi:
    """HAProxy's runtime API on a UNIX socket: one command per connection, answered until EOF."""

    def __init__(self, path: str, timeout: float = 5.0) -> None:
        self.path = path
        self.timeout = timeout

    def command(self, line: str) -> str:
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as connection:
            connection.settimeout(self.timeout)
            try:
                connection.connect(self.path)
            except (FileNotFoundError, ConnectionRefusedError) as error:
                raise BalancerNotRunning(str(error)) from error
            connection.sendall(line.encode() + b"\n")
            chunks = []
            while chunk := connection.recv(65536):
                chunks.append(chunk)
        return b"".join(chunks).decode(errors="replace")


def set_servers_state(
    api: RuntimeApi, backend: str, servers: Sequence[str] | None, state: str, check_mode: bool
) -> Report:
    """Puts the named servers (every server of the backend when None) in state; the backend's
    servers not named are left alone, and named servers it does not have are reported unknown."""
    if state not in STATES:
        raise BalancerError(f"state must be one of {', '.join(STATES)}, not {state!r}")
    current = parse_servers_state(api.command(f"show servers state {backend}"))
    wanted = list(current) if servers is None else list(servers)
    report = Report(unknown=[name for name in wanted if name not in current])
    for name in wanted:
        if name in current and not is_in_state(current[name], state):
            if not check_mode:
                answer = api.command(f"set server {backend}/{name} state {state}").strip()
                if answer:
                    raise BalancerError(f"the balancer refused to set {backend}/{name} {state}: {answer}")
            report.changed.append(name)
    return report


def worker_pid(info: str) -> int:
    """The serving worker's PID, from ``show info``."""
    for line in info.splitlines():
        name, _sep, value = line.partition(":")
        if name.strip() == "Pid" and value.strip().isdigit():
            return int(value)
    raise BalancerError(f"no Pid in the balancer's answer to show info: {info.strip()[:200]!r}")


def started_since_boot(pid: int, proc: str = "/proc") -> float:
    """When a process started, in seconds since boot (``/proc/PID/stat``'s starttime, in clock ticks)."""
    with open(f"{proc}/{pid}/stat") as stat:
        # The command name, in parentheses, may hold spaces: fields are counted after it.
        fields = stat.read().rpartition(")")[2].split()
    return int(fields[19]) / os.sysconf("SC_CLK_TCK")


def reload_owed(api: RuntimeApi, changed_since_boot: float | None, proc: str = "/proc") -> bool:
    """Whether the serving worker started before the files last changed (seconds since boot)."""
    if changed_since_boot is None:
        return False
    return started_since_boot(worker_pid(api.command("show info")), proc) < changed_since_boot
