# SPDX-License-Identifier: Apache-2.0
"""A cluster's life after site.yml: add a node, a limited run, remove the node, renew the
certificates, back up and restore, lose the controller's state and get it back. (Reset and
rebuild: test_rebuild.py.)

The tests run in file order, after every other test, because each leaves the cluster in the
shape the next one starts from.
"""

from __future__ import annotations

import base64
import datetime
import ipaddress
import re
import secrets
import shutil
import tarfile
from collections.abc import Iterator, Sequence
from pathlib import Path

import pytest
import yaml
from conftest import (
    APISERVER_URL,
    BALANCER_SOCKET,
    NODES,
    PKI_DIR,
    SETTINGS,
    SPARES,
    STATE_DIR,
    Node,
    apply,
    https_status,
    kubectl,
    kubectl_json,
    node_exec,
    pod_exec,
    pod_manifest,
    wait_ready,
)
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization

from playbooks import (
    FINGERPRINT_UNITS,
    assert_recap_unchanged,
    assert_unchanged,
    fingerprints,
    leftovers,
    playbook,
    site_yml,
    timed,
)

pytestmark = pytest.mark.lifecycle

if not SPARES:
    pytest.skip(
        "the lifecycle tests add and remove a spare machine; this scenario has none", allow_module_level=True
    )
SPARE = SPARES[0]
CLUSTER_CIDR = SETTINGS["cluster_cidr"]
BACKUP_LINE = re.compile(r"Backup written: (?P<path>\S+?\.tar\.gz)")
CERTIFICATE_DIRS = ["/etc/kubernetes/pki", "/etc/etcd/pki", "/var/lib/kubelet/pki", "/var/lib/kube-proxy/pki"]
CA_CERTIFICATES = {"ca.crt", "etcd-ca.crt"}


@pytest.fixture(scope="module")
def with_spare(tmp_path_factory: pytest.TempPathFactory) -> list[str]:
    """The test bed's inventory, plus the spare machine as a minion (as an operator adds one)."""
    path = tmp_path_factory.mktemp("inventory") / "spare.yml"
    minion = {SPARE.name: {"ansible_host": SPARE.ip}}
    path.write_text(yaml.safe_dump({"all": {"children": {"minions": {"hosts": minion}}}}))
    return ["inventory/testbed", str(path)]


@pytest.fixture(scope="module")
def backup_archive() -> dict[str, str]:
    """Filled by the backup test: the archive that the restore tests read back."""
    return {}


def unit_starts(nodes: Sequence[Node], units: Sequence[str] = tuple(FINGERPRINT_UNITS)) -> dict[str, str]:
    """When each component last entered its active state, per node: a restart changes it."""
    return {
        f"{node.name} {unit}": node_exec(
            node, "systemctl", "show", "-p", "ActiveEnterTimestampMonotonic", "--value", unit
        ).stdout.strip()
        for node in nodes
        for unit in units
    }


def pod_routes(node: Node) -> dict[str, str]:
    """The node's routes into the cluster CIDR: pod block -> next hop (or the local device)."""
    lines = node_exec(node, "ip", "-o", "route", "show", "root", CLUSTER_CIDR).stdout.splitlines()
    return {fields[0]: fields[2] for fields in map(str.split, lines)}


def registered_blocks() -> dict[str, str]:
    return {
        item["metadata"]["name"]: item["spec"].get("podCIDR", "")
        for item in kubectl_json("get", "nodes")["items"]
    }


def recorded_block(node: Node) -> str | None:
    result = node_exec(node, "cat", "/etc/ansible/facts.d/scratch_kubernetes.fact", check=False)
    return yaml.safe_load(result.stdout)["pod_cidr"] if result.returncode == 0 else None


def ping_between(namespace: str, source: str, target_ip: str) -> None:
    result = pod_exec(namespace, source, "ping", "-c", "3", "-W", "2", target_ip)
    assert result.returncode == 0 and " 0% packet loss" in result.stdout, (
        f"{source} -> {target_ip}:\n{result.stdout}{result.stderr}"
    )


