# SPDX-License-Identifier: Apache-2.0
"""Make the work tree importable as ``ansible_collections.scratch.kubernetes``."""

from __future__ import annotations

import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
COLLECTIONS = REPO / ".cache" / "collections"
link = COLLECTIONS / "ansible_collections" / "scratch" / "kubernetes"
if not link.exists():
    link.parent.mkdir(parents=True, exist_ok=True)
    link.symlink_to(REPO)
if str(COLLECTIONS) not in sys.path:
    sys.path.insert(0, str(COLLECTIONS))
