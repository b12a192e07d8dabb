# SPDX-License-Identifier: Apache-2.0
"""The collection's execution-environment metadata works with ansible-builder.

``meta/execution-environment.yml`` names ``requirements.txt`` and ``bindep.txt`` (relative to the
collection's root). ansible-builder renders a build context from it, and reads it as the
metadata of an installed collection; neither builds an image or reaches the network here: the
container runtimes on PATH are stand-ins that record any call, and every proxy leads nowhere.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from packaging.requirements import Requirement

REPO = Path(__file__).resolve().parents[2]
BUILDER = Path(sys.executable).with_name("ansible-builder")
META = REPO / "meta" / "execution-environment.yml"
# The base image is named, never pulled: `create` only writes files. The .invalid domain makes sure.
BASE_IMAGE = "registry.example.invalid/ee-base:latest"
# A build environment: its variables, and the file a container runtime would write to.
Offline = tuple[dict[str, str], Path]


def _definition() -> dict:
    return yaml.safe_load(META.read_text(encoding="utf-8"))


def _requirements(path: Path) -> list[Requirement]:
    lines = (line.split("#", 1)[0].strip() for line in path.read_text(encoding="utf-8").splitlines())
    return [Requirement(line) for line in lines if line]


@pytest.fixture
def offline_env(tmp_path: Path) -> Offline:
    """An environment in which a container runtime or a download would leave a trace or fail."""
    fake_bin = tmp_path / "fake-bin"
    fake_bin.mkdir()
    calls = tmp_path / "runtime-calls"
    for runtime in ("podman", "docker"):
        stand_in = fake_bin / runtime
        stand_in.write_text(f'#!/bin/sh\necho "{runtime} $*" >>{calls}\nexit 1\n', encoding="utf-8")
        stand_in.chmod(0o755)
    nowhere = "http://127.0.0.1:9"
    env = dict(os.environ, PATH=f"{fake_bin}{os.pathsep}{os.environ.get('PATH', '')}")
    env.update({name: nowhere for name in ("HTTP_PROXY", "HTTPS_PROXY", "http_proxy", "https_proxy")})
    env.pop("NO_PROXY", None)
    env.pop("no_proxy", None)
    return env, calls


def _builder(args: list[str], cwd: Path, env: dict[str, str]) -> subprocess.CompletedProcess:
    assert BUILDER.is_file(), f"{BUILDER} is missing: ansible-builder is pinned in requirements-dev.txt"
    completed = subprocess.run(
        [str(BUILDER), *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=120, check=False
    )
    output = f"{completed.stdout}\n{completed.stderr}"
    assert completed.returncode == 0, f"ansible-builder {' '.join(args)} failed:\n{output}"
    return completed


def test_definition_names_the_requirement_files() -> None:
    definition = _definition()
    assert definition["version"] == 3
    assert definition["dependencies"] == {"python": "requirements.txt", "system": "bindep.txt"}
    for name in definition["dependencies"].values():
        assert (REPO / name).is_file(), f"meta/execution-environment.yml names {name}, which is missing"


def test_controller_requirements_admit_the_pinned_tool_chain() -> None:
    # The development pins are versions the controller requirements accept, so the tests run what
    # an execution environment may install.
    pins = {req.name.lower(): req for req in _requirements(REPO / "requirements-dev.txt")}
    needed = _requirements(REPO / "requirements.txt")
    assert {req.name.lower() for req in needed} >= {"cryptography", "netaddr"}
    for req in needed:
        pin = pins.get(req.name.lower())
        assert pin is not None, f"{req.name} of requirements.txt is not pinned in requirements-dev.txt"
        version = next(iter(pin.specifier)).version
        assert req.specifier.contains(version), f"requirements-dev.txt pins {pin}, outside {req}"


def test_create_renders_a_build_context(tmp_path: Path, offline_env: Offline) -> None:
    env, calls = offline_env
    # The collection's definition, copied with the files it names, plus what an image needs.
    work = tmp_path / "ee"
    work.mkdir()
    definition = _definition()
    for name in definition["dependencies"].values():
        shutil.copy(REPO / name, work / name)
    core = next(req for req in _requirements(REPO / "requirements-dev.txt") if req.name == "ansible-core")
    definition["images"] = {"base_image": {"name": BASE_IMAGE}}
    definition["dependencies"]["ansible_core"] = {"package_pip": str(core)}
    definition["dependencies"]["ansible_runner"] = {"package_pip": "ansible-runner"}
    (work / "execution-environment.yml").write_text(yaml.safe_dump(definition), encoding="utf-8")
    context = tmp_path / "context"

    create = ["create", "--file", "execution-environment.yml", "--context", str(context)]
    _builder([*create, "--output-filename", "Containerfile"], cwd=work, env=env)

    containerfile = (context / "Containerfile").read_text(encoding="utf-8")
    assert f'EE_BASE_IMAGE="{BASE_IMAGE}"' in containerfile
    assert "COPY _build/requirements.txt requirements.txt" in containerfile
    assert "COPY _build/bindep.txt bindep.txt" in containerfile
    assert "--user-pip=requirements.txt --user-bindep=bindep.txt" in containerfile
    assert str(core) in containerfile
    for name in ("requirements.txt", "bindep.txt"):
        rendered = (context / "_build" / name).read_text(encoding="utf-8")
        assert rendered == (REPO / name).read_text(encoding="utf-8"), f"the context's {name} is not ours"
    assert not calls.exists(), f"ansible-builder create ran a container runtime: {calls.read_text()}"


def test_installed_collection_is_introspected(tmp_path: Path, offline_env: Offline) -> None:
    # What the builder stage does inside the image with a collection installed there: reads its
    # meta/execution-environment.yml and the files it names, relative to the collection's root.
    env, calls = offline_env
    collections = tmp_path / "collections"
    root = collections / "ansible_collections" / "scratch" / "kubernetes"
    (root / "meta").mkdir(parents=True)
    for name in ("galaxy.yml", "meta/execution-environment.yml", "requirements.txt", "bindep.txt"):
        shutil.copy(REPO / name, root / name)

    introspected = _builder(["introspect", "--sanitize", str(collections)], cwd=tmp_path, env=env)
    found = yaml.safe_load(introspected.stdout)

    python = [line.split("#", 1)[0].strip() for line in found["python"]]
    system = [line.split("#", 1)[0].strip() for line in found["system"]]
    assert python == [str(req) for req in _requirements(REPO / "requirements.txt")]
    assert "openssh-client [platform:dpkg]" in system
    assert "openssh-clients [platform:rpm]" in system
    origin = "# from collection scratch.kubernetes"
    assert all(line.endswith(origin) for line in found["python"] + found["system"])
    assert not calls.exists(), f"ansible-builder introspect ran a container runtime: {calls.read_text()}"
