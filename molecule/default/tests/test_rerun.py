# SPDX-License-Identifier: Apache-2.0
"""Rerunning site.yml on the converged cluster: check mode finds nothing to do, bad input changes nothing.

Each run is `ansible-playbook -i inventory/testbed site.yml` from the repository root, as a user
runs it. The test bed's lock (the one `flock /tmp/testbed.lock` takes, as every user of the test
bed does) is held from the fingerprints before a run to those after it, so that no other run
lands in between. Molecule's idempotence step already proves that a real rerun reports no
change; these runs never converge anything.
"""

from __future__ import annotations

import fcntl
import json
import os
import re
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from conftest import NODES, REPO, SETTINGS, STATE_DIR, Node, node_exec, run

pytestmark = pytest.mark.last

LOCK = "/tmp/testbed.lock"
PLAYBOOK_TIMEOUT = 2400
FINGERPRINT_DIRS = [
    "/etc/kubernetes",
    "/etc/etcd",
    "/var/lib/kubelet/pki",
    "/var/lib/kube-proxy",
    "/etc/cni",
    "/etc/systemd/system",
    "/usr/local/bin",
    "/etc/containerd",
]
FINGERPRINT_UNITS = [
    "etcd",
    "kube-apiserver",
    "kube-controller-manager",
    "kube-scheduler",
    "kubelet",
    "containerd",
    "kube-proxy",
]
CONTROLLER_ARTIFACT = (
    Path.home() / ".cache/scratch-kubernetes/artifacts/kubelet" / SETTINGS["kube_version"] / "kubelet"
)
RECAP_LINE = re.compile(
    r"^(?P<host>\S+)\s*:\s*ok=(?P<ok>\d+)\s+changed=(?P<changed>\d+)\s+"
    r"unreachable=(?P<unreachable>\d+)\s+failed=(?P<failed>\d+)",
    re.M,
)
TASK_BANNER = re.compile(r"^TASK \[(?P<task>.*)\] \**$")
FAILURE_LINE = re.compile(r"^(?:fatal|failed): \[(?P<host>[^\]]+)\].*? => (?P<result>\{.*\})$")


@dataclass(frozen=True)
class Failure:
    task: str
    host: str
    messages: list[str]


@dataclass(frozen=True)
class PlaybookRun:
    returncode: int
    output: str

    def recap(self) -> dict[str, dict[str, int]]:
        """host -> ok/changed/unreachable/failed counts from the PLAY RECAP."""
        _before, found, tail = self.output.rpartition("PLAY RECAP")
        assert found, f"no PLAY RECAP in the output:\n{self.tail()}"
        return {
            match["host"]: {key: int(match[key]) for key in ("ok", "changed", "unreachable", "failed")}
            for match in RECAP_LINE.finditer(tail)
        }

    def failures(self) -> list[Failure]:
        """Every failed task result, with the task it belongs to and each message in it."""
        task, failures = "", []
        for line in self.output.splitlines():
            if banner := TASK_BANNER.match(line):
                task = banner["task"]
            elif failure := FAILURE_LINE.match(line):
                failures.append(Failure(task, failure["host"], _messages(json.loads(failure["result"]))))
        return failures

    def tail(self, lines: int = 80) -> str:
        return "\n".join(self.output.splitlines()[-lines:])


def _messages(result: Any) -> list[str]:
    if isinstance(result, dict):
        own = [result["msg"]] if isinstance(result.get("msg"), str) else []
        return own + [msg for item in result.get("results", []) for msg in _messages(item)]
    return []


def site_yml(*args: str) -> PlaybookRun:
    """`ansible-playbook -i inventory/testbed site.yml ARGS` from the repository root (hold testbed_lock)."""
    # Molecule's verify step exports its own ANSIBLE_* settings; a user's run has the repo's ansible.cfg.
    env = {key: value for key, value in os.environ.items() if not key.startswith(("ANSIBLE_", "MOLECULE_"))}
    env |= {
        "ANSIBLE_NOCOLOR": "1",
        "ANSIBLE_CALLBACK_RESULT_FORMAT": "json",
        "ANSIBLE_CALLBACK_FORMAT_PRETTY": "false",
    }
    playbook = Path(sys.executable).parent / "ansible-playbook"
    result = run(
        playbook, "-i", "inventory/testbed", "site.yml", *args,
        env=env, cwd=REPO, timeout=PLAYBOOK_TIMEOUT, check=False,
    )  # fmt: skip
    return PlaybookRun(result.returncode, result.stdout + result.stderr)


def node_fingerprint(node: Node) -> dict[str, str]:
    """sha256 of every file the roles manage, and when each service last entered its active state."""
    script = (
        f"for d in {' '.join(FINGERPRINT_DIRS)}; do [ ! -d $d ] || find $d -type f; done"
        " | sort | xargs -r -d '\\n' sha256sum\n"
        f"for u in {' '.join(FINGERPRINT_UNITS)}; do"
        ' echo "$(systemctl show -p ActiveEnterTimestampMonotonic --value $u)  unit:$u"; done'
    )
    lines = node_exec(node, "bash", "-c", f"set -o pipefail; {script}", timeout=300).stdout.splitlines()
    return {path: digest for digest, path in (line.split("  ", 1) for line in lines)}


