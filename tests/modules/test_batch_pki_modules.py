# SPDX-License-Identifier: Apache-2.0
"""certificate_requests on its own, and node_certificates end to end, through real Ansible.

``ansible localhost -m scratch.kubernetes.node_certificates`` runs the action plugin: the node
module makes the keys and CSRs, the controller signs them into PKI_DIR/issued/localhost/. The CAs
are made with plain ``cryptography`` by test_pki_modules' helpers, independently of the
collection's code.
"""

from __future__ import annotations

import datetime as dt
import os
import sys
import time
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.x509.oid import ExtendedKeyUsageOID
from test_pki_modules import mode_of, verify_issued_by, write_cert, write_key

# The requests are shared with the core's unit tests.
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "unit"))
from _pki_requests import NAMES, REQUESTS

CA_NAMES = ("ca", "etcd-ca")


def make_cas(directory: Path) -> dict[str, x509.Certificate]:
    """The cluster CA and the etcd CA in ``directory``, as the pki role keeps them."""
    directory.mkdir()
    cas = {}
    for name in CA_NAMES:
        key = write_key(directory / f"{name}.key")
        write_cert(directory / f"{name}.crt", name, key.public_key(), key, is_ca=True)
        cas[name] = load_cert(directory / f"{name}.crt")
    return cas


def load_cert(path: Path) -> x509.Certificate:
    return x509.load_pem_x509_certificate(path.read_bytes())


def load_csr(pem: str) -> x509.CertificateSigningRequest:
    return x509.load_pem_x509_csr(pem.encode())


def spki(public_key) -> bytes:
    return public_key.public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )


def key_spki(path: Path) -> bytes:
    return spki(serialization.load_pem_private_key(path.read_bytes(), None).public_key())


def sans(item: x509.Certificate | x509.CertificateSigningRequest) -> tuple[list[str], list[str]]:
    names = item.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    return (
        names.get_values_for_type(x509.DNSName),
        [str(address) for address in names.get_values_for_type(x509.IPAddress)],
    )


def extended_key_usage(item: x509.Certificate | x509.CertificateSigningRequest) -> list:
    return list(item.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value)


def contents(*directories: Path) -> dict[Path, bytes]:
    return {path: path.read_bytes() for directory in directories for path in directory.iterdir()}


# ---------------------------------------------------------------------------- certificate_requests


def test_certificate_requests_make_keys_and_csrs_then_keep_them(run_module, tmp_path: Path) -> None:
    node_dir = tmp_path / "node" / "pki"
    args = {"directory": str(node_dir), "requests": REQUESTS}

    first = run_module("certificate_requests", args)

    assert first["changed"] and not first.get("failed"), first
    assert first["reasons"] == [
        f"{node_dir} does not exist",
        *(f"{node_dir / name}.key does not exist" for name in NAMES),
    ]
    assert [(entry["name"], entry["ca"]) for entry in first["csrs"]] == [
        ("kubelet-client", "ca"),
        ("kubelet-server", "ca"),
        ("etcd-peer", "etcd-ca"),
    ]
    assert "PRIVATE" not in repr(first)
    assert sorted(os.listdir(node_dir)) == sorted(f"{name}.key" for name in NAMES)
    for entry in first["csrs"]:
        key = node_dir / f"{entry['name']}.key"
        assert mode_of(key) == 0o600
        csr = load_csr(entry["csr"])
        assert csr.is_signature_valid and spki(csr.public_key()) == key_spki(key)
    client, server, peer = (load_csr(entry["csr"]) for entry in first["csrs"])
    assert client.subject.rfc4514_string() == "CN=system:node:worker-1,O=system:nodes"
    assert extended_key_usage(client) == [ExtendedKeyUsageOID.CLIENT_AUTH]
    assert sans(server) == (["worker-1"], ["10.0.0.11"])
    assert extended_key_usage(server) == [ExtendedKeyUsageOID.SERVER_AUTH]
    assert peer.subject.rfc4514_string() == "CN=worker-1"
    keys = contents(node_dir)

    again = run_module("certificate_requests", args)

    assert not again["changed"] and again["reasons"] == [], again
    assert contents(node_dir) == keys
    assert [spki(load_csr(entry["csr"]).public_key()) for entry in again["csrs"]] == [
        spki(load_csr(entry["csr"]).public_key()) for entry in first["csrs"]
    ]

    loose = node_dir / "etcd-peer.key"
    loose.chmod(0o644)
    fixed = run_module("certificate_requests", args)

    assert fixed["changed"] and fixed["reasons"] == [f"{loose}: mode is 0644, want 0600"], fixed
    assert mode_of(loose) == 0o600 and contents(node_dir) == keys


