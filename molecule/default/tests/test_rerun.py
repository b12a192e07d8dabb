# SPDX-License-Identifier: Apache-2.0
"""Rerunning the playbooks on the converged cluster: check mode finds nothing to do, bad input
(a catalog of operators' mistakes, one line each) changes nothing.

Each run is `ansible-playbook -i inventory/testbed site.yml` from the repository root, as a user
runs it. Molecule's idempotence step already proves that a real rerun reports no change; these
runs never converge anything.
"""

from __future__ import annotations

import gzip
import json
import re
from dataclasses import dataclass

import pytest
import yaml
from conftest import MASTER, MINIONS, NODES, REPO, SETTINGS, node_allocation, node_exec

from playbooks import assert_recap_unchanged, assert_unchanged, fingerprints, playbook, site_yml

pytestmark = pytest.mark.last


def test_check_mode_rerun_finds_nothing_to_change(cluster: None, testbed_lock: None) -> None:
    before = fingerprints()
    playbook = site_yml("--check")
    assert playbook.returncode == 0, playbook.tail()
    recap = assert_recap_unchanged(playbook)
    assert not any(counts["failed"] or counts["unreachable"] for counts in recap.values()), recap
    assert_unchanged(before, fingerprints())
    # The summary at the end: every node as the cluster reports it, and the way in.
    assert f"Cluster {SETTINGS['cluster_name']}, API https://" in playbook.output, playbook.tail()
    for node in NODES:
        role = "master" if node.is_master else "minion"
        line = rf"{node.name}\s+{role}\s+{re.escape(node_allocation(node)['pod_cidr'])}\s+Ready\s+v"
        assert re.search(line, playbook.output), playbook.tail()
    assert "get nodes -o wide" in playbook.output


ZERO_CHECKSUM = "sha256:" + "0" * 64
PREVIOUS_KUBE_VERSION = (REPO / "tests/testbed/previous-kube-version").read_text().strip()
_major, _minor, _patch = SETTINGS["kube_version"].split(".")
SKIPPED_MINOR = f"{_major}.{int(_minor) + 2}.0"


@dataclass(frozen=True)
class BadInput:
    """A mistake an operator makes, and the message that must stop the run before any change.

    Arguments and inventories may name the files the `bad_input_files` fixture makes:
    {corrupt_archive}, {alias_inventory}... With reaches_nodes, every node must show in the recap
    (the run got to them and changed nothing); otherwise the run stops before it reaches them.
    A machine's shortcoming is made for the run by on_minion: a shell script run on the first
    minion before it, and one that undoes it after.
    """

    playbook: str
    args: tuple[str, ...]
    message: str
    failing_role: str | None = None
    reaches_nodes: bool = True
    inventories: tuple[str, ...] = ("inventory/testbed",)
    on_minion: tuple[str, str] = ("", "")


# The overlay filesystem gone from the kernel's list (and no module to load): a bind mount over
# /proc/filesystems inside the node, which its kernel never sees.
WITHOUT_OVERLAY = (
    "grep -vw overlay /proc/filesystems > /run/without-overlay"
    " && mount --bind /run/without-overlay /proc/filesystems",
    "umount /proc/filesystems; rm -f /run/without-overlay",
)
UNPUBLISHED_VERSION = f"{_major}.{_minor}.99"


