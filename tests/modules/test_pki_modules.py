# SPDX-License-Identifier: Apache-2.0
"""The PKI modules through real Ansible: check mode, run, check-mode rerun, rerun.

Keys and certificates needed as input (and the foreign CA) are made here with plain
``cryptography``, independently of the collection's code, to keep the number of ``ansible``
runs low.
"""

from __future__ import annotations

import base64
import datetime as dt
import stat
import time
from pathlib import Path

import yaml
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID


def mode_of(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def four_runs(run_module, name: str, args: dict, written: Path) -> dict:
    """community.crypto's pattern; returns the result of the run that changed something."""
    check = run_module(name, args, check=True)
    assert check["changed"] and not check.get("failed"), check
    assert not written.exists(), "check mode wrote a file"
    first = run_module(name, args, diff=True)
    assert first["changed"] and not first.get("failed"), first
    assert written.exists()
    recheck = run_module(name, args, check=True)
    assert not recheck["changed"] and recheck["reasons"] == [], recheck
    rerun = run_module(name, args)
    assert not rerun["changed"] and rerun["reasons"] == [], rerun
    return first


def verify_issued_by(cert: x509.Certificate, ca: x509.Certificate) -> None:
    """``ca`` (an ECDSA CA) issued ``cert``; by hand, as cryptography 38 has no verify_directly_issued_by."""
    assert cert.issuer == ca.subject
    public_key = ca.public_key()
    assert isinstance(public_key, ec.EllipticCurvePublicKey) and cert.signature_hash_algorithm is not None
    public_key.verify(cert.signature, cert.tbs_certificate_bytes, ec.ECDSA(cert.signature_hash_algorithm))


def write_key(path: Path) -> ec.EllipticCurvePrivateKey:
    key = ec.generate_private_key(ec.SECP256R1())
    pem = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    path.write_bytes(pem)
    path.chmod(0o600)
    return key


def write_cert(
    path: Path,
    subject: str,
    public_key,
    signing_key: ec.EllipticCurvePrivateKey,
    issuer: str | None = None,
    is_ca: bool = False,
) -> None:
    now = dt.datetime.now(dt.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, subject)]))
        .issuer_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, issuer or subject)]))
        .public_key(public_key)
        .serial_number(x509.random_serial_number())
        .not_valid_before(now)
        .not_valid_after(now + dt.timedelta(days=100))
        .add_extension(x509.BasicConstraints(ca=is_ca, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=False,
                key_encipherment=not is_ca,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=is_ca,
                crl_sign=is_ca,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .sign(signing_key, hashes.SHA256())
    )
    path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))


def test_private_key(run_module, tmp_path: Path) -> None:
    path, public = tmp_path / "sa.key", tmp_path / "sa.pub"
    args = {"path": str(path), "public_key_path": str(public)}
    first = four_runs(run_module, "private_key", args, path)
    assert first["type"] == "ecdsa" and first["curve"] == "secp256r1" and first["size"] == 256
    assert first["reasons"] == [f"{path} does not exist", f"{public} does not hold the public key"]
    assert first["diff"]["after"]["fingerprint"] == first["fingerprint"]
    assert "PRIVATE" not in repr(first)
    assert mode_of(path) == 0o600 and mode_of(public) == 0o644
    assert public.read_text() == first["public_key"]
    content = path.read_bytes()

    path.chmod(0o644)
    fixed = run_module("private_key", args)
    assert fixed["changed"] and fixed["reasons"] == [f"{path}: mode, owner or group differ"]
    assert mode_of(path) == 0o600 and path.read_bytes() == content


