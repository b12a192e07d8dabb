# SPDX-License-Identifier: Apache-2.0
"""PKI core: private keys, CSRs, CA and leaf certificates, the secrets-encryption key.

Every stateful thing follows one vocabulary: read what exists, run named checks that each
return a reason to change (or None), generate only when there is a reason, write atomically.
``ensure_*`` functions return an :class:`Outcome`; in check mode they read but never write.
Only the ``cryptography`` library is used; nothing shells out.
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import dataclasses
import datetime as dt
import ipaddress
import os
import secrets
import stat
from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING, Any, TypeAlias

from ansible_collections.scratch.kubernetes.plugins.module_utils._atomic import write_atomic

# Absent on a host without cryptography: the modules call _deps.require("cryptography") first.
with contextlib.suppress(ImportError):
    from cryptography import x509
    from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
    from cryptography.x509.oid import NameOID

if TYPE_CHECKING:
    from collections.abc import Callable

    # For type checking only: cryptography 38 (Debian bookworm) lacks this name (new in 40).
    from cryptography.hazmat.primitives.asymmetric.types import CertificatePublicKeyTypes

# Aliases for annotations only (postponed), kept as strings so that no union is built at run time.
PrivateKey: TypeAlias = "ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey"
IPAddress: TypeAlias = "ipaddress.IPv4Address | ipaddress.IPv6Address"

# Field names of x509.KeyUsage, which are also the names our options use.
KEY_USAGES = (
    "digital_signature",
    "content_commitment",
    "key_encipherment",
    "data_encipherment",
    "key_agreement",
    "key_cert_sign",
    "crl_sign",
    "encipher_only",
    "decipher_only",
)
CA_ONLY_KEY_USAGES = frozenset({"key_cert_sign", "crl_sign"})
CA_KEY_USAGE = frozenset({"digital_signature", "key_cert_sign", "crl_sign"})
# Our names of extended key usages and their object identifiers (dotted, so that this module
# imports without cryptography).
EXTENDED_KEY_USAGES = {
    "server_auth": "1.3.6.1.5.5.7.3.1",
    "client_auth": "1.3.6.1.5.5.7.3.2",
}
_EKU_NAMES = {oid: name for name, oid in EXTENDED_KEY_USAGES.items()}
ENCRYPTION_KEY_BYTES = 32
# Certificates start one hour in the past so that a node whose clock lags the controller's
# accepts them at once.
_BACKDATE = dt.timedelta(hours=1)


class PKIError(Exception):
    """A setting or a file prevents the PKI operation; the message says how to fix it."""


class SettingError(PKIError):
    """An option value is invalid."""


class KeyFileError(PKIError):
    """A private key file is missing, unreadable or does not fit."""


class CertificateFileError(PKIError):
    """A certificate file that must be used as it is (a CA) is missing or unusable."""


class CSRError(PKIError):
    """A certificate signing request is malformed, badly signed or asks for too much."""


class EncryptionKeyError(PKIError):
    """An existing secrets-encryption key file is not a valid key."""


@dataclasses.dataclass
class Outcome:
    """What an ``ensure_*`` function did, or in check mode would do.

    ``facts`` are the module's return values; ``before``/``after`` are metadata for the diff.
    """

    reasons: list[str]
    facts: dict[str, Any]
    before: dict[str, Any] = dataclasses.field(default_factory=dict)
    after: dict[str, Any] = dataclasses.field(default_factory=dict)

    @property
    def changed(self) -> bool:
        return bool(self.reasons)


def _colon_hex(digest: bytes) -> str:
    return ":".join(f"{byte:02x}" for byte in digest)


def _spki(public_key: CertificatePublicKeyTypes) -> bytes:
    return public_key.public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )


def public_key_fingerprint(public_key: CertificatePublicKeyTypes) -> str:
    """SHA-256 of the DER SubjectPublicKeyInfo, as colon-separated lower-case hex."""
    digest = hashes.Hash(hashes.SHA256())
    digest.update(_spki(public_key))
    return _colon_hex(digest.finalize())


def certificate_fingerprint(cert: x509.Certificate) -> str:
    """SHA-256 of the DER certificate, as colon-separated lower-case hex."""
    return _colon_hex(cert.fingerprint(hashes.SHA256()))


def public_key_pem(key: PrivateKey) -> bytes:
    return key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )


def read_file(path: str, setting: str) -> bytes | None:
    """File content, or None if there is no file; other I/O errors are fatal."""
    try:
        with open(path, "rb") as handle:
            return handle.read()
    except FileNotFoundError:
        return None
    except OSError as exc:
        raise PKIError(
            f"{setting} {path} cannot be read ({exc.strerror}); check the path and its permissions."
        ) from exc


def write_file(path: str, data: bytes, mode: int, setting: str = "path") -> None:
    """Write atomically (the one safe writer); I/O errors become a PKIError naming the setting."""
    try:
        write_atomic(path, data, mode)
    except OSError as exc:
        raise PKIError(
            f"{setting} {path} cannot be written ({exc.strerror}); create its directory or fix permissions."
        ) from exc


def ensure_mode(path: str, mode: int, *, check_mode: bool = False) -> str | None:
    """Set ``path``'s permission bits to ``mode``; the reason when they differed."""
    have = stat.S_IMODE(os.stat(path).st_mode)
    if have == mode:
        return None
    if not check_mode:
        os.chmod(path, mode)
    return f"{path}: mode is {have:04o}, want {mode:04o}"


