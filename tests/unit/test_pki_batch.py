# SPDX-License-Identifier: Apache-2.0
"""Batched PKI: a node's keys and CSRs in one call, every certificate of a run in another.

Real keys, CSRs and certificates throughout; the CA helper and the checks come from test_pki.
"""

from __future__ import annotations

import datetime as dt
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pytest
from _pki_requests import NAMES, REQUESTS
from ansible_collections.scratch.kubernetes.plugins.module_utils import _pki_batch
from ansible_collections.scratch.kubernetes.plugins.module_utils._pki import (
    KeySpec,
    PKIError,
    csr_pem,
    ensure_private_key,
    load_ca,
    load_private_key,
    make_csr,
)
from ansible_collections.scratch.kubernetes.plugins.module_utils._pki_batch import (
    ensure_certificates,
    ensure_requests,
)
from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from test_pki import CA, load_cert, mode_of, spki, verify_issued_by


def load_csr(pem: str) -> x509.CertificateSigningRequest:
    return x509.load_pem_x509_csr(pem.encode())


def common_name(item: x509.Certificate | x509.CertificateSigningRequest) -> str:
    return item.subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value


def sans(item: x509.Certificate | x509.CertificateSigningRequest) -> tuple[list[str], list[str]]:
    names = item.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    return (
        names.get_values_for_type(x509.DNSName),
        [str(address) for address in names.get_values_for_type(x509.IPAddress)],
    )


@pytest.fixture
def node_dir(tmp_path: Path) -> Path:
    """A node's key directory, two levels below anything that exists."""
    return tmp_path / "node" / "pki"


@pytest.fixture
def cas(tmp_path: Path) -> dict[str, CA]:
    """The cluster CA and the etcd CA, side by side as the pki role keeps them."""
    return {name: CA(tmp_path / "pki", name) for name in ("ca", "etcd-ca")}


def certificate_items(
    csrs: list[dict[str, Any]], cas: dict[str, CA], issued: Path, requests: Sequence[dict[str, Any]] = ()
) -> list[dict[str, Any]]:
    """What the node_certificates action passes to ensure_certificates for one node's requests
    (by default, the test requests)."""
    by_name = {request["name"]: request for request in requests or REQUESTS}
    return [
        {
            "path": str(issued / f"{entry['name']}.crt"),
            "request": by_name[entry["name"]],
            "csr": entry["csr"],
            "ca_certificate_path": str(cas[entry["ca"]].cert),
            "ca_privatekey_path": str(cas[entry["ca"]].key),
        }
        for entry in csrs
    ]


# ---------------------------------------------------------------------------- ensure_requests


def test_keys_are_made_0600_in_a_new_directory_with_csrs_in_order(node_dir: Path) -> None:
    outcome = ensure_requests(str(node_dir), REQUESTS)

    assert outcome.changed
    assert outcome.reasons == [
        f"{node_dir} does not exist",
        *(f"{node_dir / name}.key does not exist" for name in NAMES),
    ]
    assert node_dir.is_dir()
    assert sorted(os.listdir(node_dir)) == sorted(f"{name}.key" for name in NAMES)
    csrs = outcome.facts["csrs"]
    assert [(entry["name"], entry["ca"]) for entry in csrs] == [
        ("kubelet-client", "ca"),
        ("kubelet-server", "ca"),
        ("etcd-peer", "etcd-ca"),
    ]
    for entry in csrs:
        path = node_dir / f"{entry['name']}.key"
        assert mode_of(path) == 0o600
        key = load_private_key(str(path))
        assert isinstance(key, ec.EllipticCurvePrivateKey) and key.curve.name == "secp256r1"
        csr = load_csr(entry["csr"])
        assert csr.is_signature_valid
        assert spki(csr.public_key()) == spki(key.public_key())
    client, server, peer = (load_csr(entry["csr"]) for entry in csrs)
    assert client.subject.rfc4514_string() == "CN=system:node:worker-1,O=system:nodes"
    assert sans(server) == (["worker-1"], ["10.0.0.11"])
    assert common_name(peer) == "worker-1"
    assert "PRIVATE" not in repr(outcome)


