# SPDX-License-Identifier: Apache-2.0
"""Shared helpers of the `default` scenario's verify tests: they run against the real cluster.

kubectl runs on the controller with the admin kubeconfig; node state is read with
`docker exec <node> ...`. Every fact about the test bed comes from the repository itself
(the scenario's platforms, the cluster defaults, the test bed's group_vars), so the tests
follow the settings instead of repeating them.
"""

from __future__ import annotations

import fcntl
import ipaddress
import json
import os
import secrets
import socket
import ssl
import struct
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import pytest
import yaml

REPO = Path(os.environ.get("MOLECULE_PROJECT_DIRECTORY") or Path(__file__).resolve().parents[3])
# Every scenario runs this suite against its own nodes (molecule sets the name; default otherwise).
SCENARIO = REPO / "molecule" / os.environ.get("MOLECULE_SCENARIO_NAME", "default")
TEST_IMAGE = "docker.io/scratch-kubernetes/busybox:test"
CONTROL_PLANE_TAINT = "node-role.kubernetes.io/control-plane"
# The test bed's own "outside" host and release mirror (tests/testbed/testbed.sh): the only
# addresses off the node network that these tests ever contact.
OUTSIDE_HOST = "198.18.0.2"
MIRROR_URL = "http://172.31.250.1:8480"

T = TypeVar("T")


def _scenario_hosts() -> Path:
    """The scenario's inventory file (inventory/testbed*/hosts.yml)."""
    links = yaml.safe_load((SCENARIO / "molecule.yml").read_text())["provisioner"]["inventory"]["links"]
    return (SCENARIO / links["hosts"]).resolve()


def _load_settings() -> dict[str, Any]:
    """The defaults, overridden by the test bed's settings, then by the scenario's own (hosts.yml)."""
    settings = yaml.safe_load((REPO / "roles/cluster_defaults/defaults/main.yml").read_text())
    settings.update(yaml.safe_load((REPO / "inventory/testbed/group_vars/all.yml").read_text()))
    settings.update(yaml.safe_load(_scenario_hosts().read_text())["all"].get("vars", {}))
    return settings


SETTINGS = _load_settings()
STATE_DIR = Path.home() / ".scratch-kubernetes" / SETTINGS["cluster_name"]
PKI_DIR = STATE_DIR / "pki"
ADMIN_KUBECONFIG = STATE_DIR / "admin.kubeconfig"
KUBECTL = Path.home() / ".cache/scratch-kubernetes/artifacts/kubectl" / SETTINGS["kube_version"] / "kubectl"
SERVICE_NETWORK = ipaddress.ip_network(SETTINGS["service_cidr"])
KUBERNETES_SERVICE_IP = str(SERVICE_NETWORK[1])
CLUSTER_DNS_IP = str(SERVICE_NETWORK[SETTINGS["cluster_dns_index"]])


@dataclass(frozen=True)
class Node:
    name: str
    ip: str
    groups: tuple[str, ...]

    @property
    def is_master(self) -> bool:
        return "masters" in self.groups


def _load_platforms() -> list[Node]:
    platforms = yaml.safe_load((SCENARIO / "molecule.yml").read_text())["platforms"]
    return [Node(p["name"], p["networks"][0]["ipv4_address"], tuple(p.get("groups", []))) for p in platforms]


def _load_inventory() -> str:
    """The scenario's inventory directory, relative to the repository, as playbooks take it."""
    return str(_scenario_hosts().parent.relative_to(REPO))


PLATFORMS = _load_platforms()
INVENTORY = _load_inventory()
# The cluster's nodes; the spare machines join only when a test adds them (add_node.yml).
NODES = [node for node in PLATFORMS if {"masters", "minions"} & set(node.groups)]
SPARES = [node for node in PLATFORMS if "spare" in node.groups]
MASTERS = [node for node in NODES if node.is_master]
MINIONS = [node for node in NODES if not node.is_master]
MASTER = MASTERS[0]
APISERVER_URL = f"https://{MASTER.ip}:{SETTINGS['apiserver_port']}"
# The etcd members: the `etcd` group's machines, else the masters. Those that are not nodes are
# dedicated etcd machines, which run nothing else.
ETCD_MEMBERS = [node for node in PLATFORMS if "etcd" in node.groups] or MASTERS
DEDICATED_ETCD = [node for node in ETCD_MEMBERS if node not in NODES]
MACHINES = NODES + DEDICATED_ETCD
# The masters' kubelets run etcd and the control plane (scenario `guide`), instead of systemd.
STATIC_PODS = SETTINGS["control_plane_mode"] == "static_pods"


