# SPDX-License-Identifier: Apache-2.0
"""PKI core, checked with real keys and certificates: no mocks."""

from __future__ import annotations

import base64
import datetime as dt
import ipaddress
import stat
from pathlib import Path

import pytest
from ansible_collections.scratch.kubernetes.plugins.module_utils._pki import (
    CA_KEY_USAGE,
    CertificateFileError,
    CertSpec,
    CSRError,
    EncryptionKeyError,
    KeyFileError,
    KeySpec,
    PKIError,
    SettingError,
    csr_pem,
    ensure_ca_certificate,
    ensure_certificate,
    ensure_encryption_key,
    ensure_private_key,
    issue_certificate,
    load_private_key,
    make_csr,
    remove_private_key,
)
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

LATER = dt.datetime.now(dt.UTC) + dt.timedelta(days=340)  # inside renew_before_days of a 365-day cert


def mode_of(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def load_cert(path: Path) -> x509.Certificate:
    return x509.load_pem_x509_certificate(path.read_bytes())


# By hand rather than with Certificate.verify_directly_issued_by (cryptography 40), public key ==
# (40) and not_valid_after_utc (42): these tests also run with the nodes' cryptography 38.


def verify_issued_by(cert: x509.Certificate, ca: x509.Certificate) -> None:
    """Check that ``ca`` issued ``cert``: names match, and the CA's public key verifies the signature."""
    assert cert.issuer == ca.subject
    public_key = ca.public_key()
    assert cert.signature_hash_algorithm is not None
    if isinstance(public_key, ec.EllipticCurvePublicKey):
        public_key.verify(cert.signature, cert.tbs_certificate_bytes, ec.ECDSA(cert.signature_hash_algorithm))
    else:
        assert isinstance(public_key, rsa.RSAPublicKey)
        public_key.verify(
            cert.signature, cert.tbs_certificate_bytes, padding.PKCS1v15(), cert.signature_hash_algorithm
        )


def spki(public_key) -> bytes:
    """The DER SubjectPublicKeyInfo, to compare public keys."""
    return public_key.public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )


def validity(cert: x509.Certificate) -> dt.timedelta:
    if hasattr(cert, "not_valid_after_utc"):
        return cert.not_valid_after_utc - cert.not_valid_before_utc
    return cert.not_valid_after - cert.not_valid_before  # both naive UTC before cryptography 42


class CA:
    """A CA made by the core, in ``directory``."""

    def __init__(self, directory: Path, name: str = "test-ca", key_type: str = "ecdsa") -> None:
        directory.mkdir(exist_ok=True)
        self.key = directory / f"{name}.key"
        self.cert = directory / f"{name}.crt"
        ensure_private_key(str(self.key), KeySpec(key_type))
        ensure_ca_certificate(str(self.cert), str(self.key), name)

    def sign(self, csr: str, path: Path, **kwargs):
        return ensure_certificate(str(path), csr, str(self.cert), str(self.key), **kwargs)


@pytest.fixture
def ca(tmp_path: Path) -> CA:
    return CA(tmp_path / "ca")


@pytest.fixture
def node_key(tmp_path: Path):
    path = tmp_path / "node.key"
    ensure_private_key(str(path), KeySpec())
    return load_private_key(str(path))


def node_csr(key, **overrides) -> str:
    request = dict(
        common_name="system:node:worker-1",
        organization=["system:nodes"],
        dns_names=["worker-1", "worker-1.example.test"],
        ip_addresses=["10.0.0.11", "fd00::11"],
        key_usage=["digital_signature", "key_encipherment"],
        extended_key_usage=["client_auth", "server_auth"],
    )
    request.update(overrides)
    return csr_pem(make_csr(key, **request))


# ---------------------------------------------------------------------------- private keys


def test_ecdsa_key_is_p256_and_0600(tmp_path: Path) -> None:
    path = tmp_path / "k.key"
    outcome = ensure_private_key(str(path), KeySpec())
    key = load_private_key(str(path))
    assert isinstance(key, ec.EllipticCurvePrivateKey)
    assert key.curve.name == "secp256r1"
    assert mode_of(path) == 0o600
    assert outcome.changed
    assert outcome.facts["type"] == "ecdsa" and outcome.facts["size"] == 256
    assert outcome.facts["curve"] == "secp256r1"
    assert "PRIVATE" not in repr(outcome)