# ---------------------------------------------------------------------------- cryptography 38
# The nodes run Debian bookworm's python3-cryptography 38.0. Where a newer release added a
# better API, these helpers use it when present and do the same by hand otherwise.


def _not_after(cert: x509.Certificate) -> dt.datetime:
    """End of validity as an aware UTC datetime (``not_valid_after_utc`` is new in 42)."""
    if hasattr(cert, "not_valid_after_utc"):
        return cert.not_valid_after_utc
    return cert.not_valid_after.replace(tzinfo=dt.UTC)


def _not_before(cert: x509.Certificate) -> dt.datetime:
    """Start of validity as an aware UTC datetime (``not_valid_before_utc`` is new in 42)."""
    if hasattr(cert, "not_valid_before_utc"):
        return cert.not_valid_before_utc
    return cert.not_valid_before.replace(tzinfo=dt.UTC)


def _verify_directly_issued_by(cert: x509.Certificate, issuer: x509.Certificate) -> None:
    """Raise ValueError, TypeError or InvalidSignature unless ``issuer`` signed ``cert`` (new in 40)."""
    if hasattr(cert, "verify_directly_issued_by"):
        cert.verify_directly_issued_by(issuer)
        return
    if cert.issuer != issuer.subject:
        raise ValueError("the certificate's issuer is not the issuer's subject")
    public_key, algorithm = issuer.public_key(), cert.signature_hash_algorithm
    if algorithm is None:
        raise TypeError("the certificate is signed without a separate hash (EdDSA), which is not supported")
    if isinstance(public_key, ec.EllipticCurvePublicKey):
        public_key.verify(cert.signature, cert.tbs_certificate_bytes, ec.ECDSA(algorithm))
    elif isinstance(public_key, rsa.RSAPublicKey):
        public_key.verify(cert.signature, cert.tbs_certificate_bytes, padding.PKCS1v15(), algorithm)
    else:
        raise TypeError(f"{type(public_key).__name__} issuer keys are not supported")


# ---------------------------------------------------------------------------- keys


def _describe_key(key: PrivateKey) -> str:
    if isinstance(key, ec.EllipticCurvePrivateKey):
        return f"ecdsa {key.curve.name}"
    return f"rsa {key.key_size}"


@dataclasses.dataclass(frozen=True)
class KeySpec:
    """The wanted key: ECDSA on P-256, or RSA of ``size`` bits."""

    type: str = "ecdsa"
    size: int = 2048

    def __post_init__(self) -> None:
        if self.type not in ("ecdsa", "rsa"):
            raise SettingError(f"type {self.type!r} is not supported; use ecdsa or rsa.")
        if self.type == "rsa" and self.size not in (2048, 4096):
            raise SettingError(f"size {self.size} is not supported for RSA keys; use 2048 or 4096.")

    @property
    def description(self) -> str:
        return "ecdsa secp256r1" if self.type == "ecdsa" else f"rsa {self.size}"

    def generate(self) -> PrivateKey:
        if self.type == "ecdsa":
            return ec.generate_private_key(ec.SECP256R1())
        return rsa.generate_private_key(public_exponent=65537, key_size=self.size)

    def mismatch(self, key: PrivateKey) -> str | None:
        have = _describe_key(key)
        return None if have == self.description else f"the key is {have}, want {self.description}"

    def facts(self) -> dict[str, Any]:
        """What is known of a key of this spec before it exists."""
        return {
            "type": self.type,
            "size": 256 if self.type == "ecdsa" else self.size,
            "curve": "secp256r1" if self.type == "ecdsa" else None,
            "public_key": None,
            "fingerprint": None,
        }


def key_facts(key: PrivateKey) -> dict[str, Any]:
    """Public metadata of ``key``: never any private bytes."""
    if isinstance(key, ec.EllipticCurvePrivateKey):
        kind = {"type": "ecdsa", "size": key.curve.key_size, "curve": key.curve.name}
    else:
        kind = {"type": "rsa", "size": key.key_size, "curve": None}
    return {
        **kind,
        "public_key": public_key_pem(key).decode(),
        "fingerprint": public_key_fingerprint(key.public_key()),
    }