# Every node's local apiserver balancer (role apiserver_balancer).
BALANCER_PORT = SETTINGS["apiserver_balancer_port"]
BALANCER_URL = f"https://127.0.0.1:{BALANCER_PORT}"
BALANCER_PKI = "/etc/haproxy/pki"
BALANCER_SOCKET = SETTINGS["apiserver_balancer_socket"]
# Run on a node with its own Python and the balancer's client certificate, as any client of the API
# there. Arguments: URL, number of requests, seconds between them, and optionally a file whose
# appearance ends the loop early; prints each status, or the time and the error.
GET_THROUGH_BALANCER = f"""
import json, os, ssl, sys, time, urllib.request
context = ssl.create_default_context(cafile="{BALANCER_PKI}/ca.crt")
context.load_cert_chain("{BALANCER_PKI}/apiserver-balancer.crt", "{BALANCER_PKI}/apiserver-balancer.key")
stop = sys.argv[4] if len(sys.argv) > 4 else None
answers = []
for _ in range(int(sys.argv[2])):
    if stop and os.path.exists(stop):
        break
    try:
        with urllib.request.urlopen(sys.argv[1], context=context, timeout=3) as response:
            answers.append(response.status)
    except Exception as error:
        answers.append(time.strftime("%H:%M:%S ") + repr(error))
    time.sleep(float(sys.argv[3]))
print(json.dumps(answers))
"""


def get_from(node: Node, url: str) -> list[object]:
    """One request from the node, as GET_THROUGH_BALANCER makes it: [status] or [time and error]."""
    return json.loads(node_exec(node, "python3", "-c", GET_THROUGH_BALANCER, url, "1", "0").stdout)


# A request loop runs until this file appears on its node, for at most LOOP_LIMIT requests.
LOOP_STOP_FILE = "/tmp/request-loop-done"
LOOP_LIMIT = 100_000


def start_request_loop(node: Node, url: str, interval: float) -> subprocess.Popen[str]:
    """GET_THROUGH_BALANCER on the node in the background, one request every interval seconds,
    until stop_request_loops."""
    node_exec(node, "rm", "-f", LOOP_STOP_FILE)
    command = ["python3", "-c", GET_THROUGH_BALANCER, url, str(LOOP_LIMIT), str(interval), LOOP_STOP_FILE]
    return subprocess.Popen(["docker", "exec", node.name, *command], stdout=subprocess.PIPE, text=True)


def stop_request_loops(
    loops: dict[tuple[str, str], subprocess.Popen[str]],
) -> dict[tuple[str, str], tuple[int, list[object]]]:
    """Ends loops keyed by (node name, what they ask) and returns, for each, how many requests it
    made and the answers that were not 200."""
    for node_name in {node_name for node_name, _target in loops}:
        node_exec(node_name, "touch", LOOP_STOP_FILE, check=False)
    results = {}
    for key, loop in loops.items():
        answers = json.loads(loop.communicate(timeout=60)[0] or "[]")
        results[key] = (len(answers), [answer for answer in answers if answer != 200])
    return results


# etcdctl on a member, with the member's own identity (the etcd role's health check does the same).
ETCD_CLIENT_PORT = SETTINGS["etcd_client_port"]
ETCD_PKI = "/etc/etcd/pki"
ETCD_TLS = (
    f"--cacert={ETCD_PKI}/etcd-ca.crt",
    f"--cert={ETCD_PKI}/server.crt",
    f"--key={ETCD_PKI}/server.key",
)


def etcd_url(member: Node) -> str:
    return f"https://{member.ip}:{ETCD_CLIENT_PORT}"


def etcdctl(member: Node, *args: str) -> Any:
    local = f"--endpoints=https://127.0.0.1:{ETCD_CLIENT_PORT}"
    return json.loads(node_exec(member, "etcdctl", local, *ETCD_TLS, *args, "-w", "json").stdout)


def member_names(member: Node) -> list[str]:
    return sorted(entry["name"] for entry in etcdctl(member, "member", "list")["members"])


def healthy_endpoints(member: Node, endpoints: list[Node]) -> list[str]:
    """The client URLs among endpoints' that answer healthy, asked from member."""
    urls = ",".join(etcd_url(node) for node in endpoints)
    result = node_exec(
        member, "etcdctl", f"--endpoints={urls}", *ETCD_TLS, "endpoint", "health", "-w", "json", check=False
    )
    return sorted(entry["endpoint"] for entry in json.loads(result.stdout or "[]") if entry.get("health"))