def test_rsa_key_has_the_size_asked_for(tmp_path: Path) -> None:
    path = tmp_path / "k.key"
    outcome = ensure_private_key(str(path), KeySpec("rsa", 2048))
    key = load_private_key(str(path))
    assert isinstance(key, rsa.RSAPrivateKey) and key.key_size == 2048
    assert outcome.facts["size"] == 2048 and outcome.facts["curve"] is None
    assert mode_of(path) == 0o600


def test_fitting_key_is_kept(tmp_path: Path) -> None:
    path = tmp_path / "k.key"
    first = ensure_private_key(str(path), KeySpec())
    content = path.read_bytes()
    again = ensure_private_key(str(path), KeySpec())
    assert not again.changed and again.reasons == []
    assert path.read_bytes() == content
    assert again.facts["fingerprint"] == first.facts["fingerprint"]


def test_key_of_another_type_is_replaced_with_reason(tmp_path: Path) -> None:
    path = tmp_path / "k.key"
    ensure_private_key(str(path), KeySpec("rsa", 2048))
    outcome = ensure_private_key(str(path), KeySpec("ecdsa"))
    assert outcome.reasons == ["the key is rsa 2048, want ecdsa secp256r1"]
    assert isinstance(load_private_key(str(path)), ec.EllipticCurvePrivateKey)


def test_key_of_another_size_or_curve_is_a_mismatch(tmp_path: Path) -> None:
    path = tmp_path / "k.key"
    ensure_private_key(str(path), KeySpec("rsa", 2048))
    assert KeySpec("rsa", 4096).mismatch(load_private_key(str(path))) == "the key is rsa 2048, want rsa 4096"
    assert KeySpec().mismatch(ec.generate_private_key(ec.SECP384R1())) == (
        "the key is ecdsa secp384r1, want ecdsa secp256r1"
    )


def test_unreadable_key_file_is_replaced(tmp_path: Path) -> None:
    path = tmp_path / "k.key"
    path.write_text("not a key\n")
    outcome = ensure_private_key(str(path), KeySpec())
    assert outcome.changed and "does not hold a usable private key" in outcome.reasons[0]
    load_private_key(str(path))


def test_force_replaces_a_fitting_key(tmp_path: Path) -> None:
    path = tmp_path / "k.key"
    first = ensure_private_key(str(path), KeySpec())
    outcome = ensure_private_key(str(path), KeySpec(), force=True)
    assert outcome.reasons == ["force is true"]
    assert outcome.facts["fingerprint"] != first.facts["fingerprint"]


def test_check_mode_writes_nothing(tmp_path: Path) -> None:
    path, public = tmp_path / "k.key", tmp_path / "k.pub"
    outcome = ensure_private_key(str(path), KeySpec(), public_key_path=str(public), check_mode=True)
    assert outcome.changed and outcome.facts["fingerprint"] is None
    assert not path.exists() and not public.exists()


def test_public_key_file_is_written_0644_and_kept(tmp_path: Path) -> None:
    path, public = tmp_path / "sa.key", tmp_path / "sa.pub"
    outcome = ensure_private_key(str(path), KeySpec(), public_key_path=str(public))
    loaded = serialization.load_pem_public_key(public.read_bytes())
    assert spki(loaded) == spki(load_private_key(str(path)).public_key())
    assert public.read_text() == outcome.facts["public_key"]
    assert mode_of(public) == 0o644
    assert not ensure_private_key(str(path), KeySpec(), public_key_path=str(public)).changed
    public.write_text("stale\n")
    outcome = ensure_private_key(str(path), KeySpec(), public_key_path=str(public))
    assert outcome.reasons == [f"{public} does not hold the public key"]
    assert public.read_text() == outcome.facts["public_key"]


def test_absent_removes_key_and_public_key(tmp_path: Path) -> None:
    path, public = tmp_path / "k.key", tmp_path / "k.pub"
    ensure_private_key(str(path), KeySpec(), public_key_path=str(public))
    assert remove_private_key(str(path), str(public), check_mode=True).changed
    assert path.exists()
    assert len(remove_private_key(str(path), str(public)).reasons) == 2
    assert not path.exists() and not public.exists()
    assert not remove_private_key(str(path), str(public)).changed


