# SPDX-License-Identifier: Apache-2.0
"""The download core against a real HTTP server on 127.0.0.1 (no mocked HTTP layer)."""

from __future__ import annotations

import io
import json
import stat
import tarfile
from pathlib import Path

import pytest
from _http_server import (
    BINARY,
    CNI_ARCHIVE,
    CORRUPT_ARCHIVE,
    ETCD,
    ETCD_ARCHIVE,
    ReleaseServer,
    release_server,
    sha256,
)
from ansible_collections.scratch.kubernetes.plugins.module_utils._download import (
    STAMP_NAME,
    DownloadError,
    Extract,
    Release,
    Transport,
    parse_checksum_file,
    release_download,
)

FAST = Transport(timeout=5, retries=1, backoff=0)


@pytest.fixture(name="server")
def server_fixture(tmp_path: Path):
    with release_server(tmp_path / "www") as server:
        yield server


def plain(server: ReleaseServer, dest: Path, **kwargs) -> Release:
    kwargs.setdefault("checksum", f"sha256:{server.sha(BINARY)}")
    return Release(url=server.url(BINARY), dest=str(dest), **kwargs)


def etcd(server: ReleaseServer, dest: Path, members=("etcd", "etcdctl"), **kwargs) -> Release:
    return Release(
        url=server.url(ETCD_ARCHIVE),
        checksum=f"sha256:{server.url('SHA256SUMS')}",
        dest=str(dest),
        extract=Extract(tuple(f"{ETCD}/{name}" for name in members), strip_components=1),
        **kwargs,
    )


def leftovers(directory: Path) -> list[str]:
    """Temporary files an interrupted install would leave behind."""
    return sorted(path.name for path in directory.iterdir() if path.name.startswith(".") and path.is_file())


def test_installs_plain_file_with_mode(server, tmp_path):
    dest = tmp_path / "bin" / "kubectl"
    outcome = release_download(plain(server, dest, mode=0o750), FAST)
    assert outcome.changed
    assert not outcome.cached
    assert outcome.sha256 == server.sha(BINARY)
    assert outcome.installed == [str(dest)]
    assert dest.read_bytes() == server.files[BINARY]
    assert stat.S_IMODE(dest.stat().st_mode) == 0o750
    assert outcome.before == {str(dest): {"sha256": "absent"}}
    assert outcome.after == {str(dest): {"sha256": server.sha(BINARY)}}
    assert leftovers(dest.parent) == []


def test_rerun_is_unchanged_without_any_request(server, tmp_path):
    dest = tmp_path / "kubectl"
    release_download(plain(server, dest), FAST)
    server.requests.clear()
    outcome = release_download(plain(server, dest), FAST)
    assert not outcome.changed
    assert server.requests == []


@pytest.mark.parametrize(
    ("artifact", "checksum_file"),
    [(BINARY, f"{BINARY}.sha256"), (ETCD_ARCHIVE, "SHA256SUMS"), (CNI_ARCHIVE, "SHA256SUMS")],
    ids=["bare-sha256", "sums-two-spaces", "sums-star-dot-slash"],
)
def test_checksum_from_a_checksum_file(server, tmp_path, artifact, checksum_file):
    dest = tmp_path / artifact
    release = Release(server.url(artifact), f"sha256:{server.url(checksum_file)}", str(dest))
    outcome = release_download(release, FAST)
    assert outcome.sha256 == server.sha(artifact)
    assert dest.read_bytes() == server.files[artifact]


def test_checksum_file_without_a_line_for_the_artifact_fails(server, tmp_path):
    release = plain(server, tmp_path / "kubectl", checksum=f"sha256:{server.url('SHA256SUMS')}")
    with pytest.raises(DownloadError, match=r"has no sha256 line for kubectl \(it lists: etcd"):
        release_download(release, FAST)
    assert server.requests == ["/SHA256SUMS"]


def test_parse_checksum_file_picks_the_named_line():
    digest = "ab" * 32
    text = f"# comment\n{'cd' * 32}  other.tgz\n{digest.upper()} *./wanted.tgz\r\n"
    assert parse_checksum_file(text, "wanted.tgz", "u") == digest
    with pytest.raises(DownloadError, match=r"no sha256 line for missing\.tgz"):
        parse_checksum_file(text, "missing.tgz", "u")


