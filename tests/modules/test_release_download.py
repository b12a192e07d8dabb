# SPDX-License-Identifier: Apache-2.0
"""scratch.kubernetes.release_download through real Ansible, against a real local HTTP server."""

from __future__ import annotations

import stat
import sys
from pathlib import Path

import pytest

# The HTTP server helper is shared with the core's unit tests.
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "unit"))
from _http_server import BINARY, ETCD, ETCD_ARCHIVE, release_server, sha256


@pytest.fixture(name="server")
def server_fixture(tmp_path: Path):
    with release_server(tmp_path / "www") as server:
        yield server


def test_plain_file_check_run_and_reruns(run_module, server, tmp_path):
    dest = tmp_path / "bin" / "kubectl"
    args = {
        "url": server.url(BINARY),
        "checksum": f"sha256:{server.url(f'{BINARY}.sha256')}",
        "dest": str(dest),
        "mode": "0750",
        "cache_dir": str(tmp_path / "cache"),
    }
    checked = run_module("release_download", args, check=True, diff=True)
    assert not checked.get("failed"), checked.get("msg")
    assert checked["changed"] is True
    assert not dest.exists()

    first = run_module("release_download", args, diff=True)
    assert first["changed"] is True, first.get("msg")
    assert first["sha256"] == server.sha(BINARY)
    assert first["installed"] == [str(dest)]
    assert first["cached"] is False
    assert first["diff"] == {
        "before": {str(dest): {"sha256": "absent"}},
        "after": {str(dest): {"sha256": server.sha(BINARY)}},
    }
    assert dest.read_bytes() == server.files[BINARY]
    assert stat.S_IMODE(dest.stat().st_mode) == 0o750

    server.requests.clear()
    for check in (True, False):
        again = run_module("release_download", args, check=check)
        assert again["changed"] is False, f"check={check}: {again.get('msg')}"
    assert server.requests == [], "checksum file and artifact both come from the cache"

    dest.chmod(0o700)
    fixed = run_module("release_download", args, diff=True)
    assert fixed["changed"] is True
    assert fixed["diff"]["after"][str(dest)]["mode"] == "0750"
    assert stat.S_IMODE(dest.stat().st_mode) == 0o750


def test_wrong_checksum_fails_and_keeps_dest(run_module, server, tmp_path):
    dest = tmp_path / "kubectl"
    dest.write_bytes(b"old release\n")
    wrong = "0" * 64
    result = run_module(
        "release_download", {"url": server.url(BINARY), "checksum": f"sha256:{wrong}", "dest": str(dest)}
    )
    assert result["failed"] is True
    assert result["msg"] == (
        f"Checksum mismatch for {server.url(BINARY)}: expected sha256 {wrong}, got {server.sha(BINARY)}; "
        "fix checksum, or the artifact at url."
    )
    assert dest.read_bytes() == b"old release\n"


def test_extract_check_run_and_reruns(run_module, server, tmp_path):
    dest = tmp_path / "etcd"
    args = {
        "url": server.url(ETCD_ARCHIVE),
        "checksum": f"sha256:{server.url('SHA256SUMS')}",
        "dest": str(dest),
        "extract": {"members": [f"{ETCD}/etcd", f"{ETCD}/etcdctl"], "strip_components": 1},
        "cache_dir": str(tmp_path / "cache"),
    }
    installed = [str(dest / "etcd"), str(dest / "etcdctl")]
    assert run_module("release_download", args, check=True)["changed"] is True
    assert not dest.exists()

    first = run_module("release_download", args)
    assert first["changed"] is True, first.get("msg")
    assert first["installed"] == installed
    assert first["sha256"] == server.sha(ETCD_ARCHIVE)
    for name in ("etcd", "etcdctl"):
        assert (dest / name).read_bytes() == server.members[f"{ETCD}/{name}"]
        assert stat.S_IMODE((dest / name).stat().st_mode) == 0o755

    server.requests.clear()
    for check in (True, False):
        again = run_module("release_download", args, check=check)
        assert again["changed"] is False, f"check={check}: {again.get('msg')}"
        assert again["installed"] == installed

    (dest / "etcd").write_bytes(b"tampered")
    repaired = run_module("release_download", args, diff=True)
    assert repaired["changed"] is True
    assert repaired["cached"] is True
    assert repaired["diff"]["before"][str(dest / "etcd")] == {"sha256": sha256(b"tampered")}
    assert (dest / "etcd").read_bytes() == server.members[f"{ETCD}/etcd"]
    assert server.requests == []
