# SPDX-License-Identifier: Apache-2.0
"""cluster_pki through real Ansible: check mode on a fresh state, run, reruns, a bad encryption key.

What each file holds is checked by tests/unit/test_pki_cluster.py; here, what a playbook sees.
"""

from __future__ import annotations

import sys
from pathlib import Path

from test_pki_modules import mode_of

# Which files the state holds, with their modes, as the core's unit tests know them.
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "unit"))
from _pki_layout import PKI_FILES


def cluster_args(state: Path) -> dict:
    """What roles/pki/tasks/main.yml passes, with cluster_defaults' layout."""
    return {
        "state_dir": str(state),
        "pki_dir": str(state / "pki"),
        "cluster_name": "demo",
        "admin_kubeconfig_path": str(state / "admin.kubeconfig"),
        "apiserver_url": "https://10.0.0.1:6443",
    }


def test_check_mode_run_and_reruns(run_module, tmp_path: Path) -> None:
    state = tmp_path / "state"
    state.mkdir()
    state.chmod(0o700)
    args = cluster_args(state)
    kubeconfig = state / "admin.kubeconfig"

    check = run_module("cluster_pki", args, check=True)
    assert check["changed"] and not check.get("failed"), check
    assert any(reason.startswith(f"{kubeconfig}: ") for reason in check["reasons"]), check
    assert list(state.iterdir()) == [], "check mode wrote something"

    first = run_module("cluster_pki", args)
    assert first["changed"] and not first.get("failed"), first
    assert first["reasons"][-1] == f"{kubeconfig} does not exist"
    assert "PRIVATE" not in repr(first)
    assert mode_of(state / "pki") == 0o700 and mode_of(kubeconfig) == 0o600
    assert {name: mode_of(state / "pki" / name) for name in PKI_FILES} == PKI_FILES
    contents = {path: path.read_bytes() for path in [kubeconfig, *(state / "pki").iterdir()]}

    recheck = run_module("cluster_pki", args, check=True)
    assert not recheck["changed"] and recheck["reasons"] == [], recheck
    rerun = run_module("cluster_pki", args)
    assert not rerun["changed"] and rerun["reasons"] == [], rerun
    assert {path: path.read_bytes() for path in [kubeconfig, *(state / "pki").iterdir()]} == contents


def test_bad_encryption_key_fails_and_is_kept(run_module, tmp_path: Path) -> None:
    state = tmp_path / "state"
    (state / "pki").mkdir(parents=True)
    encryption_key = state / "pki" / "encryption.key"
    encryption_key.write_text("too short\n")

    failed = run_module("cluster_pki", cluster_args(state))

    assert failed["failed"], failed
    assert f"path {encryption_key} exists but does not hold base64 of exactly 32 bytes" in failed["msg"]
    assert encryption_key.read_text() == "too short\n"
