# SPDX-License-Identifier: Apache-2.0
"""Run the collection's modules through real Ansible, on localhost.

``run_module`` invokes ``ansible localhost -m scratch.kubernetes.<name>`` with the json
stdout callback and returns the module's result, so tests assert what a playbook sees.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
COLLECTIONS = REPO / ".cache" / "collections"
ANSIBLE = Path(sys.executable).with_name("ansible")


def _ensure_collection_link() -> None:
    link = COLLECTIONS / "ansible_collections" / "scratch" / "kubernetes"
    if not link.exists():
        link.parent.mkdir(parents=True, exist_ok=True)
        link.symlink_to(REPO)


def run_module(name: str, args: dict, *, check: bool = False, diff: bool = False) -> dict:
    """Run module ``scratch.kubernetes.<name>`` with ``args``; return its result dict."""
    _ensure_collection_link()
    env = dict(
        os.environ,
        ANSIBLE_COLLECTIONS_PATH=str(COLLECTIONS),
        ANSIBLE_STDOUT_CALLBACK="ansible.builtin.json",
        ANSIBLE_LOAD_CALLBACK_PLUGINS="1",
        ANSIBLE_LOCALHOST_WARNING="0",
        ANSIBLE_INVENTORY_UNPARSED_WARNING="0",
        ANSIBLE_PYTHON_INTERPRETER=sys.executable,
        ANSIBLE_CONFIG=str(Path(__file__).with_name("ansible.cfg")),
    )
    command = [
        str(ANSIBLE),
        "localhost",
        "-c",
        "local",
        "-m",
        f"scratch.kubernetes.{name}",
        "-a",
        json.dumps(args),
    ]
    if check:
        command.append("--check")
    if diff:
        command.append("--diff")
    completed = subprocess.run(command, env=env, capture_output=True, text=True, check=False)
    try:
        report = json.loads(completed.stdout)
    except json.JSONDecodeError:
        pytest.fail(f"ansible produced no JSON:\n{completed.stdout}\n{completed.stderr}")
    return report["plays"][0]["tasks"][0]["hosts"]["localhost"]


@pytest.fixture(name="run_module")
def run_module_fixture():
    return run_module
