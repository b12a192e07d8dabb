# SPDX-License-Identifier: Apache-2.0
"""install_files core (node side) and the controller's source checksum, on real files: no mocks.

Tests run as root, so ownership is checked with root and nobody:nogroup.
"""

from __future__ import annotations

import base64
import grp
import hashlib
import os
import pwd
import re
import stat
from collections.abc import Iterator
from pathlib import Path

import pytest
from ansible_collections.scratch.kubernetes.plugins.module_utils._files import (
    DIFF_TEXT_LIMIT,
    FileError,
    WantedFile,
    cached_sha256,
    node_checksum_cache,
    reconcile,
    sha256_file,
    wanted_from_params,
)

NOBODY = pwd.getpwnam("nobody").pw_uid
NOGROUP = grp.getgrnam("nogroup").gr_gid
MIB = 1024 * 1024


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def mode_of(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def wanted(path: Path, data: bytes, mode: int = 0o644, *, send: bool = True, **kwargs) -> WantedFile:
    """``path`` as it should hold ``data``; ``send=False`` is the first call, which carries no content."""
    return WantedFile(str(path), sha256(data), mode, content=data if send else None, **kwargs)


def existing(path: Path, data: bytes, mode: int = 0o644) -> os.stat_result:
    """A root-owned file already in place; returns its stat to compare with afterwards."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    os.chown(path, 0, 0)
    path.chmod(mode)
    return path.stat()


def untouched(path: Path, before: os.stat_result) -> bool:
    """Same inode, same content time, same metadata: nothing wrote or replaced the file."""
    after = path.stat()
    return (after.st_ino, after.st_mtime_ns, after.st_ctime_ns, after.st_mode, after.st_uid) == (
        before.st_ino,
        before.st_mtime_ns,
        before.st_ctime_ns,
        before.st_mode,
        before.st_uid,
    )


@pytest.fixture(autouse=True)
def usual_umask() -> Iterator[None]:
    """Parents are made with os.makedirs(mode=0o755), which honours the umask of a usual node."""
    previous = os.umask(0o022)
    yield
    os.umask(previous)


# ---------------------------------------------------------------------------- reconcile


def test_missing_file_is_written_with_mode_owner_and_parents(tmp_path: Path) -> None:
    dest = tmp_path / "etc" / "app" / "config.yaml"
    report = reconcile([wanted(dest, b"key: value\n", 0o640, owner="nobody", group="nogroup")])
    assert report.changed == [str(dest)] and report.wanting == [] and report.diff == []
    assert dest.read_bytes() == b"key: value\n"
    assert mode_of(dest) == 0o640
    assert (dest.stat().st_uid, dest.stat().st_gid) == (NOBODY, NOGROUP)
    for parent in (dest.parent, dest.parent.parent):
        assert mode_of(parent) == 0o755
    assert sorted(p.name for p in dest.parent.iterdir()) == ["config.yaml"], "no temporary file left"


def test_identical_file_is_not_touched(tmp_path: Path) -> None:
    """A no-op must not rewrite: that would change mtime and wake every watcher of the file."""
    dest = tmp_path / "kubelet"
    before = existing(dest, b"binary", 0o755)
    for send in (False, True):
        report = reconcile([wanted(dest, b"binary", 0o755, send=send)])
        assert (report.changed, report.wanting, report.diff) == ([], [], [])
        assert untouched(dest, before)


def test_metadata_only_difference_is_fixed_in_place(tmp_path: Path) -> None:
    """Mode and owner are fixed without rewriting the content, whether or not the content came."""
    for send in (False, True):
        dest = tmp_path / f"sent-{send}"
        before = existing(dest, b"same\n", 0o600)
        report = reconcile([wanted(dest, b"same\n", 0o644, send=send, owner="nobody", group="nogroup")])
        assert report.changed == [str(dest)] and report.wanting == []
        after = dest.stat()
        assert (after.st_ino, after.st_mtime_ns) == (before.st_ino, before.st_mtime_ns)
        assert mode_of(dest) == 0o644 and (after.st_uid, after.st_gid) == (NOBODY, NOGROUP)


def test_differing_content_not_sent_is_wanted_and_file_untouched(tmp_path: Path) -> None:
    """The first call carries no content: the node names what it lacks and changes nothing."""
    dest, missing = tmp_path / "config", tmp_path / "sub" / "missing"
    before = existing(dest, b"old\n", 0o600)
    report = reconcile([wanted(dest, b"new\n", send=False), wanted(missing, b"x", send=False)])
    assert report.wanting == [str(dest), str(missing)]
    assert report.changed == [] and report.diff == []
    assert untouched(dest, before) and dest.read_bytes() == b"old\n"
    assert not missing.parent.exists()


def test_check_mode_reports_and_writes_nothing(tmp_path: Path) -> None:
    new = tmp_path / "sub" / "new"
    content = tmp_path / "content"
    metadata = tmp_path / "metadata"
    content_before = existing(content, b"old\n")
    metadata_before = existing(metadata, b"same\n", 0o600)
    files = [wanted(new, b"new\n"), wanted(content, b"new\n"), wanted(metadata, b"same\n", 0o644)]
    report = reconcile(files, check_mode=True, want_diff=True)
    assert report.changed == [str(new), str(content), str(metadata)]
    assert [d["after_header"] for d in report.diff] == report.changed
    assert not new.parent.exists()
    assert untouched(content, content_before) and content.read_bytes() == b"old\n"
    assert untouched(metadata, metadata_before)


def test_changed_keeps_the_order_given(tmp_path: Path) -> None:
    """changed_files is documented 'in the order given'; unchanged and wanting files are left out."""
    same, b, a, lacking = tmp_path / "same", tmp_path / "b", tmp_path / "a", tmp_path / "lacking"
    existing(same, b"same")
    report = reconcile(
        [wanted(b, b"b"), wanted(same, b"same"), wanted(lacking, b"l", send=False), wanted(a, b"a")]
    )
    assert report.changed == [str(b), str(a)] and report.wanting == [str(lacking)]


def test_staged_file_is_moved_into_place_and_removed(tmp_path: Path) -> None:
    data = os.urandom(MIB + 7)
    staged = tmp_path / "remote-tmp" / "abc-kubelet"
    staged.parent.mkdir()
    staged.write_bytes(data)
    dest = tmp_path / "bin" / "kubelet"
    existing(dest, b"old release")
    report = reconcile([WantedFile(str(dest), sha256(data), 0o755, staged=str(staged))])
    assert report.changed == [str(dest)]
    assert dest.read_bytes() == data and mode_of(dest) == 0o755
    assert not staged.exists()


def test_staged_file_with_wrong_checksum_fails_and_keeps_dest(tmp_path: Path) -> None:
    """A copy damaged on the way must never replace the node's file."""
    staged = tmp_path / "staged"
    staged.write_bytes(b"truncated")
    dest = tmp_path / "bin" / "kubelet"
    before = existing(dest, b"old release", 0o755)
    with pytest.raises(
        FileError, match=re.escape(f"{dest}: the copy sent to this host does not match its checksum")
    ):
        reconcile([WantedFile(str(dest), sha256(b"the full release"), 0o755, staged=str(staged))])
    assert untouched(dest, before) and dest.read_bytes() == b"old release"
    assert sorted(p.name for p in dest.parent.iterdir()) == ["kubelet"]


def test_directory_at_dest_is_an_error(tmp_path: Path) -> None:
    dest = tmp_path / "config.yaml"
    dest.mkdir()
    with pytest.raises(FileError, match="exists and is not a regular file"):
        reconcile([wanted(dest, b"x")])
    assert dest.is_dir() and list(dest.iterdir()) == []


@pytest.mark.parametrize(("owner", "group"), [("no-such-user", "root"), ("root", "no-such-group")])
def test_unknown_owner_or_group_is_an_error(tmp_path: Path, owner: str, group: str) -> None:
    dest = tmp_path / "sub" / "f"
    with pytest.raises(FileError, match=f"unknown owner or group {owner}:{group}"):
        reconcile([wanted(dest, b"x", owner=owner, group=group)])
    assert not dest.parent.exists()


def test_setuid_mode_survives_a_write(tmp_path: Path) -> None:
    """Otherwise the first run leaves 0755 and the second run 'changes' it to 4755."""
    dest = tmp_path / "helper"
    reconcile([wanted(dest, b"#!/bin/sh\n", 0o4755)])
    assert mode_of(dest) == 0o4755


# ---------------------------------------------------------------------------- diff


def test_diff_shows_small_text_whole_with_mode_and_owner(tmp_path: Path) -> None:
    """World-readable files are shown whole; a file others may not read (before or after) never is."""
    dest, new, private = tmp_path / "config", tmp_path / "new", tmp_path / "private"
    existing(dest, b"old: 1\n", 0o604)
    existing(private, b"key: old\n", 0o600)
    report = reconcile(
        [
            wanted(dest, b"new: 2\n", owner="nobody", group="nogroup"),
            wanted(new, b"fresh\n", 0o640),
            wanted(private, b"key: new\n", 0o644),
        ],
        want_diff=True,
    )
    assert report.diff == [
        {
            "before_header": str(dest),
            "after_header": str(dest),
            "before": "old: 1\nmode 0604, root:root\n",
            "after": "new: 2\nmode 0644, nobody:nogroup\n",
        },
        {
            "before_header": str(new),
            "after_header": str(new),
            "before": "",
            "after": "(private file)\nmode 0640, root:root\n",
        },
        {
            "before_header": str(private),
            "after_header": str(private),
            "before": "(private file)\nmode 0600, root:root\n",
            "after": "(private file)\nmode 0644, root:root\n",
        },
    ]


def test_diff_of_metadata_only_change_has_no_content(tmp_path: Path) -> None:
    dest = tmp_path / "config"
    existing(dest, b"same\n", 0o600)
    (diff,) = reconcile([wanted(dest, b"same\n", 0o644)], want_diff=True).diff
    assert (diff["before"], diff["after"]) == ("mode 0600, root:root\n", "mode 0644, root:root\n")


def test_diff_summarizes_large_and_binary_files(tmp_path: Path) -> None:
    """Megabytes of binary or text would swamp the output: sizes and checksums instead."""
    large_text = b"line\n" * (DIFF_TEXT_LIMIT // 5 + 1)
    binary = b"\x7fELF\xff\xfe\x00"
    new_text, new_binary = large_text + b"more\n", binary + b"\xff"
    files = {tmp_path / "large": (large_text, new_text), tmp_path / "binary": (binary, new_binary)}
    for path, (old, _new) in files.items():
        existing(path, old)
    report = reconcile([wanted(path, new) for path, (_old, new) in files.items()], want_diff=True)
    large, binary_diff = report.diff
    assert large["before"] == f"({len(large_text)} bytes)\nmode 0644, root:root\n"
    assert large["after"] == f"(content with sha256 {sha256(new_text)})\nmode 0644, root:root\n"
    assert binary_diff["before"] == f"({len(binary)} bytes of binary data)\nmode 0644, root:root\n"
    assert binary_diff["after"] == f"(content with sha256 {sha256(new_binary)})\nmode 0644, root:root\n"


def test_diff_of_staged_file_names_its_checksum(tmp_path: Path) -> None:
    staged, dest = tmp_path / "staged", tmp_path / "dest"
    staged.write_bytes(b"x" * 10)
    (diff,) = reconcile(
        [WantedFile(str(dest), sha256(b"x" * 10), 0o755, staged=str(staged))], want_diff=True
    ).diff
    assert diff["after"] == f"(content with sha256 {sha256(b'x' * 10)})\nmode 0755, root:root\n"


def test_no_diff_unless_asked(tmp_path: Path) -> None:
    assert reconcile([wanted(tmp_path / "f", b"x")]).diff == []


# ---------------------------------------------------------------------------- module parameters


def test_wanted_from_params_text_content() -> None:
    (file,) = wanted_from_params([{"dest": "/etc/a", "content": "héllo\n", "mode": "0600"}])
    assert file == WantedFile("/etc/a", sha256("héllo\n".encode()), 0o600, "root", "root", "héllo\n".encode())


def test_wanted_from_params_base64_content_and_owner() -> None:
    data = b"\x00\xffbinary"
    (file,) = wanted_from_params(
        [
            {
                "dest": "/usr/local/bin/x",
                "content_base64": base64.b64encode(data).decode(),
                "sha256": sha256(data),
                "mode": "755",
                "owner": "nobody",
                "group": "nogroup",
            }
        ]
    )
    assert file == WantedFile("/usr/local/bin/x", sha256(data), 0o755, "nobody", "nogroup", data)


def test_wanted_from_params_checksum_only_and_staged() -> None:
    """The first call names the checksum only; a staged file keeps its path and carries no content."""
    digest = sha256(b"large")
    query, staged = wanted_from_params(
        [
            {"dest": "/a", "sha256": digest, "mode": "0644", "owner": None, "group": None, "content": None},
            {"dest": "/b", "sha256": digest, "mode": "0755", "staged": "/tmp/ansible-tmp-1/x"},
        ]
    )
    assert query == WantedFile("/a", digest, 0o644)
    assert staged == WantedFile("/b", digest, 0o755, staged="/tmp/ansible-tmp-1/x")


@pytest.mark.parametrize("mode", ["0694", "u+x", "rw-r--r--", ""])
def test_wanted_from_params_rejects_a_mode_that_is_not_octal(mode: str) -> None:
    with pytest.raises(FileError, match=re.escape(f"/etc/a: mode '{mode}' is not an octal number")):
        wanted_from_params([{"dest": "/etc/a", "content": "x", "mode": mode}])


@pytest.mark.parametrize("mode", ["-644", "10644"])
def test_wanted_from_params_rejects_a_mode_out_of_range(mode: str) -> None:
    """chmod(-0o644) sets 07134 (setuid, setgid, sticky); 0o10644 never compares equal, so never converges."""
    with pytest.raises(FileError, match="/etc/a: mode"):
        wanted_from_params([{"dest": "/etc/a", "content": "x", "mode": mode}])


def test_sha256_file_reads_in_chunks(tmp_path: Path) -> None:
    data = os.urandom(2 * MIB + 3)
    path = tmp_path / "f"
    path.write_bytes(data)
    assert sha256_file(str(path)) == sha256(data)


# ---------------------------------------------------------------------------- cached_sha256


def sidecar(path: Path) -> Path:
    return path.with_name(f".{path.name}.sha256")


def stamp(path: Path) -> str:
    info = path.stat()
    return f"{info.st_size} {info.st_mtime_ns} {info.st_ctime_ns} {info.st_ino}"


def test_small_source_is_hashed_without_a_sidecar(tmp_path: Path) -> None:
    """Just under 1 MiB: hashing is cheap, and artifact directories stay free of cache files."""
    data = os.urandom(MIB - 1)
    path = tmp_path / "kubectl"
    path.write_bytes(data)
    assert cached_sha256(str(path)) == sha256(data)
    assert [p.name for p in tmp_path.iterdir()] == ["kubectl"]


def test_large_cached_sha256_is_cached_and_reused(tmp_path: Path) -> None:
    data = os.urandom(MIB)
    path = tmp_path / "kubelet"
    path.write_bytes(data)
    assert cached_sha256(str(path)) == sha256(data)
    assert sidecar(path).read_text() == f"{stamp(path)} {sha256(data)}\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == [".kubelet.sha256", "kubelet"]

    # Same stamp: the sidecar is believed, so a digest no hash of the file could give proves reuse.
    sidecar(path).write_text(f"{stamp(path)} {'0' * 64}\n")
    assert cached_sha256(str(path)) == "0" * 64


def test_large_cached_sha256_is_recomputed_when_rewritten_with_its_old_mtime(tmp_path: Path) -> None:
    """Same size, mtime put back (touch -r): the change time still gives the rewrite away."""
    data = os.urandom(MIB)
    path = tmp_path / "kubelet"
    path.write_bytes(data)
    cached_sha256(str(path))
    info = path.stat()
    tampered = bytes([data[0] ^ 1]) + data[1:]
    with open(path, "r+b") as handle:
        handle.write(tampered[:1])
    os.utime(path, ns=(info.st_atime_ns, info.st_mtime_ns))
    assert path.stat().st_mtime_ns == info.st_mtime_ns
    assert cached_sha256(str(path)) == sha256(tampered)


def test_cache_elsewhere_is_made_private_and_keep_false_writes_none(tmp_path: Path) -> None:
    data = os.urandom(MIB)
    path = tmp_path / "bin" / "kubelet"
    existing(path, data)
    cache = node_checksum_cache(str(tmp_path / "checksums"), str(path))
    assert cache == str(tmp_path / "checksums" / sha256(str(path).encode()))

    assert cached_sha256(str(path), cache, keep=False) == sha256(data)
    assert not (tmp_path / "checksums").exists()
    assert cached_sha256(str(path), cache) == sha256(data)
    assert mode_of(tmp_path / "checksums") == 0o700
    assert Path(cache).read_text() == f"{stamp(path)} {sha256(data)}\n"
    assert sorted(p.name for p in path.parent.iterdir()) == ["kubelet"]
    # keep=False still believes a cache that is there.
    Path(cache).write_text(f"{stamp(path)} {'0' * 64}\n")
    assert cached_sha256(str(path), cache, keep=False) == "0" * 64


def test_reconcile_keeps_checksums_of_large_files_it_writes_and_reads_them_back(tmp_path: Path) -> None:
    data = os.urandom(MIB)
    path = tmp_path / "bin" / "kubelet"
    checksums = tmp_path / "checksums"
    report = reconcile([wanted(path, data, 0o755)], checksum_dir=str(checksums))
    assert report.changed == [str(path)]
    cache = Path(node_checksum_cache(str(checksums), str(path)))
    assert cache.read_text() == f"{stamp(path)} {sha256(data)}\n"

    # The next run believes the cache: a digest no hash of the file could give proves it.
    cache.write_text(f"{stamp(path)} {'0' * 64}\n")
    before = path.stat()
    report = reconcile([WantedFile(str(path), "0" * 64, 0o755)], checksum_dir=str(checksums))
    assert report.changed == [] and report.wanting == []
    assert untouched(path, before)


def test_reconcile_in_check_mode_writes_no_checksum(tmp_path: Path) -> None:
    data = os.urandom(MIB)
    path = tmp_path / "kubelet"
    existing(path, data)
    report = reconcile([wanted(path, data)], check_mode=True, checksum_dir=str(tmp_path / "checksums"))
    assert report.changed == []
    assert not (tmp_path / "checksums").exists()


def test_large_cached_sha256_is_recomputed_when_mtime_or_size_changes(tmp_path: Path) -> None:
    data = os.urandom(MIB)
    path = tmp_path / "kubelet"
    path.write_bytes(data)
    cached_sha256(str(path))
    sidecar(path).write_text(f"{stamp(path)} {'0' * 64}\n")

    info = path.stat()
    os.utime(path, ns=(info.st_atime_ns, info.st_mtime_ns + 1_000_000_000))
    assert cached_sha256(str(path)) == sha256(data)
    assert sidecar(path).read_text() == f"{stamp(path)} {sha256(data)}\n"

    # New content of another size, mtime put back: the size alone invalidates the cache.
    mtime = path.stat().st_mtime_ns
    path.write_bytes(data + b"!")
    os.utime(path, ns=(mtime, mtime))
    assert cached_sha256(str(path)) == sha256(data + b"!")


@pytest.mark.parametrize("content", ["", "garbage", "1 2\n", "\x00\x01"])
def test_unreadable_sidecar_is_replaced(tmp_path: Path, content: str) -> None:
    data = os.urandom(MIB)
    path = tmp_path / "etcd"
    path.write_bytes(data)
    sidecar(path).write_text(content)
    assert cached_sha256(str(path)) == sha256(data)
    assert sidecar(path).read_text() == f"{stamp(path)} {sha256(data)}\n"