def _key_diff(facts: dict[str, Any]) -> dict[str, Any]:
    return {name: facts[name] for name in ("type", "size", "curve", "fingerprint") if facts[name] is not None}


def _parse_private_key(data: bytes) -> PrivateKey:
    """Raises ValueError for anything but an unencrypted PEM ECDSA or RSA key."""
    try:
        key = serialization.load_pem_private_key(data, password=None)
    except (TypeError, UnsupportedAlgorithm) as exc:
        raise ValueError(str(exc)) from exc
    if not isinstance(key, (ec.EllipticCurvePrivateKey, rsa.RSAPrivateKey)):
        raise ValueError(f"{type(key).__name__} keys are not supported")
    return key


def load_private_key(path: str, setting: str = "privatekey_path") -> PrivateKey:
    data = read_file(path, setting)
    if data is None:
        raise KeyFileError(
            f"{setting} {path} does not exist; create it with scratch.kubernetes.private_key first."
        )
    try:
        return _parse_private_key(data)
    except ValueError as exc:
        raise KeyFileError(
            f"{setting} {path} is not an unencrypted PEM ECDSA or RSA private key ({exc}); "
            "point it at a key written by scratch.kubernetes.private_key."
        ) from exc


def _private_key_pem(key: PrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )


def ensure_private_key(
    path: str,
    spec: KeySpec,
    *,
    force: bool = False,
    public_key_path: str | None = None,
    check_mode: bool = False,
) -> Outcome:
    """Keep a fitting key at ``path`` or write a new one (0600); optionally its public key (0644)."""
    data = read_file(path, "path")
    key: PrivateKey | None = None
    reasons: list[str] = []
    if data is None:
        reasons.append(f"{path} does not exist")
    else:
        try:
            key = _parse_private_key(data)
        except ValueError as exc:
            reasons.append(f"{path} does not hold a usable private key ({exc})")
        else:
            if mismatch := spec.mismatch(key):
                reasons.append(mismatch)
    if force:
        reasons.append("force is true")

    before = _key_diff(key_facts(key)) if key is not None else {}
    if reasons and check_mode:
        facts = spec.facts()
        return Outcome(reasons, facts, before, _key_diff(facts))
    if reasons or key is None:  # key is None only when a reason says why
        key = spec.generate()
        write_file(path, _private_key_pem(key), 0o600)

    if public_key_path is not None:
        wanted = public_key_pem(key)
        if read_file(public_key_path, "public_key_path") != wanted:
            reasons.append(f"{public_key_path} does not hold the public key")
            if not check_mode:
                write_file(public_key_path, wanted, 0o644, "public_key_path")
    facts = key_facts(key)
    return Outcome(reasons, facts, before, _key_diff(facts))


def remove_private_key(path: str, public_key_path: str | None = None, *, check_mode: bool = False) -> Outcome:
    """Remove the key and its public key file, if they exist."""
    reasons = []
    for target in (path, public_key_path):
        if target is not None and os.path.lexists(target):
            reasons.append(f"{target} exists and state is absent")
            if not check_mode:
                try:
                    os.unlink(target)
                except OSError as exc:
                    raise PKIError(
                        f"{target} cannot be removed ({exc.strerror}); fix its permissions."
                    ) from exc
    facts: dict[str, Any] = dict.fromkeys(("type", "size", "curve", "public_key", "fingerprint"))
    return Outcome(reasons, facts, {"exists": bool(reasons)}, {"exists": False})


# ---------------------------------------------------------------------------- requests and certificates


@dataclasses.dataclass(frozen=True)
class CertSpec:
    """Everything a certificate is compared on, whether wanted, requested (CSR) or found on disk."""

    subject: x509.Name
    public_key: CertificatePublicKeyTypes
    dns_names: frozenset[str] = frozenset()
    ip_addresses: frozenset[IPAddress] = frozenset()
    key_usage: frozenset[str] = frozenset()
    extended_key_usage: frozenset[str] = frozenset()
    is_ca: bool = False


def build_subject(common_name: str, organization: Iterable[str] = ()) -> x509.Name:
    """Subject ``O=...,CN=...``: Kubernetes reads the user from CN and the groups from O."""
    if not common_name:
        raise SettingError("common_name is empty; set it to the identity the certificate is for.")
    try:
        attributes = [x509.NameAttribute(NameOID.ORGANIZATION_NAME, name) for name in organization]
        attributes.append(x509.NameAttribute(NameOID.COMMON_NAME, common_name))
    except ValueError as exc:
        raise SettingError(
            f"common_name or organization is not valid in a certificate subject: {exc}."
        ) from exc
    return x509.Name(attributes)


