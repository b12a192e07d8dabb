# SPDX-License-Identifier: Apache-2.0
"""Files a node must hold, reconciled in one call.

The controller describes each file by its destination, the sha256 of its content, its mode
and its owner; the node compares that with what it has. Owner or mode alone are fixed in
place; a file whose content differs is written (atomically, parents created) when its content
came with the call, and reported as *wanting* it otherwise. A no-op run therefore costs one
call that carries no content, however many and however large the files are.
"""

from __future__ import annotations

import base64
import grp
import hashlib
import os
import pwd
import shutil
import stat
import tempfile
from dataclasses import dataclass, field
from typing import Any

from ansible_collections.scratch.kubernetes.plugins.module_utils._atomic import atomic_writer

# Text up to this size is shown whole in diffs; anything larger is summarized by checksum.
DIFF_TEXT_LIMIT = 64 * 1024
_CHUNK = 1024 * 1024
# Files at least this large have their checksum cached (cached_sha256).
_CACHED_FROM = 1024 * 1024


class FileError(Exception):
    """A file that cannot be put in place; the message names it and the reason."""


def sha256_file(path: str) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while chunk := handle.read(_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def cached_sha256(path: str, cache: str | None = None, *, keep: bool = True) -> str:
    """sha256 of a file; for a large one, kept in ``cache`` while the file's stamp holds.

    Release binaries are checksummed on every run, on the controller for every node and on each
    node for what it holds: a file whose size, modification and change times and inode are those
    recorded is not read again. Rewriting a file, even with its old mtime put back, moves its
    change time. ``cache`` defaults to ``.NAME.sha256`` beside the file; ``keep=False`` reads a
    cache but never writes one (check mode).
    """
    info = os.stat(path)
    if info.st_size < _CACHED_FROM:
        return sha256_file(path)
    if cache is None:
        cache = os.path.join(os.path.dirname(path), f".{os.path.basename(path)}.sha256")
    stamp = f"{info.st_size} {info.st_mtime_ns} {info.st_ctime_ns} {info.st_ino}"
    try:
        with open(cache, encoding="ascii") as handle:
            cached_stamp, digest = handle.read().strip().rsplit(" ", 1)
        if cached_stamp == stamp:
            return digest
    except (OSError, ValueError):
        pass
    digest = sha256_file(path)
    if not keep:
        return digest
    # Several forks may write it at once: each writes a whole file and renames it into place.
    directory = os.path.dirname(cache)
    try:
        os.makedirs(directory, mode=0o700, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{os.path.basename(cache)}.", dir=directory)
        with os.fdopen(fd, "w", encoding="ascii") as handle:
            handle.write(f"{stamp} {digest}\n")
        os.replace(tmp, cache)
    except OSError:
        pass  # a read-only directory only costs the cache
    return digest


def node_checksum_cache(directory: str, path: str) -> str:
    """Where a node keeps the checksum of an installed file: in ``directory``, named by its path.

    Not beside it: the node's directories (/usr/local/bin...) are the operator's to read.
    """
    return os.path.join(directory, hashlib.sha256(path.encode()).hexdigest())


@dataclass(frozen=True)
class WantedFile:
    """One file as the controller wants it. ``content`` or ``staged`` (a path on this host
    holding the content) is set only when the content travels with the call."""

    dest: str
    sha256: str
    mode: int
    owner: str = "root"
    group: str = "root"
    content: bytes | None = None
    staged: str | None = None


@dataclass
class Report:
    changed: list[str] = field(default_factory=list)
    wanting: list[str] = field(default_factory=list)
    diff: list[dict[str, str]] = field(default_factory=list)


def _ids(owner: str, group: str) -> tuple[int, int]:
    try:
        return pwd.getpwnam(owner).pw_uid, grp.getgrnam(group).gr_gid
    except KeyError as err:
        raise FileError(f"unknown owner or group {owner}:{group} on this host") from err


def _names(info: os.stat_result) -> tuple[str, str]:
    try:
        owner = pwd.getpwuid(info.st_uid).pw_name
    except KeyError:
        owner = str(info.st_uid)
    try:
        group = grp.getgrgid(info.st_gid).gr_name
    except KeyError:
        group = str(info.st_gid)
    return owner, group


def _before_text(path: str, info: os.stat_result | None) -> str:
    if info is None:
        return ""
    if info.st_size > DIFF_TEXT_LIMIT:
        return f"({info.st_size} bytes)\n"
    with open(path, "rb") as handle:
        data = handle.read()
    try:
        return data.decode()
    except UnicodeDecodeError:
        return f"({info.st_size} bytes of binary data)\n"


def _after_text(wanted: WantedFile) -> str:
    if wanted.content is not None and len(wanted.content) <= DIFF_TEXT_LIMIT:
        try:
            return wanted.content.decode()
        except UnicodeDecodeError:
            pass
    return f"(content with sha256 {wanted.sha256})\n"


def _make_parents(directory: str) -> None:
    """Missing parents 0755 whatever the umask (``makedirs`` applies it)."""
    if not directory or os.path.isdir(directory):
        return
    _make_parents(os.path.dirname(directory))
    os.mkdir(directory)
    os.chmod(directory, 0o755)


def _diff(wanted: WantedFile, info: os.stat_result | None, same_content: bool) -> dict[str, str]:
    # A file others may not read (keys, kubeconfigs), before or after, keeps its content out of the output.
    private = not wanted.mode & (info.st_mode if info else 0o7777) & 0o004
    before = after = ""
    if not same_content:
        before = "(private file)\n" if private and info else _before_text(wanted.dest, info)
        after = "(private file)\n" if private else _after_text(wanted)
    if info is not None:
        owner, group = _names(info)
        before += f"mode {stat.S_IMODE(info.st_mode):04o}, {owner}:{group}\n"
    after += f"mode {wanted.mode:04o}, {wanted.owner}:{wanted.group}\n"
    return {"before_header": wanted.dest, "after_header": wanted.dest, "before": before, "after": after}


def _write(wanted: WantedFile, uid: int, gid: int) -> None:
    _make_parents(os.path.dirname(wanted.dest))
    if wanted.staged is not None and sha256_file(wanted.staged) != wanted.sha256:
        raise FileError(f"{wanted.dest}: the copy sent to this host does not match its checksum; run again")
    with atomic_writer(wanted.dest, wanted.mode) as handle:
        os.fchown(handle.fileno(), uid, gid)
        # A change of owner clears setuid and setgid: set the mode again after it.
        os.fchmod(handle.fileno(), wanted.mode)
        if wanted.content is not None:
            handle.write(wanted.content)
        else:
            with open(wanted.staged or "", "rb") as source:
                shutil.copyfileobj(source, handle, _CHUNK)
    if wanted.staged is not None:
        os.unlink(wanted.staged)


def reconcile(
    files: list[WantedFile],
    *,
    check_mode: bool = False,
    want_diff: bool = False,
    checksum_dir: str | None = None,
) -> Report:
    """Bring every file in ``files`` to its wanted state where this call can; see the module doc.

    With ``checksum_dir``, the checksums of large files are kept there between runs (cached_sha256).
    """
    report = Report()

    def checksum(path: str) -> str:
        if checksum_dir is None:
            return sha256_file(path)
        return cached_sha256(path, node_checksum_cache(checksum_dir, path), keep=not check_mode)

    for wanted in files:
        uid, gid = _ids(wanted.owner, wanted.group)
        try:
            info: os.stat_result | None = os.stat(wanted.dest)
        except FileNotFoundError:
            info = None
        if info is not None and not stat.S_ISREG(info.st_mode):
            raise FileError(f"{wanted.dest} exists and is not a regular file; move it away")
        same_content = info is not None and checksum(wanted.dest) == wanted.sha256
        same_metadata = (
            info is not None
            and stat.S_IMODE(info.st_mode) == wanted.mode
            and (info.st_uid, info.st_gid) == (uid, gid)
        )
        if same_content and same_metadata:
            continue
        if not same_content and wanted.content is None and wanted.staged is None:
            report.wanting.append(wanted.dest)
            continue
        if want_diff:
            report.diff.append(_diff(wanted, info, same_content))
        report.changed.append(wanted.dest)
        if check_mode:
            continue
        if same_content:
            os.chown(wanted.dest, uid, gid)
            os.chmod(wanted.dest, wanted.mode)
        else:
            _write(wanted, uid, gid)
            checksum(wanted.dest)  # so that the next run need not read it
    return report


def wanted_from_params(entries: list[dict[str, Any]]) -> list[WantedFile]:
    """The module's ``files`` option as WantedFile records (mode given as an octal string).

    Content comes as text (``content``) or as base64 (``content_base64``, what the action plugin
    sends); a ``src`` is the action plugin's to resolve and is ignored here."""
    files = []
    for entry in entries:
        try:
            mode = int(str(entry["mode"]), 8)
        except ValueError as err:
            raise FileError(f"{entry['dest']}: mode {entry['mode']!r} is not an octal number") from err
        if not 0 <= mode <= 0o7777:
            raise FileError(f"{entry['dest']}: mode {entry['mode']!r} is not between 0000 and 7777")
        content = entry.get("content")
        data = content.encode() if content is not None else None
        if entry.get("content_base64") is not None:
            data = base64.b64decode(entry["content_base64"])
        files.append(
            WantedFile(
                dest=entry["dest"],
                sha256=entry.get("sha256") or hashlib.sha256(data or b"").hexdigest(),
                mode=mode,
                owner=entry.get("owner") or "root",
                group=entry.get("group") or "root",
                content=data,
                staged=entry.get("staged"),
            )
        )
    return files
