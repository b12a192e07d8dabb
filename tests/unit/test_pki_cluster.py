# SPDX-License-Identifier: Apache-2.0
"""The controller's cluster identity in one call: CAs, service-account and encryption keys, admin.

Real keys and certificates throughout; the checks come from test_pki.
"""

from __future__ import annotations

import base64
import dataclasses
import datetime as dt
import time
from pathlib import Path

import pytest
import yaml
from _pki_layout import PKI_FILES
from ansible_collections.scratch.kubernetes.plugins.module_utils._pki import (
    KeySpec,
    PKIError,
    ensure_private_key,
    load_private_key,
)
from ansible_collections.scratch.kubernetes.plugins.module_utils._pki_cluster import (
    ClusterPKI,
    ensure_cluster_pki,
)
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.x509.oid import ExtendedKeyUsageOID
from test_pki import load_cert, mode_of, spki, verify_issued_by

SERVER = "https://10.0.0.1:6443"


@pytest.fixture
def cluster(tmp_path: Path) -> ClusterPKI:
    """The layout of cluster_defaults: state_dir/pki and state_dir/admin.kubeconfig, none made yet."""
    state = tmp_path / "state"
    return ClusterPKI(
        state_dir=str(state),
        pki_dir=str(state / "pki"),
        cluster_name="demo",
        admin_kubeconfig_path=str(state / "admin.kubeconfig"),
        apiserver_url=SERVER,
    )


@pytest.fixture
def made(cluster: ClusterPKI) -> ClusterPKI:
    """The state after a first run."""
    ensure_cluster_pki(cluster)
    return cluster


def pki_path(cluster: ClusterPKI, name: str) -> Path:
    return Path(cluster.path(name))


def all_files(cluster: ClusterPKI) -> list[Path]:
    return [*(pki_path(cluster, name) for name in PKI_FILES), Path(cluster.admin_kubeconfig_path)]


def contents(cluster: ClusterPKI) -> dict[Path, bytes]:
    return {path: path.read_bytes() for path in all_files(cluster)}


def named(reasons: list[str], cluster: ClusterPKI) -> set[Path]:
    """The files the reasons are about (each reason starts with its file's path)."""
    return {path for path in all_files(cluster) if any(reason.startswith(f"{path}") for reason in reasons)}


def kubeconfig_of(cluster: ClusterPKI) -> dict:
    return yaml.safe_load(Path(cluster.admin_kubeconfig_path).read_text())


def changed_files(before: dict[Path, bytes], cluster: ClusterPKI) -> set[Path]:
    return {path for path, content in contents(cluster).items() if before[path] != content}


def embedded(cluster: ClusterPKI, field: str) -> bytes:
    """A base64 ``*-data`` field of the kubeconfig, decoded."""
    config = kubeconfig_of(cluster)
    sections = {**config["clusters"][0]["cluster"], **config["users"][0]["user"]}
    return base64.b64decode(sections[field])


def not_before(cert: x509.Certificate) -> dt.datetime:
    if hasattr(cert, "not_valid_before_utc"):
        return cert.not_valid_before_utc
    return cert.not_valid_before.replace(tzinfo=dt.UTC)  # cryptography 38


def not_after(cert: x509.Certificate) -> dt.datetime:
    if hasattr(cert, "not_valid_after_utc"):
        return cert.not_valid_after_utc
    return cert.not_valid_after.replace(tzinfo=dt.UTC)  # cryptography 38


# ---------------------------------------------------------------------------- first run and reruns


def test_first_run_makes_every_file_with_its_mode(cluster: ClusterPKI) -> None:
    state, pki_dir, kubeconfig = Path(cluster.state_dir), Path(cluster.pki_dir), cluster.admin_kubeconfig_path

    outcome = ensure_cluster_pki(cluster)

    pub = pki_path(cluster, "service-account.pub")
    assert outcome.reasons == [
        f"{state} does not exist",
        f"{pki_dir} does not exist",
        f"{pki_dir / 'encryption.key'} does not exist",
        *(f"{pki_dir / name} does not exist" for name in ("ca.key", "ca.crt", "etcd-ca.key", "etcd-ca.crt")),
        f"{pki_dir / 'service-account.key'} does not exist",
        f"{pub} does not hold the public key",
        *(f"{pki_dir / name} does not exist" for name in ("admin.key", "admin.crt")),
        f"{kubeconfig} does not exist",
    ]
    assert mode_of(state) == mode_of(pki_dir) == 0o700
    assert sorted(path.name for path in pki_dir.iterdir()) == sorted(PKI_FILES)
    for name, mode in PKI_FILES.items():
        assert mode_of(pki_dir / name) == mode, name
    assert mode_of(Path(kubeconfig)) == 0o600
    key = load_private_key(str(pki_dir / "service-account.key"))
    assert pub.read_bytes() == key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    assert len(base64.b64decode((pki_dir / "encryption.key").read_text().strip(), validate=True)) == 32
    assert outcome.facts == {}, "nothing secret (or otherwise) is returned"