def parse_ip_addresses(values: Iterable[str]) -> frozenset[IPAddress]:
    addresses = set()
    for value in values:
        try:
            addresses.add(ipaddress.ip_address(value))
        except ValueError as exc:
            raise SettingError(
                f"ip_addresses: {value!r} is not an IP address; list plain addresses."
            ) from exc
    return frozenset(addresses)


def _sorted_ips(addresses: Iterable[IPAddress]) -> list[IPAddress]:
    return sorted(addresses, key=lambda address: (address.version, int(address)))


def _extension(extensions: x509.Extensions, kind: type[x509.ExtensionType]) -> Any:
    try:
        return extensions.get_extension_for_class(kind).value
    except x509.ExtensionNotFound:
        return None


def _key_usage_names(usage: x509.KeyUsage | None) -> frozenset[str]:
    if usage is None:
        return frozenset()
    # encipher_only and decipher_only raise unless key_agreement is set.
    names = [name for name in KEY_USAGES if name not in ("encipher_only", "decipher_only")]
    if usage.key_agreement:
        names += ["encipher_only", "decipher_only"]
    return frozenset(name for name in names if getattr(usage, name))


def _spec_of(item: x509.Certificate | x509.CertificateSigningRequest) -> CertSpec:
    """What a certificate or CSR says about itself (only DNS and IP SANs are considered)."""
    names = _extension(item.extensions, x509.SubjectAlternativeName)
    usages = _extension(item.extensions, x509.ExtendedKeyUsage)
    constraints = _extension(item.extensions, x509.BasicConstraints)
    return CertSpec(
        subject=item.subject,
        public_key=item.public_key(),
        dns_names=frozenset(names.get_values_for_type(x509.DNSName)) if names else frozenset(),
        ip_addresses=frozenset(names.get_values_for_type(x509.IPAddress)) if names else frozenset(),
        key_usage=_key_usage_names(_extension(item.extensions, x509.KeyUsage)),
        extended_key_usage=frozenset(
            _EKU_NAMES.get(oid.dotted_string, oid.dotted_string) for oid in usages or ()
        ),
        is_ca=bool(constraints and constraints.ca),
    )


def _requested_extensions(spec: CertSpec) -> list[tuple[x509.ExtensionType, bool]]:
    """SAN, key usage and EKU: the extensions a CSR asks for and a certificate copies."""
    extensions: list[tuple[x509.ExtensionType, bool]] = []
    if spec.dns_names or spec.ip_addresses:
        general_names: list[x509.GeneralName] = [x509.DNSName(name) for name in sorted(spec.dns_names)]
        general_names += [x509.IPAddress(address) for address in _sorted_ips(spec.ip_addresses)]
        extensions.append((x509.SubjectAlternativeName(general_names), False))
    if spec.key_usage:
        try:
            usage = x509.KeyUsage(**{name: name in spec.key_usage for name in KEY_USAGES})
        except ValueError as exc:
            raise SettingError(f"key_usage {sorted(spec.key_usage)} is not valid: {exc}.") from exc
        extensions.append((usage, True))
    if spec.extended_key_usage:
        oids = [
            x509.ObjectIdentifier(EXTENDED_KEY_USAGES.get(name, name))
            for name in sorted(spec.extended_key_usage)
        ]
        extensions.append((x509.ExtendedKeyUsage(oids), False))
    return extensions


DEFAULT_KEY_USAGE = ("digital_signature", "key_encipherment")
DEFAULT_EXTENDED_KEY_USAGE = ("client_auth",)


def requested_spec(
    public_key: CertificatePublicKeyTypes,
    common_name: str,
    organization: Iterable[str] = (),
    dns_names: Iterable[str] = (),
    ip_addresses: Iterable[str] = (),
    key_usage: Iterable[str] = DEFAULT_KEY_USAGE,
    extended_key_usage: Iterable[str] = DEFAULT_EXTENDED_KEY_USAGE,
) -> CertSpec:
    """The certificate that a request with these fields asks for, for ``public_key``."""
    usages, extended_usages = frozenset(key_usage), frozenset(extended_key_usage)
    unknown = (usages - set(KEY_USAGES)) | (extended_usages - EXTENDED_KEY_USAGES.keys())
    if unknown:
        raise SettingError(f"unknown key usage {sorted(unknown)}; see the module documentation for choices.")
    return CertSpec(
        subject=build_subject(common_name, organization),
        public_key=public_key,
        dns_names=frozenset(dns_names),
        ip_addresses=parse_ip_addresses(ip_addresses),
        key_usage=usages,
        extended_key_usage=extended_usages,
    )


