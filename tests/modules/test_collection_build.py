# SPDX-License-Identifier: Apache-2.0
"""The collection as users get it: built with ``ansible-galaxy collection build``, installed
from the tarball without any server, then documented by ``ansible-doc`` and its site playbook
accepted by ``ansible-playbook --syntax-check`` from the installed copy.
"""

from __future__ import annotations

import ast
import json
import os
import subprocess
import sys
import tarfile
from pathlib import Path

import pytest
import yaml

REPO = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent
GALAXY = yaml.safe_load((REPO / "galaxy.yml").read_text(encoding="utf-8"))
FQCN = f"{GALAXY['namespace']}.{GALAXY['name']}"
TARBALL = f"{GALAXY['namespace']}-{GALAXY['name']}-{GALAXY['version']}.tar.gz"
# What galaxy.yml's build_ignore keeps out: development caches, tool environments, test output.
UNWANTED_PREFIXES = (
    ".venv/",
    ".cache/",
    ".git/",
    ".pytest_cache/",
    ".mypy_cache/",
    ".ruff_cache/",
    "tests/output/",
)
MODULES = sorted(path.stem for path in (REPO / "plugins" / "modules").glob("*.py") if path.stem != "__init__")


def _documentation(path: Path) -> dict:
    """The DOCUMENTATION of a plugin source file, read without importing it."""
    for node in ast.parse(path.read_text(encoding="utf-8")).body:
        if isinstance(node, ast.Assign) and any(
            isinstance(target, ast.Name) and target.id == "DOCUMENTATION" for target in node.targets
        ):
            return yaml.safe_load(ast.literal_eval(node.value))
    pytest.fail(f"{path.relative_to(REPO)} has no DOCUMENTATION string")


def _run(command: list[str], cwd: Path, collections: Path | None = None) -> subprocess.CompletedProcess:
    env = dict(
        os.environ,
        # An empty configuration: neither the repository's ansible.cfg nor a user's applies.
        ANSIBLE_CONFIG=str(Path(__file__).with_name("ansible.cfg")),
        ANSIBLE_NOCOLOR="1",
    )
    if collections is not None:
        env["ANSIBLE_COLLECTIONS_PATH"] = str(collections)
    completed = subprocess.run(
        [str(BIN / command[0]), *command[1:]], cwd=cwd, env=env, capture_output=True, text=True, check=False
    )
    assert completed.returncode == 0, f"{' '.join(command)} failed:\n{completed.stdout}\n{completed.stderr}"
    return completed


@pytest.fixture(scope="module")
def built(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("build")
    _run(["ansible-galaxy", "collection", "build", str(REPO), "--output-path", str(out)], cwd=out)
    return out / TARBALL


@pytest.fixture(scope="module")
def installed(built, tmp_path_factory) -> Path:
    """The collections path into which the tarball was installed."""
    path = tmp_path_factory.mktemp("collections")
    # --force: a copy installed elsewhere (e.g. ~/.ansible/collections) must not make this a no-op.
    _run(
        ["ansible-galaxy", "collection", "install", str(built), "-p", str(path), "--offline", "--force"],
        cwd=path,
    )
    return path


def _root(installed: Path) -> Path:
    return installed.joinpath("ansible_collections", *FQCN.split("."))


def test_build_names_the_tarball_after_galaxy_yml(built):
    assert built.is_file(), f"expected {TARBALL} next to the build output"
    assert built.name == "scratch-kubernetes-0.1.0.tar.gz"


def test_tarball_has_the_content_and_no_development_files(built):
    with tarfile.open(built) as tar:
        members = tar.getnames()
    unwanted = [
        name
        for name in members
        if name.startswith(UNWANTED_PREFIXES) or "/__pycache__/" in f"/{name}/" or name.endswith(".tar.gz")
    ]
    assert not unwanted, f"build_ignore in galaxy.yml lets these into the tarball: {unwanted[:20]}"
    expected = {"MANIFEST.json", "FILES.json", "meta/runtime.yml", "playbooks/site.yml"}
    expected |= {f"plugins/modules/{module}.py" for module in MODULES}
    assert expected <= set(members), f"missing from the tarball: {sorted(expected - set(members))}"


def test_install_from_tarball_offline(installed):
    manifest = json.loads((_root(installed) / "MANIFEST.json").read_text(encoding="utf-8"))
    assert manifest["collection_info"]["version"] == GALAXY["version"]


def test_every_module_is_documented(installed):
    assert MODULES, "no modules found in plugins/modules"
    names = [f"{FQCN}.{module}" for module in MODULES]
    completed = _run(["ansible-doc", "-t", "module", "--json", *names], cwd=installed, collections=installed)
    docs = json.loads(completed.stdout)
    for module, name in zip(MODULES, names, strict=True):
        assert name in docs, f"ansible-doc found no documentation for {name}"
        doc = docs[name]["doc"]
        # The installed copy answers, not the work tree.
        assert Path(doc["filename"]).is_relative_to(installed), doc["filename"]
        expected = _documentation(REPO / "plugins" / "modules" / f"{module}.py")["short_description"]
        assert doc["short_description"] == expected


def _load_sidecar(path: Path) -> dict:
    return yaml.safe_load(path.read_text(encoding="utf-8"))["DOCUMENTATION"]


def test_every_filter_is_documented(installed):
    listing = _run(
        ["ansible-doc", "-t", "filter", "--list", "--json", FQCN], cwd=installed, collections=installed
    )
    filters = json.loads(listing.stdout)
    # Filters documented in sidecar files next to the plugin that implements them.
    sidecars = {_load_sidecar(path)["name"] for path in (REPO / "plugins" / "filter").glob("*.y*ml")}
    assert {f"{FQCN}.{name}" for name in sidecars} <= set(filters), f"listed filters: {sorted(filters)}"
    undocumented = sorted(name for name, description in filters.items() if description == "UNDOCUMENTED")
    assert not undocumented, f"filters without documentation: {undocumented}"
    completed = _run(
        ["ansible-doc", "-t", "filter", "--json", *filters], cwd=installed, collections=installed
    )
    docs = json.loads(completed.stdout)
    for name, short_description in filters.items():
        assert docs[name]["doc"]["short_description"] == short_description


def test_site_playbook_syntax_from_installed_collection(installed, tmp_path):
    inventory = tmp_path / "hosts.yml"
    inventory.write_text(
        yaml.safe_dump(
            {"all": {"children": {"masters": {"hosts": {"m1": None}}, "minions": {"hosts": {"w1": None}}}}}
        ),
        encoding="utf-8",
    )
    _run(
        ["ansible-playbook", "--syntax-check", "-i", str(inventory), f"{FQCN}.site"],
        cwd=tmp_path,
        collections=installed,
    )