def test_ca_csr_certificate_chain(run_module, tmp_path: Path) -> None:
    ca_key, ca_cert = tmp_path / "ca.key", tmp_path / "ca.crt"
    write_key(ca_key)
    ca_args = {"privatekey_path": str(ca_key), "path": str(ca_cert), "common_name": "test-ca"}
    ca = four_runs(run_module, "ca_certificate", ca_args, ca_cert)
    assert ca["subject"] == "CN=test-ca" and ca["reasons"] == [f"{ca_cert} does not exist"]
    ca_x509 = x509.load_pem_x509_certificate(ca_cert.read_bytes())
    assert ca_x509.extensions.get_extension_for_class(x509.BasicConstraints).value.ca
    assert mode_of(ca_cert) == 0o644

    node_key = tmp_path / "node.key"
    write_key(node_key)
    csr_args = {
        "privatekey_path": str(node_key),
        "common_name": "system:node:worker-1",
        "organization": ["system:nodes"],
        "dns_names": ["worker-1"],
        "ip_addresses": ["10.0.0.11"],
        "extended_key_usage": ["client_auth", "server_auth"],
    }
    csr = run_module("csr", csr_args)
    assert not csr["changed"] and csr["csr"].startswith("-----BEGIN CERTIFICATE REQUEST-----")

    cert_path = tmp_path / "node.crt"
    cert_args = {
        "csr_content": csr["csr"],
        "path": str(cert_path),
        "ca_certificate_path": str(ca_cert),
        "ca_privatekey_path": str(ca_key),
    }
    first = four_runs(run_module, "certificate", cert_args, cert_path)
    assert first["subject"] == "CN=system:node:worker-1,O=system:nodes"
    assert first["dns_names"] == ["worker-1"] and first["ip_addresses"] == ["10.0.0.11"]
    assert first["diff"]["before"] == {}
    assert first["diff"]["after"]["issuer"] == "CN=test-ca"
    assert first["diff"]["after"]["fingerprint"] == first["fingerprint"]
    cert = x509.load_pem_x509_certificate(cert_path.read_bytes())
    verify_issued_by(cert, ca_x509)

    # Same subject as our CA, other key: only the signature tells it apart.
    foreign_key = ec.generate_private_key(ec.SECP256R1())
    write_cert(cert_path, "system:node:worker-1", cert.public_key(), foreign_key, issuer="test-ca")
    reissued = run_module("certificate", cert_args)
    assert reissued["changed"]
    assert "it is not signed by the CA 'CN=test-ca'" in reissued["reasons"]
    verify_issued_by(x509.load_pem_x509_certificate(cert_path.read_bytes()), ca_x509)


def write_csr(key: ec.EllipticCurvePrivateKey, common_name: str) -> str:
    """A client certificate request, as scratch.kubernetes.csr would make it."""
    csr = (
        x509.CertificateSigningRequestBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)]))
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.CLIENT_AUTH]), critical=False)
        .sign(key, hashes.SHA256())
    )
    return csr.public_bytes(serialization.Encoding.PEM).decode()


def not_before(cert: x509.Certificate) -> dt.datetime:
    if hasattr(cert, "not_valid_before_utc"):
        return cert.not_valid_before_utc
    return cert.not_valid_before.replace(tzinfo=dt.UTC)  # cryptography 38


