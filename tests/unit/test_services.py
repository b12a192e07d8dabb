# SPDX-License-Identifier: Apache-2.0
"""systemd units enabled and running: the decisions, driven by canned ``systemctl show`` output.

The fake runner stands in for systemctl only: it records each argv and answers ``show`` from a
queue of outputs, in the format systemd prints (one blank-line separated block per unit).
"""

from __future__ import annotations

from collections.abc import Sequence

import pytest
from ansible_collections.scratch.kubernetes.plugins.module_utils._services import (
    ServiceError,
    ensure_running,
    parse_show,
)

PROPERTIES = (
    "--property=Id,LoadState,UnitFileState,ActiveState,NeedDaemonReload,ActiveEnterTimestampMonotonic"
)
NAMES = ["containerd", "kubelet", "kube-proxy"]


def unit(
    name: str,
    load: str = "loaded",
    unit_file: str = "enabled",
    active: str = "active",
    need_reload: str = "no",
    entered: int = 100_000_000,
) -> str:
    """One unit's block of ``systemctl show`` output; ``entered``: µs on the monotonic clock."""
    return (
        f"Id={name}.service\nLoadState={load}\nUnitFileState={unit_file}\n"
        f"ActiveState={active}\nNeedDaemonReload={need_reload}\nActiveEnterTimestampMonotonic={entered}\n"
    )


def show(*blocks: str) -> str:
    return "\n".join(blocks)  # each block ends in a newline: joined, they are blank-line separated


def show_argv(names: Sequence[str] = tuple(NAMES)) -> list[str]:
    return ["systemctl", "show", PROPERTIES, "--", *names]


class Systemctl:
    """Records argv; answers ``show`` from ``outputs`` in turn, and fails the command ``fail``."""

    def __init__(self, *outputs: str, fail: str | None = None) -> None:
        self.outputs = list(outputs)
        self.fail = fail
        self.calls: list[list[str]] = []

    def __call__(self, argv: Sequence[str]) -> tuple[int, str, str]:
        self.calls.append(list(argv))
        if argv[1] == self.fail:
            return 1, "", f"Failed to {self.fail} units: Access denied\n"
        if argv[1] == "show":
            return 0, self.outputs.pop(0), ""
        return 0, "", ""


ALL_FINE = show(*(unit(name) for name in NAMES))


def test_units_enabled_and_active_are_left_alone() -> None:
    systemctl = Systemctl(ALL_FINE)

    report = ensure_running(NAMES, systemctl)

    assert systemctl.calls == [show_argv()]
    assert not report.changed
    assert (report.reloaded, report.enabled, report.started) == (False, [], [])


def test_static_unit_needs_no_enable() -> None:
    systemctl = Systemctl(show(unit("containerd"), unit("kubelet", unit_file="static"), unit("kube-proxy")))

    assert not ensure_running(NAMES, systemctl).changed
    assert systemctl.calls == [show_argv()]


def test_disabled_inactive_units_are_enabled_and_started_in_one_call_each() -> None:
    systemctl = Systemctl(
        show(
            unit("containerd"),
            unit("kubelet", unit_file="disabled", active="inactive"),
            unit("kube-proxy", unit_file="disabled", active="inactive"),
        )
    )

    report = ensure_running(NAMES, systemctl)

    assert systemctl.calls == [
        show_argv(),
        ["systemctl", "enable", "--", "kubelet", "kube-proxy"],
        ["systemctl", "start", "--", "kubelet", "kube-proxy"],
    ]
    assert report.changed and not report.reloaded
    assert report.enabled == ["kubelet", "kube-proxy"] and report.started == ["kubelet", "kube-proxy"]


def test_enabling_and_starting_are_decided_apart() -> None:
    systemctl = Systemctl(
        show(
            unit("containerd", unit_file="disabled"),
            unit("kubelet", active="failed"),
            unit("kube-proxy"),
        )
    )

    report = ensure_running(NAMES, systemctl)

    assert systemctl.calls == [
        show_argv(),
        ["systemctl", "enable", "--", "containerd"],
        ["systemctl", "start", "--", "kubelet"],
    ]
    assert report.enabled == ["containerd"] and report.started == ["kubelet"]


def test_changed_unit_file_reloads_then_looks_again() -> None:
    systemctl = Systemctl(
        show(unit("containerd"), unit("kubelet", need_reload="yes"), unit("kube-proxy")),
        ALL_FINE,
    )

    report = ensure_running(NAMES, systemctl)

    assert systemctl.calls == [show_argv(), ["systemctl", "daemon-reload"], show_argv()]
    assert report.changed and report.reloaded
    assert report.enabled == [] and report.started == []


def test_new_unit_file_is_loaded_enabled_and_started() -> None:
    systemctl = Systemctl(
        show(unit("kubelet", load="not-found", unit_file="", active="inactive")),
        show(unit("kubelet", unit_file="disabled", active="inactive")),
    )

    report = ensure_running(["kubelet"], systemctl)

    assert systemctl.calls == [
        show_argv(["kubelet"]),
        ["systemctl", "daemon-reload"],
        show_argv(["kubelet"]),
        ["systemctl", "enable", "--", "kubelet"],
        ["systemctl", "start", "--", "kubelet"],
    ]
    assert report.reloaded and report.enabled == ["kubelet"] and report.started == ["kubelet"]


