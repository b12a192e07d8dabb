# SPDX-License-Identifier: Apache-2.0
"""Static pods running and restarted after their files changed: the decisions, from canned ``crictl`` output.

The fake runner stands in for crictl only: ``ps`` answers from a queue of container lists per
name, in the JSON crictl prints; ``stop`` is recorded. The clock and sleep are the test's, so a
wait costs no time.
"""

from __future__ import annotations

import json
from collections.abc import Sequence

import pytest
from ansible_collections.scratch.kubernetes.plugins.module_utils._services import ServiceError
from ansible_collections.scratch.kubernetes.plugins.module_utils._static_pods import (
    ensure_running,
    parse_containers,
)

CHANGED_AT = 1_000.0


def ps(*containers: tuple[str, str, float]) -> str:
    """crictl ps --output json of containers (id, name, created in seconds since the epoch)."""
    return json.dumps(
        {
            "containers": [
                {"id": cid, "metadata": {"name": name, "attempt": 0}, "createdAt": str(int(created * 1e9))}
                for cid, name, created in containers
            ]
        }
    )


class Crictl:
    """Answers ``ps --name ^<name>$`` from listings[name] in turn (the last one repeats)."""

    def __init__(self, listings: dict[str, list[str]], stop_error: str = "") -> None:
        self.listings = {name: list(outputs) for name, outputs in listings.items()}
        self.stop_error = stop_error
        self.calls: list[list[str]] = []

    def __call__(self, argv: Sequence[str]) -> tuple[int, str, str]:
        self.calls.append(list(argv))
        if argv[1] == "stop":
            return (1, "", self.stop_error) if self.stop_error else (0, argv[-1] + "\n", "")
        name = argv[argv.index("--name") + 1].strip("^$")
        outputs = self.listings[name]
        return 0, outputs.pop(0) if len(outputs) > 1 else outputs[0], ""

    def stopped(self) -> list[str]:
        return [call[-1] for call in self.calls if call[1] == "stop"]


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.now += seconds


def run(crictl: Crictl, names: Sequence[str], clock: Clock | None = None, **options: object):
    clock = clock or Clock()
    return ensure_running(names, crictl, clock=clock, sleep=clock.sleep, **options)


def test_running_containers_created_after_the_change_are_left_alone() -> None:
    crictl = Crictl({"etcd": [ps(("e1", "etcd", CHANGED_AT + 5))]})
    report = run(crictl, ["etcd"], files_changed_at=CHANGED_AT)
    assert not report.changed
    assert crictl.stopped() == []


def test_a_pod_without_a_running_container_is_waited_for() -> None:
    crictl = Crictl({"etcd": [ps(), ps(), ps(("e1", "etcd", CHANGED_AT + 5))]})
    report = run(crictl, ["etcd"], files_changed_at=CHANGED_AT)
    assert report.started == ["etcd"] and report.restarted == []
    assert crictl.stopped() == []


def test_a_container_older_than_its_files_is_stopped_and_its_successor_waited_for() -> None:
    old, new = ps(("a1", "kube-apiserver", CHANGED_AT - 60)), ps(("a2", "kube-apiserver", CHANGED_AT + 3))
    crictl = Crictl({"kube-apiserver": [old, old, new]})
    report = run(crictl, ["kube-apiserver"], files_changed_at=CHANGED_AT, stop_timeout=30)
    assert report.restarted == ["kube-apiserver"]
    assert ["crictl", "stop", "--timeout", "30", "a1"] in crictl.calls


def test_check_mode_reports_and_neither_stops_nor_waits() -> None:
    crictl = Crictl({"kube-scheduler": [ps(("s1", "kube-scheduler", CHANGED_AT - 1))], "etcd": [ps()]})
    report = run(crictl, ["kube-scheduler", "etcd"], files_changed_at=CHANGED_AT, check_mode=True)
    assert (report.started, report.restarted) == (["etcd"], ["kube-scheduler"])
    assert crictl.stopped() == [] and len(crictl.calls) == 2


def test_without_files_any_running_container_will_do() -> None:
    crictl = Crictl({"etcd": [ps(("e1", "etcd", 1.0))]})
    assert not run(crictl, ["etcd"]).changed


def test_a_pod_the_kubelet_never_starts_fails_with_where_to_look() -> None:
    crictl = Crictl({"etcd": [ps()]})
    with pytest.raises(ServiceError, match=r"did not start etcd within 10 s.*journalctl -u kubelet"):
        run(crictl, ["etcd"], timeout=10)


def test_a_container_gone_before_its_stop_is_no_failure() -> None:
    old, new = ps(("s1", "kube-scheduler", 1.0)), ps(("s2", "kube-scheduler", CHANGED_AT + 1))
    crictl = Crictl({"kube-scheduler": [old, new]}, stop_error='container "s1" not found')
    assert run(crictl, ["kube-scheduler"], files_changed_at=CHANGED_AT).restarted == ["kube-scheduler"]


def test_a_failed_stop_is_reported() -> None:
    crictl = Crictl({"kube-scheduler": [ps(("s1", "kube-scheduler", 1.0))]}, stop_error="permission denied")
    with pytest.raises(ServiceError, match=r"crictl stop s1 \(kube-scheduler\) failed"):
        run(crictl, ["kube-scheduler"], files_changed_at=CHANGED_AT)


def test_crictl_matches_a_pattern_and_only_the_exact_name_counts() -> None:
    listed = ps(("x", "etcd-sidecar", 5.0), ("y", "etcd", 6.0))
    assert [container.id for container in parse_containers(listed, "etcd")] == ["y"]
    assert parse_containers("", "etcd") == []
    with pytest.raises(ServiceError, match="not JSON"):
        parse_containers("time=... level=fatal", "etcd")