def make_csr(
    key: PrivateKey,
    common_name: str,
    organization: Iterable[str] = (),
    dns_names: Iterable[str] = (),
    ip_addresses: Iterable[str] = (),
    key_usage: Iterable[str] = DEFAULT_KEY_USAGE,
    extended_key_usage: Iterable[str] = DEFAULT_EXTENDED_KEY_USAGE,
) -> x509.CertificateSigningRequest:
    """A CSR signed by ``key``; SANs and usages are sorted, so equal input requests equal content."""
    spec = requested_spec(
        key.public_key(), common_name, organization, dns_names, ip_addresses, key_usage, extended_key_usage
    )
    builder = x509.CertificateSigningRequestBuilder().subject_name(spec.subject)
    for extension, critical in _requested_extensions(spec):
        builder = builder.add_extension(extension, critical=critical)
    try:
        return builder.sign(key, hashes.SHA256())
    except ValueError as exc:
        raise SettingError(f"dns_names or another value cannot be encoded in a CSR: {exc}.") from exc


def csr_pem(csr: x509.CertificateSigningRequest) -> str:
    return csr.public_bytes(serialization.Encoding.PEM).decode()


def read_csr(path: str) -> str:
    data = read_file(path, "csr_path")
    if data is None:
        raise CSRError(f"csr_path {path} does not exist; write the CSR there first or pass csr_content.")
    return data.decode("ascii", errors="replace")


def spec_from_csr(pem: str) -> CertSpec:
    """What a certificate issued for the CSR ``pem`` must contain; the CSR must be sound."""
    try:
        csr = x509.load_pem_x509_csr(pem.encode())
        spec = _spec_of(csr)
        signed = csr.is_signature_valid
    except (ValueError, UnsupportedAlgorithm) as exc:
        raise CSRError(
            f"the CSR is not a valid PEM certificate signing request ({exc}); pass the csr module's output."
        ) from exc
    if not signed:
        raise CSRError("the CSR's signature does not verify with its own public key; create it again.")
    if wrong := spec.key_usage & CA_ONLY_KEY_USAGES:
        raise CSRError(
            f"the CSR asks for key usage {sorted(wrong)}, which only a CA may have; "
            "use scratch.kubernetes.ca_certificate for a CA."
        )
    # Constraints requested in the CSR are ignored: certificate issues leaf certificates only.
    return dataclasses.replace(spec, is_ca=False)


# What a CSR is compared on with the request it answers, and how each field reads in a message.
_CSR_FIELDS = {
    "subject": lambda spec: spec.subject.rfc4514_string(),
    "dns_names": lambda spec: sorted(spec.dns_names),
    "ip_addresses": lambda spec: [str(address) for address in _sorted_ips(spec.ip_addresses)],
    "key_usage": lambda spec: sorted(spec.key_usage),
    "extended_key_usage": lambda spec: sorted(spec.extended_key_usage),
}


def spec_for_request(pem: str, request: Mapping[str, Any]) -> CertSpec:
    """The certificate to issue for a CSR that a node made for a request of the controller.

    ``request`` holds the arguments of :func:`requested_spec` but the key. The CSR, made where the
    controller cannot see, must ask for exactly that: anything else, a group added to the subject
    say, is refused with the field named. Only the key comes from the CSR, once its signature
    proves that the node holds it.
    """
    found = spec_from_csr(pem)
    wanted = requested_spec(found.public_key, **request)
    for field, show in _CSR_FIELDS.items():
        if getattr(found, field) != getattr(wanted, field):
            raise CSRError(
                f"the CSR asks for {field} {show(found)}, but {show(wanted)} was requested: it was not made "
                "by this collection's request, or was altered on the node. Nothing was signed; look into "
                "how the node's CSR came to differ before running again."
            )
    return dataclasses.replace(wanted, public_key=found.public_key)


def _parse_certificate(data: bytes) -> x509.Certificate:
    """Raises ValueError unless ``data`` is a PEM certificate with readable extensions."""
    cert = x509.load_pem_x509_certificate(data)
    len(cert.extensions)  # parsed lazily: fail here, not halfway through the checks
    return cert


def load_certificate(path: str, setting: str) -> x509.Certificate:
    data = read_file(path, setting)
    if data is None:
        raise CertificateFileError(f"{setting} {path} does not exist; create it first.")
    try:
        return _parse_certificate(data)
    except ValueError as exc:
        raise CertificateFileError(
            f"{setting} {path} is not a PEM certificate ({exc}); check the path."
        ) from exc


