# SPDX-License-Identifier: Apache-2.0
"""File options of the PKI modules, mirroring ``_pki_module.file_argument_spec``."""

from __future__ import annotations


class ModuleDocFragment:
    # owner and group, shared by every PKI module that writes a file.
    DOCUMENTATION = r"""
options:
  owner:
    description:
      - Name of the user that should own the file, as would be fed to C(chown).
      - When not set, the file belongs to the user running the module.
    type: str
  group:
    description:
      - Name of the group that should own the file, as would be fed to C(chown).
      - When not set, the file belongs to the primary group of the user running the module.
    type: str
"""

    # For files holding a secret (private key, kubeconfig, encryption key).
    SECRET = r"""
options:
  mode:
    description:
      - Permissions of the file, as an octal string such as V("0600") or a symbolic mode.
      - The file is always created 0600 and only then changed to O(mode), so a secret is never
        readable by others, not even for an instant. A wrong mode on an existing file is fixed
        and reported as a change.
    type: raw
    default: "0600"
"""

    # For files holding only public data (certificates).
    PUBLIC = r"""
options:
  mode:
    description:
      - Permissions of the file, as an octal string such as V("0644") or a symbolic mode.
      - A wrong mode on an existing file is fixed and reported as a change.
    type: raw
    default: "0644"
"""
