# SPDX-License-Identifier: Apache-2.0
"""All of a node's keys and CSRs in one call, and all of a run's certificates in another.

The per-certificate checks stay those of ``_pki`` (key type, SANs, usages, expiry, issuer,
reissue time); batching only removes the round trip per certificate.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping
from typing import Any

from ansible_collections.scratch.kubernetes.plugins.module_utils._pki import (
    DEFAULT_EXTENDED_KEY_USAGE,
    DEFAULT_KEY_USAGE,
    KeySpec,
    Outcome,
    PKIError,
    _ensure_certificate,
    csr_pem,
    ensure_mode,
    ensure_private_key,
    load_ca,
    load_private_key,
    make_csr,
    parse_timestamp,
    spec_for_request,
)

_KEY_MODE = 0o600


def request_fields(request: Mapping[str, Any]) -> dict[str, Any]:
    """What a request asks a certificate to say (the arguments of make_csr but the key), defaults
    filled in: the node makes its CSR from it, and the controller checks that CSR against it."""
    return {
        "common_name": request["common_name"],
        "organization": request.get("organization") or (),
        "dns_names": request.get("dns_names") or (),
        "ip_addresses": request.get("ip_addresses") or (),
        "key_usage": request.get("key_usage") or DEFAULT_KEY_USAGE,
        "extended_key_usage": request.get("extended_key_usage") or DEFAULT_EXTENDED_KEY_USAGE,
    }


def ensure_requests(
    directory: str, requests: Iterable[dict[str, Any]], *, check_mode: bool = False
) -> Outcome:
    """A key (ECDSA P-256, 0600) per request in ``directory``, kept when it fits, and its CSR.

    ``facts["csrs"]`` lists ``{name, ca, csr}`` in request order; ``csr`` is None in check mode
    for a key that is yet to be made or replaced.
    """
    reasons: list[str] = []
    csrs: list[dict[str, Any]] = []
    if not os.path.isdir(directory):
        reasons.append(f"{directory} does not exist")
        if not check_mode:
            os.makedirs(directory, mode=0o755, exist_ok=True)
    for request in requests:
        path = os.path.join(directory, f"{request['name']}.key")
        key_outcome = ensure_private_key(path, KeySpec(), check_mode=check_mode)
        reasons += key_outcome.reasons
        entry = {"name": request["name"], "ca": request.get("ca") or "ca", "csr": None}
        csrs.append(entry)
        if check_mode and key_outcome.changed:  # key yet to be made, or to be replaced
            continue
        if mode_reason := ensure_mode(path, _KEY_MODE, check_mode=check_mode):
            reasons.append(mode_reason)
        csr = make_csr(load_private_key(path), **request_fields(request))
        entry["csr"] = csr_pem(csr)
    return Outcome(reasons, {"csrs": csrs})


def ensure_certificates(
    items: Iterable[dict[str, Any]],
    *,
    validity_days: int = 365,
    renew_before_days: int = 30,
    reissue_issued_before: str | None = None,
    check_mode: bool = False,
) -> Outcome:
    """Sign each ``{path, request, csr, ca_certificate_path, ca_privatekey_path}`` that needs it.

    ``request`` is what the controller asked the node for (ensure_requests' input), ``csr`` what
    the node made of it: every CSR must ask for exactly its request, or nothing is signed. Each
    CA is loaded once, before anything is written. ``facts["issued"]`` lists the paths
    (re)issued, or that would be.
    """
    issued_before = (
        parse_timestamp(reissue_issued_before, "reissue_issued_before") if reissue_issued_before else None
    )
    items = list(items)
    # Every CA first: a broken one fails the call before any certificate is written, in check mode too.
    cas: dict[tuple[str, str], Any] = {}
    for item in items:
        ca = (item["ca_certificate_path"], item["ca_privatekey_path"])
        if ca not in cas:
            cas[ca] = load_ca(*ca)
    # Every CSR next, for the same reason: a node that asks for more than its requests gets nothing.
    specs = {}
    for item in items:
        if item.get("csr") is not None:
            try:
                specs[item["path"]] = spec_for_request(item["csr"], request_fields(item["request"]))
            except PKIError as error:
                raise PKIError(f"{item['path']}: {error}") from None
    reasons: list[str] = []
    issued: list[str] = []
    for item in items:
        path = item["path"]
        if item.get("csr") is None:
            if not check_mode:
                raise PKIError(f"{path}: no certificate request came from the node; run again")
            reasons.append(f"{path}: its key is yet to be made")
            issued.append(path)
            continue
        ca_cert, ca_key = cas[item["ca_certificate_path"], item["ca_privatekey_path"]]
        if not check_mode and os.path.dirname(path):
            os.makedirs(os.path.dirname(path), mode=0o755, exist_ok=True)
        outcome = _ensure_certificate(
            path,
            specs[path],
            ca_key,
            ca_cert,
            validity_days,
            renew_before_days,
            check_mode,
            None,
            issued_before,
        )
        if outcome.changed:
            reasons += [f"{path}: {reason}" for reason in outcome.reasons]
            issued.append(path)
    return Outcome(reasons, {"issued": issued})
