# SPDX-License-Identifier: Apache-2.0
"""Download a release artifact, verify its sha256, install it or members of its tar.gz.

The flow is the collection's idempotency vocabulary: read what is installed, decide which
targets are stale, fetch (or reuse from the cache) and verify the artifact, then write each
target atomically. Nothing here knows about Ansible modules; errors are :class:`DownloadError`
with one-line messages. HTTP goes through Ansible's ``open_url`` (urllib underneath, with the
system CA bundle and proxy settings Ansible users expect), streamed to disk in chunks.

Idempotency without network: a plain file is current when its sha256 equals the expected
one. Extracted members are recorded in a stamp, ``<dest>/.release_download.json``, mapping
each installed path (relative to dest) to the archive sha256, the member name and the
member's sha256; a member is current when the stamp names the same archive and member and
the file on disk still has the recorded sha256, so an edited file is reinstalled.

The expected sha256 is either inline or read from a checksum file. A checksum file is
fetched on every run unless ``cache_dir`` is set: then it is kept as
``<cache_dir>/checksums/<sha256 of its URL>`` and treated as immutable, like the versioned
release it describes (``force`` fetches it again).
"""

from __future__ import annotations

import fcntl
import gzip
import hashlib
import http.client
import io
import json
import os
import posixpath
import re
import shutil
import tarfile
import tempfile
import time
import urllib.error
import urllib.parse
import zlib
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from typing import BinaryIO

from ansible.module_utils.urls import open_url
from ansible_collections.scratch.kubernetes.plugins.module_utils._atomic import atomic_writer, write_atomic
from ansible_collections.scratch.kubernetes.plugins.module_utils._files import cached_sha256

CHUNK = 1 << 20
CHECKSUM_FILE_LIMIT = 1 << 20
STAMP_NAME = ".release_download.json"
LISTED_MEMBERS = 10
USER_AGENT = "scratch.kubernetes-release_download"
_HEX64 = re.compile(r"[0-9a-fA-F]{64}")
_CHECKSUM_FORMS = "'sha256:<64 hex digits>' or 'sha256:<checksum file url>'"


class DownloadError(Exception):
    """A download or install failed; the message is one user-facing sentence."""


class _Retryable(Exception):
    """A transfer failure worth another attempt (network, timeout, truncation, 5xx)."""


@dataclass(frozen=True)
class Transport:
    timeout: float = 60
    retries: int = 3
    validate_certs: bool = True
    # Seconds before retry n is n * backoff; tests set 0.
    backoff: float = 1.0


@dataclass(frozen=True)
class Extract:
    members: tuple[str, ...]
    strip_components: int = 0


@dataclass(frozen=True)
class Release:
    url: str
    checksum: str
    dest: str
    mode: int = 0o755
    extract: Extract | None = None
    cache_dir: str | None = None
    force: bool = False


@dataclass(frozen=True)
class Target:
    path: str
    # Path relative to dest (the stamp key) and archive member; None for a plain file.
    relative: str | None = None
    member: str | None = None


@dataclass
class Outcome:
    changed: bool
    sha256: str
    installed: list[str]
    cached: bool
    msg: str
    # Installed path -> {"sha256": ...}: metadata only, for Ansible's diff.
    before: dict[str, dict[str, str]] = field(default_factory=dict)
    after: dict[str, dict[str, str]] = field(default_factory=dict)


def artifact_name(url: str) -> str:
    """The file name an artifact URL ends with (what SHA256SUMS lines name)."""
    name = posixpath.basename(urllib.parse.unquote(urllib.parse.urlsplit(url).path))
    if not name:
        raise DownloadError(f"url {url!r} does not end with a file name; point url at the artifact itself.")
    return name


def _components(name: str) -> list[str]:
    return [part for part in name.split("/") if part not in ("", ".")]


