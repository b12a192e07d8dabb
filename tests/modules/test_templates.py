# SPDX-License-Identifier: Apache-2.0
"""The roles' units and configuration files, rendered by real Ansible with non-default settings.

One playbook renders every node-side template with each directory, port and name moved away from
its default, as the roles would on a master that is also a minion and an etcd member. The tests
then check that no default leaked into any file (a path or port written out instead of read from
its setting), and that every certificate or key a unit reads is one that the role's certificate
request (``pki_certificates`` and ``pki_node_dir`` in its tasks) puts there.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from conftest import COLLECTIONS, REPO, _ensure_collection_link

ROLES = REPO / "roles"
# Every setting that names a directory, port or name, moved away from its default.
SETTINGS = {
    "control_plane_config_dir": "/srv/cp",
    "control_plane_audit_log_dir": "/srv/audit",
    "kubelet_dir": "/srv/kubelet",
    "kube_proxy_dir": "/srv/kube-proxy",
    "etcd_pki_dir": "/srv/etcd-pki",
    "etcd_data_dir": "/srv/etcd-data",
    "etcd_client_port": 12379,
    "etcd_peer_port": 12380,
    "apiserver_port": 16443,
    "apiserver_balancer_port": 16444,
    "apiserver_balancer_config_dir": "/srv/haproxy",
    "containerd_config_dir": "/srv/containerd",
    "cluster_domain": "example.internal",
    "cluster_cidr": "10.44.0.0/16",
    "service_cidr": "10.96.0.0/20",
    "cluster_name": "elsewhere",
    "control_plane_apiserver_extra_args": {"v": "3"},
}
# What each default looks like in a rendered file: none may appear once the settings moved.
DEFAULTS = [
    "/etc/kubernetes",
    "/var/log/kubernetes",
    "/var/lib/kubelet",
    "/var/lib/kube-proxy",
    "/etc/etcd",
    "/var/lib/etcd",
    ":2379",
    ":2380",
    ":6443",
    ":6444",
    "/etc/haproxy",
    "/etc/containerd",
    "cluster.local",
    "10.200.",
    "10.32.",
]
NODE_IP = "192.0.2.10"
PLAN = {
    "allocations": {
        "localhost": {"pod_cidr": "10.44.0.0/24", "bridge_ip": "10.44.0.1"},
        "peer": {"pod_cidr": "10.44.1.0/24", "bridge_ip": "10.44.1.1"},
        # A peer the kernel cannot route to (not on the node's link): its route fails.
        "far": {"pod_cidr": "10.44.2.0/24", "bridge_ip": "10.44.2.1"},
    },
    "node_ips": {"localhost": NODE_IP, "peer": "192.0.2.11", "far": "198.51.100.7"},
    "kubernetes_service_ip": "10.96.0.1",
    "cluster_dns_ip": "10.96.0.10",
    "apiserver_url": f"https://{NODE_IP}:16443",
    "node_apiserver_url": "https://127.0.0.1:16444",
    "masters": ["localhost"],
    "etcd_endpoints": f"https://{NODE_IP}:12379",
}
# role -> the templates a node gets from it.
TEMPLATES = {
    "control_plane": [
        "kube-apiserver.service.j2",
        "kube-controller-manager.service.j2",
        "kube-scheduler.service.j2",
        "audit-policy.yaml.j2",
        "admission.yaml.j2",
    ],
    "etcd": ["etcd.service.j2"],
    "kubelet": ["config.yaml.j2", "kubelet.service.j2"],
    "kube_proxy": ["config.yaml.j2", "kube-proxy.service.j2"],
    "containerd": ["config.toml.j2", "containerd.service.j2", "crictl.yaml.j2"],
    "apiserver_balancer": ["haproxy.cfg.j2"],
    "pod_network": ["10-bridge.conflist.j2", "pod-network-routes.j2", "pod-network.service.j2"],
}
# Where the roles' certificates and keys come from on a node besides their own requests: the CA
# certificates installed beside them, and the service-account key pair the masters share.
CA_FILES = ["ca.crt", "etcd-ca.crt"]
SHARED_FILES = {"control_plane": ["service-account.key", "service-account.pub"]}
PKI_FILE = re.compile(r"(/[\w./-]+\.(?:crt|key|pub))\b")


def _vars_files() -> list[str]:
    """Every role's defaults and vars, as the roles would see them."""
    files = [ROLES / "cluster_defaults/defaults/main.yml", ROLES / "cluster_defaults/vars/main.yml"]
    for role in TEMPLATES:
        files += [ROLES / role / kind / "main.yml" for kind in ("defaults", "vars")]
    return [str(path) for path in files if path.exists()]


