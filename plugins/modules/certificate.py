#!/usr/bin/python
# SPDX-License-Identifier: Apache-2.0

from __future__ import annotations

DOCUMENTATION = r"""
module: certificate
short_description: Sign a certificate signing request with the cluster CA
version_added: "0.1.0"
author: scratch.kubernetes developers (@scratch-kubernetes)
description:
  - Issues a leaf certificate for a CSR (from M(scratch.kubernetes.csr)) signed by the CA at
    O(ca_certificate_path) and O(ca_privatekey_path), and writes it to O(path). Run it on the controller,
    where the CA key stays; copy the (public) certificate to the node afterwards.
  - The CSR's signature must verify. Subject, public key, DNS and IP subject alternative names, key usage
    and extended key usage are copied from the CSR; any other extension it requests (including basic
    constraints and other SAN types) is ignored. A CSR asking for the CA-only key usages C(key_cert_sign)
    or C(crl_sign) is refused.
  - "The certificate also gets: basic constraints C(CA:FALSE) (critical), a subject key identifier, an
    authority key identifier from the CA, a random 159-bit serial number, SHA-256 signature, and a validity
    that starts one hour in the past to tolerate clock skew."
  - "An existing certificate is kept unless a named check fails: the file is missing or unreadable, its
    public key differs from the CSR's, its subject differs, its DNS names or IP addresses differ (compared
    as sets), its key usage or extended key usage differ, it is a CA, it is not signed by this CA (issuer
    is not the CA's subject or the signature does not verify with the CA's public key), or it expires
    within O(renew_before_days) (or has expired), or it was issued before O(reissue_issued_before).
    RV(reasons) lists the failed checks. A changed O(validity_days) alone does not reissue."
extends_documentation_fragment:
  - scratch.kubernetes._attributes
  - scratch.kubernetes._attributes.FULL
  - scratch.kubernetes._pki
  - scratch.kubernetes._pki.PUBLIC
attributes:
  check_mode:
    details: Reports whether the certificate would be issued, and why; writes nothing.
  diff_mode:
    details: The diff shows subject, SANs, issuer, expiry, serial and fingerprint, and file attributes.
requirements:
  - cryptography >= 38.0
options:
  csr_content:
    description: The PEM CSR, for example RV(scratch.kubernetes.csr#module:csr) of M(scratch.kubernetes.csr).
    type: str
  csr_path:
    description: A file holding the PEM CSR.
    type: path
  path:
    description: Where the certificate is written.
    type: path
    required: true
  ca_certificate_path:
    description: The CA certificate, as written by M(scratch.kubernetes.ca_certificate).
    type: path
    required: true
  ca_privatekey_path:
    description: The CA's private key; it must belong to O(ca_certificate_path).
    type: path
    required: true
  validity_days:
    description: Lifetime of a newly issued certificate, in days.
    type: int
    default: 365
  renew_before_days:
    description: Reissue when the certificate expires within this many days; must be below O(validity_days).
    type: int
    default: 30
  reissue_issued_before:
    description:
      - Reissue a certificate issued before this time even when every other check passes; for renewing
        certificates on demand. An ISO 8601 time with an offset, such as V(2025-06-01T12:00:00Z);
        fractions of a second are ignored. Unset or empty, nothing is reissued for its age.
      - The issue time is the certificate's notBefore plus the hour it is backdated by, so a certificate
        issued at or after this time is kept, and a rerun with the same value changes nothing. Take the
        time once, when a renewal starts, and pass the same value to every task of the run (and of a rerun
        that completes it); a value that moves, such as the current time of each task, reissues again.
      - A time later than now is refused, as every run until then would reissue the certificate.
    type: str
    version_added: "0.2.0"
notes:
  - Exactly one of O(csr_content) and O(csr_path) is required.
"""