def test_kernel_setting_changed_by_hand_is_reported_by_check_and_put_back_by_a_run(
    cluster: None, testbed_lock: None
) -> None:
    node = NODES[-1]
    node_exec(node, "sysctl", "-w", "net.ipv4.ip_forward=0")
    try:
        checked = site_yml("--check", "--limit", node.name)
        assert checked.returncode == 0, checked.tail()
        assert checked.recap()[node.name]["changed"] == 1, checked.tail()
        assert node_exec(node, "sysctl", "-n", "net.ipv4.ip_forward").stdout.strip() == "0"

        repaired = site_yml("--limit", node.name)
        assert repaired.returncode == 0, repaired.tail()
        assert repaired.recap()[node.name]["changed"] == 1, repaired.tail()
    finally:
        forwarding = node_exec(node, "sysctl", "-n", "net.ipv4.ip_forward").stdout.strip()
        node_exec(node, "sysctl", "-w", "net.ipv4.ip_forward=1")
    assert forwarding == "1"


def balancer_worker(node: Node) -> str:
    """The PID of the balancer's serving worker (HAProxy's runtime API, show info)."""
    info = node_exec(node, "sh", "-c", f"echo 'show info' | socat stdio {BALANCER_SOCKET}").stdout
    return next(line.split(":", 1)[1].strip() for line in info.splitlines() if line.startswith("Pid:"))


def test_restart_a_killed_run_never_made_is_made_by_the_next_run(cluster: None, testbed_lock: None) -> None:
    """A run killed between writing a unit's files and its handler leaves the old process running.

    Its rerun finds the files in place; the unit's start, older than its files, tells it to restart.
    Here the files are touched after the start, as such a run leaves them. The balancer reloads
    instead, so its serving worker's start tells.
    """
    node = NODES[-1]
    stale = {"kubelet": "/var/lib/kubelet/config.yaml", "pod-network": "/usr/local/sbin/pod-network-routes"}
    units = [*FINGERPRINT_UNITS, "pod-network"]
    before, worker = unit_starts([node], units), balancer_worker(node)
    node_exec(node, "touch", *stale.values(), "/etc/haproxy/haproxy.cfg")

    checked = site_yml("--check", "--limit", node.name)
    assert checked.returncode == 0, checked.tail()
    assert checked.recap()[node.name]["changed"] == len(stale) + 1, checked.tail()
    assert (unit_starts([node], units), balancer_worker(node)) == (before, worker)

    repaired = site_yml("--limit", node.name)
    assert repaired.returncode == 0, repaired.tail()
    assert repaired.recap()[node.name]["changed"] == len(stale) + 1, repaired.tail()
    after = unit_starts([node], units)
    restarted = sorted(key.split()[1] for key in after if after[key] != before[key])
    assert restarted == sorted(stale), after
    assert balancer_worker(node) != worker, "the balancer was not reloaded"
    kubectl("wait", f"node/{node.name}", "--for=condition=Ready", "--timeout=120s", timeout=150)


def test_add_node_joins_a_new_minion_without_touching_the_others(
    cluster: None, testbed_lock: None, with_spare: list[str]
) -> None:
    starts = unit_starts(NODES)
    timed("playbooks/add_node.yml", "-e", f"node={SPARE.name}", inventories=with_spare)
    kubectl("wait", f"node/{SPARE.name}", "--for=condition=Ready", "--timeout=180s", timeout=210)

    blocks = registered_blocks()
    block = blocks[SPARE.name]
    assert block == recorded_block(SPARE)
    others = [ipaddress.ip_network(blocks[node.name]) for node in NODES]
    assert not any(ipaddress.ip_network(block).overlaps(other) for other in others), blocks
    for node in NODES:
        assert pod_routes(node).get(block) == SPARE.ip, f"{node.name} has no route to {block}"
    assert unit_starts(NODES) == starts, "add_node.yml restarted a component of an existing node"

    namespace = f"lifecycle-add-{secrets.token_hex(3)}"
    kubectl("create", "namespace", namespace)
    try:
        everyone = [*NODES, SPARE]
        apply(namespace, *(pod_manifest(f"probe-{node.name}", node, "exec sleep 3600") for node in everyone))
        wait_ready(namespace, *(f"probe-{node.name}" for node in everyone))
        pods = {
            item["spec"]["nodeName"]: item for item in kubectl_json("-n", namespace, "get", "pods")["items"]
        }
        for node in NODES:
            ping_between(namespace, f"probe-{SPARE.name}", pods[node.name]["status"]["podIP"])
            ping_between(namespace, f"probe-{node.name}", pods[SPARE.name]["status"]["podIP"])
    finally:
        kubectl("delete", "namespace", namespace, "--timeout=120s", timeout=150)