BAD_INPUTS = [
    pytest.param(
        BadInput(
            "site.yml",
            ("-e", "service_cidr=10.200.0.0/24"),
            r"overlaps service_cidr 10\.200\.0\.0/24|service_cidr 10\.200\.0\.0/24 overlaps",
        ),
        id="service-cidr-overlapping-cluster-cidr",
    ),
    pytest.param(
        BadInput("site.yml", ("-e", "node_pod_prefix=26"), r"node_pod_prefix /?26 .*max_pods=110"),
        id="pod-block-too-small-for-max-pods",
    ),
    pytest.param(
        BadInput(
            "site.yml",
            ("-e", json.dumps({"release_checksums": {"kubelet": ZERO_CHECKSUM}})),
            r"Checksum mismatch for \S+/kubelet: expected sha256 0{64}",
            failing_role="scratch.kubernetes.artifacts",
        ),
        id="wrong-kubelet-checksum",
    ),
    pytest.param(
        BadInput(
            "site.yml",
            ("-e", "apiserver_endpoint=https://lb.example.com:6443"),
            r"apiserver_endpoint \S+ is neither a DNS name nor an IPv4 address",
            reaches_nodes=False,
        ),
        id="apiserver-endpoint-given-as-a-url",
    ),
    pytest.param(
        BadInput(
            "site.yml",
            ("-e", f"kube_version={PREVIOUS_KUBE_VERSION}"),
            rf"kube_version {PREVIOUS_KUBE_VERSION} goes backwards: the kubelet on .* Downgrades",
        ),
        id="site-yml-going-back-a-release",
    ),
    pytest.param(
        BadInput(
            "playbooks/upgrade.yml",
            ("-e", f"kube_version={PREVIOUS_KUBE_VERSION}"),
            rf"kube_version {PREVIOUS_KUBE_VERSION} goes backwards: the apiserver on .* Downgrades",
        ),
        id="upgrade-going-backwards",
    ),
    pytest.param(
        BadInput(
            "playbooks/upgrade.yml",
            ("-e", f"kube_version={SKIPPED_MINOR}"),
            rf"kube_version {SKIPPED_MINOR} skips a minor release: .* Upgrade one minor at a time",
        ),
        id="upgrade-skipping-a-minor",
    ),
    pytest.param(
        BadInput(
            "site.yml",
            (),
            r"Every master runs an etcd member when the `etcd` group names masters, but it lacks"
            r" k8s-master-9",
            reaches_nodes=False,
            inventories=("inventory/testbed", "{etcd_inventory}"),
        ),
        id="master-left-out-of-the-etcd-group",
    ),
    pytest.param(
        BadInput(
            "site.yml",
            (),
            rf"The `etcd` group names {MINIONS[0].name}, of the `minions` group: etcd runs on the masters"
            r" or on machines of its own",
            reaches_nodes=False,
            inventories=("inventory/testbed", "{minion_etcd_inventory}"),
        ),
        id="minion-in-the-etcd-group",
    ),
    pytest.param(
        BadInput("site.yml", ("--limit", "no-such-host"), r"no hosts", reaches_nodes=False),
        id="limit-naming-no-host",
    ),
    pytest.param(
        BadInput("playbooks/add_node.yml", (), r"Name the nodes to add", reaches_nodes=False),
        id="add-node-without-a-name",
    ),
    pytest.param(
        BadInput(
            "playbooks/add_node.yml",
            ("-e", "node=k8s-minion-1"),
            r"Already nodes of this cluster: k8s-minion-1",
            reaches_nodes=False,
        ),
        id="add-node-whose-name-is-taken",
    ),
    pytest.param(
        BadInput(
            "playbooks/add_node.yml",
            ("-e", "node=k8s-minion-9"),
            r"node_ip 172\.31\.250\.12 is used by both 'k8s-minion-1' and 'k8s-minion-9'",
            reaches_nodes=False,
            inventories=("inventory/testbed", "{alias_inventory}"),
        ),
        id="add-node-whose-address-is-taken",
    ),
    pytest.param(
        BadInput(
            "site.yml",
            (),
            rf"node '{NODES[-1].name}' is registered in the cluster .* but is not in the inventory",
            reaches_nodes=False,
            inventories=("{short_inventory}",),
        ),
        id="inventory-lacking-a-node-of-the-cluster",
    ),
    pytest.param(
        BadInput(
            "playbooks/remove_node.yml",
            ("-e", "node=no-such-node"),
            r"no-such-node is not a node of this inventory",
            reaches_nodes=False,
        ),
        id="remove-unknown-node",
    ),
    pytest.param(
        BadInput(
            "playbooks/remove_node.yml",
            ("-e", "node=k8s-master-1"),
            r"k8s-master-1 is the only master: a cluster cannot lose its last master",
            reaches_nodes=False,
        ),
        id="remove-the-only-master",
    ),
    pytest.param(
        BadInput(
            "playbooks/restore.yml",
            ("-e", "backup=/nonexistent/testbed-backup.tar.gz"),
            r"/nonexistent/testbed-backup\.tar\.gz",
            reaches_nodes=False,
        ),
        id="restore-from-a-missing-archive",
    ),
    pytest.param(
        BadInput(
            "playbooks/restore.yml", ("-e", "backup={corrupt_archive}"), r"corrupt", reaches_nodes=False
        ),
        id="restore-from-a-corrupt-archive",
    ),
    pytest.param(
        BadInput(
            "site.yml",
            ("-e", "service_cidr=10.32.0.0/29"),
            r"cluster_dns_index 10 is outside service_cidr 10\.32\.0\.0/29, whose free indexes are 2 to 6",
        ),
        id="service-cidr-too-small-for-cluster-dns",
    ),
    pytest.param(
        BadInput(
            "site.yml",
            ("-e", "cluster_cidr=172.31.0.0/16"),
            r"node_networks entry 172\.31\.250\.0/24 overlaps cluster_cidr 172\.31\.0\.0/16",
        ),
        id="cluster-cidr-overlapping-the-node-network",
    ),
    pytest.param(
        BadInput(
            "site.yml",
            (),
            r"etcd needs 1, 3 or 5 members; this inventory gives it 2",
            reaches_nodes=False,
            inventories=("inventory/testbed", "{two_etcd_inventory}"),
        ),
        id="etcd-group-of-two",
    ),
    pytest.param(
        BadInput(
            "site.yml",
            (),
            rf"no host may be in both \(masters=\[.*'{MINIONS[0].name}'\]",
            reaches_nodes=False,
            inventories=("inventory/testbed", "{minion_master_inventory}"),
        ),
        id="host-in-masters-and-minions",
    ),
    pytest.param(
        BadInput(
            "site.yml",
            (),
            r"the groups `masters` and `minions` must both list hosts.*\(masters=\[\],",
            reaches_nodes=False,
            inventories=("{masterless_inventory}",),
        ),
        id="inventory-without-masters",
    ),
    pytest.param(
        BadInput(
            "site.yml",
            (),
            r"node_ip 172\.31\.250\.12 is used by both 'k8s-minion-1' and 'k8s-minion-9'",
            inventories=("inventory/testbed", "{alias_inventory}"),
        ),
        id="two-nodes-sharing-an-address",
    ),
    pytest.param(
        BadInput(
            "site.yml",
            (),
            rf"{MINIONS[0].name}: node_ip 172\.31\.250\.97 is not one of its addresses",
            inventories=("inventory/testbed", "{foreign_node_ip_inventory}"),
        ),
        id="node-ip-not-on-the-node",
    ),
    pytest.param(
        BadInput(
            "site.yml",
            (),
            r"K8s_Minion-9: a node's \(and an etcd member's\) name is its inventory name, and"
            r" Kubernetes takes only lowercase DNS names",
            reaches_nodes=False,
            inventories=("inventory/testbed", "{bad_name_inventory}"),
        ),
        id="node-name-not-a-dns-name",
    ),
    pytest.param(
        BadInput(
            "playbooks/upgrade.yml",
            ("-e", f"kube_version={UNPUBLISHED_VERSION}"),
            rf"/v{UNPUBLISHED_VERSION}/\S+ failed with HTTP 404 .*nothing is published there: check the"
            r" version",
            failing_role="scratch.kubernetes.artifacts",
        ),
        id="kube-version-with-no-release",
    ),
    pytest.param(
        BadInput(
            "site.yml",
            ("-e", "release_base_url=http://127.0.0.1:9"),
            r"Downloading http://127\.0\.0\.1:9/\S+ failed after \d+ attempt\(s\): .*Connection refused",
            failing_role="scratch.kubernetes.artifacts",
        ),
        id="release-mirror-unreachable",
    ),
    pytest.param(
        BadInput(
            "site.yml",
            ("-e", "control_plane_mode=static_pods"),
            rf"{MASTER.name} runs its control plane in control_plane_mode systemd, but this run asks for"
            r" static_pods: a cluster keeps the mode it was built with",
        ),
        id="control-plane-mode-switched",
    ),
    pytest.param(
        BadInput(
            "site.yml",
            ("-e", "control_plane_mode=static_pods"),
            r"control_plane_mode static_pods runs etcd and the control plane on one master's kubelet, but"
            r" this inventory has 2 masters",
            reaches_nodes=False,
            inventories=("inventory/testbed", "{second_master_inventory}"),
        ),
        id="static-pods-with-two-masters",
    ),
    pytest.param(
        BadInput(
            "site.yml",
            ("-e", "container_runtime=rkt"),
            r"value of container_runtime must be one of: containerd, got: rkt",
            reaches_nodes=False,
        ),
        id="container-runtime-retired-upstream",
    ),
    pytest.param(
        BadInput(
            "site.yml",
            ("-e", "cluster_domain=cluster_local."),
            r'cluster_domain "cluster_local\." is not a DNS name',
            reaches_nodes=False,
        ),
        id="cluster-domain-not-a-dns-name",
    ),
    pytest.param(
        BadInput(
            "site.yml",
            ("-e", "pki_dir=/nonexistent/pki"),
            r"already runs a cluster .*, but the controller's state \(pki_dir /nonexistent/pki\) is missing",
        ),
        id="pki-dir-without-the-cluster-state",
    ),
    pytest.param(
        BadInput(
            "site.yml", (), rf"{MINIONS[0].name} lacks: kernel overlay filesystem", on_minion=WITHOUT_OVERLAY
        ),
        id="node-without-the-overlay-filesystem",
    ),
    pytest.param(
        BadInput(
            "site.yml",
            ("-e", "preflight_node_free_disk_mb=99999999"),
            r"lacks: 99999999 MiB free on /usr/local/bin \(it has \d+; preflight_node_free_disk_mb\)",
        ),
        id="too-little-disk-on-a-node",
    ),
    pytest.param(
        BadInput(
            "site.yml",
            ("-e", "preflight_controller_free_disk_mb=99999999"),
            r"The controller has \d+ MiB free for artifacts_dir .* need 99999999 MiB",
            reaches_nodes=False,
        ),
        id="too-little-disk-on-the-controller",
    ),
]