def test_missing_directory_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(PKIError, match=r"path .*/missing/k.key cannot be written \(No such file"):
        ensure_private_key(str(tmp_path / "missing" / "k.key"), KeySpec())


def test_unsupported_key_settings_fail() -> None:
    with pytest.raises(SettingError, match="size 1024"):
        KeySpec("rsa", 1024)
    with pytest.raises(SettingError, match="type 'dsa'"):
        KeySpec("dsa")


# ---------------------------------------------------------------------------- CSRs


def test_csr_holds_exactly_what_was_asked(node_key) -> None:
    csr = x509.load_pem_x509_csr(node_csr(node_key).encode())
    assert csr.is_signature_valid
    assert csr.subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value == "system:node:worker-1"
    assert csr.subject.get_attributes_for_oid(NameOID.ORGANIZATION_NAME)[0].value == "system:nodes"
    names = csr.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert set(names.get_values_for_type(x509.DNSName)) == {"worker-1", "worker-1.example.test"}
    assert set(names.get_values_for_type(x509.IPAddress)) == {
        ipaddress.ip_address("10.0.0.11"),
        ipaddress.ip_address("fd00::11"),
    }
    usage = csr.extensions.get_extension_for_class(x509.KeyUsage)
    assert usage.critical and usage.value.digital_signature and usage.value.key_encipherment
    assert not usage.value.key_cert_sign
    assert set(csr.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value) == {
        ExtendedKeyUsageOID.CLIENT_AUTH,
        ExtendedKeyUsageOID.SERVER_AUTH,
    }
    assert spki(csr.public_key()) == spki(node_key.public_key())


def test_csr_without_sans_or_usages_has_no_such_extensions(node_key) -> None:
    csr = make_csr(node_key, "admin", ["system:masters"], key_usage=[], extended_key_usage=[])
    assert len(csr.extensions) == 0


def test_csr_content_does_not_depend_on_input_order(node_key) -> None:
    first = x509.load_pem_x509_csr(node_csr(node_key).encode())
    second = x509.load_pem_x509_csr(
        node_csr(
            node_key,
            dns_names=["worker-1.example.test", "worker-1"],
            ip_addresses=["fd00::11", "10.0.0.11"],
            extended_key_usage=["server_auth", "client_auth"],
        ).encode()
    )
    assert first.tbs_certrequest_bytes == second.tbs_certrequest_bytes


def test_csr_rejects_bad_values(node_key) -> None:
    with pytest.raises(SettingError, match=r"ip_addresses: '10\.0\.0\.300'"):
        make_csr(node_key, "x", ip_addresses=["10.0.0.300"])
    with pytest.raises(SettingError, match="common_name is empty"):
        make_csr(node_key, "")
    with pytest.raises(SettingError, match="unknown key usage"):
        make_csr(node_key, "x", extended_key_usage=["code_signing"])


# ---------------------------------------------------------------------------- CA certificates


def test_ca_is_a_self_signed_ca(ca: CA) -> None:
    cert = load_cert(ca.cert)
    verify_issued_by(cert, cert)
    constraints = cert.extensions.get_extension_for_class(x509.BasicConstraints)
    assert constraints.critical and constraints.value.ca and constraints.value.path_length == 0
    usage = cert.extensions.get_extension_for_class(x509.KeyUsage).value
    assert usage.key_cert_sign and usage.crl_sign and usage.digital_signature
    identifier = cert.extensions.get_extension_for_class(x509.SubjectKeyIdentifier).value
    assert identifier == x509.SubjectKeyIdentifier.from_public_key(load_private_key(str(ca.key)).public_key())
    assert cert.subject == cert.issuer
    assert validity(cert) > dt.timedelta(days=3649)
    assert mode_of(ca.cert) == 0o644


def test_ca_rerun_keeps_it(ca: CA) -> None:
    content = ca.cert.read_bytes()
    outcome = ensure_ca_certificate(str(ca.cert), str(ca.key), "test-ca")
    assert not outcome.changed
    assert ca.cert.read_bytes() == content
    assert outcome.facts["subject"] == "CN=test-ca"
    assert "dns_names" not in outcome.facts


