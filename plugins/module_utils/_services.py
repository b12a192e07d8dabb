# SPDX-License-Identifier: Apache-2.0
"""systemd units enabled and running, decided from one ``systemctl show`` of them all.

``systemctl daemon-reload`` runs only when systemd says a unit file changed since it was loaded
(``NeedDaemonReload``), not on every run: a reload re-reads every unit on the machine.

A unit that runs but started before one of its files last changed is restarted: after this run
changed them, and after a killed run did, whose rerun finds the files already in place.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

# Runs argv and returns (rc, stdout, stderr), as AnsibleModule.run_command does.
Runner = Callable[[Sequence[str]], tuple[int, str, str]]

_PROPERTIES = (
    "Id",
    "LoadState",
    "UnitFileState",
    "ActiveState",
    "NeedDaemonReload",
    "ActiveEnterTimestampMonotonic",
)


def newest_change(paths: Sequence[str]) -> float | None:
    """The latest modification time among the paths that exist (seconds since the epoch), or None."""
    times = [os.stat(path).st_mtime for path in paths if os.path.exists(path)]
    return max(times, default=None)


class ServiceError(Exception):
    """A unit that systemd cannot find, enable or start; the message names it and says why."""


@dataclass
class Report:
    reloaded: bool = False
    enabled: list[str] = field(default_factory=list)
    started: list[str] = field(default_factory=list)
    restarted: list[str] = field(default_factory=list)

    @property
    def changed(self) -> bool:
        return self.reloaded or bool(self.enabled or self.started or self.restarted)


def _systemctl(run: Runner, *args: str) -> str:
    rc, out, err = run(["systemctl", *args])
    if rc != 0:
        raise ServiceError(f"systemctl {' '.join(args)} failed ({rc}): {(err or out).strip()}")
    return out


def parse_show(output: str, names: Sequence[str]) -> dict[str, dict[str, str]]:
    """``systemctl show`` output (blank-line separated blocks, in the order asked) by unit name."""
    blocks = [block for block in output.strip().split("\n\n") if block.strip()]
    if len(blocks) != len(names):
        raise ServiceError(
            f"systemctl show returned {len(blocks)} units for {len(names)}: {', '.join(names)}"
        )
    states = {}
    for name, block in zip(names, blocks, strict=True):
        states[name] = dict(line.split("=", 1) for line in block.splitlines() if "=" in line)
    return states


def _show(run: Runner, names: Sequence[str]) -> dict[str, dict[str, str]]:
    return parse_show(_systemctl(run, "show", "--property=" + ",".join(_PROPERTIES), "--", *names), names)


def _started_before(state: dict[str, str], changed_at: float, clock_offset: float) -> bool:
    """Whether the unit last became active before ``changed_at`` (seconds since the epoch).

    systemd gives the time on the monotonic clock; ``clock_offset`` is the epoch time minus the
    monotonic time, read by the caller on the same host.
    """
    entered = state.get("ActiveEnterTimestampMonotonic", "0")
    return entered.isdigit() and int(entered) / 1e6 + clock_offset < changed_at


def ensure_running(
    names: Sequence[str],
    run: Runner,
    *,
    check_mode: bool = False,
    files_changed_at: float | None = None,
    clock_offset: float = 0.0,
) -> Report:
    """Every unit in ``names`` enabled and active; what was (or would be) done is reported.

    With ``files_changed_at`` (the newest modification time of the units' files), a unit that was
    already active but entered that state before then is restarted.
    """
    report = Report()
    if not names:
        return report
    states = _show(run, names)
    if any(
        state.get("NeedDaemonReload") == "yes" or state.get("LoadState") == "not-found"
        for state in states.values()
    ):
        report.reloaded = True
        if not check_mode:
            _systemctl(run, "daemon-reload")
            states = _show(run, names)
    masked = [name for name in names if states[name].get("LoadState") == "masked"]
    if masked:
        raise ServiceError(f"unit {', '.join(masked)} is masked; unmask it (systemctl unmask) to let it run")
    missing = [name for name in names if states[name].get("LoadState") != "loaded"]
    if missing and not check_mode:
        raise ServiceError(f"systemd has no unit {', '.join(missing)}; install its unit file first")
    report.enabled = [
        name for name in names if states[name].get("UnitFileState") not in ("enabled", "static")
    ]
    report.started = [name for name in names if states[name].get("ActiveState") != "active"]
    if files_changed_at is not None:
        report.restarted = [
            name
            for name in names
            if name not in report.started and _started_before(states[name], files_changed_at, clock_offset)
        ]
    if check_mode:
        return report
    if report.enabled:
        _systemctl(run, "enable", "--", *report.enabled)
    if report.started:
        _systemctl(run, "start", "--", *report.started)
    if report.restarted:
        _systemctl(run, "restart", "--", *report.restarted)
    return report