def test_unit_not_found_after_reload_fails_naming_it() -> None:
    missing = show(unit("containerd"), unit("kubelet", load="not-found", unit_file="", active="inactive"))
    systemctl = Systemctl(missing, missing)

    with pytest.raises(ServiceError, match=r"systemd has no unit kubelet; install its unit file first"):
        ensure_running(["containerd", "kubelet"], systemctl)
    assert [argv[1] for argv in systemctl.calls] == ["show", "daemon-reload", "show"]


@pytest.mark.parametrize(
    ("fail", "command"),
    [
        ("show", f"systemctl show {PROPERTIES} -- kubelet"),
        ("daemon-reload", "systemctl daemon-reload"),
        ("enable", "systemctl enable -- kubelet"),
        ("start", "systemctl start -- kubelet"),
    ],
)
def test_systemctl_failure_fails_with_its_stderr(fail: str, command: str) -> None:
    systemctl = Systemctl(
        show(unit("kubelet", unit_file="disabled", active="inactive", need_reload="yes")),
        show(unit("kubelet", unit_file="disabled", active="inactive")),
        fail=fail,
    )

    with pytest.raises(ServiceError) as caught:
        ensure_running(["kubelet"], systemctl)

    assert str(caught.value) == f"{command} failed (1): Failed to {fail} units: Access denied"
    assert systemctl.calls[-1][1] == fail, "nothing runs after a failed systemctl"


def test_check_mode_reports_and_runs_only_show() -> None:
    systemctl = Systemctl(
        show(
            unit("containerd"),
            unit("kubelet", unit_file="disabled", active="inactive"),
            unit("kube-proxy", active="inactive"),
        )
    )

    report = ensure_running(NAMES, systemctl, check_mode=True)

    assert systemctl.calls == [show_argv()]
    assert report.changed and not report.reloaded
    assert report.enabled == ["kubelet"] and report.started == ["kubelet", "kube-proxy"]


def test_check_mode_reports_a_reload_without_running_it() -> None:
    systemctl = Systemctl(
        show(
            unit("containerd"),
            unit("kubelet", load="not-found", unit_file="", active="inactive"),
            unit("kube-proxy", need_reload="yes"),
        )
    )

    report = ensure_running(NAMES, systemctl, check_mode=True)

    assert systemctl.calls == [show_argv()]
    assert report.changed and report.reloaded
    assert "kubelet" in report.enabled and report.started == ["kubelet"]


def test_parse_show_maps_blocks_to_names_in_order() -> None:
    output = show(unit("kubelet"), unit("etcd", unit_file="disabled", active="inactive", entered=0)) + "\n"

    states = parse_show(output, ["kubelet", "etcd"])

    assert states["kubelet"]["Id"] == "kubelet.service"
    assert states["etcd"] == {
        "Id": "etcd.service",
        "LoadState": "loaded",
        "UnitFileState": "disabled",
        "ActiveState": "inactive",
        "NeedDaemonReload": "no",
        "ActiveEnterTimestampMonotonic": "0",
    }


@pytest.mark.parametrize("blocks", [1, 3])
def test_parse_show_with_another_number_of_blocks_fails(blocks: int) -> None:
    output = show(*(unit(f"unit-{index}") for index in range(blocks)))

    with pytest.raises(ServiceError, match=rf"systemctl show returned {blocks} units for 2: kubelet, etcd"):
        parse_show(output, ["kubelet", "etcd"])


def test_short_show_output_fails_before_any_change() -> None:
    systemctl = Systemctl(show(unit("containerd", unit_file="disabled")))

    with pytest.raises(ServiceError, match="returned 1 units for 3"):
        ensure_running(NAMES, systemctl)
    assert systemctl.calls == [show_argv()]


# The units became active 100 s after boot; with this offset, that is 1_000_100 s after the epoch.
BOOTED_AT = 1_000_000.0


@pytest.mark.parametrize("check_mode", [False, True])
def test_unit_started_before_its_files_changed_is_restarted(check_mode: bool) -> None:
    """The restart a killed run lost: the files are newer than the running unit."""
    systemctl = Systemctl(show(unit("containerd"), unit("kubelet", entered=50_000_000), unit("kube-proxy")))

    report = ensure_running(
        NAMES, systemctl, check_mode=check_mode, files_changed_at=BOOTED_AT + 60, clock_offset=BOOTED_AT
    )

    assert report.changed and report.restarted == ["kubelet"] and report.started == []
    restarts = [["systemctl", "restart", "--", "kubelet"]]
    assert systemctl.calls == [show_argv()] + ([] if check_mode else restarts)


def test_unit_started_after_its_files_changed_is_left_alone() -> None:
    systemctl = Systemctl(ALL_FINE)

    report = ensure_running(NAMES, systemctl, files_changed_at=BOOTED_AT + 99, clock_offset=BOOTED_AT)

    assert not report.changed and systemctl.calls == [show_argv()]


def test_unit_started_now_is_not_restarted_as_well() -> None:
    """An inactive unit reports no entry time (0): starting it reads the current files."""
    systemctl = Systemctl(
        show(unit("containerd"), unit("kubelet", active="inactive", entered=0), unit("kube-proxy"))
    )

    report = ensure_running(NAMES, systemctl, files_changed_at=BOOTED_AT + 200, clock_offset=BOOTED_AT)

    assert (report.started, report.restarted) == (["kubelet"], ["containerd", "kube-proxy"])
    assert systemctl.calls[1:] == [
        ["systemctl", "start", "--", "kubelet"],
        ["systemctl", "restart", "--", "containerd", "kube-proxy"],
    ]