def test_limited_run_keeps_every_other_allocation_and_route(
    cluster: None, testbed_lock: None, with_spare: list[str]
) -> None:
    everyone = [*NODES, SPARE]
    before = (registered_blocks(), {node.name: (recorded_block(node), pod_routes(node)) for node in everyone})
    result = site_yml("--limit", SPARE.name, inventories=with_spare)
    assert result.returncode == 0, result.tail()
    assert_recap_unchanged(result, [SPARE])
    after = (registered_blocks(), {node.name: (recorded_block(node), pod_routes(node)) for node in everyone})
    assert after == before


def test_remove_node_takes_it_out_everywhere_and_frees_its_block(
    cluster: None, testbed_lock: None, with_spare: list[str]
) -> None:
    block = registered_blocks()[SPARE.name]
    starts = unit_starts(NODES)
    timed("playbooks/remove_node.yml", "-e", f"node={SPARE.name}", inventories=with_spare)

    blocks = registered_blocks()
    assert SPARE.name not in blocks, blocks
    assert block not in blocks.values(), f"{block} still held: {blocks}"
    for node in NODES:
        assert block not in pod_routes(node), f"{node.name} still routes {block}"
        assert recorded_block(node) != block
    assert leftovers(SPARE) == []
    assert unit_starts(NODES) == starts, "remove_node.yml restarted a component of a remaining node"


def certificates(node: Node) -> dict[str, str]:
    """sha256 of every certificate the roles installed on the node, by path."""
    script = f"find {' '.join(CERTIFICATE_DIRS)} -name '*.crt' 2>/dev/null | sort | xargs -r sha256sum"
    lines = node_exec(node, "bash", "-c", script).stdout.splitlines()
    return {path: digest for digest, path in (line.split("  ", 1) for line in lines)}


def test_renew_certificates_reissues_every_leaf_once(cluster: None, testbed_lock: None) -> None:
    before = {node.name: certificates(node) for node in NODES}
    result = timed("playbooks/renew_certificates.yml")
    kubectl("get", "nodes")
    for node in NODES:
        after = certificates(node)
        assert after.keys() == before[node.name].keys()
        kept = {path for path in after if after[path] == before[node.name][path]}
        assert kept == {path for path in after if Path(path).name in CA_CERTIFICATES}, f"{node.name}: {kept}"

    issued_before = re.search(r"pki_reissue_issued_before=([0-9T:Z-]+)", result.output)
    assert issued_before, result.tail()
    again = playbook(
        "playbooks/renew_certificates.yml", "-e", f"pki_reissue_issued_before={issued_before[1]}"
    )
    assert again.returncode == 0, again.tail()
    assert_recap_unchanged(again)


def expire(certificate: Path) -> None:
    """Sign the certificate again with the cluster CA, as it was but valid only until yesterday."""
    ca = x509.load_pem_x509_certificate((PKI_DIR / "ca.crt").read_bytes())
    ca_key = serialization.load_pem_private_key((PKI_DIR / "ca.key").read_bytes(), None)
    old = x509.load_pem_x509_certificate(certificate.read_bytes())
    now = datetime.datetime.now(datetime.UTC)
    builder = (
        x509.CertificateBuilder()
        .subject_name(old.subject)
        .issuer_name(ca.subject)
        .public_key(old.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(days=2))
        .not_valid_after(now - datetime.timedelta(days=1))
    )
    for extension in old.extensions:
        builder = builder.add_extension(extension.value, extension.critical)
    expired = builder.sign(ca_key, hashes.SHA256())
    certificate.write_bytes(expired.public_bytes(serialization.Encoding.PEM))