@pytest.fixture(scope="module")
def rendered(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    """'<role>/<template>' -> the file as rendered with SETTINGS."""
    _ensure_collection_link()
    work = tmp_path_factory.mktemp("templates")
    # A template that another includes by name (a command line, <component>.args.j2) is found
    # beside the playbook, as a role finds it in its own templates/.
    (work / "templates").mkdir()
    for included in ROLES.glob("*/templates/*.args.j2"):
        (work / "templates" / included.name).symlink_to(included)
    # Each template through the roles' lookup, and through ansible.builtin.template beside it
    # (".builtin"): the two must render the same bytes.
    lookups = {"": "scratch.kubernetes.template", ".builtin": "ansible.builtin.template"}
    tasks = [
        {
            "name": f"{role}/{name}{suffix}",
            "ansible.builtin.copy": {
                "content": f"{{{{ lookup('{lookup}', '{ROLES / role / 'templates' / name}') }}}}",
                "dest": str(work / role / name.removesuffix(".j2")) + suffix,
            },
        }
        for role, names in TEMPLATES.items()
        for name in names
        for suffix, lookup in lookups.items()
    ]
    facts = {
        "node_ip": NODE_IP,
        "cluster_plan": PLAN,
        "node_pod_cidr": PLAN["allocations"]["localhost"]["pod_cidr"],
        "node_bridge_ip": PLAN["allocations"]["localhost"]["bridge_ip"],
        "preflight_cgroup_v2": True,
    }
    play = {
        "hosts": "localhost",
        "connection": "local",
        "gather_facts": False,
        "vars_files": _vars_files(),
        "vars": facts,
        "pre_tasks": [
            {"ansible.builtin.file": {"path": str(work / role), "state": "directory"}} for role in TEMPLATES
        ],
        "tasks": tasks,
    }
    (work / "render.yml").write_text(yaml.safe_dump([play], sort_keys=False))
    (work / "inventory.yml").write_text(
        yaml.safe_dump(
            {"all": {"children": {"masters": {"hosts": {"localhost": None}}, "minions": {"hosts": {}}}}}
        )
    )
    env = dict(
        os.environ,
        ANSIBLE_COLLECTIONS_PATH=str(COLLECTIONS),
        ANSIBLE_LOCALHOST_WARNING="0",
        ANSIBLE_PYTHON_INTERPRETER=sys.executable,
        ANSIBLE_CONFIG=str(Path(__file__).with_name("ansible.cfg")),
    )
    completed = subprocess.run(
        [
            str(Path(sys.executable).with_name("ansible-playbook")),
            "-i",
            str(work / "inventory.yml"),
            str(work / "render.yml"),
            "-e",
            json.dumps(SETTINGS),
        ],
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    assert completed.returncode == 0, completed.stdout[-4000:] + completed.stderr[-2000:]
    files = {}
    for role, names in TEMPLATES.items():
        for name in names:
            path = work / role / name.removesuffix(".j2")
            files[f"{role}/{name}"] = path.read_text()
            files[f"{role}/{name}.builtin"] = path.with_name(path.name + ".builtin").read_text()
    return files


def _setting(text: str) -> str:
    """A task's value such as "{{ kubelet_dir }}/pki" with SETTINGS filled in."""
    return re.sub(r"\{\{\s*(\w+)\s*\}\}", lambda match: str(SETTINGS[match[1]]), text)


def issued(role: str) -> set[str]:
    """The certificates and keys the role's tasks put on a node: its requests, the CAs, shared keys."""
    tasks = yaml.safe_load((ROLES / role / "tasks/main.yml").read_text())
    found: set[str] = set()
    for task in tasks:
        request = task.get("vars", {})
        if "pki_certificates" not in request:
            continue
        directory = _setting(request.get("pki_node_dir", "/etc/kubernetes/pki"))
        for certificate in request["pki_certificates"]:
            found |= {f"{directory}/{certificate['name']}.crt", f"{directory}/{certificate['name']}.key"}
        found |= {f"{directory}/{name}" for name in CA_FILES + SHARED_FILES.get(role, [])}
    return found


@pytest.mark.parametrize(
    "template", [f"{role}/{name}" for role, names in TEMPLATES.items() for name in names]
)
def test_no_default_is_written_out(rendered: dict[str, str], template: str) -> None:
    leaked = [default for default in DEFAULTS if default in rendered[template]]
    assert not leaked, f"{template} holds {leaked} although every setting moved:\n{rendered[template]}"


@pytest.mark.parametrize(
    "template", [f"{role}/{name}" for role, names in TEMPLATES.items() for name in names]
)
def test_the_roles_lookup_renders_what_the_builtin_one_does(rendered: dict[str, str], template: str) -> None:
    """scratch.kubernetes.template only skips the deep copy: a byte's difference would restart units."""
    assert rendered[template] == rendered[f"{template}.builtin"]


@pytest.mark.parametrize("role", ["control_plane", "etcd", "kubelet", "apiserver_balancer"])
def test_every_certificate_a_file_reads_is_one_the_role_issues(rendered: dict[str, str], role: str) -> None:
    wanted = issued(role)
    assert wanted, f"no certificate request found in roles/{role}/tasks/main.yml"
    read = {
        path
        for template in TEMPLATES[role]
        for path in PKI_FILE.findall(rendered[f"{role}/{template}"])
        # etcd gets its keys through systemd's LoadCredential, from the issued paths.
        if not path.startswith("/run/credentials/")
    }
    assert read, f"roles/{role}: no certificate path found in its files"
    assert read <= wanted, (
        f"roles/{role} reads {sorted(read - wanted)}, which it does not issue: {sorted(wanted)}"
    )


def test_settings_reach_the_apiserver_flags(rendered: dict[str, str]) -> None:
    unit = rendered["control_plane/kube-apiserver.service.j2"]
    flags = set(re.findall(r"^\s+(--\S+?)(?: \\)?$", unit, re.M))
    for flag in (
        "--secure-port=16443",
        f"--etcd-servers=https://{NODE_IP}:12379",
        "--service-cluster-ip-range=10.96.0.0/20",
        "--service-account-issuer=https://kubernetes.default.svc.example.internal",
        "--audit-log-path=/srv/audit/audit.log",
        "--encryption-provider-config=/srv/cp/encryption-config.yaml",
        "--v=3",
    ):
        assert flag in flags, f"{flag} missing:\n{unit}"


def test_kubelet_config_follows_the_plan_and_settings(rendered: dict[str, str]) -> None:
    config = yaml.safe_load(rendered["kubelet/config.yaml.j2"])
    assert config["clusterDomain"] == "example.internal"
    assert config["clusterDNS"] == ["10.96.0.10"]
    assert config["podCIDR"] == "10.44.0.0/24"
    assert config["protectKernelDefaults"] is True and config["seccompDefault"] is True
    assert config["registerWithTaints"] == [
        {"key": "node-role.kubernetes.io/control-plane", "effect": "NoSchedule"}
    ]


NETNS = "scratch-kubernetes-routes-test"


@pytest.mark.skipif(os.geteuid() != 0, reason="network namespaces need root")
def test_routes_script_converges_past_a_refused_next_hop(rendered: dict[str, str], tmp_path: Path) -> None:
    """In a network namespace: the peer's route goes in, a stale one goes, the refused one fails the run."""
    script = tmp_path / "pod-network-routes"
    script.write_text(rendered["pod_network/pod-network-routes.j2"])
    setup = (
        "ip link add veth-a type veth peer name veth-b && ip link set lo up && ip link set veth-a up"
        f" && ip link set veth-b up && ip addr add {NODE_IP}/24 dev veth-a"
        " && ip route add 10.44.9.0/24 via 192.0.2.13"
    )
    subprocess.run(["ip", "netns", "del", NETNS], capture_output=True, check=False)  # one a killed run left
    subprocess.run(["ip", "netns", "add", NETNS], check=True)
    try:

        def inside(command: str) -> subprocess.CompletedProcess[str]:
            return subprocess.run(
                ["ip", "netns", "exec", NETNS, "sh", "-c", command],
                capture_output=True,
                text=True,
                check=False,
            )

        assert inside(setup).returncode == 0
        applied = inside(f"sh {script}")
        routes = inside("ip -o route show root 10.44.0.0/16").stdout
        masquerade = inside("iptables -t nat -S POSTROUTING").stdout
    finally:
        subprocess.run(["ip", "netns", "del", NETNS], check=False)
    assert applied.returncode == 1, applied
    assert "10.44.2.0/24" not in routes and "10.44.9.0/24" not in routes, routes
    assert re.search(r"^10\.44\.1\.0/24 via 192\.0\.2\.11 ", routes, re.M), routes
    assert "pod-network" in masquerade, masquerade
