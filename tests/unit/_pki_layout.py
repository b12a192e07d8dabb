# SPDX-License-Identifier: Apache-2.0
"""The controller's PKI directory as cluster_pki keeps it, shared by the unit and module tests."""

# Every file in pki_dir, with its mode.
PKI_FILES = {
    "ca.key": 0o600,
    "ca.crt": 0o644,
    "etcd-ca.key": 0o600,
    "etcd-ca.crt": 0o644,
    "service-account.key": 0o600,
    "service-account.pub": 0o644,
    "encryption.key": 0o600,
    "admin.key": 0o600,
    "admin.crt": 0o644,
}
