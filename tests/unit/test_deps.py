# SPDX-License-Identifier: Apache-2.0
"""Optional libraries: a missing one fails the module with missing_required_lib naming the package."""

from __future__ import annotations

import importlib
import sys

import pytest
from ansible_collections.scratch.kubernetes.plugins.module_utils import _deps


class FailingModule:
    def fail_json(self, **result):
        raise SystemExit(result)


@pytest.fixture
def without_yaml(monkeypatch: pytest.MonkeyPatch):
    """_deps as loaded on a host without PyYAML (None in sys.modules makes the import fail)."""
    monkeypatch.setitem(sys.modules, "yaml", None)
    yield importlib.reload(_deps)
    monkeypatch.undo()
    importlib.reload(_deps)


def test_present_libraries_pass() -> None:
    assert _deps.missing("netaddr") is None
    _deps.require(FailingModule(), "netaddr", "cryptography", "yaml")


def test_missing_yaml_names_the_package(without_yaml) -> None:
    assert without_yaml.missing("cryptography") is None
    with pytest.raises(SystemExit) as failure:
        without_yaml.require(FailingModule(), "cryptography", "yaml")
    result = failure.value.args[0]
    assert "required Python library (PyYAML)" in result["msg"]
    assert "yaml" in result["exception"].splitlines()[-1]  # the traceback of the failed import
