#!/usr/bin/python
# SPDX-License-Identifier: Apache-2.0

from __future__ import annotations

DOCUMENTATION = r"""
module: ca_certificate
short_description: Create a self-signed CA certificate for a private key
version_added: "0.1.0"
author: scratch.kubernetes developers (@scratch-kubernetes)
description:
  - Writes a self-signed CA certificate for the key at O(privatekey_path) to O(path), signed with SHA-256.
    Run it on the controller, where the CA key stays.
  - "The certificate has: basic constraints C(CA:TRUE, pathlen:0) (critical; the CA signs leaf certificates
    only, never intermediate CAs), key usage C(digital_signature), C(key_cert_sign) and C(crl_sign)
    (critical), a subject key identifier and an authority key identifier (the same key), a random 159-bit
    serial number, and a validity that starts one hour in the past to tolerate clock skew."
  - "An existing certificate is kept unless a named check fails: the file is missing or unreadable, its
    public key is not that of the private key, its subject differs, its key usage differs, it is not a CA,
    it is not self-signed, or it expires within O(renew_before_days). RV(reasons) lists the failed checks.
    A changed O(validity_days) alone does not reissue."
  - A CA reissued for the same key (for example on renewal) keeps its subject and key identifier, so leaf
    certificates signed earlier stay valid.
extends_documentation_fragment:
  - scratch.kubernetes._attributes
  - scratch.kubernetes._attributes.FULL
  - scratch.kubernetes._pki
  - scratch.kubernetes._pki.PUBLIC
attributes:
  check_mode:
    details: Reports whether the certificate would be issued, and why; writes nothing.
  diff_mode:
    details: The diff shows subject, issuer, expiry, serial and fingerprint, and file attributes.
requirements:
  - cryptography >= 38.0
options:
  privatekey_path:
    description: The CA's private key, as written by M(scratch.kubernetes.private_key). It must exist.
    type: path
    required: true
  path:
    description: Where the CA certificate is written.
    type: path
    required: true
  common_name:
    description: Subject common name (C(CN)) of the CA.
    type: str
    required: true
  organization:
    description: Subject organizations (C(O)) of the CA.
    type: list
    elements: str
    default: []
  validity_days:
    description: Lifetime of a newly issued certificate, in days.
    type: int
    default: 3650
  renew_before_days:
    description: Reissue when the certificate expires within this many days; must be below O(validity_days).
    type: int
    default: 30
"""

EXAMPLES = r"""
- name: Cluster CA key, on the controller
  scratch.kubernetes.private_key:
    path: "{{ pki_dir }}/ca.key"
  delegate_to: localhost
  run_once: true

- name: Cluster CA certificate
  scratch.kubernetes.ca_certificate:
    privatekey_path: "{{ pki_dir }}/ca.key"
    path: "{{ pki_dir }}/ca.crt"
    common_name: "{{ cluster_name }}-ca"
  delegate_to: localhost
  run_once: true
"""

RETURN = r"""
path:
  description: Path of the certificate.
  returned: success
  type: str
  sample: /etc/scratch-kubernetes/pki/ca.crt
subject:
  description: Subject of the certificate, RFC 4514 string.
  returned: success
  type: str
  sample: CN=kubernetes-ca
issuer:
  description: Issuer of the certificate (the subject, since it is self-signed), RFC 4514 string.
  returned: success
  type: str
  sample: CN=kubernetes-ca
not_after:
  description: End of validity, ISO 8601 in UTC; null in check mode when the certificate would be issued.
  returned: success
  type: str
  sample: "2035-06-01T12:00:00+00:00"
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
  sample: ["it expires on 2025-06-20T12:00:00+00:00, within renew_before_days (30)"]
"""

from ansible.module_utils.basic import AnsibleModule
from ansible_collections.scratch.kubernetes.plugins.module_utils._deps import require
from ansible_collections.scratch.kubernetes.plugins.module_utils._pki import (
    PKIError,
    ensure_ca_certificate,
)
from ansible_collections.scratch.kubernetes.plugins.module_utils._pki_module import (
    exit_with,
    file_argument_spec,
)


def main() -> None:
    module = AnsibleModule(
        argument_spec=dict(
            privatekey_path=dict(type="path", required=True, no_log=False),
            path=dict(type="path", required=True),
            common_name=dict(type="str", required=True),
            organization=dict(type="list", elements="str", default=[]),
            validity_days=dict(type="int", default=3650),
            renew_before_days=dict(type="int", default=30),
            **file_argument_spec("0644"),
        ),
        supports_check_mode=True,
    )
    require(module, "cryptography")

    params = module.params
    try:
        outcome = ensure_ca_certificate(
            params["path"],
            params["privatekey_path"],
            params["common_name"],
            params["organization"],
            validity_days=params["validity_days"],
            renew_before_days=params["renew_before_days"],
            check_mode=module.check_mode,
        )
    except PKIError as error:
        module.fail_json(msg=str(error))
    exit_with(module, outcome, [(params["path"], None)])


if __name__ == "__main__":
    main()