EXAMPLES = r"""
- name: CSR of the API server's serving certificate, on the master
  scratch.kubernetes.csr:
    privatekey_path: /etc/kubernetes/pki/apiserver.key
    common_name: kube-apiserver
    dns_names: [kubernetes, kubernetes.default, kubernetes.default.svc, kubernetes.default.svc.cluster.local]
    ip_addresses: ["10.32.0.1", "{{ node_ip }}"]
    extended_key_usage: [server_auth]
  register: __control_plane_csr

- name: Sign it with the CA on the controller
  scratch.kubernetes.certificate:
    csr_content: "{{ __control_plane_csr.csr }}"
    path: "{{ pki_dir }}/{{ inventory_hostname }}/apiserver.crt"
    ca_certificate_path: "{{ pki_dir }}/ca.crt"
    ca_privatekey_path: "{{ pki_dir }}/ca.key"
  delegate_to: localhost

- name: Renew it now, even though it is valid; a rerun with the same time keeps it
  scratch.kubernetes.certificate:
    csr_content: "{{ __control_plane_csr.csr }}"
    path: "{{ pki_dir }}/{{ inventory_hostname }}/apiserver.crt"
    ca_certificate_path: "{{ pki_dir }}/ca.crt"
    ca_privatekey_path: "{{ pki_dir }}/ca.key"
    reissue_issued_before: "2025-06-01T12:00:00Z"
  delegate_to: localhost
"""

RETURN = r"""
path:
  description: Path of the certificate.
  returned: success
  type: str
  sample: /etc/scratch-kubernetes/pki/master-1/apiserver.crt
subject:
  description: Subject of the certificate, RFC 4514 string.
  returned: success
  type: str
  sample: CN=system:node:worker-1,O=system:nodes
issuer:
  description: Issuer of the certificate (the CA's subject), RFC 4514 string.
  returned: success
  type: str
  sample: CN=kubernetes-ca
dns_names:
  description: DNS subject alternative names, sorted.
  returned: success
  type: list
  elements: str
  sample: [kubernetes, kubernetes.default]
ip_addresses:
  description: IP subject alternative names, sorted.
  returned: success
  type: list
  elements: str
  sample: ["10.32.0.1", "192.168.1.10"]
not_after:
  description: End of validity, ISO 8601 in UTC; null in check mode when the certificate would be issued.
  returned: success
  type: str
  sample: "2026-06-01T12:00:00+00:00"
serial:
  description: Serial number; null in check mode when the certificate would be issued.
  returned: success
  type: int
  sample: 438723498237498237498234
fingerprint:
  description:
    - SHA-256 of the DER certificate, as colon-separated hex.
    - Null in check mode when the certificate would be issued.
  returned: success
  type: str
  sample: "9a:3b:...:01"
reasons:
  description: Why the certificate or its file attributes changed (or would); empty when nothing changed.
  returned: success
  type: list
  elements: str
  sample:
    - it is not signed by the CA 'CN=kubernetes-ca'
    - >-
      it was issued at 2025-05-02T09:30:12+00:00, before reissue_issued_before
      (2025-06-01T12:00:00+00:00): reissue requested
"""

from ansible.module_utils.basic import AnsibleModule
from ansible_collections.scratch.kubernetes.plugins.module_utils._deps import require
from ansible_collections.scratch.kubernetes.plugins.module_utils._pki import (
    PKIError,
    ensure_certificate,
    read_csr,
)
from ansible_collections.scratch.kubernetes.plugins.module_utils._pki_module import (
    exit_with,
    file_argument_spec,
)


def main() -> None:
    module = AnsibleModule(
        argument_spec=dict(
            csr_content=dict(type="str"),
            csr_path=dict(type="path"),
            path=dict(type="path", required=True),
            ca_certificate_path=dict(type="path", required=True),
            ca_privatekey_path=dict(type="path", required=True, no_log=False),
            validity_days=dict(type="int", default=365),
            renew_before_days=dict(type="int", default=30),
            reissue_issued_before=dict(type="str"),
            **file_argument_spec("0644"),
        ),
        required_one_of=[("csr_content", "csr_path")],
        mutually_exclusive=[("csr_content", "csr_path")],
        supports_check_mode=True,
    )
    require(module, "cryptography")

    params = module.params
    try:
        csr = params["csr_content"] if params["csr_path"] is None else read_csr(params["csr_path"])
        outcome = ensure_certificate(
            params["path"],
            csr,
            params["ca_certificate_path"],
            params["ca_privatekey_path"],
            validity_days=params["validity_days"],
            renew_before_days=params["renew_before_days"],
            reissue_issued_before=params["reissue_issued_before"],
            check_mode=module.check_mode,
        )
    except PKIError as error:
        module.fail_json(msg=str(error))
    exit_with(module, outcome, [(params["path"], None)])


if __name__ == "__main__":
    main()