def test_ca_reissued_when_key_changes(ca: CA) -> None:
    ensure_private_key(str(ca.key), KeySpec(), force=True)
    outcome = ensure_ca_certificate(str(ca.cert), str(ca.key), "test-ca")
    assert len(outcome.reasons) == 1 and outcome.reasons[0].startswith("its public key")
    assert spki(load_cert(ca.cert).public_key()) == spki(load_private_key(str(ca.key)).public_key())


def test_ca_reissued_when_subject_changes(ca: CA) -> None:
    outcome = ensure_ca_certificate(str(ca.cert), str(ca.key), "test-ca", ["example"])
    assert outcome.reasons == ["its subject is 'CN=test-ca', want 'CN=test-ca,O=example'"]


def test_ca_reissued_inside_renew_before(ca: CA) -> None:
    soon = dt.datetime.now(dt.UTC) + dt.timedelta(days=3640)
    outcome = ensure_ca_certificate(str(ca.cert), str(ca.key), "test-ca", now=soon)
    assert len(outcome.reasons) == 1 and "within renew_before_days (30)" in outcome.reasons[0]


def test_leaf_at_ca_path_is_not_a_ca(ca: CA, tmp_path: Path) -> None:
    leaf = tmp_path / "leaf.crt"
    ca_key = load_private_key(str(ca.key))
    ca.sign(csr_pem(make_csr(ca_key, "test-ca", key_usage=[], extended_key_usage=[])), leaf)
    outcome = ensure_ca_certificate(str(leaf), str(ca.key), "test-ca", check_mode=True)
    assert "it is not a CA" in outcome.reasons
    assert any(reason.startswith("its key usage") for reason in outcome.reasons)
    assert outcome.facts["fingerprint"] is None


def test_ca_signed_by_another_ca_is_not_self_signed(ca: CA, tmp_path: Path) -> None:
    other = CA(tmp_path / "other", name="test-ca")
    want = CertSpec(
        subject=load_cert(ca.cert).subject,
        public_key=load_private_key(str(ca.key)).public_key(),
        key_usage=CA_KEY_USAGE,
        is_ca=True,
    )
    now = dt.datetime.now(dt.UTC)
    cross = issue_certificate(
        want, load_private_key(str(other.key)), load_cert(other.cert), dt.timedelta(days=9), now
    )
    ca.cert.write_bytes(cross.public_bytes(serialization.Encoding.PEM))
    outcome = ensure_ca_certificate(
        str(ca.cert), str(ca.key), "test-ca", validity_days=10, renew_before_days=1
    )
    assert outcome.reasons == ["it is not self-signed"]
    verify_issued_by(load_cert(ca.cert), load_cert(ca.cert))


def test_ca_needs_an_existing_key(tmp_path: Path) -> None:
    with pytest.raises(KeyFileError, match=r"privatekey_path .* does not exist; create it with"):
        ensure_ca_certificate(str(tmp_path / "ca.crt"), str(tmp_path / "ca.key"), "ca")


def test_renew_before_must_be_below_validity(ca: CA) -> None:
    with pytest.raises(SettingError, match="renew_before_days"):
        ensure_ca_certificate(str(ca.cert), str(ca.key), "test-ca", validity_days=30, renew_before_days=30)


# ---------------------------------------------------------------------------- leaf certificates