def targets(release: Release) -> list[Target]:
    """Where each requested file lands, rejecting members that would escape dest."""
    if release.extract is None:
        if os.path.isdir(release.dest):
            raise DownloadError(
                f"dest {release.dest} is a directory; without extract, dest must name the file to install."
            )
        return [Target(release.dest)]
    extract = release.extract
    if not extract.members:
        raise DownloadError("extract.members is empty; list the archive members to install.")
    if extract.strip_components < 0:
        raise DownloadError(f"extract.strip_components is {extract.strip_components}; use 0 or more.")
    result: dict[str, Target] = {}
    for member in extract.members:
        parts = _components(member)
        if member.startswith("/") or ".." in parts:
            raise DownloadError(
                f"extract.members entry {member!r} would escape dest; use a relative path without '..'."
            )
        # Counted as written, as GNU tar does: "./bridge" loses its "./" to strip_components=1.
        written = [part for part in member.split("/") if part]
        kept = _components("/".join(written[extract.strip_components :]))
        if not kept:
            raise DownloadError(
                f"extract.strip_components={extract.strip_components} removes every component of member "
                f"{member!r}; lower strip_components."
            )
        relative = "/".join(kept)
        if relative in result:
            raise DownloadError(f"extract.members install two members as {relative}; list each file once.")
        result[relative] = Target(os.path.join(release.dest, *kept), relative, "/".join(parts))
    return list(result.values())


def parse_checksum_file(text: str, name: str, url: str) -> str:
    """Pick the sha256 for ``name`` from a bare ``.sha256`` or a SHA256SUMS-style file."""
    bare: list[str] = []
    named: dict[str, str] = {}
    for line in text.splitlines():
        fields = line.split(None, 1)
        if not fields or not _HEX64.fullmatch(fields[0]):
            continue
        if len(fields) == 1:
            bare.append(fields[0].lower())
            continue
        listed = fields[1].strip()
        if listed.startswith("*"):
            listed = listed[1:]
        while listed.startswith("./"):
            listed = listed[2:]
        named.setdefault(listed, fields[0].lower())
    if name in named:
        return named[name]
    if not named and len(bare) == 1:
        return bare[0]
    listing = ", ".join(list(named)[:LISTED_MEMBERS]) or "no file names"
    raise DownloadError(
        f"Checksum file {url} has no sha256 line for {name} (it lists: {listing}); "
        "fix checksum or url so that they describe the same artifact."
    )


def file_sha256(path: str) -> str | None:
    """sha256 of a regular file, or None when there is none.

    A large file is read again only when its size or modification time changed (cached_sha256):
    a no-op run does not rehash every installed binary.
    """
    if not os.path.isfile(path):
        return None
    return cached_sha256(path)


def _attempt(url: str, handle: BinaryIO, transport: Transport, limit: int | None) -> str:
    try:
        # decompress=False: the sha256 is of the artifact's bytes as served, never of a decoded body.
        response = open_url(
            url,
            timeout=transport.timeout,
            validate_certs=transport.validate_certs,
            http_agent=USER_AGENT,
            decompress=False,
            use_netrc=False,
        )
    except urllib.error.HTTPError as error:
        error.close()
        if error.code >= 500 or error.code == 429:
            raise _Retryable(f"HTTP {error.code} {error.reason}") from error
        # A 404 is most often a version or a base URL that names no release.
        hint = "check url"
        if error.code == 404:
            hint = "nothing is published there: check the version and the base URL in it"
        raise DownloadError(
            f"Downloading {url} failed with HTTP {error.code} {error.reason}; {hint}."
        ) from error
    except urllib.error.URLError as error:
        raise _Retryable(str(error.reason)) from error
    except (http.client.HTTPException, OSError) as error:
        raise _Retryable(str(error) or type(error).__name__) from error
    with response:
        announced = response.headers.get("Content-Length")
        digest = hashlib.sha256()
        received = 0
        while True:
            try:
                chunk = response.read(CHUNK)
            except (http.client.HTTPException, OSError) as error:
                raise _Retryable(
                    f"connection lost after {received} bytes ({error or type(error).__name__})"
                ) from error
            if not chunk:
                break
            received += len(chunk)
            if limit is not None and received > limit:
                raise DownloadError(f"{url} is larger than {limit} bytes; it is not a checksum file.")
            digest.update(chunk)
            handle.write(chunk)
    if announced is not None and announced.isdigit() and received != int(announced):
        raise _Retryable(f"truncated body: received {received} of {announced} bytes")
    return digest.hexdigest()


def fetch(url: str, handle: BinaryIO, transport: Transport, limit: int | None = None) -> str:
    """Stream ``url`` into ``handle`` (rewound per attempt); return the body's sha256."""
    attempts = transport.retries + 1
    reason = ""
    for attempt in range(attempts):
        if attempt:
            time.sleep(transport.backoff * attempt)
        handle.seek(0)
        handle.truncate()
        try:
            return _attempt(url, handle, transport, limit)
        except _Retryable as error:
            reason = str(error)
    raise DownloadError(
        f"Downloading {url} failed after {attempts} attempt(s): {reason}; "
        "check that the URL is reachable, or raise timeout/retries."
    )