def test_rerun_keeps_the_keys_and_changes_nothing(node_dir: Path) -> None:
    first = ensure_requests(str(node_dir), REQUESTS)
    contents = {name: (node_dir / f"{name}.key").read_bytes() for name in NAMES}

    again = ensure_requests(str(node_dir), REQUESTS)

    assert not again.changed and again.reasons == []
    assert {name: (node_dir / f"{name}.key").read_bytes() for name in NAMES} == contents
    for before, after in zip(first.facts["csrs"], again.facts["csrs"], strict=True):
        assert before["name"] == after["name"] and before["ca"] == after["ca"]
        assert spki(load_csr(after["csr"]).public_key()) == spki(load_csr(before["csr"]).public_key())


def test_key_with_mode_0644_is_set_to_0600(node_dir: Path) -> None:
    ensure_requests(str(node_dir), REQUESTS)
    path = node_dir / "kubelet-server.key"
    content = path.read_bytes()
    path.chmod(0o644)

    checked = ensure_requests(str(node_dir), REQUESTS, check_mode=True)
    assert checked.reasons == [f"{path}: mode is 0644, want 0600"]
    assert mode_of(path) == 0o644, "check mode changed the mode"

    fixed = ensure_requests(str(node_dir), REQUESTS)
    assert fixed.reasons == [f"{path}: mode is 0644, want 0600"]
    assert mode_of(path) == 0o600 and path.read_bytes() == content
    assert not ensure_requests(str(node_dir), REQUESTS).changed


def test_key_of_another_type_is_replaced(node_dir: Path) -> None:
    node_dir.mkdir(parents=True)
    path = node_dir / "kubelet-client.key"
    ensure_private_key(str(path), KeySpec("rsa", 2048))

    outcome = ensure_requests(str(node_dir), REQUESTS[:1])

    assert outcome.reasons == ["the key is rsa 2048, want ecdsa secp256r1"]
    key = load_private_key(str(path))
    assert isinstance(key, ec.EllipticCurvePrivateKey) and mode_of(path) == 0o600
    assert spki(load_csr(outcome.facts["csrs"][0]["csr"]).public_key()) == spki(key.public_key())


def test_check_mode_on_a_missing_directory_writes_nothing(node_dir: Path) -> None:
    outcome = ensure_requests(str(node_dir), REQUESTS, check_mode=True)

    assert outcome.changed and outcome.reasons[0] == f"{node_dir} does not exist"
    assert outcome.facts["csrs"] == [
        {"name": "kubelet-client", "ca": "ca", "csr": None},
        {"name": "kubelet-server", "ca": "ca", "csr": None},
        {"name": "etcd-peer", "ca": "etcd-ca", "csr": None},
    ]
    assert not node_dir.parent.exists()


def test_check_mode_on_an_empty_directory_writes_nothing(node_dir: Path) -> None:
    node_dir.mkdir(parents=True)

    outcome = ensure_requests(str(node_dir), REQUESTS, check_mode=True)

    assert outcome.reasons == [f"{node_dir / name}.key does not exist" for name in NAMES]
    assert [entry["csr"] for entry in outcome.facts["csrs"]] == [None, None, None]
    assert os.listdir(node_dir) == []


def test_check_mode_reports_an_unusable_key_without_failing(node_dir: Path) -> None:
    node_dir.mkdir(parents=True)
    path = node_dir / "kubelet-client.key"
    path.write_text("not a key\n")
    path.chmod(0o600)

    outcome = ensure_requests(str(node_dir), REQUESTS[:1], check_mode=True)

    assert outcome.changed and outcome.facts["csrs"][0]["csr"] is None
    assert path.read_text() == "not a key\n"


# ---------------------------------------------------------------------------- ensure_certificates


