# SPDX-License-Identifier: Apache-2.0
"""The security defaults hold: authentication everywhere, private files private, Secrets encrypted."""

from __future__ import annotations

import base64
import datetime
import hashlib
import json
import secrets
import subprocess
from pathlib import Path
from typing import Any

import pytest
from conftest import (
    APISERVER_URL,
    BALANCER_URL,
    ETCD_MEMBERS,
    ETCD_PKI,
    MACHINES,
    MASTER,
    MASTERS,
    MINIONS,
    NODES,
    PKI_DIR,
    SETTINGS,
    STATE_DIR,
    STATIC_PODS,
    Node,
    apply,
    etcd_url,
    eventually,
    https_status,
    kubectl,
    kubectl_json,
    node_exec,
    pod_manifest,
    wait_ready,
)
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from playbooks import assert_recap_unchanged, playbook, site_yml

ADMIN_CERT = (PKI_DIR / "admin.crt", PKI_DIR / "admin.key")
KUBELET_PORT = 10250
ETCD_CA = "/etc/kubernetes/pki/etcd-ca.crt"
APISERVER_ETCD_CLIENT = (
    "/etc/kubernetes/pki/apiserver-etcd-client.crt",
    "/etc/kubernetes/pki/apiserver-etcd-client.key",
)

# Files holding private keys (or embedding them), by the machines that must have them.
ETCD_SECRETS = ["/etc/etcd/pki/*.key"]
MASTER_SECRETS = [
    "/etc/kubernetes/pki/*.key",
    "/etc/kubernetes/*.kubeconfig",
    "/etc/kubernetes/encryption-config.yaml",
]
NODE_SECRETS = [
    "/var/lib/kubelet/pki/*.key",
    "/var/lib/kube-proxy/pki/*.key",
    "/var/lib/kubelet/kubeconfig",
    "/var/lib/kube-proxy/kubeconfig",
    "/etc/haproxy/pki/*.key",
]
# Wherever else a key or kubeconfig might land on a node.
SECRET_SEARCH_DIRS = [
    "/etc/kubernetes",
    "/etc/etcd",
    "/var/lib/kubelet",
    "/var/lib/kube-proxy",
    "/etc/haproxy",
]


def _name(common_name: str, organization: str | None = None) -> x509.Name:
    attributes = [x509.NameAttribute(NameOID.COMMON_NAME, common_name)]
    if organization:
        attributes.insert(0, x509.NameAttribute(NameOID.ORGANIZATION_NAME, organization))
    return x509.Name(attributes)


def _client_certificate(
    directory: Path, subject: x509.Name, ca_cert: x509.Certificate, ca_key: Any
) -> tuple[Path, Path]:
    """A client certificate for subject signed by the CA, and its key, written to directory."""
    now = datetime.datetime.now(datetime.UTC)
    key = ec.generate_private_key(ec.SECP256R1())
    cert = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(ca_cert.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.CLIENT_AUTH]), critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    cert_path, key_path = directory / "client.crt", directory / "client.key"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
    )
    key_path.chmod(0o600)
    return cert_path, key_path