@pytest.mark.parametrize(
    ("checksum", "message"),
    [
        (f"md5:{'0' * 32}", "algorithm 'md5' is not supported"),
        ("0" * 64, "has no algorithm"),
        ("sha256:abc", "is malformed"),
    ],
)
def test_bad_checksum_settings_fail_before_any_request(server, tmp_path, checksum, message):
    with pytest.raises(DownloadError, match=message):
        release_download(plain(server, tmp_path / "kubectl", checksum=checksum), FAST)
    assert server.requests == []


def test_wrong_checksum_keeps_the_old_file(server, tmp_path):
    dest = tmp_path / "kubectl"
    dest.write_bytes(b"old release\n")
    wrong = "f" * 64
    with pytest.raises(DownloadError) as raised:
        release_download(plain(server, dest, checksum=f"sha256:{wrong}"), FAST)
    message = str(raised.value)
    assert f"expected sha256 {wrong}, got {server.sha(BINARY)}" in message
    assert server.url(BINARY) in message
    assert "\n" not in message
    assert dest.read_bytes() == b"old release\n"
    assert leftovers(tmp_path) == []
    assert len(server.requests) == 1, "a checksum mismatch is not retried"


def test_http_404_fails_without_retry(server, tmp_path):
    release = Release(server.url("kubectl-missing"), f"sha256:{'0' * 64}", str(tmp_path / "kubectl"))
    with pytest.raises(DownloadError, match=r"kubectl-missing failed with HTTP 404 "):
        release_download(release, FAST)
    assert server.requests == ["/kubectl-missing"]


def test_truncated_body_fails_after_retries_and_keeps_dest(server, tmp_path):
    dest = tmp_path / "kubectl"
    dest.write_bytes(b"old release\n")
    release = Release(server.url(f"truncated/{BINARY}"), f"sha256:{server.sha(BINARY)}", str(dest))
    with pytest.raises(DownloadError, match=r"after 2 attempt\(s\): truncated body: received \d+ of \d+"):
        release_download(release, FAST)
    assert len(server.requests) == 2
    assert dest.read_bytes() == b"old release\n"
    assert leftovers(tmp_path) == []


def test_timeout_fails_clearly(server, tmp_path):
    release = Release(server.url(f"slow/{BINARY}"), f"sha256:{server.sha(BINARY)}", str(tmp_path / "k"))
    with pytest.raises(DownloadError, match=r"after 1 attempt\(s\): timed out; .*timeout/retries"):
        release_download(release, Transport(timeout=0.3, retries=0))
    assert not (tmp_path / "k").exists()


def test_transient_server_error_is_retried(server, tmp_path):
    dest = tmp_path / "kubectl"
    release = Release(server.url(f"flaky/{BINARY}"), f"sha256:{server.sha(BINARY)}", str(dest))
    assert release_download(release, FAST).changed
    assert server.requests == [f"/flaky/{BINARY}"] * 2
    assert dest.read_bytes() == server.files[BINARY]


def test_extract_members_with_strip_components(server, tmp_path):
    dest = tmp_path / "bin"
    outcome = release_download(etcd(server, dest, mode=0o755), FAST)
    assert outcome.changed
    assert outcome.sha256 == server.sha(ETCD_ARCHIVE)
    assert outcome.installed == [str(dest / "etcd"), str(dest / "etcdctl")]
    for name in ("etcd", "etcdctl"):
        assert (dest / name).read_bytes() == server.members[f"{ETCD}/{name}"]
        assert stat.S_IMODE((dest / name).stat().st_mode) == 0o755
        assert outcome.after[str(dest / name)] == {"sha256": sha256(server.members[f"{ETCD}/{name}"])}
    assert not (dest / "README.md").exists()
    stamp = json.loads((dest / STAMP_NAME).read_text())
    assert stamp["etcd"]["archive_sha256"] == server.sha(ETCD_ARCHIVE)
    assert stamp["etcd"]["member"] == f"{ETCD}/etcd"

    server.requests.clear()
    assert not release_download(etcd(server, dest), FAST).changed
    assert server.requests == ["/SHA256SUMS"], "without cache_dir only the checksum file is fetched"