def test_rerun_changes_nothing(made: ClusterPKI) -> None:
    before = contents(made)

    assert ensure_cluster_pki(made, check_mode=True).reasons == []
    assert ensure_cluster_pki(made).reasons == []
    assert contents(made) == before


@pytest.mark.parametrize("directories", ["missing", "empty"])
def test_check_mode_on_a_new_state_reports_every_file_and_writes_nothing(
    cluster: ClusterPKI, directories: str
) -> None:
    state, pki_dir = Path(cluster.state_dir), Path(cluster.pki_dir)
    if directories == "empty":
        pki_dir.mkdir(parents=True)
        state.chmod(0o700)
        pki_dir.chmod(0o700)

    outcome = ensure_cluster_pki(cluster, check_mode=True)

    assert named(outcome.reasons, cluster) == set(all_files(cluster))
    kubeconfig = cluster.admin_kubeconfig_path
    assert any(reason.startswith(f"{kubeconfig}: would be made once") for reason in outcome.reasons)
    if directories == "missing":
        assert not state.exists()
    else:
        assert list(state.iterdir()) == [pki_dir] and list(pki_dir.iterdir()) == []


def test_check_mode_after_a_lost_file_reports_it_alone(made: ClusterPKI) -> None:
    before = contents(made)
    pub, kubeconfig = pki_path(made, "service-account.pub"), Path(made.admin_kubeconfig_path)
    pub.unlink()
    kubeconfig.unlink()

    outcome = ensure_cluster_pki(made, check_mode=True)

    assert outcome.reasons == [f"{pub} does not hold the public key", f"{kubeconfig} does not exist"]
    assert not pub.exists() and not kubeconfig.exists()
    assert ensure_cluster_pki(made).reasons == outcome.reasons
    assert contents(made) == before


def test_wrong_modes_are_reported_in_check_mode_and_fixed(made: ClusterPKI) -> None:
    before = contents(made)
    pki_dir, admin_key = Path(made.pki_dir), pki_path(made, "admin.key")
    pub, kubeconfig = pki_path(made, "service-account.pub"), Path(made.admin_kubeconfig_path)
    pki_dir.chmod(0o755)
    admin_key.chmod(0o644)
    pub.chmod(0o600)
    kubeconfig.chmod(0o640)
    reasons = [
        f"{pki_dir}: mode is 0755, want 0700",
        f"{pub}: mode is 0600, want 0644",
        f"{admin_key}: mode is 0644, want 0600",
        f"{kubeconfig}: mode is 0640, want 0600",
    ]

    assert ensure_cluster_pki(made, check_mode=True).reasons == reasons
    assert [mode_of(path) for path in (pki_dir, pub, admin_key, kubeconfig)] == [0o755, 0o600, 0o644, 0o640]

    assert ensure_cluster_pki(made).reasons == reasons
    assert [mode_of(path) for path in (pki_dir, pub, admin_key, kubeconfig)] == [0o700, 0o644, 0o600, 0o600]
    assert contents(made) == before
    assert not ensure_cluster_pki(made).changed


# ---------------------------------------------------------------------------- reissue


def test_admin_certificate_inside_renew_before_is_reissued(cluster: ClusterPKI) -> None:
    ensure_cluster_pki(dataclasses.replace(cluster, validity_days=10, renew_before_days=5))
    before = contents(cluster)
    admin_crt, kubeconfig = pki_path(cluster, "admin.crt"), Path(cluster.admin_kubeconfig_path)
    renewing = dataclasses.replace(cluster, renew_before_days=10)

    checked = ensure_cluster_pki(renewing, check_mode=True)
    assert named(checked.reasons, cluster) == {admin_crt, kubeconfig}
    assert contents(cluster) == before

    outcome = ensure_cluster_pki(renewing)
    assert len(outcome.reasons) == 2
    assert outcome.reasons[0].startswith(f"{admin_crt}: it expires on ")
    assert outcome.reasons[0].endswith("within renew_before_days (10)")
    assert outcome.reasons[1] == f"{kubeconfig}: client_certificate differs"
    assert changed_files(before, cluster) == {admin_crt, kubeconfig}
    cert = load_cert(admin_crt)
    assert not_after(cert) - dt.datetime.now(dt.UTC) > dt.timedelta(days=364)
    assert embedded(cluster, "client-certificate-data") == admin_crt.read_bytes()
    assert not ensure_cluster_pki(renewing).changed


def test_requested_renewal_reissues_the_admin_certificate_once(made: ClusterPKI) -> None:
    before = contents(made)
    admin_crt, kubeconfig = pki_path(made, "admin.crt"), Path(made.admin_kubeconfig_path)
    # A renewal a second after the signing: a time still to come is refused.
    issued = not_before(load_cert(admin_crt)) + dt.timedelta(hours=1)
    renewal = issued + dt.timedelta(seconds=1)
    time.sleep(max(0.0, (renewal - dt.datetime.now(dt.UTC)).total_seconds()))
    renewing = dataclasses.replace(made, reissue_issued_before=renewal.strftime("%Y-%m-%dT%H:%M:%SZ"))

    outcome = ensure_cluster_pki(renewing)

    assert outcome.reasons == [
        f"{admin_crt}: it was issued at {issued.isoformat()}, before reissue_issued_before "
        f"({renewal.isoformat()}): reissue requested",
        f"{kubeconfig}: client_certificate differs",
    ]
    assert changed_files(before, made) == {admin_crt, kubeconfig}
    verify_issued_by(load_cert(admin_crt), load_cert(pki_path(made, "ca.crt")))
    assert not ensure_cluster_pki(renewing).changed