def test_certificate_requests_check_mode_on_a_fresh_node_writes_nothing(run_module, tmp_path: Path) -> None:
    node_dir = tmp_path / "node" / "pki"

    checked = run_module(
        "certificate_requests", {"directory": str(node_dir), "requests": REQUESTS}, check=True
    )

    assert checked["changed"] and not checked.get("failed"), checked
    assert checked["reasons"] == [
        f"{node_dir} does not exist",
        *(f"{node_dir / name}.key does not exist" for name in NAMES),
    ]
    assert checked["csrs"] == [
        {"name": "kubelet-client", "ca": "ca", "csr": None},
        {"name": "kubelet-server", "ca": "ca", "csr": None},
        {"name": "etcd-peer", "ca": "etcd-ca", "csr": None},
    ]
    assert not node_dir.parent.exists()


# ---------------------------------------------------------------------------- node_certificates


def node_args(node_dir: Path, pki: Path, **extra) -> dict:
    return {"directory": str(node_dir), "pki_dir": str(pki), "certificates": REQUESTS, **extra}


def expected_files(node_dir: Path, pki: Path, cas: tuple[str, ...] = ("ca",)) -> list[dict[str, str]]:
    """The issued certificates, then the CA certificates, each to install in ``node_dir``."""
    issued_dir = pki / "issued" / "localhost"
    return [
        *({"src": str(issued_dir / f"{name}.crt"), "dest": str(node_dir / f"{name}.crt")} for name in NAMES),
        *({"src": str(pki / f"{ca}.crt"), "dest": str(node_dir / f"{ca}.crt")} for ca in cas),
    ]


def test_node_certificates_issue_then_keep(run_module, tmp_path: Path) -> None:
    pki, node_dir = tmp_path / "pki", tmp_path / "node" / "pki"
    issued_dir = pki / "issued" / "localhost"
    cas = make_cas(pki)
    args = node_args(node_dir, pki, ca_certificates=list(CA_NAMES))
    paths = [str(issued_dir / f"{name}.crt") for name in NAMES]

    first = run_module("node_certificates", args)

    assert first["changed"] and not first.get("failed"), first
    assert first["issued"] == paths
    assert first["reasons"] == [
        f"{node_dir} does not exist",
        *(f"{node_dir / name}.key does not exist" for name in NAMES),
        *(f"{path}: {path} does not exist" for path in paths),
    ]
    assert first["files"] == expected_files(node_dir, pki, CA_NAMES)
    assert "PRIVATE" not in repr(first)
    # The keys stay on the node; the certificates stay on the controller until the caller installs them.
    assert sorted(os.listdir(node_dir)) == sorted(f"{name}.key" for name in NAMES)
    assert all(mode_of(node_dir / f"{name}.key") == 0o600 for name in NAMES)
    assert sorted(os.listdir(issued_dir)) == sorted(f"{name}.crt" for name in NAMES)
    for request in REQUESTS:
        name, ca = request["name"], request.get("ca", "ca")
        cert = load_cert(issued_dir / f"{name}.crt")
        verify_issued_by(cert, cas[ca])
        assert spki(cert.public_key()) == key_spki(node_dir / f"{name}.key")
        assert mode_of(issued_dir / f"{name}.crt") == 0o644
    client, server, peer = (load_cert(Path(path)) for path in paths)
    assert peer.issuer == cas["etcd-ca"].subject != cas["ca"].subject
    assert client.subject.rfc4514_string() == "CN=system:node:worker-1,O=system:nodes"
    assert sans(server) == (["worker-1"], ["10.0.0.11"])
    assert sans(peer) == (["worker-1"], ["10.0.0.11"])
    assert extended_key_usage(peer) == [ExtendedKeyUsageOID.CLIENT_AUTH, ExtendedKeyUsageOID.SERVER_AUTH]
    written = contents(node_dir, issued_dir)

    again = run_module("node_certificates", args)

    assert not again["changed"] and not again.get("failed"), again
    assert again["issued"] == [] and again["reasons"] == []
    assert again["files"] == first["files"]
    assert contents(node_dir, issued_dir) == written