def test_certificates_are_issued_into_missing_directories_by_their_ca(
    node_dir: Path, cas: dict[str, CA], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    loaded: list[tuple[str, str]] = []

    def load_ca_recorded(certificate_path: str, key_path: str):
        loaded.append((certificate_path, key_path))
        return load_ca(certificate_path, key_path)

    monkeypatch.setattr(_pki_batch, "load_ca", load_ca_recorded)
    csrs = ensure_requests(str(node_dir), REQUESTS).facts["csrs"]
    issued_dir = tmp_path / "pki" / "issued" / "worker-1"
    items = certificate_items(csrs, cas, issued_dir)

    outcome = ensure_certificates(items)

    paths = [item["path"] for item in items]
    assert outcome.facts["issued"] == paths
    assert outcome.reasons == [f"{path}: {path} does not exist" for path in paths]
    assert loaded == [(str(cas[name].cert), str(cas[name].key)) for name in ("ca", "etcd-ca")]
    ca_cert, etcd_ca_cert = load_cert(cas["ca"].cert), load_cert(cas["etcd-ca"].cert)
    client, server, peer = (load_cert(Path(path)) for path in paths)
    verify_issued_by(client, ca_cert)
    verify_issued_by(server, ca_cert)
    verify_issued_by(peer, etcd_ca_cert)
    assert peer.issuer != ca_cert.subject and client.issuer != etcd_ca_cert.subject
    for name, cert in zip(NAMES, (client, server, peer), strict=True):
        assert spki(cert.public_key()) == spki(load_private_key(str(node_dir / f"{name}.key")).public_key())
        assert mode_of(issued_dir / f"{name}.crt") == 0o644
    assert client.subject.rfc4514_string() == "CN=system:node:worker-1,O=system:nodes"
    assert sans(server) == (["worker-1"], ["10.0.0.11"])
    assert common_name(peer) == "worker-1"


def test_rerun_issues_nothing(node_dir: Path, cas: dict[str, CA], tmp_path: Path) -> None:
    issued_dir = tmp_path / "issued" / "worker-1"
    csrs = ensure_requests(str(node_dir), REQUESTS).facts["csrs"]
    ensure_certificates(certificate_items(csrs, cas, issued_dir))
    contents = {path: path.read_bytes() for path in issued_dir.iterdir()}

    # A rerun makes new CSRs for the same keys: the certificates still fit them.
    csrs = ensure_requests(str(node_dir), REQUESTS).facts["csrs"]
    outcome = ensure_certificates(certificate_items(csrs, cas, issued_dir))

    assert not outcome.changed and outcome.reasons == [] and outcome.facts["issued"] == []
    assert {path: path.read_bytes() for path in issued_dir.iterdir()} == contents


def test_changed_san_reissues_only_that_certificate(
    node_dir: Path, cas: dict[str, CA], tmp_path: Path
) -> None:
    issued_dir = tmp_path / "issued" / "worker-1"
    csrs = ensure_requests(str(node_dir), REQUESTS).facts["csrs"]
    ensure_certificates(certificate_items(csrs, cas, issued_dir))
    contents = {path: path.read_bytes() for path in issued_dir.iterdir()}
    requests = [dict(request) for request in REQUESTS]
    requests[1]["dns_names"] = ["worker-1", "worker-1.example.test"]

    keys = ensure_requests(str(node_dir), requests)
    outcome = ensure_certificates(certificate_items(keys.facts["csrs"], cas, issued_dir, requests))

    assert not keys.changed, "a new SAN must not replace the key"
    server = issued_dir / "kubelet-server.crt"
    assert outcome.facts["issued"] == [str(server)]
    assert outcome.reasons == [
        f"{server}: its DNS names are ['worker-1'], want ['worker-1', 'worker-1.example.test']"
    ]
    assert sans(load_cert(server)) == (["worker-1", "worker-1.example.test"], ["10.0.0.11"])
    verify_issued_by(load_cert(server), load_cert(cas["ca"].cert))
    for path, content in contents.items():
        assert (path.read_bytes() == content) == (path != server), path


def test_reissue_issued_before_reissues_only_older_certificates(
    node_dir: Path, cas: dict[str, CA], tmp_path: Path
) -> None:
    issued_dir = tmp_path / "issued" / "worker-1"
    csrs = ensure_requests(str(node_dir), REQUESTS).facts["csrs"]
    items = certificate_items(csrs, cas, issued_dir)
    ensure_certificates(items)
    # The etcd peer certificate signed two days ago; the others just now.
    now = dt.datetime.now(dt.UTC)
    peer = issued_dir / "etcd-peer.crt"
    peer.unlink()
    cas["etcd-ca"].sign(csrs[2]["csr"], peer, now=now - dt.timedelta(days=2))
    contents = {path: path.read_bytes() for path in issued_dir.iterdir()}
    renewal = (now - dt.timedelta(days=1)).strftime("%Y-%m-%dT%H:%M:%SZ")

    checked = ensure_certificates(items, reissue_issued_before=renewal, check_mode=True)
    assert checked.facts["issued"] == [str(peer)]
    assert {path: path.read_bytes() for path in issued_dir.iterdir()} == contents

    outcome = ensure_certificates(items, reissue_issued_before=renewal)
    assert outcome.facts["issued"] == [str(peer)]
    assert len(outcome.reasons) == 1
    assert outcome.reasons[0].startswith(f"{peer}: it was issued at ")
    assert outcome.reasons[0].endswith("reissue requested")
    assert peer.read_bytes() != contents[peer]
    verify_issued_by(load_cert(peer), load_cert(cas["etcd-ca"].cert))
    # The same renewal in a rerun keeps what it issued.
    assert not ensure_certificates(items, reissue_issued_before=renewal).changed


def test_check_mode_without_a_csr_reports_and_writes_nothing(
    node_dir: Path, cas: dict[str, CA], tmp_path: Path
) -> None:
    # A first --check run: the node has no keys yet, so no CSRs reach the controller.
    csrs = ensure_requests(str(node_dir), REQUESTS, check_mode=True).facts["csrs"]
    issued_dir = tmp_path / "issued" / "worker-1"
    items = certificate_items(csrs, cas, issued_dir)

    outcome = ensure_certificates(items, check_mode=True)

    paths = [item["path"] for item in items]
    assert outcome.facts["issued"] == paths
    assert outcome.reasons == [f"{path}: its key is yet to be made" for path in paths]
    assert not issued_dir.parent.exists()
    assert not node_dir.parent.exists()


def test_check_mode_with_csrs_reports_and_writes_nothing(
    node_dir: Path, cas: dict[str, CA], tmp_path: Path
) -> None:
    csrs = ensure_requests(str(node_dir), REQUESTS).facts["csrs"]
    issued_dir = tmp_path / "issued" / "worker-1"
    items = certificate_items(csrs, cas, issued_dir)

    outcome = ensure_certificates(items, check_mode=True)

    assert outcome.facts["issued"] == [item["path"] for item in items]
    assert not issued_dir.parent.exists()


def test_missing_csr_outside_check_mode_fails(node_dir: Path, cas: dict[str, CA], tmp_path: Path) -> None:
    issued_dir = tmp_path / "issued" / "worker-1"
    items = certificate_items([{"name": "kubelet-client", "ca": "ca", "csr": None}], cas, issued_dir)

    with pytest.raises(PKIError, match="no certificate request came from the node; run again"):
        ensure_certificates(items)
    assert not issued_dir.parent.exists()


def test_certificate_path_without_a_directory_part(
    node_dir: Path, cas: dict[str, CA], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    csrs = ensure_requests(str(node_dir), REQUESTS[:1]).facts["csrs"]
    items = certificate_items(csrs, cas, tmp_path)
    items[0]["path"] = "kubelet-client.crt"  # relative, as a type=path option may be
    monkeypatch.chdir(tmp_path)

    outcome = ensure_certificates(items)

    assert outcome.facts["issued"] == ["kubelet-client.crt"]
    verify_issued_by(load_cert(tmp_path / "kubelet-client.crt"), load_cert(cas["ca"].cert))


# ---------------------------------------------------------------------------- CSRs that ask for more


def _tampered(node_dir: Path, name: str, **changes: Any) -> str:
    """A CSR that root on the node makes with the node's own key for other names or usages."""
    request = {**next(r for r in REQUESTS if r["name"] == name), **changes}
    key = load_private_key(str(node_dir / f"{name}.key"))
    return csr_pem(make_csr(key, **_pki_batch.request_fields(request)))


@pytest.mark.parametrize(
    ("name", "changes", "message"),
    [
        pytest.param(
            "kubelet-client", {"organization": ["system:masters"]},
            r"asks for subject CN=system:node:worker-1,O=system:masters, but"
            r" CN=system:node:worker-1,O=system:nodes was requested",
            id="group-added",
        ),
        pytest.param(
            "kubelet-client", {"common_name": "admin"},
            r"asks for subject CN=admin,O=system:nodes, but CN=system:node:worker-1,O=system:nodes"
            r" was requested",
            id="another-user",
        ),
        pytest.param(
            "kubelet-server", {"dns_names": ["worker-1", "kubernetes.default"]},
            r"asks for dns_names \['kubernetes.default', 'worker-1'\], but \['worker-1'\] was requested",
            id="name-added",
        ),
        pytest.param(
            "kubelet-server", {"ip_addresses": ["10.0.0.11", "10.0.0.1"]},
            r"asks for ip_addresses \['10.0.0.1', '10.0.0.11'\], but \['10.0.0.11'\] was requested",
            id="address-added",
        ),
        pytest.param(
            "kubelet-server", {"extended_key_usage": ["server_auth", "client_auth"]},
            r"asks for extended_key_usage \['client_auth', 'server_auth'\], but \['server_auth'\]"
            r" was requested",
            id="usage-added",
        ),
    ],
)  # fmt: skip
@pytest.mark.parametrize("check_mode", [False, True], ids=["run", "check"])
def test_a_csr_that_asks_for_more_than_its_request_is_refused_and_nothing_is_signed(
    node_dir: Path, cas: dict[str, CA], tmp_path: Path, name: str, changes: dict[str, Any], message: str,
    check_mode: bool,
) -> None:  # fmt: skip
    csrs = ensure_requests(str(node_dir), REQUESTS).facts["csrs"]
    for entry in csrs:
        if entry["name"] == name:
            entry["csr"] = _tampered(node_dir, name, **changes)
    issued_dir = tmp_path / "issued" / "worker-1"

    with pytest.raises(PKIError, match=rf"^{issued_dir / name}\.crt: the CSR {message}: it was not made by"):
        ensure_certificates(certificate_items(csrs, cas, issued_dir), check_mode=check_mode)
    assert not issued_dir.exists()


def test_a_tampered_csr_is_refused_even_when_its_certificate_exists(
    node_dir: Path, cas: dict[str, CA], tmp_path: Path
) -> None:
    # A certificate that fits would otherwise be kept without a look at the CSR: refuse all the same.
    issued_dir = tmp_path / "issued" / "worker-1"
    csrs = ensure_requests(str(node_dir), REQUESTS).facts["csrs"]
    ensure_certificates(certificate_items(csrs, cas, issued_dir))
    contents = {path: path.read_bytes() for path in issued_dir.iterdir()}
    csrs[0]["csr"] = _tampered(node_dir, "kubelet-client", organization=["system:masters"])

    with pytest.raises(PKIError, match="asks for subject"):
        ensure_certificates(certificate_items(csrs, cas, issued_dir))
    assert {path: path.read_bytes() for path in issued_dir.iterdir()} == contents
