# SPDX-License-Identifier: Apache-2.0
"""certificate_requests on a node, then certificates on the controller, through real Ansible.

The CAs are made with plain ``cryptography`` by test_pki_modules' helpers, independently of the
collection's code.
"""

from __future__ import annotations

from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import serialization
from test_pki_modules import mode_of, verify_issued_by, write_cert, write_key

REQUESTS = [
    {"name": "kubelet-client", "common_name": "system:node:worker-1", "organization": ["system:nodes"]},
    {
        "name": "kubelet-server",
        "common_name": "system:node:worker-1",
        "dns_names": ["worker-1"],
        "ip_addresses": ["10.0.0.11"],
        "extended_key_usage": ["server_auth"],
    },
    {
        "name": "etcd-peer",
        "ca": "etcd-ca",
        "common_name": "worker-1",
        "dns_names": ["worker-1"],
        "ip_addresses": ["10.0.0.11"],
        "extended_key_usage": ["client_auth", "server_auth"],
    },
]
NAMES = [request["name"] for request in REQUESTS]


def make_cas(directory: Path) -> None:
    directory.mkdir()
    for name in ("ca", "etcd-ca"):
        key = write_key(directory / f"{name}.key")
        write_cert(directory / f"{name}.crt", name, key.public_key(), key, is_ca=True)


def certificates_args(csrs: list[dict], pki: Path, issued: Path) -> dict:
    """What roles/pki/tasks/issue.yml passes for one node's requests."""
    return {
        "certificates": [
            {
                "path": str(issued / f"{entry['name']}.crt"),
                "csr": entry["csr"],
                "ca_certificate_path": str(pki / f"{entry['ca']}.crt"),
                "ca_privatekey_path": str(pki / f"{entry['ca']}.key"),
            }
            for entry in csrs
        ]
    }


def spki(public_key) -> bytes:
    return public_key.public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )


def test_requests_then_certificates(run_module, tmp_path: Path) -> None:
    pki, node_dir, issued = (
        tmp_path / "pki",
        tmp_path / "node" / "pki",
        tmp_path / "pki" / "issued" / "worker-1",
    )
    make_cas(pki)
    requests_args = {"directory": str(node_dir), "requests": REQUESTS}

    requests = run_module("certificate_requests", requests_args)
    assert requests["changed"] and not requests.get("failed"), requests
    assert [(entry["name"], entry["ca"]) for entry in requests["csrs"]] == [
        ("kubelet-client", "ca"),
        ("kubelet-server", "ca"),
        ("etcd-peer", "etcd-ca"),
    ]
    assert "PRIVATE" not in repr(requests)
    for name in NAMES:
        assert mode_of(node_dir / f"{name}.key") == 0o600

    signed = run_module("certificates", certificates_args(requests["csrs"], pki, issued))
    assert signed["changed"] and not signed.get("failed"), signed
    assert signed["issued"] == [str(issued / f"{name}.crt") for name in NAMES]
    ca = {
        name: x509.load_pem_x509_certificate((pki / f"{name}.crt").read_bytes()) for name in ("ca", "etcd-ca")
    }
    for entry in requests["csrs"]:
        cert = x509.load_pem_x509_certificate((issued / f"{entry['name']}.crt").read_bytes())
        verify_issued_by(cert, ca[entry["ca"]])
        key = serialization.load_pem_private_key((node_dir / f"{entry['name']}.key").read_bytes(), None)
        assert spki(cert.public_key()) == spki(key.public_key())
    contents = {path: path.read_bytes() for path in [*node_dir.iterdir(), *issued.iterdir()]}

    requests_again = run_module("certificate_requests", requests_args)
    assert not requests_again["changed"] and requests_again["reasons"] == [], requests_again
    signed_again = run_module("certificates", certificates_args(requests_again["csrs"], pki, issued))
    assert not signed_again["changed"] and signed_again["issued"] == [], signed_again
    assert {path: path.read_bytes() for path in [*node_dir.iterdir(), *issued.iterdir()]} == contents


def test_check_mode_on_a_fresh_node_writes_nothing(run_module, tmp_path: Path) -> None:
    pki, node_dir, issued = (
        tmp_path / "pki",
        tmp_path / "node" / "pki",
        tmp_path / "pki" / "issued" / "worker-1",
    )
    make_cas(pki)

    requests = run_module(
        "certificate_requests", {"directory": str(node_dir), "requests": REQUESTS}, check=True
    )
    assert requests["changed"] and not requests.get("failed"), requests
    assert [entry["csr"] for entry in requests["csrs"]] == [None, None, None]
    assert not node_dir.parent.exists()

    signed = run_module("certificates", certificates_args(requests["csrs"], pki, issued), check=True)
    assert signed["changed"] and not signed.get("failed"), signed
    assert signed["issued"] == [str(issued / f"{name}.crt") for name in NAMES]
    assert not issued.parent.exists()
    assert sorted(path.name for path in pki.iterdir()) == ["ca.crt", "ca.key", "etcd-ca.crt", "etcd-ca.key"]