def test_issued_certificate_verifies_and_copies_the_csr(ca: CA, node_key, tmp_path: Path) -> None:
    path = tmp_path / "node.crt"
    outcome = ca.sign(node_csr(node_key), path)
    cert, ca_cert = load_cert(path), load_cert(ca.cert)
    verify_issued_by(cert, ca_cert)
    assert cert.issuer == ca_cert.subject
    assert cert.subject.rfc4514_string() == "CN=system:node:worker-1,O=system:nodes"
    assert spki(cert.public_key()) == spki(node_key.public_key())
    names = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert sorted(names.get_values_for_type(x509.DNSName)) == ["worker-1", "worker-1.example.test"]
    assert [str(ip) for ip in names.get_values_for_type(x509.IPAddress)] == ["10.0.0.11", "fd00::11"]
    assert len(list(names)) == 4
    usage = cert.extensions.get_extension_for_class(x509.KeyUsage).value
    assert (usage.digital_signature, usage.key_encipherment, usage.key_cert_sign) == (True, True, False)
    assert set(cert.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value) == {
        ExtendedKeyUsageOID.CLIENT_AUTH,
        ExtendedKeyUsageOID.SERVER_AUTH,
    }
    assert cert.extensions.get_extension_for_class(x509.BasicConstraints).value.ca is False
    authority = cert.extensions.get_extension_for_class(x509.AuthorityKeyIdentifier).value
    ca_identifier = ca_cert.extensions.get_extension_for_class(x509.SubjectKeyIdentifier).value
    assert authority.key_identifier == ca_identifier.digest
    assert 0 < cert.serial_number < 2**159
    assert cert.signature_hash_algorithm is not None and cert.signature_hash_algorithm.name == "sha256"
    assert mode_of(path) == 0o644
    assert outcome.facts["dns_names"] == ["worker-1", "worker-1.example.test"]
    assert outcome.facts["ip_addresses"] == ["10.0.0.11", "fd00::11"]
    assert outcome.facts["issuer"] == "CN=test-ca"
    assert outcome.facts["fingerprint"] == ":".join(f"{b:02x}" for b in cert.fingerprint(hashes.SHA256()))


def test_same_csr_again_changes_nothing(ca: CA, node_key, tmp_path: Path) -> None:
    path = tmp_path / "node.crt"
    ca.sign(node_csr(node_key), path)
    content = path.read_bytes()
    # A new CSR (new ECDSA signature, other bytes) for the same request is no reason to reissue.
    outcome = ca.sign(node_csr(node_key), path)
    assert not outcome.changed and outcome.before == outcome.after
    assert path.read_bytes() == content


@pytest.mark.parametrize(
    ("overrides", "reason"),
    [
        ({"common_name": "system:node:worker-2"}, "its subject is"),
        (
            {"dns_names": ["worker-1"]},
            "its DNS names are ['worker-1', 'worker-1.example.test'], want ['worker-1']",
        ),
        ({"ip_addresses": ["10.0.0.12", "fd00::11"]}, "its IP addresses are"),
        ({"key_usage": ["digital_signature"]}, "its key usage is"),
        ({"extended_key_usage": ["server_auth"]}, "its extended key usage is"),
    ],
)
def test_changed_request_reissues_with_named_reason(
    ca: CA, node_key, tmp_path: Path, overrides: dict, reason: str
) -> None:
    path = tmp_path / "node.crt"
    ca.sign(node_csr(node_key), path)
    outcome = ca.sign(node_csr(node_key, **overrides), path)
    assert len(outcome.reasons) == 1 and outcome.reasons[0].startswith(reason)
    assert outcome.facts["fingerprint"] == outcome.after["fingerprint"] != outcome.before["fingerprint"]


def test_new_node_key_reissues(ca: CA, node_key, tmp_path: Path) -> None:
    path = tmp_path / "node.crt"
    ca.sign(node_csr(node_key), path)
    new_key = ec.generate_private_key(ec.SECP256R1())
    outcome = ca.sign(node_csr(new_key), path)
    assert len(outcome.reasons) == 1 and outcome.reasons[0].startswith("its public key")
    assert spki(load_cert(path).public_key()) == spki(new_key.public_key())


def test_certificate_of_another_ca_is_reissued(ca: CA, node_key, tmp_path: Path) -> None:
    path = tmp_path / "node.crt"
    # Same subject as ours, so only the signature tells them apart.
    other = CA(tmp_path / "other", name="test-ca")
    other.sign(node_csr(node_key), path)
    assert load_cert(path).issuer == load_cert(ca.cert).subject
    outcome = ca.sign(node_csr(node_key), path)
    assert outcome.reasons == ["it is not signed by the CA 'CN=test-ca'"]
    verify_issued_by(load_cert(path), load_cert(ca.cert))


def test_certificate_inside_renew_before_is_reissued(ca: CA, node_key, tmp_path: Path) -> None:
    path = tmp_path / "node.crt"
    ca.sign(node_csr(node_key), path)
    outcome = ca.sign(node_csr(node_key), path, now=LATER)
    assert len(outcome.reasons) == 1 and "within renew_before_days (30)" in outcome.reasons[0]
    expired = ca.sign(node_csr(node_key), path, now=LATER + dt.timedelta(days=400))
    assert expired.reasons[0].startswith("it expired on")


