# SPDX-License-Identifier: Apache-2.0
"""Draining apiservers in a node's balancer: the decisions, and the runtime API client against a
UNIX socket that answers as HAProxy 2.6 does (one command per connection, then EOF).

The cluster tests (test_ha.py) drive the real HAProxy through the control plane role.
"""

from __future__ import annotations

import os
import socket
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from ansible_collections.scratch.kubernetes.plugins.module_utils._balancer import (
    BalancerError,
    BalancerNotRunning,
    RuntimeApi,
    is_in_state,
    parse_servers_state,
    reload_owed,
    set_servers_state,
    started_since_boot,
    worker_pid,
)

HEADER = (
    "# be_id be_name srv_id srv_name srv_addr srv_op_state srv_admin_state srv_uweight srv_iweight "
    "srv_time_since_last_change srv_check_status srv_check_result srv_check_health srv_check_state "
    "srv_agent_state bk_f_forced_id srv_f_forced_id srv_fqdn srv_port srvrecord srv_use_ssl "
    "srv_check_port srv_check_addr srv_agent_addr srv_agent_port"
)
READY, DRAINED, MAINTENANCE, DRAINED_BY_CHECK = 0, 0x08, 0x01, 0x10


def servers_state(**admin_states: int) -> str:
    rest = "1 1 120 15 3 4 6 0 0 0 - 6443 - 0 0 - - 0"
    rows = [
        f"3 apiservers {number} {name} 172.31.250.{10 + number} 2 {state} {rest}"
        for number, (name, state) in enumerate(admin_states.items(), start=1)
    ]
    return "\n".join(["1", HEADER, *rows]) + "\n\n"


class FakeApi(RuntimeApi):
    """Answers ``show servers state`` from a table and applies ``set server`` to it, as HAProxy does."""

    def __init__(self, **admin_states: int) -> None:
        super().__init__("unused")
        self.states = dict(admin_states)
        self.commands: list[str] = []

    def command(self, line: str) -> str:
        self.commands.append(line)
        if line.startswith("show servers state"):
            return servers_state(**self.states)
        name, state = line.removeprefix("set server apiservers/").split(" state ")
        self.states[name] = {"drain": DRAINED, "ready": READY}[state]
        return "\n"


def test_parse_reads_each_servers_admin_state() -> None:
    output = servers_state(**{"k8s-master-1": READY, "k8s-master-2": DRAINED | DRAINED_BY_CHECK})
    assert parse_servers_state(output) == {"k8s-master-1": 0, "k8s-master-2": 0x18}


def test_parse_refuses_an_answer_without_the_table() -> None:
    with pytest.raises(BalancerError, match="Can't find backend"):
        parse_servers_state("Can't find backend.\n")


@pytest.mark.parametrize(
    ("admin_state", "drained", "ready"),
    [
        (READY, False, True),
        (DRAINED, True, False),
        (MAINTENANCE, False, False),
        (DRAINED_BY_CHECK, False, True),
    ],
)
def test_states(admin_state: int, drained: bool, ready: bool) -> None:
    assert is_in_state(admin_state, "drain") is drained
    assert is_in_state(admin_state, "ready") is ready


def test_drain_sets_only_the_named_server_and_only_once() -> None:
    api = FakeApi(**{"k8s-master-1": READY, "k8s-master-2": READY})
    report = set_servers_state(api, "apiservers", ["k8s-master-2"], "drain", check_mode=False)
    assert report.changed == ["k8s-master-2"] and not report.unknown
    assert api.states == {"k8s-master-1": READY, "k8s-master-2": DRAINED}
    again = set_servers_state(api, "apiservers", ["k8s-master-2"], "drain", check_mode=False)
    assert not again.changed
    assert [c for c in api.commands if c.startswith("set ")] == [
        "set server apiservers/k8s-master-2 state drain"
    ]


def test_ready_without_names_puts_back_every_drained_server() -> None:
    api = FakeApi(**{"k8s-master-1": DRAINED, "k8s-master-2": READY, "k8s-master-3": MAINTENANCE})
    report = set_servers_state(api, "apiservers", None, "ready", check_mode=False)
    assert report.changed == ["k8s-master-1", "k8s-master-3"]
    assert set(api.states.values()) == {READY}


def test_check_mode_reports_without_setting() -> None:
    api = FakeApi(**{"k8s-master-1": READY})
    report = set_servers_state(api, "apiservers", ["k8s-master-1"], "drain", check_mode=True)
    assert report.changed == ["k8s-master-1"]
    assert api.states == {"k8s-master-1": READY}


def test_a_server_the_balancer_does_not_have_is_reported_not_set() -> None:
    api = FakeApi(**{"k8s-master-1": READY})
    report = set_servers_state(api, "apiservers", ["k8s-master-4"], "drain", check_mode=False)
    assert report.unknown == ["k8s-master-4"] and not report.changed