def load_ca(certificate_path: str, key_path: str) -> tuple[x509.Certificate, PrivateKey]:
    """The CA certificate and its key, checked to belong together and to be a CA."""
    cert = load_certificate(certificate_path, "ca_certificate_path")
    key = load_private_key(key_path, "ca_privatekey_path")
    if _spki(cert.public_key()) != _spki(key.public_key()):
        raise CertificateFileError(
            f"ca_privatekey_path {key_path} is not the key of ca_certificate_path {certificate_path}; "
            "point both at the same CA."
        )
    spec = _spec_of(cert)
    if not spec.is_ca or "key_cert_sign" not in spec.key_usage:
        raise CertificateFileError(
            f"ca_certificate_path {certificate_path} is not a CA certificate; create it with "
            "scratch.kubernetes.ca_certificate."
        )
    return cert, key


# Named checks: each compares the certificate found with the one wanted and returns a reason or None.
SpecCheck: TypeAlias = "Callable[[CertSpec, CertSpec], str | None]"


def _check_public_key(have: CertSpec, want: CertSpec) -> str | None:
    if _spki(have.public_key) != _spki(want.public_key):
        return (
            f"its public key ({public_key_fingerprint(have.public_key)}) is not the wanted one "
            f"({public_key_fingerprint(want.public_key)})"
        )
    return None


def _check_subject(have: CertSpec, want: CertSpec) -> str | None:
    if have.subject != want.subject:
        return f"its subject is {have.subject.rfc4514_string()!r}, want {want.subject.rfc4514_string()!r}"
    return None


def _check_dns_names(have: CertSpec, want: CertSpec) -> str | None:
    if have.dns_names != want.dns_names:
        return f"its DNS names are {sorted(have.dns_names)}, want {sorted(want.dns_names)}"
    return None


def _check_ip_addresses(have: CertSpec, want: CertSpec) -> str | None:
    if have.ip_addresses != want.ip_addresses:
        return (
            f"its IP addresses are {[str(ip) for ip in _sorted_ips(have.ip_addresses)]}, "
            f"want {[str(ip) for ip in _sorted_ips(want.ip_addresses)]}"
        )
    return None


def _check_key_usage(have: CertSpec, want: CertSpec) -> str | None:
    if have.key_usage != want.key_usage:
        return f"its key usage is {sorted(have.key_usage)}, want {sorted(want.key_usage)}"
    return None


def _check_extended_key_usage(have: CertSpec, want: CertSpec) -> str | None:
    if have.extended_key_usage != want.extended_key_usage:
        return (
            f"its extended key usage is {sorted(have.extended_key_usage)}, "
            f"want {sorted(want.extended_key_usage)}"
        )
    return None


def _check_ca(have: CertSpec, want: CertSpec) -> str | None:
    if have.is_ca != want.is_ca:
        return "it is a CA, want a leaf certificate" if have.is_ca else "it is not a CA"
    return None


SPEC_CHECKS: tuple[SpecCheck, ...] = (
    _check_public_key,
    _check_subject,
    _check_dns_names,
    _check_ip_addresses,
    _check_key_usage,
    _check_extended_key_usage,
    _check_ca,
)


def _check_signed_by(cert: x509.Certificate, issuer: x509.Certificate) -> str | None:
    try:
        _verify_directly_issued_by(cert, issuer)
    except (ValueError, TypeError, InvalidSignature, UnsupportedAlgorithm):
        if issuer is cert:
            return "it is not self-signed"
        return f"it is not signed by the CA {issuer.subject.rfc4514_string()!r}"
    return None


def issued_at(cert: x509.Certificate) -> dt.datetime:
    """When ``cert`` was signed: :func:`issue_certificate` backdates notBefore, so add that back.

    Comparing the backdated notBefore itself would make a certificate signed a minute ago look an
    hour old, and a renewal would reissue it again. Only certificates signed by our CA reach this
    check (another CA's fail ``_check_signed_by`` anyway), and our CA has always backdated by
    ``_BACKDATE``. One signed by hand with the CA key, without backdating, looks an hour newer than
    it is, and is kept if signed within the hour before a renewal's time.
    """
    return _not_before(cert) + _BACKDATE


def parse_timestamp(value: str, setting: str) -> dt.datetime:
    """An ISO 8601 time with an explicit offset, as an aware UTC datetime in whole seconds.

    Certificates record times in whole seconds (the fraction is cut off); a fraction left on the
    timestamp would make a certificate signed in that same second look older than it.
    """
    try:
        moment = dt.datetime.fromisoformat(value)
    except ValueError as exc:
        raise SettingError(
            f"{setting} {value!r} is not an ISO 8601 time; write it like 2025-06-01T12:00:00Z."
        ) from exc
    if moment.tzinfo is None:
        # A local time would be read differently on the controller and by the operator.
        raise SettingError(f"{setting} {value!r} has no UTC offset; add Z, as in 2025-06-01T12:00:00Z.")
    return moment.astimezone(dt.UTC).replace(microsecond=0)