@pytest.fixture(scope="module")
def foreign_admin_cert(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """A client certificate claiming admin (system:masters), signed by a CA the cluster never saw."""
    now = datetime.datetime.now(datetime.UTC)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = _name("foreign CA")
    ca_cert = (
        x509.CertificateBuilder()
        .subject_name(ca_name)
        .issuer_name(ca_name)
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .sign(ca_key, hashes.SHA256())
    )
    directory = tmp_path_factory.mktemp("foreign-ca")
    return _client_certificate(directory, _name("admin", "system:masters"), ca_cert, ca_key)


@pytest.fixture(scope="module")
def nobody_cert(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """A client certificate of the cluster CA for a user that no RBAC rule names."""
    ca_cert = x509.load_pem_x509_certificate((PKI_DIR / "ca.crt").read_bytes())
    ca_key = serialization.load_pem_private_key((PKI_DIR / "ca.key").read_bytes(), password=None)
    directory = tmp_path_factory.mktemp("nobody")
    return _client_certificate(directory, _name("verify-nobody", "verify-nobodies"), ca_cert, ca_key)


def test_apiserver_accepts_the_admin_certificate(cluster: None) -> None:
    # Positive control: the refusals below are not a broken endpoint.
    assert https_status(f"{APISERVER_URL}/api", cert=ADMIN_CERT) == 200


def test_apiserver_refuses_anonymous_requests(cluster: None) -> None:
    assert https_status(f"{APISERVER_URL}/api") == 401


def test_apiserver_refuses_a_certificate_from_a_foreign_ca(
    cluster: None, foreign_admin_cert: tuple[Path, Path]
) -> None:
    assert https_status(f"{APISERVER_URL}/api", cert=foreign_admin_cert) == 401


@pytest.mark.parametrize("node", NODES, ids=lambda node: node.name)
def test_kubelet_refuses_anonymous_requests(cluster: None, node: Node) -> None:
    # The kubelet's serving certificate is issued by the cluster CA for the node's IP.
    assert https_status(f"https://{node.ip}:{KUBELET_PORT}/pods") == 401


@pytest.mark.parametrize("node", NODES, ids=lambda node: node.name)
def test_kubelet_authorizes_the_admin_through_the_apiserver(cluster: None, node: Node) -> None:
    assert https_status(f"https://{node.ip}:{KUBELET_PORT}/pods", cert=ADMIN_CERT) == 200


SECRETS_URL = f"{APISERVER_URL}/api/v1/namespaces/kube-system/secrets"


def test_apiserver_grants_a_user_without_rules_nothing_but_discovery(
    cluster: None, nobody_cert: tuple[Path, Path]
) -> None:
    # Positive controls: the certificate authenticates, and the admin may list the Secrets.
    assert https_status(f"{APISERVER_URL}/api", cert=nobody_cert) == 200
    assert https_status(SECRETS_URL, cert=ADMIN_CERT) == 200
    assert https_status(SECRETS_URL, cert=nobody_cert) == 403


@pytest.mark.parametrize("node", NODES, ids=lambda node: node.name)
def test_kubelet_refuses_a_user_the_apiserver_does_not_authorize(
    cluster: None, nobody_cert: tuple[Path, Path], node: Node
) -> None:
    assert https_status(f"https://{node.ip}:{KUBELET_PORT}/pods", cert=nobody_cert) == 403


# Run on a node with its own Python (a master of dedicated etcd machines has no etcdctl, and a
# node's keys never leave it): one HTTPS request with an optional client certificate. Arguments:
# method, URL, body (empty for none), CA, certificate and key (empty for none). Prints the HTTP
# status and the answer, or "refused" and why the connection failed.
NODE_REQUEST = """
import ssl, sys, urllib.error, urllib.request
method, url, body, ca, cert, key = sys.argv[1:7]
context = ssl.create_default_context(cafile=ca)
if cert:
    context.load_cert_chain(cert, key)
headers = {"Content-Type": "application/merge-patch+json"} if method == "PATCH" else {}
request = urllib.request.Request(url, data=body.encode() or None, method=method, headers=headers)
try:
    with urllib.request.urlopen(request, context=context, timeout=10) as response:
        print(response.status, response.read().decode())
except urllib.error.HTTPError as error:
    print(error.code, error.read().decode())
except Exception as error:
    print("refused", type(error).__name__, error)
"""


def node_request(
    node: Node, method: str, url: str, ca: str, cert: tuple[str, str] = ("", ""), body: str = ""
) -> tuple[str, str]:
    """(HTTP status or "refused", answer) of a request made on the node."""
    answer = node_exec(node, "python3", "-c", NODE_REQUEST, method, url, body, ca, *cert, timeout=30)
    status, _separator, text = answer.stdout.strip().partition(" ")
    return status, text


def etcd_request(path: str, body: str = "", cert: tuple[str, str] = ("", "")) -> str:
    url = f"{etcd_url(ETCD_MEMBERS[0])}{path}"
    status, text = node_request(MASTER, "POST" if body else "GET", url, ETCD_CA, cert, body)
    return text if status != "refused" else f"refused {text}"


def test_etcd_serves_the_apiserver_client_certificate(cluster: None) -> None:
    answer = etcd_request("/health", cert=APISERVER_ETCD_CLIENT)
    assert json.loads(answer)["health"] == "true", answer


def test_etcd_refuses_a_client_without_certificate(cluster: None) -> None:
    answer = etcd_request("/health")
    assert answer.startswith("refused"), answer


def test_etcd_refuses_a_certificate_of_the_kubernetes_ca(cluster: None) -> None:
    # The kubelet's client certificate is valid for the apiserver, not for etcd (own CA).
    answer = etcd_request(
        "/health", cert=("/var/lib/kubelet/pki/kubelet-client.crt", "/var/lib/kubelet/pki/kubelet-client.key")
    )
    assert answer.startswith("refused"), answer


def _dry_run(namespace: str, pod: dict[str, Any]) -> subprocess.CompletedProcess[str]:
    """The apiserver's answer to creating the pod, admission included, without creating it."""
    manifest = json.dumps(pod)
    return kubectl("-n", namespace, "apply", "--dry-run=server", "-f", "-", input=manifest, check=False)


def test_pod_security_refuses_a_privileged_pod_and_warns_of_restricted(namespace: str) -> None:
    pod = pod_manifest("privileged", MINIONS[0], "exec sleep 3600")
    pod["spec"]["containers"][0]["securityContext"] = {"privileged": True}
    refused = kubectl(
        "-n", namespace, "apply", "--dry-run=server", "-f", "-", input=json.dumps(pod), check=False
    )
    assert refused.returncode != 0, refused.stdout
    assert 'violates PodSecurity "baseline:latest": privileged' in refused.stderr, refused.stderr
    # Positive control: without the privilege the pod is admitted, with a warning that it falls
    # short of the restricted level.
    del pod["spec"]["containers"][0]["securityContext"]
    admitted = kubectl(
        "-n", namespace, "apply", "--dry-run=server", "-f", "-", input=json.dumps(pod), check=False
    )
    assert admitted.returncode == 0, admitted.stderr
    assert 'would violate PodSecurity "restricted:latest"' in admitted.stderr, admitted.stderr


POD_PIDS_LIMIT = 4096  # kubelet_pod_pids_limit's default


def test_a_pod_that_asks_for_nothing_gets_a_pid_limit_and_the_default_seccomp_profile(namespace: str) -> None:
    node = MINIONS[0]
    apply(namespace, pod_manifest("pid-limited", node, "exec sleep 3600"))
    wait_ready(namespace, "pid-limited")
    uid = kubectl_json("-n", namespace, "get", "pod", "pid-limited")["metadata"]["uid"]
    # The pod's cgroup (systemd driver), kubepods.slice/kubepods-<qos>.slice/kubepods-<qos>-pod<uid>.slice,
    # at the top of the unified hierarchy (cgroup v2) or of the pids one (v1).
    pod_slice = f"*-pod{uid.replace('-', '_')}.slice"
    limits = node_exec(
        node,
        "find",
        "/sys/fs/cgroup",
        "-maxdepth",
        "5",
        "-path",
        f"{pod_slice}/pids.max",
        "-exec",
        "cat",
        "{}",
        "+",
    ).stdout
    assert limits.split() == [str(POD_PIDS_LIMIT)]
    # seccompDefault: its process runs under a filter (mode 2) though the pod named no profile.
    [container] = node_exec(
        node, "crictl", "ps", "--name", "main", "--label", f"io.kubernetes.pod.uid={uid}", "--quiet"
    ).stdout.split()
    template = ("--output", "go-template", "--template", "{{.info.pid}}")
    pid = node_exec(node, "crictl", "inspect", *template, container).stdout.strip()
    assert node_exec(node, "grep", "^Seccomp:", f"/proc/{pid}/status").stdout.split() == ["Seccomp:", "2"]


def test_a_service_may_not_claim_external_addresses(namespace: str) -> None:
    """DenyServiceExternalIPs: externalIPs would let any namespace capture traffic to any address."""
    service = {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {"name": "claims"},
        "spec": {"ports": [{"port": 80}], "externalIPs": ["198.18.0.99"]},
    }
    refused = kubectl(
        "-n", namespace, "apply", "--dry-run=server", "-f", "-", input=json.dumps(service), check=False
    )
    assert refused.returncode != 0 and "externalIPs" in refused.stderr, refused.stderr
    # Positive control: the same Service without them is admitted.
    del service["spec"]["externalIPs"]
    admitted = kubectl(
        "-n", namespace, "apply", "--dry-run=server", "-f", "-", input=json.dumps(service), check=False
    )
    assert admitted.returncode == 0, admitted.stderr


# What a kubelet with protectKernelDefaults checks at start, refusing to run otherwise.
KUBELET_KERNEL_DEFAULTS = {
    "vm.overcommit_memory": "1",
    "vm.panic_on_oom": "0",
    "kernel.panic": "10",
    "kernel.panic_on_oops": "1",
    "kernel.keys.root_maxkeys": "1000000",
    "kernel.keys.root_maxbytes": "25000000",
}


@pytest.mark.parametrize("node", NODES, ids=lambda node: node.name)
def test_kubelet_protects_the_kernel_settings_the_node_sets_first(cluster: None, node: Node) -> None:
    config = node_exec(node, "cat", "/var/lib/kubelet/config.yaml").stdout
    assert "protectKernelDefaults: true" in config.splitlines()
    assert node_exec(node, "systemctl", "is-active", "kubelet").stdout.strip() == "active"
    running = {key: node_exec(node, "sysctl", "-n", key).stdout.strip() for key in KUBELET_KERNEL_DEFAULTS}
    assert running == KUBELET_KERNEL_DEFAULTS
    # Also in the file applied at boot, before the kubelet starts.
    written = node_exec(node, "cat", "/etc/sysctl.d/90-kubernetes.conf").stdout.splitlines()
    assert not [
        f"{key} = {value}"
        for key, value in KUBELET_KERNEL_DEFAULTS.items()
        if f"{key} = {value}" not in written
    ], written


# A node's own identity, as its kubelet uses it, through the node's balancer.
KUBELET_CA = "/var/lib/kubelet/pki/ca.crt"
KUBELET_CLIENT = ("/var/lib/kubelet/pki/kubelet-client.crt", "/var/lib/kubelet/pki/kubelet-client.key")
MARK = "verify.scratch-kubernetes/touched"


def as_node(node: Node, method: str, path: str, body: str = "") -> tuple[str, str]:
    return node_request(node, method, f"{BALANCER_URL}{path}", KUBELET_CA, KUBELET_CLIENT, body)


@pytest.fixture(scope="module")
def mounted_secret(namespace: str) -> str:
    """Two Secrets in the namespace, and a pod on the first minion that mounts only "mounted"."""
    for name in ("mounted", "unmounted"):
        kubectl("-n", namespace, "create", "secret", "generic", name, "--from-literal=key=value")
    pod = pod_manifest("mounts-a-secret", MINIONS[0], "exec sleep 3600")
    pod["spec"]["volumes"] = [{"name": "secret", "secret": {"secretName": "mounted"}}]
    pod["spec"]["containers"][0]["volumeMounts"] = [{"name": "secret", "mountPath": "/secret"}]
    apply(namespace, pod)
    wait_ready(namespace, "mounts-a-secret")
    return namespace


def test_node_reads_only_the_secrets_of_its_own_pods(mounted_secret: str) -> None:
    """The Node authorizer: a node gets a Secret only for a pod bound to it."""
    node, other = MINIONS[0], next(other for other in NODES if other != MINIONS[0])
    secrets_path = f"/api/v1/namespaces/{mounted_secret}/secrets"
    assert as_node(node, "GET", f"{secrets_path}/mounted")[0] == "200"
    assert as_node(node, "GET", f"{secrets_path}/unmounted")[0] == "403"
    assert as_node(other, "GET", f"{secrets_path}/mounted")[0] == "403"


def test_node_changes_only_its_own_node_object(cluster: None) -> None:
    """NodeRestriction: a node may annotate its own Node object, never another's."""
    node, other = MINIONS[0], next(other for other in NODES if other != MINIONS[0])
    mark = json.dumps({"metadata": {"annotations": {MARK: "yes"}}})
    try:
        status, answer = as_node(node, "PATCH", f"/api/v1/nodes/{node.name}", mark)
        assert status == "200", answer
        status, answer = as_node(node, "PATCH", f"/api/v1/nodes/{other.name}", mark)
        assert status == "403", answer
        refusal = json.loads(answer)["message"]
        assert f'node "{node.name}" is not allowed to modify node "{other.name}"' in refusal, refusal
    finally:
        kubectl("annotate", "node", node.name, other.name, f"{MARK}-", check=False)


def _stat(node: Node, patterns: list[str]) -> dict[str, str]:
    """mode, owner and group of each file matching the shell patterns; a pattern matching nothing fails."""
    script = 'for f in "$@"; do stat -c "%a %U %G %n" -- "$f" || exit 1; done'
    result = node_exec(node, "sh", "-c", f"set -- {' '.join(patterns)}; {script}", check=False)
    assert result.returncode == 0, f"{node.name}: {result.stderr} (patterns {patterns})"
    files = {}
    for line in result.stdout.splitlines():
        mode, owner, group, path = line.split(" ", 3)
        files[path] = f"{mode} {owner} {group}"
    return files


@pytest.mark.parametrize("node", MACHINES, ids=lambda node: node.name)
def test_private_keys_and_kubeconfigs_are_private_to_root(cluster: None, node: Node) -> None:
    expected = (
        (NODE_SECRETS if node in NODES else [])
        + (MASTER_SECRETS if node in MASTERS else [])
        + (ETCD_SECRETS if node in ETCD_MEMBERS else [])
    )
    files = _stat(node, expected)
    found = node_exec(
        node, "sh", "-c",
        f"for d in {' '.join(SECRET_SEARCH_DIRS)}; do [ -d $d ] && find $d -type f "
        "\\( -name '*.key' -o -name '*kubeconfig' -o -name 'encryption-config.yaml' \\); done; true",
    ).stdout.split()  # fmt: skip
    files |= _stat(node, found)
    wrong = {path: state for path, state in files.items() if state != _private_to(path)}
    assert not wrong, (
        f"{node.name}: expected mode 600 owned by root (in a static pod, etcd's by etcd): {wrong}"
    )


def _private_to(path: str) -> str:
    """Who alone may read a secret: root; or etcd's keys, which a static pod's etcd reads as its own user."""
    user = SETTINGS["etcd_user"] if STATIC_PODS and path.startswith(ETCD_PKI + "/") else "root"
    return f"600 {user} {user}"


# Not secrets, but the CIS benchmark keeps them from other users (1.1.9, 4.1.1, 4.1.9).
NODE_PRIVATE_CONFIG = [
    "/var/lib/kubelet/config.yaml",
    "/etc/systemd/system/kubelet.service",
    "/etc/cni/net.d/10-bridge.conflist",
]


@pytest.mark.parametrize("node", NODES, ids=lambda node: node.name)
def test_kubelet_and_cni_configuration_is_private_to_root(cluster: None, node: Node) -> None:
    files = _stat(node, NODE_PRIVATE_CONFIG)
    wrong = {path: state for path, state in files.items() if state != "600 root root"}
    assert not wrong, f"{node.name}: expected mode 600 owned by root:root: {wrong}"


def test_controller_keeps_its_keys_private(cluster: None) -> None:
    paths = [*PKI_DIR.glob("*.key"), STATE_DIR / "admin.kubeconfig"]
    assert PKI_DIR / "ca.key" in paths and PKI_DIR / "etcd-ca.key" in paths
    wrong = {str(path): oct(path.stat().st_mode & 0o777) for path in paths if path.stat().st_mode & 0o077}
    assert not wrong, f"readable by others than the owner: {wrong}"


def encryption_key_name() -> str:
    """The name the apiservers give the controller's current key (roles/control_plane, encryption-config)."""
    key = (PKI_DIR / "encryption.key").read_text().strip()
    return "key-" + hashlib.sha256(key.encode()).hexdigest()[:16]


def stored_secrets(namespace: str = "", name: str = "") -> dict[str, bytes]:
    """What etcd holds for the Secrets under /registry/secrets/[namespace/[name]], by key."""
    prefix = "/registry/secrets/" + (f"{namespace}/{name}" if name else f"{namespace}/" if namespace else "")
    # A range to the prefix's successor holds every key that starts with it (etcd's "prefix").
    end = prefix[:-1] + chr(ord(prefix[-1]) + 1)
    ranged = {"key": base64.b64encode(prefix.encode()).decode()}
    if not name:
        ranged["range_end"] = base64.b64encode(end.encode()).decode()
    answer = json.loads(etcd_request("/v3/kv/range", json.dumps(ranged), cert=APISERVER_ETCD_CLIENT))
    return {
        base64.b64decode(kv["key"]).decode(): base64.b64decode(kv["value"]) for kv in answer.get("kvs", [])
    }


def create_secret(namespace: str, name: str, value: str) -> None:
    kubectl("-n", namespace, "create", "secret", "generic", name, f"--from-literal=value={value}")


def read_secret(namespace: str, name: str) -> str:
    read = kubectl("-n", namespace, "get", "secret", name, "-o", "jsonpath={.data.value}").stdout
    return base64.b64decode(read).decode()


def test_secrets_are_encrypted_at_rest_in_etcd(namespace: str) -> None:
    value = f"plaintext-{secrets.token_hex(16)}"
    create_secret(namespace, "probe", value)
    # Positive control: the API hands the value back.
    assert read_secret(namespace, "probe") == value
    [stored] = stored_secrets(namespace, "probe").values()
    assert stored.startswith(f"k8s:enc:secretbox:v1:{encryption_key_name()}:".encode()), stored[:80]
    assert value.encode() not in stored


@pytest.mark.last
def test_rotated_encryption_key_stores_every_secret_and_reads_old_and_new(
    namespace: str, testbed_lock: None
) -> None:
    values = {name: f"{name}-{secrets.token_hex(16)}" for name in ("before-rotation", "after-rotation")}
    create_secret(namespace, "before-rotation", values["before-rotation"])
    old_name = encryption_key_name()

    result = playbook("playbooks/rotate_encryption_key.yml")
    assert result.returncode == 0, result.tail()
    create_secret(namespace, "after-rotation", values["after-rotation"])

    new_name = encryption_key_name()
    assert new_name != old_name
    assert not (PKI_DIR / "encryption-new.key").exists()
    assert {name: read_secret(namespace, name) for name in values} == values
    # Every Secret of the cluster, not only these, is stored under the new key.
    stored = stored_secrets()
    assert {f"/registry/secrets/{namespace}/{name}" for name in values} <= set(stored)
    prefix = f"k8s:enc:secretbox:v1:{new_name}:".encode()
    assert not [key for key, value in stored.items() if not value.startswith(prefix)]
    # What the rotation left is what site.yml would make.
    checked = site_yml("--check")
    assert checked.returncode == 0, checked.tail()
    assert_recap_unchanged(checked)
    for master in MASTERS:
        config = node_exec(master, "cat", "/etc/kubernetes/encryption-config.yaml").stdout
        assert new_name in config and old_name not in config, master.name


AUDIT_LOG = "/var/log/kubernetes/audit.log"


def audit_events(master: Node, needle: str) -> list[dict[str, Any]]:
    """The audit events on master whose line mentions needle."""
    lines = node_exec(master, "grep", "-F", needle, AUDIT_LOG, check=False).stdout.splitlines()
    return [json.loads(line) for line in lines]


def test_audit_log_records_who_did_what_and_never_a_secret(namespace: str) -> None:
    name, value = f"audited-{secrets.token_hex(4)}", f"audit-plaintext-{secrets.token_hex(16)}"
    create_secret(namespace, name, value)
    kubectl("-n", namespace, "get", "secret", name, "-o", "name")

    def created() -> list[dict[str, Any]]:
        events = [event for master in MASTERS for event in audit_events(master, name)]
        return [event for event in events if event["verb"] == "create"]

    # The log is written as requests finish; give it a moment.
    events = eventually(created, timeout=30)
    assert events, f"no audit event for creating secret {namespace}/{name}"
    event = events[0]
    assert event["user"]["username"] == "admin", event
    reference = [event["objectRef"][key] for key in ("resource", "namespace", "name")]
    assert reference == ["secrets", namespace, name], event
    assert event["level"] == "Metadata", event
    assert "requestObject" not in event and "responseObject" not in event, event
    encoded = base64.b64encode(value.encode()).decode()
    for master in MASTERS:
        assert not audit_events(master, value) and not audit_events(master, encoded), master.name


# Run on the first master with its own Python: a TLS handshake with each server at one protocol
# version and with given suites (any certificate accepted: this is about the protocol). Prints the
# suite agreed, or null when the server refused. @SECLEVEL=0 lets this client offer what the
# servers must refuse, so that only the server decides.
TLS_PROBE = """
import json, socket, ssl, sys
host, port, cert, key = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4]
def handshake(version, ciphers):
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    context.minimum_version = context.maximum_version = version
    context.set_ciphers(ciphers + ":@SECLEVEL=0")
    if cert:
        context.load_cert_chain(cert, key)
    try:
        with socket.create_connection((host, port), timeout=5) as raw, context.wrap_socket(raw) as tls:
            return tls.cipher()[0]
    except (OSError, ssl.SSLError):
        return None
print(json.dumps({
    "aead": handshake(ssl.TLSVersion.TLSv1_2, "ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-RSA-AES128-GCM-SHA256"),
    "cbc": handshake(ssl.TLSVersion.TLSv1_2, "ECDHE-ECDSA-AES128-SHA:ECDHE-RSA-AES128-SHA"),
    "tls1.1": handshake(ssl.TLSVersion.TLSv1_1, "ALL"),
}))
"""
TLS_SERVERS = [
    pytest.param("127.0.0.1", SETTINGS["apiserver_port"], ("", ""), id="apiserver"),
    pytest.param("127.0.0.1", 10257, ("", ""), id="controller-manager"),
    pytest.param("127.0.0.1", 10259, ("", ""), id="scheduler"),
    *(pytest.param(node.ip, KUBELET_PORT, ("", ""), id=f"kubelet-{node.name}") for node in NODES),
    # etcd wants a client certificate before it finishes a TLS 1.2 handshake.
    *(pytest.param(member.ip, SETTINGS["etcd_client_port"], APISERVER_ETCD_CLIENT, id=f"etcd-{member.name}")
      for member in ETCD_MEMBERS),
]  # fmt: skip


@pytest.mark.parametrize(("host", "port", "cert"), TLS_SERVERS)
def test_servers_take_only_tls_1_2_or_newer_with_aead_suites(
    cluster: None, host: str, port: int, cert: tuple[str, str]
) -> None:
    answers = json.loads(node_exec(MASTER, "python3", "-c", TLS_PROBE, host, str(port), *cert).stdout)
    # Positive control: a suite of the list is agreed.
    assert answers["aead"] in {"ECDHE-ECDSA-AES128-GCM-SHA256", "ECDHE-RSA-AES128-GCM-SHA256"}, answers
    assert answers["cbc"] is None and answers["tls1.1"] is None, answers