def test_extract_dot_slash_member_and_subdirectory(server, tmp_path):
    release = Release(
        server.url(CNI_ARCHIVE),
        f"sha256:{server.sha(CNI_ARCHIVE)}",
        str(tmp_path / "cni"),
        extract=Extract(("./bridge", "loopback")),
    )
    outcome = release_download(release, FAST)
    assert outcome.installed == [str(tmp_path / "cni" / "bridge"), str(tmp_path / "cni" / "loopback")]
    assert (tmp_path / "cni" / "bridge").read_bytes() == server.members["./bridge"]

    # As with GNU tar, a written "./" is a component that strip_components removes.
    stripped = Release(release.url, release.checksum, str(tmp_path / "s"), extract=Extract(("./bridge",), 1))
    assert release_download(stripped, FAST).installed == [str(tmp_path / "s" / "bridge")]

    nested = Release(
        server.url(ETCD_ARCHIVE),
        f"sha256:{server.sha(ETCD_ARCHIVE)}",
        str(tmp_path / "opt"),
        extract=Extract((f"{ETCD}/etcd",)),
    )
    release_download(nested, FAST)
    assert (tmp_path / "opt" / ETCD / "etcd").read_bytes() == server.members[f"{ETCD}/etcd"]


def test_missing_member_lists_the_archive_and_installs_nothing(server, tmp_path):
    dest = tmp_path / "bin"
    with pytest.raises(DownloadError) as raised:
        release_download(etcd(server, dest, members=("etcd", "etcdutl")), FAST)
    message = str(raised.value)
    assert f"has no member {ETCD}/etcdutl; it contains {ETCD}, {ETCD}/etcd, {ETCD}/etcdctl," in message
    assert not (dest / "etcd").exists()
    assert leftovers(dest) == []


@pytest.mark.parametrize(
    ("member", "strip", "message"),
    [
        ("../etc/passwd", 0, "would escape dest"),
        ("/etc/passwd", 0, "would escape dest"),
        (f"{ETCD}/../../evil", 1, "would escape dest"),
        (f"{ETCD}/etcd", 2, "removes every component"),
    ],
)
def test_unsafe_or_empty_member_paths_are_rejected(server, tmp_path, member, strip, message):
    release = Release(
        server.url(ETCD_ARCHIVE),
        f"sha256:{server.sha(ETCD_ARCHIVE)}",
        str(tmp_path / "bin"),
        extract=Extract((member,), strip),
    )
    with pytest.raises(DownloadError, match=message):
        release_download(release, FAST)
    assert server.requests == []


def test_member_linking_outside_the_archive_is_rejected(server, tmp_path):
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as tar:
        link = tarfile.TarInfo("evil")
        link.type = tarfile.SYMTYPE
        link.linkname = "../../etc/passwd"
        tar.addfile(link)
    server.put("evil.tgz", buffer.getvalue())
    release = Release(
        server.url("evil.tgz"),
        f"sha256:{server.sha('evil.tgz')}",
        str(tmp_path / "bin"),
        extract=Extract(("evil",)),
    )
    with pytest.raises(DownloadError, match=r"links to \.\./\.\./etc/passwd, which the archive lacks"):
        release_download(release, FAST)
    assert not (tmp_path / "bin" / "evil").exists()


def test_corrupt_archive_fails_clearly(server, tmp_path):
    release = Release(
        server.url(CORRUPT_ARCHIVE),
        f"sha256:{server.url('SHA256SUMS')}",
        str(tmp_path / "bin"),
        extract=Extract(("etcd",)),
    )
    with pytest.raises(DownloadError, match=r"is not a readable tar\.gz"):
        release_download(release, FAST)
    assert not (tmp_path / "bin" / "etcd").exists()