# A reset and rebuild, or an upgrade, goes first, so that every other test proves the rebuilt or
# upgraded cluster. Tests that run playbooks go after those that only look, and the ones that
# change the cluster's shape (add, remove, restore) after those that expect it unchanged. ""
# stands for the unmarked tests.
STAGES = ("rebuild", "upgrade", "", "last", "lifecycle")


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers", "rebuild: run first (it resets the nodes and builds the cluster again)"
    )
    config.addinivalue_line("markers", "upgrade: run before everything else (it upgrades the cluster)")
    config.addinivalue_line("markers", "last: run after every test that only looks (it reruns the playbook)")
    config.addinivalue_line(
        "markers", "lifecycle: run after everything else, in file order (it reshapes the cluster)"
    )


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    # Stable sort: everything else keeps its order.
    items.sort(
        key=lambda item: next(
            (i for i, name in enumerate(STAGES) if name and item.get_closest_marker(name)), STAGES.index("")
        )
    )


def run(
    *args: str | Path,
    input: str | bytes | None = None,
    timeout: float = 120,
    check: bool = True,
    env: dict[str, str] | None = None,
    cwd: Path | None = None,
) -> subprocess.CompletedProcess[str]:
    """Run a command; with check, fail the test with its output when it exits non-zero."""
    result = subprocess.run(
        [str(arg) for arg in args],
        input=input,
        capture_output=True,
        text=True,
        check=False,
        # etcd values are binary: keep their bytes visible instead of failing to decode them.
        errors="backslashreplace",
        timeout=timeout,
        env=env,
        cwd=cwd,
    )
    if check and result.returncode != 0:
        pytest.fail(
            f"{' '.join(map(str, args))} exited {result.returncode}\n"
            f"stdout:\n{result.stdout}\nstderr:\n{result.stderr}"
        )
    return result


def kubectl(*args: str, **kwargs: Any) -> subprocess.CompletedProcess[str]:
    return run(KUBECTL, f"--kubeconfig={ADMIN_KUBECONFIG}", *args, **kwargs)


def kubectl_json(*args: str) -> Any:
    return json.loads(kubectl(*args, "-o", "json").stdout)


def node_exec(node: Node | str, *args: str, **kwargs: Any) -> subprocess.CompletedProcess[str]:
    name = node.name if isinstance(node, Node) else node
    # Without -i, docker exec gives the command no stdin at all.
    stdin = ["-i"] if kwargs.get("input") is not None else []
    return run("docker", "exec", *stdin, name, *args, **kwargs)


def node_allocation(node: Node) -> dict[str, str]:
    """The pod block recorded on the node (its Ansible local facts)."""
    return json.loads(node_exec(node, "cat", "/etc/ansible/facts.d/scratch_kubernetes.fact").stdout)


def eventually(probe: Callable[[], T | None], timeout: float, interval: float = 2) -> T | None:
    """Call probe until it returns something truthy or timeout seconds pass; return the last result."""
    deadline = time.monotonic() + timeout
    while True:
        result = probe()
        if result or time.monotonic() > deadline:
            return result
        time.sleep(interval)


# --- Pods -----------------------------------------------------------------------------------------


def pod_manifest(name: str, node: Node, script: str, labels: dict[str, str] | None = None) -> dict[str, Any]:
    """A busybox pod placed on one node by the scheduler (hostname selector, control plane tolerated)."""
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name, "labels": labels or {}},
        "spec": {
            "nodeSelector": {"kubernetes.io/hostname": node.name},
            "tolerations": [{"key": CONTROL_PLANE_TAINT, "operator": "Exists", "effect": "NoSchedule"}],
            "terminationGracePeriodSeconds": 0,
            "containers": [
                {
                    "name": "main",
                    "image": TEST_IMAGE,
                    "imagePullPolicy": "Never",
                    "command": ["/bin/sh", "-c", script],
                }
            ],
        },
    }


def apply(namespace: str, *manifests: dict[str, Any]) -> None:
    kubectl(
        "-n",
        namespace,
        "apply",
        "-f",
        "-",
        input=json.dumps({"kind": "List", "apiVersion": "v1", "items": list(manifests)}),
    )


def wait_ready(namespace: str, *pods: str, timeout: int = 180) -> None:
    """Wait for the pods' Ready condition; on timeout fail with what the cluster says about them."""
    result = kubectl(
        "-n", namespace, "wait", "--for=condition=Ready", f"--timeout={timeout}s",
        *(f"pod/{pod}" for pod in pods), timeout=timeout + 30, check=False,
    )  # fmt: skip
    if result.returncode != 0:
        described = kubectl("-n", namespace, "describe", "pods", *pods, check=False).stdout
        pytest.fail(f"pods {pods} not Ready after {timeout}s: {result.stderr}\n{described}")