def test_expired_admin_certificate_is_renewed_by_a_run(cluster: None, testbed_lock: None) -> None:
    """A cluster left alone past its certificates' dates: the API refuses the admin identity too."""
    admin = PKI_DIR / "admin.crt"
    expire(admin)
    assert https_status(f"{APISERVER_URL}/api", cert=(admin, PKI_DIR / "admin.key")) == 401

    result = timed("site.yml")
    assert "The admin certificate has expired" in result.output, result.tail()
    renewed = x509.load_pem_x509_certificate(admin.read_bytes())
    assert renewed.not_valid_after_utc > datetime.datetime.now(datetime.UTC)
    kubectl("get", "nodes")


def test_backup_and_restore_bring_back_objects_and_secrets(
    cluster: None, testbed_lock: None, backup_archive: dict[str, str]
) -> None:
    namespace = f"lifecycle-backup-{secrets.token_hex(3)}"
    value = f"secret-{secrets.token_hex(12)}"
    kubectl("create", "namespace", namespace)
    kubectl("-n", namespace, "create", "secret", "generic", "kept", f"--from-literal=value={value}")
    kubectl("-n", namespace, "create", "configmap", "kept", "--from-literal=colour=blue")

    result = timed("playbooks/backup.yml")
    found = BACKUP_LINE.search(result.output)
    assert found, f"no 'Backup written' line:\n{result.tail()}"
    archive = Path(found["path"])
    backup_archive["path"] = str(archive)
    assert archive.stat().st_mode & 0o777 == 0o600
    with tarfile.open(archive) as tar:
        names = set(tar.getnames())
    assert {"backup.json", "etcd-snapshot.db", "state/pki/ca.key", "state/pki/encryption.key"} <= names, names

    kubectl("-n", namespace, "delete", "secret,configmap", "kept")
    master = next(node for node in NODES if node.is_master)
    node_exec(master, "bash", "-c", "systemctl stop kube-apiserver etcd && rm -rf /var/lib/etcd/member")

    timed("playbooks/restore.yml", "-e", f"backup={archive}")
    read = kubectl(
        "-n", namespace, "get", "secret", "kept", "-o", "jsonpath={.data.value}", timeout=120
    ).stdout
    assert base64.b64decode(read).decode() == value
    colour = kubectl("-n", namespace, "get", "configmap", "kept", "-o", "jsonpath={.data.colour}").stdout
    assert colour == "blue"
    kubectl("delete", "namespace", namespace, "--timeout=120s", timeout=150)


@pytest.fixture
def state_dir_lost(tmp_path: Path) -> Iterator[None]:
    """The controller's state directory gone (kept aside, and put back if the test fails early)."""
    aside = tmp_path / "state"
    shutil.move(STATE_DIR, aside)
    yield
    if not STATE_DIR.exists():
        shutil.move(aside, STATE_DIR)


def test_lost_controller_state_stops_the_run_until_restored(
    cluster: None, testbed_lock: None, backup_archive: dict[str, str], state_dir_lost: None
) -> None:
    assert backup_archive, "the backup test did not leave an archive"
    before = fingerprints()
    result = site_yml()
    assert result.returncode != 0, result.tail()
    messages = [message for failure in result.failures() for message in failure.messages]
    assert any("already runs a cluster" in m and "restore.yml" in m for m in messages), messages
    assert_unchanged(before, fingerprints())
    assert not STATE_DIR.exists(), "the failed run created controller state"

    timed(
        "playbooks/restore.yml", "-e", f"backup={backup_archive['path']}", "-e", "backup_restore_etcd=false"
    )
    assert STATE_DIR.stat().st_mode & 0o777 == 0o700
    rerun = site_yml()
    assert rerun.returncode == 0, rerun.tail()
    assert_recap_unchanged(rerun)