def test_cache_serves_other_destinations_without_requests(server, tmp_path):
    cache = tmp_path / "cache"
    first = release_download(etcd(server, tmp_path / "a", members=("etcd",), cache_dir=str(cache)), FAST)
    assert not first.cached
    assert (cache / server.sha(ETCD_ARCHIVE) / ETCD_ARCHIVE).read_bytes() == server.files[ETCD_ARCHIVE]

    server.requests.clear()
    second = release_download(etcd(server, tmp_path / "b", cache_dir=str(cache)), FAST)
    other = release_download(etcd(server, tmp_path / "a", members=("etcdctl",), cache_dir=str(cache)), FAST)
    assert second.changed and second.cached
    assert other.changed and other.cached
    assert server.requests == []
    assert set(json.loads((tmp_path / "a" / STAMP_NAME).read_text())) == {"etcd", "etcdctl"}

    forced = release_download(etcd(server, tmp_path / "c", cache_dir=str(cache), force=True), FAST)
    assert not forced.cached
    assert server.requests == ["/SHA256SUMS", f"/{ETCD_ARCHIVE}"]


def test_corrupted_cache_entry_is_fetched_again(server, tmp_path):
    cache = tmp_path / "cache"
    release_download(plain(server, tmp_path / "a", cache_dir=str(cache)), FAST)
    (cache / server.sha(BINARY) / BINARY).write_bytes(b"bit rot")
    outcome = release_download(plain(server, tmp_path / "b", cache_dir=str(cache)), FAST)
    assert not outcome.cached
    assert (tmp_path / "b").read_bytes() == server.files[BINARY]
    assert (cache / server.sha(BINARY) / BINARY).read_bytes() == server.files[BINARY]


def test_modified_plain_file_is_replaced(server, tmp_path):
    dest = tmp_path / "kubectl"
    release_download(plain(server, dest), FAST)
    dest.write_bytes(b"tampered")
    outcome = release_download(plain(server, dest), FAST)
    assert outcome.changed
    assert outcome.before == {str(dest): {"sha256": sha256(b"tampered")}}
    assert dest.read_bytes() == server.files[BINARY]


def test_modified_member_is_detected_and_only_it_reinstalled(server, tmp_path):
    dest = tmp_path / "bin"
    release_download(etcd(server, dest), FAST)
    etcdctl_inode = (dest / "etcdctl").stat().st_ino
    (dest / "etcd").write_bytes(b"tampered")
    outcome = release_download(etcd(server, dest), FAST)
    assert outcome.changed
    assert outcome.msg == f"Installed {dest / 'etcd'} from {server.url(ETCD_ARCHIVE)}."
    assert (dest / "etcd").read_bytes() == server.members[f"{ETCD}/etcd"]
    assert (dest / "etcdctl").stat().st_ino == etcdctl_inode


def test_new_archive_version_reinstalls_members(server, tmp_path):
    dest = tmp_path / "bin"
    release_download(etcd(server, dest), FAST)
    stamp = json.loads((dest / STAMP_NAME).read_text())
    stamp["etcd"]["archive_sha256"] = "0" * 64
    (dest / STAMP_NAME).write_text(json.dumps(stamp))
    outcome = release_download(etcd(server, dest), FAST)
    assert outcome.msg.startswith(f"Installed {dest / 'etcd'} from")


def test_check_mode_reports_and_writes_nothing(server, tmp_path):
    dest = tmp_path / "bin"
    cache = tmp_path / "cache"
    outcome = release_download(etcd(server, dest, cache_dir=str(cache)), FAST, check_mode=True)
    assert outcome.changed
    assert outcome.msg.startswith("Would install")
    assert outcome.after[str(dest / "etcd")] == {"sha256": "unknown until the archive is read"}
    assert not dest.exists()
    assert not cache.exists()
    assert server.requests == ["/SHA256SUMS"]


def test_plain_dest_that_is_a_directory_is_rejected(server, tmp_path):
    with pytest.raises(DownloadError, match="is a directory; without extract"):
        release_download(plain(server, tmp_path), FAST)


def test_unwritable_dest_fails_with_a_message(server, tmp_path):
    (tmp_path / "file").write_bytes(b"")
    with pytest.raises(DownloadError, match=r"File exists: .*file; check that dest and cache_dir"):
        release_download(plain(server, tmp_path / "file" / "kubectl"), FAST)
