# SPDX-License-Identifier: Apache-2.0
"""The one safe writer: temporary file in the target directory, fsync, rename.

Used for keys, certificates, kubeconfigs and downloaded binaries alike, so that a
crash or a failed check never leaves a half-written file at the destination.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from typing import BinaryIO


@contextmanager
def atomic_writer(path: str, mode: int = 0o600) -> Iterator[BinaryIO]:
    """Yield a binary file object; on clean exit it atomically replaces ``path``.

    The temporary file is created with ``mode`` from the start, so secret material is
    never readable by others, not even for an instant. On any exception the temporary
    file is removed and ``path`` is left as it was.
    """
    directory = os.path.dirname(os.path.abspath(path)) or "."
    fd, tmp_path = tempfile.mkstemp(prefix=f".{os.path.basename(path)}.", dir=directory)
    try:
        os.fchmod(fd, mode)
        with os.fdopen(fd, "wb") as handle:
            yield handle
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp_path, path)
    except BaseException:
        if os.path.exists(tmp_path):
            os.unlink(tmp_path)
        raise


def write_atomic(path: str, data: bytes, mode: int = 0o600) -> None:
    """Write ``data`` to ``path`` atomically with permission ``mode``."""
    with atomic_writer(path, mode) as handle:
        handle.write(data)