def _fetch_verified(url: str, handle: BinaryIO, expected: str, transport: Transport) -> None:
    actual = fetch(url, handle, transport)
    if actual != expected:
        raise DownloadError(
            f"Checksum mismatch for {url}: expected sha256 {expected}, got {actual}; "
            "fix checksum, or the artifact at url."
        )


def _checksum_text(url: str, release: Release, transport: Transport, check_mode: bool) -> str:
    cached = None
    if release.cache_dir:
        cached = os.path.join(release.cache_dir, "checksums", hashlib.sha256(url.encode()).hexdigest())
        if not release.force and os.path.isfile(cached):
            with open(cached, "rb") as handle:
                return handle.read().decode("utf-8", "replace")
    buffer = io.BytesIO()
    fetch(url, buffer, transport, limit=CHECKSUM_FILE_LIMIT)
    if cached and not check_mode:
        os.makedirs(os.path.dirname(cached), exist_ok=True)
        write_atomic(cached, buffer.getvalue(), 0o644)
    return buffer.getvalue().decode("utf-8", "replace")


def expected_sha256(release: Release, transport: Transport, check_mode: bool = False) -> str:
    """The artifact's sha256 from ``checksum``: inline hex, or looked up in a checksum file."""
    algorithm, separator, value = release.checksum.partition(":")
    value = value.strip()
    if not separator:
        raise DownloadError(f"checksum {release.checksum!r} has no algorithm; write {_CHECKSUM_FORMS}.")
    if algorithm.strip().lower() != "sha256":
        raise DownloadError(f"checksum algorithm {algorithm!r} is not supported; use {_CHECKSUM_FORMS}.")
    if _HEX64.fullmatch(value):
        return value.lower()
    if "://" in value:
        text = _checksum_text(value, release, transport, check_mode)
        return parse_checksum_file(text, artifact_name(release.url), value)
    raise DownloadError(f"checksum {release.checksum!r} is malformed; write {_CHECKSUM_FORMS}.")


def _read_stamp(dest: str) -> dict[str, dict[str, str]]:
    try:
        with open(os.path.join(dest, STAMP_NAME), encoding="utf-8") as handle:
            data = json.load(handle)
    except (OSError, ValueError):
        # No stamp, or an unreadable one: nothing is known to be installed, so reinstall.
        return {}
    return data if isinstance(data, dict) else {}


def _update_stamp(dest: str, entries: dict[str, dict[str, str]]) -> None:
    # Read-merge-write under a lock on dest: tasks may install other archives into the same dir.
    directory = os.open(dest, os.O_RDONLY)
    try:
        fcntl.flock(directory, fcntl.LOCK_EX)
        stamp = _read_stamp(dest)
        stamp.update(entries)
        text = json.dumps(stamp, indent=2, sort_keys=True) + "\n"
        write_atomic(os.path.join(dest, STAMP_NAME), text.encode(), 0o644)
    finally:
        os.close(directory)


def _wanted(release: Release, target: Target, expected: str, stamp: dict[str, dict[str, str]]) -> str | None:
    """The sha256 ``target`` must have, if known without the archive."""
    if target.member is None:
        return expected
    entry = stamp.get(target.relative or "", {})
    if entry.get("archive_sha256") == expected and entry.get("member") == target.member:
        return entry.get("sha256")
    return None


def _cache_artifact(release: Release, path: str, expected: str, transport: Transport) -> bool:
    """Make the cache file ``path`` hold the verified artifact; return whether it already did."""
    if not release.force and file_sha256(path) == expected:
        return True
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with atomic_writer(path, 0o644) as handle:
        _fetch_verified(release.url, handle, expected, transport)
    return False


@contextmanager
def _artifact(release: Release, expected: str, transport: Transport) -> Iterator[tuple[BinaryIO, bool]]:
    """Yield the verified artifact, open for reading, and whether it came from the cache."""
    if release.cache_dir:
        path = os.path.join(release.cache_dir, expected, artifact_name(release.url))
        cached = _cache_artifact(release, path, expected, transport)
        with open(path, "rb") as reader:
            yield reader, cached
        return
    staging = release.dest if release.extract else os.path.dirname(os.path.abspath(release.dest))
    # Staged next to dest rather than in /tmp, which may be a small tmpfs.
    with tempfile.TemporaryFile(dir=staging) as spool:
        _fetch_verified(release.url, spool, expected, transport)
        spool.seek(0)
        yield spool, False