def pod_exec(namespace: str, pod: str, *args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    return kubectl("-n", namespace, "exec", pod, "--", *args, timeout=timeout, check=False)


@pytest.fixture(scope="session")
def cluster() -> None:
    """Fail (not skip) every test at once when the cluster does not answer."""
    nodes = kubectl("get", "nodes", "-o", "name", check=False)
    if nodes.returncode != 0:
        pytest.fail(f"the test cluster does not answer kubectl: {nodes.stderr}")


@pytest.fixture(scope="module")
def namespace(cluster: None, request: pytest.FixtureRequest) -> Iterator[str]:
    """A namespace of this test module, deleted with everything in it at the end."""
    topic = request.module.__name__.rpartition(".")[2].removeprefix("test_").replace("_", "-")
    name = f"verify-{topic}-{secrets.token_hex(3)}"
    kubectl("create", "namespace", name)

    # The API refuses pods in a namespace until the controller-manager has given it its default
    # ServiceAccount.
    def has_account() -> bool:
        return kubectl("-n", name, "get", "serviceaccount", "default", check=False).returncode == 0

    assert eventually(has_account, timeout=60), f"namespace {name} got no default ServiceAccount"
    yield name
    kubectl("delete", "namespace", name, "--timeout=120s", timeout=150)


# --- Network probes from the controller ----------------------------------------------------------


def https_status(url: str, cert: tuple[Path, Path] | None = None, ca: Path = PKI_DIR / "ca.crt") -> int:
    """HTTP status of a GET, verifying the server against ca, optionally with a client certificate."""
    context = ssl.create_default_context(cafile=str(ca))
    if cert:
        context.load_cert_chain(certfile=str(cert[0]), keyfile=str(cert[1]))
    # No proxy from the environment may stand between the test and the node network.
    opener = urllib.request.build_opener(
        urllib.request.ProxyHandler({}), urllib.request.HTTPSHandler(context=context)
    )
    try:
        with opener.open(url, timeout=10) as response:
            return int(response.status)
    except urllib.error.HTTPError as error:
        return error.code


def _icmp_checksum(data: bytes) -> int:
    if len(data) % 2:
        data += b"\0"
    total = sum(struct.unpack(f"!{len(data) // 2}H", data))
    total = (total >> 16) + (total & 0xFFFF)
    total += total >> 16
    return ~total & 0xFFFF


def icmp_echo(address: str, timeout: float = 2) -> bool:
    """One ICMP echo from the controller (raw socket, as root): True when the reply comes back."""
    ident, payload = os.getpid() & 0xFFFF, secrets.token_bytes(16)
    header = struct.pack("!BBHHH", 8, 0, 0, ident, 1)
    packet = struct.pack("!BBHHH", 8, 0, _icmp_checksum(header + payload), ident, 1) + payload
    with socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_ICMP) as sock:
        sock.settimeout(timeout)
        sock.sendto(packet, (address, 0))
        deadline = time.monotonic() + timeout
        while (left := deadline - time.monotonic()) > 0:
            sock.settimeout(left)
            try:
                reply, (source, _port) = sock.recvfrom(2048)
            except TimeoutError:
                return False
            icmp = reply[(reply[0] & 0x0F) * 4 :]
            if source == address and icmp[0] == 0 and icmp[4:6] == packet[4:6] and icmp[8:] == payload:
                return True
    return False


# --- The test bed's lock -----------------------------------------------------------------------

LOCK = "/tmp/testbed.lock"


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


def parent_pid(pid: int | str) -> int:
    """A process's parent, from /proc/PID/stat (the field after the command name in parentheses)."""
    return int(Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()[1])


def _ancestors() -> set[int]:
    pids, pid = set(), os.getpid()
    while pid > 1:
        pid = parent_pid(pid)
        pids.add(pid)
    return pids


@pytest.fixture(scope="session")
def testbed_lock() -> Iterator[None]:
    """The lock `flock /tmp/testbed.lock` takes, held from the first test that asks to the session's end.

    Unless a parent already holds it (`flock /tmp/testbed.lock molecule test`): waiting for it
    then would wait forever.
    """
    with open(LOCK, "a") as handle:
        if not _lock_holders(LOCK) & _ancestors():
            fcntl.flock(handle, fcntl.LOCK_EX)
        yield