def test_requested_renewal_reissues_once(ca: CA, node_key, tmp_path: Path) -> None:
    path = tmp_path / "node.crt"
    issued = dt.datetime(2025, 5, 2, 9, 30, 12, tzinfo=dt.UTC)
    ca.sign(node_csr(node_key), path, now=issued)
    content = path.read_bytes()
    renewal, when = "2025-06-01T12:00:00Z", issued + dt.timedelta(days=30, hours=3)
    outcome = ca.sign(node_csr(node_key), path, reissue_issued_before=renewal, now=when)
    assert outcome.reasons == [
        "it was issued at 2025-05-02T09:30:12+00:00, before reissue_issued_before "
        "(2025-06-01T12:00:00+00:00): reissue requested"
    ]
    assert path.read_bytes() != content
    assert outcome.after["fingerprint"] != outcome.before["fingerprint"]
    verify_issued_by(load_cert(path), load_cert(ca.cert))
    # The same renewal again, later in the run or in a rerun, keeps what it issued.
    content = path.read_bytes()
    later = when + dt.timedelta(minutes=5)
    again = ca.sign(node_csr(node_key), path, reissue_issued_before=renewal, now=later)
    assert not again.changed and path.read_bytes() == content


@pytest.mark.parametrize(
    "renewal",
    [
        "2025-06-01T12:00:00.900000+00:00",  # same second as the signing: certificates have no fractions
        "2025-06-01T14:00:00+02:00",  # the same instant in another offset
        "2025-06-01T11:30:00Z",  # after notBefore, which is backdated an hour, but before the signing
    ],
)
def test_certificate_issued_at_or_after_the_time_is_kept(
    ca: CA, node_key, tmp_path: Path, renewal: str
) -> None:
    path = tmp_path / "node.crt"
    signed = dt.datetime(2025, 6, 1, 12, 0, 0, 950000, tzinfo=dt.UTC)
    ca.sign(node_csr(node_key), path, now=signed)
    content = path.read_bytes()
    outcome = ca.sign(
        node_csr(node_key), path, reissue_issued_before=renewal, now=signed + dt.timedelta(minutes=1)
    )
    assert not outcome.changed and outcome.reasons == []
    assert path.read_bytes() == content


def test_requested_renewal_in_check_mode_writes_nothing(ca: CA, node_key, tmp_path: Path) -> None:
    path = tmp_path / "node.crt"
    ca.sign(node_csr(node_key), path, now=dt.datetime(2025, 5, 2, tzinfo=dt.UTC))
    content = path.read_bytes()
    outcome = ca.sign(
        node_csr(node_key),
        path,
        reissue_issued_before="2025-06-01T12:00:00Z",
        check_mode=True,
        now=dt.datetime(2025, 6, 2, tzinfo=dt.UTC),
    )
    assert len(outcome.reasons) == 1 and outcome.reasons[0].endswith("reissue requested")
    assert outcome.facts["serial"] is None and "fingerprint" not in outcome.after
    assert outcome.before["fingerprint"]
    assert path.read_bytes() == content


def test_empty_renewal_time_requests_nothing(ca: CA, node_key, tmp_path: Path) -> None:
    path = tmp_path / "node.crt"
    ca.sign(node_csr(node_key), path)
    assert not ca.sign(node_csr(node_key), path, reissue_issued_before="").changed


@pytest.mark.parametrize(
    ("renewal", "message"),
    [
        ("yesterday", "is not an ISO 8601 time"),
        ("2025-06-01T12:00:00", "has no UTC offset; add Z"),
        ("2999-01-01T00:00:00Z", "is later than now"),
    ],
)
def test_unusable_renewal_time_fails(ca: CA, node_key, tmp_path: Path, renewal: str, message: str) -> None:
    path = tmp_path / "node.crt"
    ca.sign(node_csr(node_key), path)
    content = path.read_bytes()
    with pytest.raises(SettingError, match=message):
        ca.sign(node_csr(node_key), path, reissue_issued_before=renewal)
    assert path.read_bytes() == content