def _install_members(
    release: Release, archive: BinaryIO, stale: list[Target], expected: str
) -> dict[str, dict[str, str]]:
    """Extract ``stale`` members atomically; return their stamp entries."""
    wanted = {target.member or "": target for target in stale}
    entries: dict[str, dict[str, str]] = {}
    listed: list[str] = []
    count = 0
    try:
        with ExitStack() as writers, tarfile.open(fileobj=archive, mode="r:gz") as tar:
            for info in tar:
                name = "/".join(_components(info.name))
                count += 1
                if len(listed) < LISTED_MEMBERS:
                    listed.append(info.name)
                target = wanted.pop(name, None)
                if target is None:
                    continue
                try:
                    source = tar.extractfile(info)
                except KeyError as error:
                    # A link whose target is not in the archive.
                    raise DownloadError(
                        f"Archive member {info.name} in {release.url} links to {info.linkname}, which the "
                        "archive lacks; list the link's target in extract.members instead."
                    ) from error
                if source is None:
                    raise DownloadError(f"Archive member {info.name} in {release.url} is not a regular file.")
                os.makedirs(os.path.dirname(target.path), exist_ok=True)
                handle = writers.enter_context(atomic_writer(target.path, release.mode))
                digest = hashlib.sha256()
                while chunk := source.read(CHUNK):
                    digest.update(chunk)
                    handle.write(chunk)
                entries[target.relative or ""] = {
                    "archive": artifact_name(release.url),
                    "archive_sha256": expected,
                    "member": name,
                    "sha256": digest.hexdigest(),
                }
            if wanted:
                # Leaving the ExitStack with this error discards every staged member.
                more = f", ... ({count} in all)" if count > len(listed) else ""
                raise DownloadError(
                    f"Archive {release.url} has no member {', '.join(wanted)}; it contains "
                    f"{', '.join(listed)}{more}; fix extract.members or extract.strip_components."
                )
    except (tarfile.TarError, EOFError, zlib.error, gzip.BadGzipFile) as error:
        raise DownloadError(
            f"Archive {release.url} is not a readable tar.gz ({error}); check url and that it is a .tar.gz."
        ) from error
    return entries


def release_download(
    release: Release, transport: Transport | None = None, check_mode: bool = False
) -> Outcome:
    """Make ``release.dest`` hold the verified artifact (or its members); report what changed."""
    try:
        return _release_download(release, transport or Transport(), check_mode)
    except OSError as error:
        raise DownloadError(
            f"{error.strerror or error}: {error.filename or release.dest}; "
            "check that dest and cache_dir exist or can be created and are writable."
        ) from error


def _release_download(release: Release, transport: Transport, check_mode: bool) -> Outcome:
    wanted_targets = targets(release)
    expected = expected_sha256(release, transport, check_mode)
    stamp = _read_stamp(release.dest) if release.extract else {}
    installed = [target.path for target in wanted_targets]
    before: dict[str, dict[str, str]] = {}
    after: dict[str, dict[str, str]] = {}
    stale: list[Target] = []
    for target in wanted_targets:
        current = file_sha256(target.path)
        wanted = _wanted(release, target, expected, stamp)
        before[target.path] = {"sha256": current or "absent"}
        after[target.path] = {"sha256": wanted or "unknown until the archive is read"}
        if current is None or current != wanted:
            stale.append(target)
    if not stale:
        return Outcome(False, expected, installed, False, "Already installed and verified.", before, after)
    names = ", ".join(target.path for target in stale)
    if check_mode:
        return Outcome(True, expected, installed, False, f"Would install {names}.", before, after)
    os.makedirs(
        release.dest if release.extract else os.path.dirname(os.path.abspath(release.dest)), exist_ok=True
    )
    with _artifact(release, expected, transport) as (artifact, cached):
        if release.extract is None:
            with atomic_writer(release.dest, release.mode) as handle:
                shutil.copyfileobj(artifact, handle, CHUNK)
        else:
            entries = _install_members(release, artifact, stale, expected)
            _update_stamp(release.dest, entries)
            for relative, entry in entries.items():
                after[os.path.join(release.dest, relative)] = {"sha256": entry["sha256"]}
    source = "the cache" if cached else release.url
    return Outcome(True, expected, installed, cached, f"Installed {names} from {source}.", before, after)
