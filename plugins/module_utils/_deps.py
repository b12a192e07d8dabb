# SPDX-License-Identifier: Apache-2.0
"""Optional third-party libraries, checked in one place.

The module_utils import these libraries under ``try``/``except ImportError`` so that they
import anywhere; a module calls :func:`require` first, and a missing library then fails with
Ansible's ``missing_required_lib`` message instead of a ``NameError`` later on.
"""

from __future__ import annotations

import importlib
import traceback

from ansible.module_utils.basic import missing_required_lib

# Import name -> the name of the package to install, as missing_required_lib shows it.
_PACKAGES = {"netaddr": "netaddr", "cryptography": "cryptography", "yaml": "PyYAML"}


def _import_error(name: str) -> str | None:
    try:
        importlib.import_module(name)
    except ImportError:
        return traceback.format_exc()
    return None


_IMPORT_ERRORS = {name: _import_error(name) for name in _PACKAGES}


def missing(name: str) -> str | None:
    """Ansible's ``missing_required_lib`` message if library ``name`` cannot be imported, else None.

    ``name`` is an import name: ``netaddr``, ``cryptography`` or ``yaml``.
    """
    return None if _IMPORT_ERRORS[name] is None else missing_required_lib(_PACKAGES[name])


def require(module, *names: str) -> None:
    """Fail ``module`` with ``missing_required_lib`` for the first absent library of ``names``."""
    for name in names:
        message = missing(name)
        if message is not None:
            module.fail_json(msg=message, exception=_IMPORT_ERRORS[name])