def test_check_mode_reports_and_writes_nothing(ca: CA, node_key, tmp_path: Path) -> None:
    path = tmp_path / "node.crt"
    outcome = ca.sign(node_csr(node_key), path, check_mode=True)
    assert outcome.reasons == [f"{path} does not exist"]
    assert outcome.facts["subject"] == "CN=system:node:worker-1,O=system:nodes"
    assert outcome.facts["serial"] is None
    assert not path.exists()
    ca.sign(node_csr(node_key), path)
    content = path.read_bytes()
    assert ca.sign(node_csr(node_key, common_name="other"), path, check_mode=True).changed
    assert path.read_bytes() == content


def test_rsa_ca_signs_ecdsa_leaf(tmp_path: Path, node_key) -> None:
    rsa_ca = CA(tmp_path / "rsa", name="rsa-ca", key_type="rsa")
    path = tmp_path / "node.crt"
    rsa_ca.sign(node_csr(node_key), path)
    verify_issued_by(load_cert(path), load_cert(rsa_ca.cert))
    assert not rsa_ca.sign(node_csr(node_key), path).changed


def test_tampered_csr_is_refused(ca: CA, node_key, tmp_path: Path) -> None:
    csr = x509.load_pem_x509_csr(node_csr(node_key).encode())
    der = bytearray(csr.public_bytes(serialization.Encoding.DER))
    der[-1] ^= 1  # flip a bit of the signature
    tampered = x509.load_der_x509_csr(bytes(der)).public_bytes(serialization.Encoding.PEM).decode()
    with pytest.raises(CSRError, match="signature does not verify"):
        ca.sign(tampered, tmp_path / "node.crt")
    with pytest.raises(CSRError, match="not a valid PEM"):
        ca.sign("garbage", tmp_path / "node.crt")


def test_csr_asking_to_be_a_ca_is_refused(ca: CA, node_key, tmp_path: Path) -> None:
    with pytest.raises(CSRError, match="only a CA may have"):
        ca.sign(node_csr(node_key, key_usage=["key_cert_sign"]), tmp_path / "node.crt")


def test_ca_key_must_match_ca_certificate(ca: CA, node_key, tmp_path: Path) -> None:
    other = CA(tmp_path / "other", name="other")
    with pytest.raises(CertificateFileError, match="is not the key of ca_certificate_path"):
        ensure_certificate(str(tmp_path / "n.crt"), node_csr(node_key), str(ca.cert), str(other.key))


def test_leaf_is_no_ca(ca: CA, node_key, tmp_path: Path) -> None:
    leaf = tmp_path / "leaf.crt"
    ca.sign(node_csr(node_key), leaf)
    with pytest.raises(CertificateFileError, match="is not a CA certificate"):
        ensure_certificate(str(tmp_path / "n.crt"), node_csr(node_key), str(leaf), str(tmp_path / "node.key"))


# ---------------------------------------------------------------------------- encryption key


def test_encryption_key_is_32_random_bytes_0600_and_kept(tmp_path: Path) -> None:
    path = tmp_path / "enc.key"
    outcome = ensure_encryption_key(str(path))
    assert outcome.changed
    assert len(base64.b64decode(path.read_text().strip(), validate=True)) == 32
    assert path.read_text() == outcome.facts["key"] + "\n"
    assert mode_of(path) == 0o600
    again = ensure_encryption_key(str(path))
    assert not again.changed and again.facts["key"] == outcome.facts["key"]
    assert outcome.facts["key"] != ensure_encryption_key(str(tmp_path / "other.key")).facts["key"]
    assert "key" not in outcome.before and "key" not in outcome.after


def test_encryption_key_check_mode_writes_nothing(tmp_path: Path) -> None:
    path = tmp_path / "enc.key"
    outcome = ensure_encryption_key(str(path), check_mode=True)
    assert outcome.changed and outcome.facts["key"] is None
    assert not path.exists()


@pytest.mark.parametrize("content", ["not base64!\n", base64.b64encode(b"x" * 16).decode(), ""])
def test_invalid_encryption_key_fails_and_is_kept(tmp_path: Path, content: str) -> None:
    path = tmp_path / "enc.key"
    path.write_text(content)
    with pytest.raises(EncryptionKeyError, match="exactly 32 bytes; it is not replaced"):
        ensure_encryption_key(str(path))
    assert path.read_text() == content