@pytest.fixture(scope="module")
def bad_input_files(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    """A truncated archive, and inventories with mistakes in them: one names minion-1's machine a
    second time, one lacks a node of the cluster, one lacks the masters, one's etcd group leaves a
    master out, one's names a minion..."""
    folder = tmp_path_factory.mktemp("bad-input")
    corrupt = folder / "corrupt.tar.gz"
    corrupt.write_bytes(gzip.compress(b"not a tar archive" * 64)[:200])
    alias = folder / "alias.yml"
    # minion-1's machine under another name, over SSH or over the docker connection.
    machine = {"ansible_host": "172.31.250.12", "ansible_docker_host": "k8s-minion-1"}
    alias.write_text(yaml.safe_dump({"all": {"children": {"minions": {"hosts": {"k8s-minion-9": machine}}}}}))
    # The test bed's inventory without its last minion, which the cluster still has.
    short = folder / "short"
    short.mkdir()
    hosts = yaml.safe_load((REPO / "inventory/testbed/hosts.yml").read_text())
    hosts["all"]["children"]["minions"]["hosts"].pop(NODES[-1].name)
    (short / "hosts.yml").write_text(yaml.safe_dump(hosts))
    (short / "group_vars").symlink_to(REPO / "inventory/testbed/group_vars")
    # A second master that the etcd group leaves out.
    etcd = folder / "etcd.yml"
    master = {"ansible_host": "172.31.250.99", "ansible_docker_host": "k8s-master-9"}
    groups = {"masters": {"hosts": {"k8s-master-9": master}}, "etcd": {"hosts": {MASTER.name: {}}}}
    etcd.write_text(yaml.safe_dump({"all": {"children": groups}}))
    # An etcd group that puts a member beside a minion's workloads.
    minion_etcd = folder / "minion-etcd.yml"
    groups = {"etcd": {"hosts": {MASTER.name: {}, MINIONS[0].name: {}}}}
    minion_etcd.write_text(yaml.safe_dump({"all": {"children": groups}}))
    # Inventories adding one mistake each to the test bed's: a second etcd member, a minion among
    # the masters, a second master, a node_ip the minion does not have, a name Kubernetes refuses.
    outsider = {"ansible_host": "172.31.250.98"}
    mistakes = {
        "two_etcd_inventory": {"etcd": {"hosts": {MASTER.name: {}, "etcd-9": outsider}}},
        "minion_master_inventory": {"masters": {"hosts": {MINIONS[0].name: {}}}},
        "second_master_inventory": {"masters": {"hosts": {"k8s-master-9": outsider}}},
        "foreign_node_ip_inventory": {"minions": {"hosts": {MINIONS[0].name: {"node_ip": "172.31.250.97"}}}},
        "bad_name_inventory": {"minions": {"hosts": {"K8s_Minion-9": machine}}},
    }
    for name, groups in mistakes.items():
        (folder / f"{name}.yml").write_text(yaml.safe_dump({"all": {"children": groups}}))
    # The test bed's inventory without its masters.
    masterless = folder / "masterless"
    masterless.mkdir()
    hosts = yaml.safe_load((REPO / "inventory/testbed/hosts.yml").read_text())
    hosts["all"]["children"].pop("masters")
    (masterless / "hosts.yml").write_text(yaml.safe_dump(hosts))
    (masterless / "group_vars").symlink_to(REPO / "inventory/testbed/group_vars")
    return {
        **{name: str(folder / f"{name}.yml") for name in mistakes},
        "masterless_inventory": str(masterless),
        "corrupt_archive": str(corrupt),
        "alias_inventory": str(alias),
        "short_inventory": str(short),
        "etcd_inventory": str(etcd),
        "minion_etcd_inventory": str(minion_etcd),
    }


def _fill(text: str, files: dict[str, str]) -> str:
    """Put the fixture's files in place of their {names} (str.format would trip on JSON's braces)."""
    for name, path in files.items():
        text = text.replace(f"{{{name}}}", path)
    return text


@pytest.mark.parametrize("bad", BAD_INPUTS)
def test_bad_input_fails_clearly_and_changes_nothing(
    cluster: None, testbed_lock: None, bad_input_files: dict[str, str], bad: BadInput
) -> None:
    before = fingerprints()
    make, undo = bad.on_minion
    if make:
        node_exec(MINIONS[0], "sh", "-c", make)
    try:
        result = playbook(
            bad.playbook,
            *(_fill(arg, bad_input_files) for arg in bad.args),
            inventories=[_fill(source, bad_input_files) for source in bad.inventories],
        )
    finally:
        if undo:
            node_exec(MINIONS[0], "sh", "-c", undo)
    assert result.returncode != 0, result.tail()
    failures = result.failures()
    matching = [
        failure for failure in failures if any(re.search(bad.message, msg) for msg in failure.messages)
    ]
    if failures or bad.reaches_nodes:
        assert matching, f"no failure says {bad.message!r}: {failures}\n{result.tail()}"
    else:
        # Refused by ansible-playbook itself, before any play.
        assert re.search(bad.message, result.output), result.tail()
    if bad.failing_role:
        assert all(failure.task.startswith(f"{bad.failing_role} : ") for failure in matching), matching
    if "PLAY RECAP" in result.output:
        assert_recap_unchanged(result, NODES if bad.reaches_nodes else ())
    assert_unchanged(before, fingerprints())


RECORD = "/etc/ansible/facts.d/scratch_kubernetes.fact"


def test_record_that_differs_from_the_cluster_stops_the_run(cluster: None, testbed_lock: None) -> None:
    """A node whose own record of its pod block disagrees with its Node object: nothing is guessed."""
    node, other = NODES[-1], NODES[0]
    original = node_exec(node, "cat", RECORD).stdout
    taken = json.loads(node_exec(other, "cat", RECORD).stdout)
    before = fingerprints()
    node_exec(node, "sh", "-c", f"cat > {RECORD}", input=json.dumps(taken))
    try:
        result = site_yml()
    finally:
        node_exec(node, "sh", "-c", f"cat > {RECORD}", input=original)
    assert result.returncode != 0, result.tail()
    messages = [message for failure in result.failures() for message in failure.messages]
    wanted = f"node '{node.name}' records pod block {taken['pod_cidr']} on the node, but its Node object"
    assert any(wanted in message for message in messages), messages
    assert_recap_unchanged(result)
    assert_unchanged(before, fingerprints())


# Root on a node makes every CSR of the next run ask for the system:masters group: site runs the
# `import` line of a .pth file in every Python the run starts there. (A sitecustomize would not
# do: Debian's own, in the standard library, comes first on sys.path. And the .pth file goes
# beside cryptography, whose directory is on sys.path only from then on.)
ASK_FOR_SYSTEM_MASTERS = """
from cryptography import x509
from cryptography.x509.oid import NameOID
_subject_name = x509.CertificateSigningRequestBuilder.subject_name
def subject_name(self, name):
    masters = x509.NameAttribute(NameOID.ORGANIZATION_NAME, "system:masters")
    return _subject_name(self, x509.Name([masters, *name.get_attributes_for_oid(NameOID.COMMON_NAME)]))
x509.CertificateSigningRequestBuilder.subject_name = subject_name
"""


def test_a_node_that_asks_for_more_than_its_requests_gets_no_certificate(
    cluster: None, testbed_lock: None
) -> None:
    """A certificate falls due (here: it is gone) on a minion whose root tampers with the CSRs."""
    node = MINIONS[0]
    due = "/var/lib/kube-proxy/pki/kube-proxy.crt"
    where = "import cryptography, os; print(os.path.dirname(os.path.dirname(cryptography.__file__)))"
    packages = node_exec(node, "python3", "-c", where).stdout.strip()
    module, loader = f"{packages}/scratch_tamper.py", f"{packages}/scratch-tamper.pth"
    certificate = node_exec(node, "cat", due).stdout
    # Put back as it was, time included: a newer file would make the next run restart kube-proxy.
    modified = node_exec(node, "stat", "-c", "%Y", due).stdout.strip()
    node_exec(node, "sh", "-c", f"cat > {module}", input=ASK_FOR_SYSTEM_MASTERS)
    try:
        node_exec(node, "sh", "-c", f"cat > {loader} && rm {due}", input="import scratch_tamper\n")
        # Taken with the certificate gone: putting it back is this test's own change.
        before = fingerprints()
        result = site_yml()
        after = fingerprints()
    finally:
        node_exec(node, "rm", "-f", module, loader)
        node_exec(node, "sh", "-c", f"cat > {due} && touch -d @{modified} {due}", input=certificate)
    assert result.returncode != 0, result.tail()
    wanted = re.compile(r"the CSR asks for subject CN=[^,]+,O=system:masters, but CN=")
    refused = [
        failure
        for failure in result.failures()
        if failure.host == node.name and any(wanted.search(message) for message in failure.messages)
    ]
    assert refused, f"{result.failures()}\n{result.tail()}"
    assert due not in after[node.name], f"{due} was installed"
    # Nothing issued on the controller, nothing else changed on any node.
    assert_recap_unchanged(result)
    assert_unchanged(before, after)
