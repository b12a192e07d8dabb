# SPDX-License-Identifier: Apache-2.0
"""Optional third-party libraries, imported in one place.

A module calls :func:`require` first; a missing library then fails with Ansible's
``missing_required_lib`` message instead of a traceback.
"""

from __future__ import annotations

import traceback

from ansible.module_utils.basic import missing_required_lib

try:
    import netaddr  # noqa: F401

    NETADDR_ERROR = None
except ImportError:
    NETADDR_ERROR = traceback.format_exc()

try:
    import cryptography  # noqa: F401

    CRYPTOGRAPHY_ERROR = None
except ImportError:
    CRYPTOGRAPHY_ERROR = traceback.format_exc()

_LIBRARIES = {"netaddr": NETADDR_ERROR, "cryptography": CRYPTOGRAPHY_ERROR}


def require(module, *names: str) -> None:
    """Fail ``module`` with ``missing_required_lib`` for the first absent library."""
    for name in names:
        error = _LIBRARIES[name]
        if error is not None:
            module.fail_json(msg=missing_required_lib(name), exception=error)