def test_node_certificates_check_mode_on_a_fresh_node_writes_nothing(run_module, tmp_path: Path) -> None:
    pki, node_dir = tmp_path / "pki", tmp_path / "node" / "pki"
    issued_dir = pki / "issued" / "localhost"
    make_cas(pki)
    paths = [str(issued_dir / f"{name}.crt") for name in NAMES]

    checked = run_module("node_certificates", node_args(node_dir, pki), check=True)

    assert checked["changed"] and not checked.get("failed"), checked
    assert checked["issued"] == paths
    assert checked["reasons"] == [
        f"{node_dir} does not exist",
        *(f"{node_dir / name}.key does not exist" for name in NAMES),
        *(f"{path}: its key is yet to be made" for path in paths),
    ]
    assert checked["files"] == expected_files(node_dir, pki)  # ca_certificates defaults to [ca]
    assert not node_dir.parent.exists()
    assert sorted(os.listdir(pki)) == ["ca.crt", "ca.key", "etcd-ca.crt", "etcd-ca.key"]


def test_node_certificates_reissue_issued_before(run_module, tmp_path: Path) -> None:
    pki, node_dir = tmp_path / "pki", tmp_path / "node" / "pki"
    issued_dir = pki / "issued" / "localhost"
    cas = make_cas(pki)
    assert run_module("node_certificates", node_args(node_dir, pki))["changed"]
    # Certificates record whole seconds: the next whole second is after the first issue.
    mark = dt.datetime.now(dt.UTC).replace(microsecond=0) + dt.timedelta(seconds=1)
    time.sleep((mark - dt.datetime.now(dt.UTC)).total_seconds() + 0.1)
    # The server certificate is issued again after the mark; the others stay from before it.
    server = issued_dir / "kubelet-server.crt"
    server.unlink()
    rerun = run_module("node_certificates", node_args(node_dir, pki))
    assert rerun["issued"] == [str(server)], rerun
    written = contents(node_dir, issued_dir)
    args = node_args(node_dir, pki, reissue_issued_before=mark.strftime("%Y-%m-%dT%H:%M:%SZ"))
    older = [str(issued_dir / f"{name}.crt") for name in ("kubelet-client", "etcd-peer")]

    checked = run_module("node_certificates", args, check=True)

    assert checked["changed"] and not checked.get("failed"), checked
    assert checked["issued"] == older
    assert contents(node_dir, issued_dir) == written

    reissued = run_module("node_certificates", args)

    assert reissued["changed"] and not reissued.get("failed"), reissued
    assert reissued["issued"] == older
    assert len(reissued["reasons"]) == 2
    for path, reason in zip(older, reissued["reasons"], strict=True):
        assert reason.startswith(f"{path}: it was issued at ") and reason.endswith("reissue requested")
    assert reissued["files"] == expected_files(node_dir, pki)
    now = contents(node_dir, issued_dir)
    assert {path for path in written if now[path] != written[path]} == {Path(path) for path in older}
    for request in REQUESTS:  # the same keys, certified anew
        cert = load_cert(issued_dir / f"{request['name']}.crt")
        verify_issued_by(cert, cas[request.get("ca", "ca")])
        assert spki(cert.public_key()) == key_spki(node_dir / f"{request['name']}.key")

    again = run_module("node_certificates", args)

    assert not again["changed"] and again["issued"] == [], again
    assert contents(node_dir, issued_dir) == now


@pytest.mark.parametrize(
    ("broken", "damage", "message"),
    [
        pytest.param(
            "etcd-ca.key",
            Path.unlink,
            "ca_privatekey_path {path} does not exist; create it with scratch.kubernetes.private_key first.",
            id="missing-ca-key",
        ),
        pytest.param(
            "etcd-ca.crt",
            lambda path: path.write_text("not a certificate\n"),
            "ca_certificate_path {path} is not a PEM certificate (",
            id="ca-certificate-not-pem",
        ),
    ],
)
def test_node_certificates_name_a_broken_ca_file(
    run_module, tmp_path: Path, broken: str, damage, message: str
) -> None:
    pki, node_dir = tmp_path / "pki", tmp_path / "node" / "pki"
    issued_dir = pki / "issued" / "localhost"
    make_cas(pki)
    path = pki / broken
    damage(path)

    failed = run_module("node_certificates", node_args(node_dir, pki))

    assert failed["failed"] is True, failed
    assert failed["msg"].startswith(
        f"signing the certificates of {issued_dir}: {message.format(path=path)}"
    ), failed["msg"]
    assert failed["msg"].count(str(path)) == 1, f"the message repeats itself: {failed['msg']}"
    assert "Traceback" not in repr(failed) and "Unexpected failure" not in failed["msg"]
    assert not (issued_dir / "etcd-peer.crt").exists()
