# SPDX-License-Identifier: Apache-2.0
"""The controller's half of the cluster's identity, kept in one call.

The two CAs (Kubernetes, etcd), the service-account key pair, the secrets encryption key, and the
operator's admin certificate and kubeconfig. Each file gets exactly the checks its own module
applies (``private_key``, ``ca_certificate``, ``encryption_key``, ``certificate``,
``kubeconfig``); one call replaces a dozen controller tasks on every run.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any

from ansible_collections.scratch.kubernetes.plugins.module_utils._pki import (
    CertificateFileError,
    KeySpec,
    Outcome,
    csr_pem,
    ensure_ca_certificate,
    ensure_certificate,
    ensure_encryption_key,
    ensure_mode,
    ensure_private_key,
    load_private_key,
    make_csr,
)
from ansible_collections.scratch.kubernetes.plugins.module_utils._pki_kubeconfig import (
    build_kubeconfig,
    ensure_kubeconfig,
)

_PRIVATE_DIRECTORY = 0o700
_PRIVATE_FILE = 0o600
_PUBLIC_FILE = 0o644
ADMIN_USER = "admin"
ADMIN_GROUP = "system:masters"
_FILES = (
    "ca.key",
    "ca.crt",
    "etcd-ca.key",
    "etcd-ca.crt",
    "service-account.key",
    "service-account.pub",
    "encryption.key",
    "admin.key",
    "admin.crt",
)


@dataclass(frozen=True)
class ClusterPKI:
    """Where the state lives and what the admin certificate and kubeconfig say."""

    state_dir: str
    pki_dir: str
    cluster_name: str
    admin_kubeconfig_path: str
    apiserver_url: str
    validity_days: int = 365
    renew_before_days: int = 30
    ca_validity_days: int = 3650
    reissue_issued_before: str | None = None

    def path(self, name: str) -> str:
        return os.path.join(self.pki_dir, name)


def _directory(path: str, check_mode: bool) -> list[str]:
    if not os.path.isdir(path):
        if not check_mode:
            os.makedirs(path, mode=_PRIVATE_DIRECTORY, exist_ok=True)
            os.chmod(path, _PRIVATE_DIRECTORY)  # makedirs' mode is masked by the umask
        return [f"{path} does not exist"]
    reason = ensure_mode(path, _PRIVATE_DIRECTORY, check_mode=check_mode)
    return [reason] if reason else []


def _about(path: str, reasons: list[str], *others: str) -> list[str]:
    """Each reason names the file it is about: ``path``, unless it names one of ``others`` already."""
    return [reason if reason.startswith((path, *others)) else f"{path}: {reason}" for reason in reasons]


def _key(path: str, check_mode: bool, public_key_path: str | None = None) -> tuple[list[str], bool]:
    """Reasons, and whether the key is yet to be made (so nothing can be signed with it in check mode)."""
    outcome = ensure_private_key(path, KeySpec(), public_key_path=public_key_path, check_mode=check_mode)
    others = (public_key_path,) if public_key_path else ()
    reasons = _about(path, outcome.reasons, *others)
    pending = check_mode and outcome.facts["fingerprint"] is None  # the key is yet to be (re)made
    if pending:
        reasons = _pending(reasons, others, f"{path} exists")
    else:
        reasons += _modes([(path, _PRIVATE_FILE), (public_key_path, _PUBLIC_FILE)], check_mode)
    return reasons, pending


def _modes(files: list[tuple[str | None, int]], check_mode: bool) -> list[str]:
    """Mode reasons for the files that exist: one still missing (check mode) is reported as such already."""
    found = [
        ensure_mode(path, mode, check_mode=check_mode)
        for path, mode in files
        if path and os.path.exists(path)
    ]
    return [reason for reason in found if reason]


def _pending(reasons: list[str], paths: tuple[str, ...], once: str) -> list[str]:
    """Check mode: ``paths`` depend on a file yet to be written, so they cannot be checked now."""
    return reasons + [f"{path}: would be made once {once}" for path in paths]


def ensure_cluster_pki(pki: ClusterPKI, *, check_mode: bool = False) -> Outcome:
    """Keep every controller-side file that fits, and make or reissue the rest.

    ``reasons`` says, per file, why it was (or in check mode would be) written.
    """
    reasons = _directory(pki.state_dir, check_mode) + _directory(pki.pki_dir, check_mode)
    if check_mode and not os.path.isdir(pki.pki_dir):  # nothing below exists yet
        files = (*map(pki.path, _FILES), pki.admin_kubeconfig_path)
        return Outcome(_pending(reasons, files, f"{pki.pki_dir} exists"), {})

    # First, as it is the one file that is never replaced: an unusable one fails the run before a
    # CA or key is made.
    encryption_key = pki.path("encryption.key")
    reasons += ensure_encryption_key(encryption_key, check_mode=check_mode).reasons
    reasons += _modes([(encryption_key, _PRIVATE_FILE)], check_mode)

    pending_cas, changing_cas = set(), set()
    for name, common_name in (("ca", f"{pki.cluster_name} CA"), ("etcd-ca", f"{pki.cluster_name} etcd CA")):
        key_path, cert_path = pki.path(f"{name}.key"), pki.path(f"{name}.crt")
        key_reasons, pending = _key(key_path, check_mode)
        reasons += key_reasons
        if pending:
            reasons = _pending(reasons, (cert_path,), f"{key_path} exists")
            pending_cas.add(name)
            continue
        outcome = ensure_ca_certificate(
            cert_path,
            key_path,
            common_name,
            validity_days=pki.ca_validity_days,
            renew_before_days=pki.renew_before_days,
            check_mode=check_mode,
        )
        reasons += _about(cert_path, outcome.reasons)
        reasons += _modes([(cert_path, _PUBLIC_FILE)], check_mode)
        if check_mode and outcome.changed:  # what it signed is checked against the certificate on disk
            changing_cas.add(name)

    reasons += _key(pki.path("service-account.key"), check_mode, pki.path("service-account.pub"))[0]

    reasons += _admin(pki, "ca" in pending_cas, "ca" in changing_cas, check_mode)
    return Outcome(reasons, {})


def _admin(pki: ClusterPKI, ca_pending: bool, ca_changing: bool, check_mode: bool) -> list[str]:
    """``ca_changing``: in check mode, ca.crt would be rewritten, so the kubeconfig (which embeds it) too."""
    key_path, cert_path, ca_path = pki.path("admin.key"), pki.path("admin.crt"), pki.path("ca.crt")
    kubeconfig = pki.admin_kubeconfig_path
    reasons, key_pending = _key(key_path, check_mode)
    if key_pending or ca_pending:
        return _pending(reasons, (cert_path, kubeconfig), "the admin key and the cluster CA exist")

    request = csr_pem(make_csr(load_private_key(key_path), ADMIN_USER, [ADMIN_GROUP]))
    try:
        outcome = ensure_certificate(
            cert_path,
            request,
            ca_path,
            pki.path("ca.key"),
            validity_days=pki.validity_days,
            renew_before_days=pki.renew_before_days,
            reissue_issued_before=pki.reissue_issued_before,
            check_mode=check_mode,
        )
    except CertificateFileError:
        if not ca_changing:
            raise
        # ca.crt on disk is not ca.key's CA (yet): the new one would sign a new admin certificate.
        return _pending(reasons, (cert_path, kubeconfig), "the new cluster CA certificate exists")
    reasons += _about(cert_path, outcome.reasons)
    if outcome.changed and check_mode:
        return _pending(reasons, (kubeconfig,), "the new admin certificate exists")
    reasons += _modes([(cert_path, _PUBLIC_FILE)], check_mode)
    if ca_changing:
        return _pending(reasons, (kubeconfig,), "the new cluster CA certificate exists")

    config: dict[str, Any] = build_kubeconfig(
        cluster_name=pki.cluster_name,
        server=pki.apiserver_url,
        ca_certificate_path=ca_path,
        user=ADMIN_USER,
        client_certificate_path=cert_path,
        client_key_path=key_path,
    )
    outcome = ensure_kubeconfig(kubeconfig, config, check_mode=check_mode)
    reasons += _about(kubeconfig, outcome.reasons)
    reasons += _modes([(kubeconfig, _PRIVATE_FILE)], check_mode)
    return reasons