def test_certificate_renewal_on_request(run_module, tmp_path: Path) -> None:
    ca_key, ca_cert = tmp_path / "ca.key", tmp_path / "ca.crt"
    signing_key = write_key(ca_key)
    write_cert(ca_cert, "test-ca", signing_key.public_key(), signing_key, is_ca=True)
    cert_path = tmp_path / "admin.crt"
    args = {
        "csr_content": write_csr(write_key(tmp_path / "admin.key"), "admin"),
        "path": str(cert_path),
        "ca_certificate_path": str(ca_cert),
        "ca_privatekey_path": str(ca_key),
    }
    first = run_module("certificate", args)
    assert first["changed"], first
    content = cert_path.read_bytes()

    # A renewal that starts a second after the signing; the module refuses a time still to come.
    issued = not_before(x509.load_pem_x509_certificate(content)) + dt.timedelta(hours=1)
    renewal = issued + dt.timedelta(seconds=1)
    time.sleep(max(0.0, (renewal - dt.datetime.now(dt.UTC)).total_seconds()))
    renew_args = {**args, "reissue_issued_before": renewal.strftime("%Y-%m-%dT%H:%M:%SZ")}
    reason = (
        f"it was issued at {issued.isoformat()}, before reissue_issued_before ({renewal.isoformat()}): "
        "reissue requested"
    )

    check = run_module("certificate", renew_args, check=True, diff=True)
    assert check["changed"] and check["reasons"] == [reason], check
    assert check["fingerprint"] is None and check["diff"]["before"]["fingerprint"] == first["fingerprint"]
    assert cert_path.read_bytes() == content, "check mode wrote the certificate"

    renewed = run_module("certificate", renew_args, diff=True)
    assert renewed["changed"] and renewed["reasons"] == [reason], renewed
    assert renewed["diff"]["before"]["fingerprint"] == first["fingerprint"] != renewed["fingerprint"]
    assert renewed["diff"]["after"]["fingerprint"] == renewed["fingerprint"]
    assert cert_path.read_bytes() != content
    ca_x509 = x509.load_pem_x509_certificate(ca_cert.read_bytes())
    verify_issued_by(x509.load_pem_x509_certificate(cert_path.read_bytes()), ca_x509)

    # Issued after the time: a rerun of the same renewal keeps it.
    content = cert_path.read_bytes()
    recheck = run_module("certificate", renew_args, check=True)
    assert not recheck["changed"] and recheck["reasons"] == [], recheck
    rerun = run_module("certificate", renew_args)
    assert not rerun["changed"] and rerun["reasons"] == [], rerun
    assert cert_path.read_bytes() == content

    failed = run_module("certificate", {**args, "reissue_issued_before": "2025-06-01 12:00"})
    assert failed["failed"] and "has no UTC offset; add Z" in failed["msg"], failed
    assert cert_path.read_bytes() == content


def test_kubeconfig(run_module, tmp_path: Path) -> None:
    ca_key, ca_cert = tmp_path / "ca.key", tmp_path / "ca.crt"
    signing_key = write_key(ca_key)
    write_cert(ca_cert, "test-ca", signing_key.public_key(), signing_key, is_ca=True)
    admin_key, admin_cert = tmp_path / "admin.key", tmp_path / "admin.crt"
    write_cert(admin_cert, "admin", write_key(admin_key).public_key(), signing_key, issuer="test-ca")
    path = tmp_path / "admin.kubeconfig"
    args = {
        "path": str(path),
        "cluster_name": "kubernetes",
        "server": "https://10.0.0.1:6443",
        "ca_certificate_path": str(ca_cert),
        "user": "admin",
        "client_certificate_path": str(admin_cert),
        "client_key_path": str(admin_key),
    }
    first = four_runs(run_module, "kubeconfig", args, path)
    assert first["context"] == "admin@kubernetes"
    assert first["diff"]["after"]["server"] == "https://10.0.0.1:6443"
    assert "client-key-data" not in repr(first["diff"]) and "PRIVATE" not in repr(first)
    config = yaml.safe_load(path.read_text())
    assert base64.b64decode(config["users"][0]["user"]["client-key-data"]) == admin_key.read_bytes()
    assert mode_of(path) == 0o600


def test_encryption_key(run_module, tmp_path: Path) -> None:
    path = tmp_path / "encryption.key"
    first = four_runs(run_module, "encryption_key", {"path": str(path)}, path)
    assert len(base64.b64decode(first["key"], validate=True)) == 32
    assert first["diff"] == {"before": {"exists": False}, "after": {"exists": True}}
    assert mode_of(path) == 0o600

    path.write_text("too short\n")
    failed = run_module("encryption_key", {"path": str(path)})
    assert failed["failed"] and "does not hold base64 of exactly 32 bytes" in failed["msg"]
    assert path.read_text() == "too short\n"
