# SPDX-License-Identifier: Apache-2.0
"""The security defaults hold: authentication everywhere, private files private, Secrets encrypted."""

from __future__ import annotations

import base64
import datetime
import json
import secrets
from pathlib import Path
from typing import Any

import pytest
from conftest import (
    APISERVER_URL,
    ETCD_MEMBERS,
    MACHINES,
    MASTER,
    MASTERS,
    NODES,
    PKI_DIR,
    SETTINGS,
    STATE_DIR,
    Node,
    etcd_url,
    eventually,
    https_status,
    kubectl,
    node_exec,
)
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

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
    key = ec.generate_private_key(ec.SECP256R1())
    cert = (
        x509.CertificateBuilder()
        .subject_name(_name("admin", "system:masters"))
        .issuer_name(ca_cert.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.CLIENT_AUTH]), critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    directory = tmp_path_factory.mktemp("foreign-ca")
    cert_path, key_path = directory / "client.crt", directory / "client.key"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
    )
    key_path.chmod(0o600)
    return cert_path, key_path


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


# Run on the master with its own Python (a master of dedicated etcd machines has no etcdctl): one
# request to etcd's HTTP gateway with an optional client certificate. Arguments: URL, JSON body
# (empty for a GET), certificate and key (empty for none). Prints the answer, or "refused" and why.
ETCD_REQUEST = f"""
import ssl, sys, urllib.request
url, body, cert, key = sys.argv[1:5]
context = ssl.create_default_context(cafile="{ETCD_CA}")
if cert:
    context.load_cert_chain(cert, key)
request = urllib.request.Request(url, data=body.encode() if body else None)
try:
    with urllib.request.urlopen(request, context=context, timeout=5) as response:
        print(response.read().decode())
except Exception as error:
    print("refused", type(error).__name__, error)
"""


def etcd_request(path: str, body: str = "", cert: tuple[str, str] = ("", "")) -> str:
    url = f"{etcd_url(ETCD_MEMBERS[0])}{path}"
    return node_exec(MASTER, "python3", "-c", ETCD_REQUEST, url, body, *cert, timeout=30).stdout.strip()


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
    wrong = {path: state for path, state in files.items() if state != "600 root root"}
    assert not wrong, f"{node.name}: expected mode 600 owned by root:root: {wrong}"


def test_controller_keeps_its_keys_private(cluster: None) -> None:
    paths = [*PKI_DIR.glob("*.key"), STATE_DIR / "admin.kubeconfig"]
    assert PKI_DIR / "ca.key" in paths and PKI_DIR / "etcd-ca.key" in paths
    wrong = {str(path): oct(path.stat().st_mode & 0o777) for path in paths if path.stat().st_mode & 0o077}
    assert not wrong, f"readable by others than the owner: {wrong}"


def test_secrets_are_encrypted_at_rest_in_etcd(namespace: str) -> None:
    value = f"plaintext-{secrets.token_hex(16)}"
    kubectl("-n", namespace, "create", "secret", "generic", "probe", f"--from-literal=value={value}")
    # Positive control: the API hands the value back.
    read = kubectl("-n", namespace, "get", "secret", "probe", "-o", "jsonpath={.data.value}").stdout
    assert base64.b64decode(read).decode() == value
    key = base64.b64encode(f"/registry/secrets/{namespace}/probe".encode()).decode()
    answer = etcd_request("/v3/kv/range", json.dumps({"key": key}), cert=APISERVER_ETCD_CLIENT)
    stored = base64.b64decode(json.loads(answer)["kvs"][0]["value"])
    assert stored.startswith(b"k8s:enc:aescbc:v1:"), stored[:80]
    assert value.encode() not in stored


AUDIT_LOG = "/var/log/kubernetes/audit.log"


def audit_events(master: Node, needle: str) -> list[dict[str, Any]]:
    """The audit events on master whose line mentions needle."""
    lines = node_exec(master, "grep", "-F", needle, AUDIT_LOG, check=False).stdout.splitlines()
    return [json.loads(line) for line in lines]


def test_audit_log_records_who_did_what_and_never_a_secret(namespace: str) -> None:
    name, value = f"audited-{secrets.token_hex(4)}", f"audit-plaintext-{secrets.token_hex(16)}"
    kubectl("-n", namespace, "create", "secret", "generic", name, f"--from-literal=value={value}")
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