def _check_issued_before(cert: x509.Certificate, issued_before: dt.datetime | None) -> str | None:
    if issued_before is None:
        return None
    issued = issued_at(cert)
    if issued < issued_before:
        return (
            f"it was issued at {issued.isoformat()}, before reissue_issued_before "
            f"({issued_before.isoformat()}): reissue requested"
        )
    return None


def _check_expiry(cert: x509.Certificate, renew_before: dt.timedelta, now: dt.datetime) -> str | None:
    not_after = _not_after(cert)
    if not_after <= now:
        return f"it expired on {not_after.isoformat()}"
    if not_after - now <= renew_before:
        return f"it expires on {not_after.isoformat()}, within renew_before_days ({renew_before.days})"
    return None


def certificate_reasons(
    cert: x509.Certificate,
    want: CertSpec,
    issuer: x509.Certificate | None,
    renew_before: dt.timedelta,
    now: dt.datetime,
    issued_before: dt.datetime | None = None,
) -> list[str]:
    """Every reason to reissue ``cert``; ``issuer`` None means it must be self-signed.

    ``issued_before`` asks for a certificate signed at or after that time (see issued_at()).
    """
    have = _spec_of(cert)
    reasons = [check(have, want) for check in SPEC_CHECKS]
    reasons.append(_check_signed_by(cert, issuer or cert))
    reasons.append(_check_expiry(cert, renew_before, now))
    reasons.append(_check_issued_before(cert, issued_before))
    return [reason for reason in reasons if reason]


def issue_certificate(
    want: CertSpec,
    signing_key: PrivateKey,
    issuer: x509.Certificate | None,
    validity: dt.timedelta,
    now: dt.datetime,
) -> x509.Certificate:
    """Sign ``want`` with ``signing_key``: self-signed when ``issuer`` is None.

    A CA gets path length 0: it signs leaf certificates only, never intermediate CAs.
    """
    # The AKI repeats the issuer's SKI when it has one, so chains built by key identifier match.
    identifier = _extension(issuer.extensions, x509.SubjectKeyIdentifier) if issuer is not None else None
    if identifier is not None:
        authority = x509.AuthorityKeyIdentifier.from_issuer_subject_key_identifier(identifier)
    else:
        authority = x509.AuthorityKeyIdentifier.from_issuer_public_key(signing_key.public_key())
    builder = (
        x509.CertificateBuilder()
        .subject_name(want.subject)
        .issuer_name(want.subject if issuer is None else issuer.subject)
        .public_key(want.public_key)
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - _BACKDATE)
        .not_valid_after(now + validity)
        .add_extension(
            x509.BasicConstraints(ca=want.is_ca, path_length=0 if want.is_ca else None), critical=True
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(want.public_key), critical=False)
        .add_extension(authority, critical=False)
    )
    for extension, critical in _requested_extensions(want):
        builder = builder.add_extension(extension, critical=critical)
    return builder.sign(signing_key, hashes.SHA256())


def certificate_facts(cert: x509.Certificate) -> dict[str, Any]:
    """Public metadata of ``cert``, for return values and diffs."""
    spec = _spec_of(cert)
    return {
        "subject": cert.subject.rfc4514_string(),
        "issuer": cert.issuer.rfc4514_string(),
        "dns_names": sorted(spec.dns_names),
        "ip_addresses": [str(address) for address in _sorted_ips(spec.ip_addresses)],
        "not_after": _not_after(cert).isoformat(),
        "serial": cert.serial_number,
        "fingerprint": certificate_fingerprint(cert),
    }


def _planned_facts(want: CertSpec, issuer_name: x509.Name) -> dict[str, Any]:
    """What is known of a certificate before it is issued (check mode)."""
    return {
        "subject": want.subject.rfc4514_string(),
        "issuer": issuer_name.rfc4514_string(),
        "dns_names": sorted(want.dns_names),
        "ip_addresses": [str(address) for address in _sorted_ips(want.ip_addresses)],
        "not_after": None,
        "serial": None,
        "fingerprint": None,
    }


def _validity(validity_days: int, renew_before_days: int) -> tuple[dt.timedelta, dt.timedelta]:
    if validity_days < 1:
        raise SettingError(f"validity_days is {validity_days}; set it to at least 1.")
    if not 0 <= renew_before_days < validity_days:
        raise SettingError(
            f"renew_before_days ({renew_before_days}) must be at least 0 and below validity_days "
            f"({validity_days}), or every run would reissue the certificate; lower renew_before_days."
        )
    return dt.timedelta(days=validity_days), dt.timedelta(days=renew_before_days)


