# SPDX-License-Identifier: Apache-2.0
"""scratch.kubernetes.install_files through real Ansible: action plugin and module together.

One task installs text content, a small source (sent inline) and a source over 1 MiB (copied to
the node's temporary directory first), so both ways content travels are exercised.
"""

from __future__ import annotations

import hashlib
import os
import stat
from pathlib import Path

import pytest

CONFIG = "apiVersion: v1\nkind: Config\n"
UNIT = b"[Unit]\nDescription=kubelet\n"
LARGE = 1024 * 1024 + 17  # over the action plugin's 1 MiB threshold: staged, checksum cached


def mode_of(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


class Layout:
    """Controller sources in ``src/``, node destinations under ``node/``."""

    def __init__(self, root: Path) -> None:
        self.src = root / "src"
        self.src.mkdir()
        self.unit_src = self.src / "kubelet.service"
        self.unit_src.write_bytes(UNIT)
        self.binary = os.urandom(LARGE)
        self.binary_src = self.src / "kubelet"
        self.binary_src.write_bytes(self.binary)
        node = root / "node"
        self.config = node / "var" / "lib" / "kubelet" / "config.yaml"
        self.unit = node / "etc" / "systemd" / "system" / "kubelet.service"
        self.kubelet = node / "usr" / "local" / "bin" / "kubelet"
        self.node = node

    @property
    def dests(self) -> list[str]:
        return [str(self.config), str(self.unit), str(self.kubelet)]

    def args(self, content: str = CONFIG) -> dict:
        return {
            "files": [
                {"content": content, "dest": str(self.config), "mode": "0600"},
                {"src": str(self.unit_src), "dest": str(self.unit)},
                {"src": str(self.binary_src), "dest": str(self.kubelet), "mode": "0755"},
            ]
        }


@pytest.fixture(name="layout")
def layout_fixture(tmp_path: Path) -> Layout:
    return Layout(tmp_path)


def test_install_then_rerun_changes_nothing(run_module, layout: Layout) -> None:
    first = run_module("install_files", layout.args())
    assert not first.get("failed"), first.get("msg")
    assert first["changed"] is True
    assert first["changed_files"] == layout.dests
    assert layout.config.read_text() == CONFIG and mode_of(layout.config) == 0o600
    assert layout.unit.read_bytes() == UNIT and mode_of(layout.unit) == 0o644
    assert layout.kubelet.read_bytes() == layout.binary and mode_of(layout.kubelet) == 0o755
    assert mode_of(layout.kubelet.parent) == 0o755
    digest = hashlib.sha256(layout.binary).hexdigest()
    assert (layout.src / ".kubelet.sha256").read_text().endswith(f" {digest}\n"), "large source cached"
    assert not (layout.src / ".kubelet.service.sha256").exists(), "small source not cached"

    inodes = [Path(dest).stat().st_ino for dest in layout.dests]
    for check in (False, True):
        again = run_module("install_files", layout.args(), check=check)
        assert not again.get("failed"), again.get("msg")
        assert again["changed"] is False, f"check={check}: {again}"
        assert again["changed_files"] == []
    assert [Path(dest).stat().st_ino for dest in layout.dests] == inodes, "nothing rewritten"


def test_check_mode_on_fresh_node_writes_nothing(run_module, layout: Layout) -> None:
    checked = run_module("install_files", layout.args(), check=True, diff=True)
    assert not checked.get("failed"), checked.get("msg")
    assert checked["changed"] is True
    assert checked["changed_files"] == layout.dests
    assert sorted(d["after_header"] for d in checked["diff"]) == sorted(layout.dests)
    assert not layout.node.exists()


def test_diff_shows_text_change(run_module, layout: Layout) -> None:
    assert run_module("install_files", layout.args())["changed"] is True
    new = "apiVersion: v1\nkind: Config\npreferences: {}\n"
    changed = run_module("install_files", layout.args(content=new), diff=True)
    assert not changed.get("failed"), changed.get("msg")
    assert changed["changed_files"] == [str(layout.config)]
    assert changed["diff"] == [
        {
            "before_header": str(layout.config),
            "after_header": str(layout.config),
            # 0600: the content is never shown.
            "before": "(private file)\nmode 0600, root:root\n",
            "after": "(private file)\nmode 0600, root:root\n",
        }
    ]
    assert layout.config.read_text() == new


def test_mode_only_change_is_fixed_in_place(run_module, layout: Layout) -> None:
    assert run_module("install_files", layout.args())["changed"] is True
    layout.kubelet.chmod(0o700)
    before = layout.kubelet.stat()
    fixed = run_module("install_files", layout.args(), diff=True)
    assert not fixed.get("failed"), fixed.get("msg")
    assert fixed["changed_files"] == [str(layout.kubelet)]
    assert fixed["diff"] == [
        {
            "before_header": str(layout.kubelet),
            "after_header": str(layout.kubelet),
            "before": "mode 0700, root:root\n",
            "after": "mode 0755, root:root\n",
        }
    ]
    after = layout.kubelet.stat()
    assert mode_of(layout.kubelet) == 0o755
    assert (after.st_ino, after.st_mtime_ns) == (before.st_ino, before.st_mtime_ns)


def test_missing_source_fails_before_touching_the_node(run_module, layout: Layout) -> None:
    args = layout.args()
    args["files"][1]["src"] = str(layout.src / "absent")
    failed = run_module("install_files", args)
    assert failed["failed"] is True
    assert failed["msg"].startswith(
        f"cannot read {layout.src / 'absent'} on the controller for {layout.unit}:"
    )
    assert not layout.node.exists()


def test_content_and_src_together_are_refused(run_module, layout: Layout) -> None:
    args = {"files": [{"content": "x", "src": str(layout.unit_src), "dest": str(layout.unit)}]}
    failed = run_module("install_files", args)
    assert failed["failed"] is True
    assert "mutually exclusive: src|content" in failed["msg"]
    assert not layout.node.exists()


def test_check_mode_diff_is_shown_by_callbacks(run_module, layout: Layout) -> None:
    """Callbacks render a diff only when it has both 'before' and 'after'; else --check --diff is silent."""
    checked = run_module("install_files", layout.args(), check=True, diff=True)
    assert checked["diff"] and all("before" in d and "after" in d for d in checked["diff"])


def test_unquoted_yaml_mode_is_not_misread(run_module, layout: Layout) -> None:
    """YAML reads an unquoted ``mode: 0644`` as the int 420; it must fail or mean 0644, never 0420."""
    args = {"files": [{"content": CONFIG, "dest": str(layout.config), "mode": 0o644}]}
    result = run_module("install_files", args)
    assert result.get("failed") or mode_of(layout.config) == 0o644