def controller_fingerprint() -> dict[str, str]:
    """The controller's cluster state (CAs, issued certificates, admin kubeconfig) and a cached binary."""
    paths = [*sorted(path for path in STATE_DIR.rglob("*") if path.is_file()), CONTROLLER_ARTIFACT]
    lines = run("sha256sum", *paths).stdout.splitlines()
    return {path: digest for digest, path in (line.split("  ", 1) for line in lines)}


def fingerprints() -> dict[str, dict[str, str]]:
    return {"controller": controller_fingerprint()} | {node.name: node_fingerprint(node) for node in NODES}


def assert_unchanged(before: dict[str, dict[str, str]], after: dict[str, dict[str, str]]) -> None:
    changed = {
        host: {key: (before[host].get(key), after[host].get(key))
               for key in before[host].keys() | after[host].keys()
               if before[host].get(key) != after[host].get(key)}
        for host in before
    }  # fmt: skip
    changed = {host: diff for host, diff in changed.items() if diff}
    assert not changed, f"files or services changed (before, after): {changed}"


def assert_recap_unchanged(playbook: PlaybookRun) -> dict[str, dict[str, int]]:
    recap = playbook.recap()
    missing = {node.name for node in NODES} - recap.keys()
    assert not missing, f"hosts missing from the PLAY RECAP: {missing}\n{playbook.tail()}"
    changed = {host: counts["changed"] for host, counts in recap.items() if counts["changed"]}
    assert not changed, f"PLAY RECAP reports changes: {changed}\n{playbook.tail()}"
    return recap


def _lock_holders(path: str) -> set[int]:
    """Processes holding a flock on path, from /proc/locks."""
    status = os.stat(path)
    holders = set()
    for line in Path("/proc/locks").read_text().splitlines():
        # "1: FLOCK  ADVISORY  WRITE 14586 00:1e:12345 0 EOF"; a waiter's line has "->" after the number.
        fields = line.split()
        if fields[1] != "FLOCK":
            continue
        major, minor, inode = fields[5].split(":")
        if int(inode) == status.st_ino and os.makedev(int(major, 16), int(minor, 16)) == status.st_dev:
            holders.add(int(fields[4]))
    return holders


def _ancestors() -> set[int]:
    pids, pid = set(), os.getpid()
    while pid > 1:
        pid = int(Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()[1])
        pids.add(pid)
    return pids


@pytest.fixture
def testbed_lock() -> Iterator[None]:
    """The lock `flock /tmp/testbed.lock` takes, held for the whole test.

    Unless a parent already holds it (`flock /tmp/testbed.lock molecule test`): waiting for it
    then would wait forever.
    """
    with open(LOCK, "a") as handle:
        if not _lock_holders(LOCK) & _ancestors():
            fcntl.flock(handle, fcntl.LOCK_EX)
        yield


def test_check_mode_rerun_finds_nothing_to_change(cluster: None, testbed_lock: None) -> None:
    before = fingerprints()
    playbook = site_yml("--check")
    assert playbook.returncode == 0, playbook.tail()
    recap = assert_recap_unchanged(playbook)
    assert not any(counts["failed"] or counts["unreachable"] for counts in recap.values()), recap
    assert_unchanged(before, fingerprints())


ZERO_CHECKSUM = "sha256:" + "0" * 64


@pytest.mark.parametrize(
    ("extra_vars", "message", "failing_role"),
    [
        pytest.param(
            "service_cidr=10.200.0.0/24",
            r"overlaps service_cidr 10\.200\.0\.0/24|service_cidr 10\.200\.0\.0/24 overlaps",
            None,
            id="service-cidr-overlapping-cluster-cidr",
        ),
        pytest.param(
            "node_pod_prefix=26",
            r"node_pod_prefix /?26 .*max_pods=110",
            None,
            id="pod-block-too-small-for-max-pods",
        ),
        pytest.param(
            json.dumps({"release_checksums": {"kubelet": ZERO_CHECKSUM}}),
            r"Checksum mismatch for \S+/kubelet: expected sha256 0{64}",
            "scratch.kubernetes.artifacts",
            id="wrong-kubelet-checksum",
        ),
    ],
)
def test_bad_input_fails_clearly_and_changes_nothing(
    cluster: None, testbed_lock: None, extra_vars: str, message: str, failing_role: str | None
) -> None:
    before = fingerprints()
    playbook = site_yml("-e", extra_vars)
    assert playbook.returncode != 0, playbook.tail()
    failures = playbook.failures()
    matching = [failure for failure in failures if any(re.search(message, msg) for msg in failure.messages)]
    assert matching, f"no failure says {message!r}: {failures}\n{playbook.tail()}"
    if failing_role:
        assert all(failure.task.startswith(f"{failing_role} : ") for failure in matching), matching
    assert_recap_unchanged(playbook)
    assert_unchanged(before, fingerprints())