def _ensure_certificate(
    path: str,
    want: CertSpec,
    signing_key: PrivateKey,
    issuer: x509.Certificate | None,
    validity_days: int,
    renew_before_days: int,
    check_mode: bool,
    now: dt.datetime | None,
    issued_before: dt.datetime | None = None,
) -> Outcome:
    validity, renew_before = _validity(validity_days, renew_before_days)
    now = now or dt.datetime.now(dt.UTC)
    if issued_before is not None and issued_before > now:
        raise SettingError(
            f"reissue_issued_before ({issued_before.isoformat()}) is later than now ({now.isoformat()}): "
            "a certificate issued now would count as older and be reissued on every run; "
            "use the current time or an earlier one."
        )
    data = read_file(path, "path")
    existing = None
    if data is None:
        reasons = [f"{path} does not exist"]
    else:
        try:
            existing = _parse_certificate(data)
        except ValueError as exc:
            reasons = [f"{path} does not hold a usable PEM certificate ({exc})"]
        else:
            reasons = certificate_reasons(existing, want, issuer, renew_before, now, issued_before)

    before = certificate_facts(existing) if existing is not None else {}
    if not reasons:
        return Outcome(reasons, {"path": path, **before}, before, before)
    if check_mode:
        after = _planned_facts(want, issuer.subject if issuer else want.subject)
        return Outcome(
            reasons, {"path": path, **after}, before, {k: v for k, v in after.items() if v is not None}
        )
    cert = issue_certificate(want, signing_key, issuer, validity, now)
    write_file(path, cert.public_bytes(serialization.Encoding.PEM), 0o644)
    after = certificate_facts(cert)
    return Outcome(reasons, {"path": path, **after}, before, after)


def ensure_ca_certificate(
    path: str,
    privatekey_path: str,
    common_name: str,
    organization: Iterable[str] = (),
    *,
    validity_days: int = 3650,
    renew_before_days: int = 30,
    check_mode: bool = False,
    now: dt.datetime | None = None,
) -> Outcome:
    """A self-signed CA certificate for the key at ``privatekey_path``."""
    key = load_private_key(privatekey_path)
    want = CertSpec(
        subject=build_subject(common_name, organization),
        public_key=key.public_key(),
        key_usage=CA_KEY_USAGE,
        is_ca=True,
    )
    outcome = _ensure_certificate(path, want, key, None, validity_days, renew_before_days, check_mode, now)
    for facts in (outcome.facts, outcome.before, outcome.after):
        for name in ("dns_names", "ip_addresses"):  # a CA has no SANs: leave out the noise
            facts.pop(name, None)
    return outcome


def ensure_certificate(
    path: str,
    csr: str,
    ca_certificate_path: str,
    ca_privatekey_path: str,
    *,
    validity_days: int = 365,
    renew_before_days: int = 30,
    reissue_issued_before: str | None = None,
    check_mode: bool = False,
    now: dt.datetime | None = None,
) -> Outcome:
    """A leaf certificate for the PEM ``csr``, signed by the CA; subject, SANs and usages from the CSR.

    ``reissue_issued_before`` (ISO 8601 with offset; empty or None for none) also reissues a
    certificate signed before that time, however sound: an operator's renewal. A run that uses one
    fixed time reissues each certificate once, and a rerun with it changes nothing.
    """
    issued_before = (
        parse_timestamp(reissue_issued_before, "reissue_issued_before") if reissue_issued_before else None
    )
    want = spec_from_csr(csr)
    ca_cert, ca_key = load_ca(ca_certificate_path, ca_privatekey_path)
    return _ensure_certificate(
        path, want, ca_key, ca_cert, validity_days, renew_before_days, check_mode, now, issued_before
    )


# ---------------------------------------------------------------------------- secrets encryption key


def _decode_encryption_key(data: bytes, path: str) -> str:
    text = data.decode("ascii", errors="replace").strip()
    try:
        valid = len(base64.b64decode(text, validate=True)) == ENCRYPTION_KEY_BYTES
    except (binascii.Error, ValueError):
        valid = False
    if not valid:
        raise EncryptionKeyError(
            f"path {path} exists but does not hold base64 of exactly {ENCRYPTION_KEY_BYTES} bytes; it is not "
            "replaced because Secrets may be encrypted with it: restore the right key or remove the file."
        )
    return text


def ensure_encryption_key(path: str, *, check_mode: bool = False) -> Outcome:
    """Keep the key at ``path``, or create one (32 random bytes, base64, 0600) if there is none."""
    data = read_file(path, "path")
    if data is not None:
        return Outcome(
            [], {"path": path, "key": _decode_encryption_key(data, path)}, {"exists": True}, {"exists": True}
        )
    reasons = [f"{path} does not exist"]
    key = None
    if not check_mode:
        key = base64.b64encode(secrets.token_bytes(ENCRYPTION_KEY_BYTES)).decode()
        write_file(path, f"{key}\n".encode(), 0o600)
    return Outcome(reasons, {"path": path, "key": key}, {"exists": False}, {"exists": True})