def test_an_unknown_state_is_refused() -> None:
    with pytest.raises(BalancerError, match="state must be one of"):
        set_servers_state(FakeApi(), "apiservers", None, "maint", check_mode=False)


@contextmanager
def runtime_socket(path: Path, answers: dict[str, str]) -> Iterator[list[str]]:
    """A UNIX socket that reads one command line per connection, answers it and closes."""
    received: list[str] = []
    server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    server.bind(str(path))
    server.listen()

    def serve() -> None:
        while True:
            try:
                connection, _address = server.accept()
            except OSError:
                return
            with connection:
                line = connection.makefile().readline().rstrip("\n")
                received.append(line)
                connection.sendall(answers.get(line, "Unknown command.\n").encode())

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    try:
        yield received
    finally:
        # Wakes the accept() under way, which a close alone does not.
        server.shutdown(socket.SHUT_RDWR)
        server.close()
        thread.join(timeout=5)


SHOW_INFO = "Name: HAProxy\nVersion: 2.6.12-1+deb12u4\nNbthread: 2\nPid: 510\nUptime_sec: 874\n"
TICKS = os.sysconf("SC_CLK_TCK")


class InfoApi(RuntimeApi):
    def __init__(self, info: str = SHOW_INFO) -> None:
        super().__init__("unused")
        self.info = info

    def command(self, line: str) -> str:
        assert line == "show info"
        return self.info


def fake_proc(tmp_path: Path, pid: int, started_ticks: int, comm: str = "haproxy") -> str:
    """A /proc with one process whose stat says it started so many clock ticks after boot."""
    (tmp_path / str(pid)).mkdir()
    rest = " ".join(["0"] * 17)  # fields 5 to 21; field 22 is starttime
    (tmp_path / str(pid) / "stat").write_text(f"{pid} ({comm}) S 1 {rest} {started_ticks} 0 0\n")
    return str(tmp_path)


def test_the_serving_worker_is_the_pid_show_info_gives() -> None:
    assert worker_pid(SHOW_INFO) == 510
    with pytest.raises(BalancerError, match="no Pid"):
        worker_pid("Unknown command.\n")


def test_a_command_name_with_spaces_and_parentheses_does_not_shift_the_fields(tmp_path: Path) -> None:
    proc = fake_proc(tmp_path, 510, 100 * TICKS, comm="ha (proxy) x")
    assert started_since_boot(510, proc) == 100.0


@pytest.mark.parametrize(("worker_started", "changed", "owed"), [(100.0, 99.5, False), (100.0, 100.5, True)])
def test_a_worker_older_than_its_files_is_owed_a_reload(
    tmp_path: Path, worker_started: float, changed: float, owed: bool
) -> None:
    proc = fake_proc(tmp_path, 510, int(worker_started * TICKS))
    assert reload_owed(InfoApi(), changed, proc) is owed


def test_no_files_no_reload() -> None:
    assert reload_owed(InfoApi("garbage"), None) is False


def test_runtime_api_sends_one_command_and_reads_the_answer_to_the_end(tmp_path: Path) -> None:
    table = servers_state(**{"k8s-master-1": READY})
    answers = {"show servers state apiservers": table, "set server apiservers/k8s-master-1 state drain": "\n"}
    with runtime_socket(tmp_path / "admin.sock", answers) as received:
        api = RuntimeApi(str(tmp_path / "admin.sock"))
        report = set_servers_state(api, "apiservers", ["k8s-master-1"], "drain", check_mode=False)
    assert report.changed == ["k8s-master-1"]
    assert received == ["show servers state apiservers", "set server apiservers/k8s-master-1 state drain"]


def test_a_refused_command_fails_with_the_balancers_words(tmp_path: Path) -> None:
    answers = {"show servers state apiservers": servers_state(**{"k8s-master-1": READY})}
    with runtime_socket(tmp_path / "admin.sock", answers):
        api = RuntimeApi(str(tmp_path / "admin.sock"))
        with pytest.raises(
            BalancerError, match="refused to set apiservers/k8s-master-1 drain: Unknown command"
        ):
            set_servers_state(api, "apiservers", ["k8s-master-1"], "drain", check_mode=False)


def test_a_socket_without_a_balancer_behind_it_says_none_runs(tmp_path: Path) -> None:
    """The socket file of a stopped HAProxy stays in /run until the machine reboots."""
    stale = tmp_path / "admin.sock"
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    listener.bind(str(stale))
    listener.close()
    for path in (stale, tmp_path / "absent.sock"):
        with pytest.raises(BalancerNotRunning):
            RuntimeApi(str(path)).command("show servers state apiservers")