def test_new_ca_key_reissues_the_ca_the_admin_certificate_and_the_kubeconfig(made: ClusterPKI) -> None:
    ca_key, ca_crt = pki_path(made, "ca.key"), pki_path(made, "ca.crt")
    admin_crt, kubeconfig = pki_path(made, "admin.crt"), Path(made.admin_kubeconfig_path)
    ensure_private_key(str(ca_key), KeySpec(), force=True)
    before = contents(made)

    checked = ensure_cluster_pki(made, check_mode=True)
    assert named(checked.reasons, made) == {ca_crt, admin_crt, kubeconfig}
    assert contents(made) == before

    outcome = ensure_cluster_pki(made)
    assert named(outcome.reasons, made) == {ca_crt, admin_crt, kubeconfig}
    assert f"{admin_crt}: it is not signed by the CA 'CN=demo CA'" in outcome.reasons
    assert changed_files(before, made) == {ca_crt, admin_crt, kubeconfig}
    ca = load_cert(ca_crt)
    assert spki(ca.public_key()) == spki(load_private_key(str(ca_key)).public_key())
    verify_issued_by(load_cert(admin_crt), ca)
    assert embedded(made, "certificate-authority-data") == ca_crt.read_bytes()
    assert embedded(made, "client-certificate-data") == admin_crt.read_bytes()
    assert not ensure_cluster_pki(made).changed


def test_new_apiserver_url_rewrites_only_the_kubeconfig(made: ClusterPKI) -> None:
    before = contents(made)
    moved = dataclasses.replace(made, apiserver_url="https://10.0.0.2:6443")
    kubeconfig = Path(made.admin_kubeconfig_path)

    assert ensure_cluster_pki(moved, check_mode=True).reasons == [f"{kubeconfig}: server differs"]
    assert contents(made) == before

    assert ensure_cluster_pki(moved).reasons == [f"{kubeconfig}: server differs"]
    assert changed_files(before, made) == {kubeconfig}
    assert kubeconfig_of(made)["clusters"][0]["cluster"]["server"] == "https://10.0.0.2:6443"
    assert not ensure_cluster_pki(moved).changed


@pytest.mark.parametrize("check_mode", [True, False])
def test_invalid_encryption_key_fails_and_is_kept(made: ClusterPKI, check_mode: bool) -> None:
    path = pki_path(made, "encryption.key")
    path.write_text("not a key\n")

    with pytest.raises(PKIError, match="exactly 32 bytes; it is not replaced"):
        ensure_cluster_pki(made, check_mode=check_mode)
    assert path.read_text() == "not a key\n"


def test_invalid_encryption_key_fails_before_anything_is_made(cluster: ClusterPKI) -> None:
    pki_dir = Path(cluster.pki_dir)
    pki_dir.mkdir(parents=True, mode=0o700)
    (pki_dir / "encryption.key").write_text("not a key\n")

    with pytest.raises(PKIError, match="exactly 32 bytes"):
        ensure_cluster_pki(cluster)
    assert [path.name for path in pki_dir.iterdir()] == ["encryption.key"]


# ---------------------------------------------------------------------------- what is made


def test_admin_certificate_is_a_system_masters_client_of_the_cluster_ca(made: ClusterPKI) -> None:
    cert, ca = load_cert(pki_path(made, "admin.crt")), load_cert(pki_path(made, "ca.crt"))

    assert cert.subject.rfc4514_string() == "CN=admin,O=system:masters"
    usage = cert.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    assert list(usage) == [ExtendedKeyUsageOID.CLIENT_AUTH]
    assert not cert.extensions.get_extension_for_class(x509.BasicConstraints).value.ca
    verify_issued_by(cert, ca)
    assert spki(cert.public_key()) == spki(load_private_key(str(pki_path(made, "admin.key"))).public_key())
    assert ca.subject.rfc4514_string() == "CN=demo CA"
    assert load_cert(pki_path(made, "etcd-ca.crt")).subject.rfc4514_string() == "CN=demo etcd CA"


def test_kubeconfig_embeds_the_admin_key_and_certificate(made: ClusterPKI) -> None:
    config = kubeconfig_of(made)

    assert embedded(made, "client-key-data") == pki_path(made, "admin.key").read_bytes()
    assert embedded(made, "client-certificate-data") == pki_path(made, "admin.crt").read_bytes()
    assert embedded(made, "certificate-authority-data") == pki_path(made, "ca.crt").read_bytes()
    assert config["clusters"][0]["name"] == "demo"
    assert config["clusters"][0]["cluster"]["server"] == SERVER
    assert config["users"][0]["name"] == "admin"
    assert config["current-context"] == "admin@demo"
    assert config["contexts"][0]["context"] == {"cluster": "demo", "user": "admin"}
