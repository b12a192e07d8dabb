# SPDX-License-Identifier: Apache-2.0
"""Every role documents its interface in ``meta/argument_specs.yml``, and that spec agrees with
``defaults/main.yml`` (the check prometheus-community/ansible runs on its roles).

Role variables are public ``<role>_*`` or internal ``_<role>_*`` (docs/style.md); only
``cluster_defaults``, which holds the cluster-wide settings every role reads, is exempt.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
import yaml

ROLES_DIR = Path(__file__).resolve().parents[2] / "roles"
ROLES = sorted(path.name for path in ROLES_DIR.iterdir() if path.is_dir())
# Roles whose variables are the cluster's settings, read by every role, so they carry no role prefix.
PREFIX_EXEMPT = {"cluster_defaults"}
# A spec default such as "<first address of service_cidr>" documents a computed value in words.
PLACEHOLDER = re.compile(r"<[^<>]+>")


def _load(path: Path) -> Any:
    return yaml.safe_load(path.read_text(encoding="utf-8"))


def _argument_specs(role: str) -> dict[str, Any]:
    path = ROLES_DIR / role / "meta" / "argument_specs.yml"
    if not path.is_file():
        pytest.fail(f"roles/{role}/meta/argument_specs.yml is missing; every role documents its options")
    return (_load(path) or {}).get("argument_specs") or {}


def _main_options(role: str) -> dict[str, Any]:
    specs = _argument_specs(role)
    if "main" not in specs:
        pytest.fail(f"roles/{role}/meta/argument_specs.yml has no 'main' entry point")
    return specs["main"].get("options") or {}


def _defaults(role: str) -> dict[str, Any]:
    path = ROLES_DIR / role / "defaults" / "main.yml"
    return (_load(path) or {}) if path.is_file() else {}


def _walk_options(options: dict[str, Any], prefix: str = "") -> list[tuple[str, dict[str, Any]]]:
    """Every option of a spec, suboptions included, as (dotted name, spec)."""
    found = []
    for name, spec in options.items():
        found.append((f"{prefix}{name}", spec or {}))
        found.extend(_walk_options((spec or {}).get("options") or {}, f"{prefix}{name}."))
    return found


def test_roles_found():
    assert ROLES, f"no roles under {ROLES_DIR}"


@pytest.mark.parametrize("role", ROLES)
def test_argument_specs_exist(role):
    assert _argument_specs(role), f"roles/{role}/meta/argument_specs.yml declares no entry point"


@pytest.mark.parametrize("role", ROLES)
def test_main_options_match_defaults(role):
    options = set(_main_options(role))
    defaults = set(_defaults(role))
    assert options == defaults, (
        f"roles/{role}: options of the main entry point and defaults/main.yml differ; "
        f"only in argument_specs: {sorted(options - defaults)}, "
        f"only in defaults: {sorted(defaults - options)}"
    )


@pytest.mark.parametrize("role", ROLES)
def test_options_have_type_and_description(role):
    incomplete = [
        f"{entry_point}: {name}"
        for entry_point, spec in _argument_specs(role).items()
        for name, option in _walk_options((spec or {}).get("options") or {})
        if not option.get("type") or not option.get("description")
    ]
    assert not incomplete, f"roles/{role}: options without a type or a description: {incomplete}"


@pytest.mark.parametrize("role", ROLES)
def test_entry_points_have_descriptions(role):
    # The docs site (antsibull-docs) refuses an entry point without both.
    incomplete = [
        entry_point
        for entry_point, spec in _argument_specs(role).items()
        if not (spec or {}).get("short_description") or not (spec or {}).get("description")
    ]
    assert not incomplete, f"roles/{role}: entry points need short_description and description: {incomplete}"


@pytest.mark.parametrize("role", ROLES)
def test_spec_defaults_equal_role_defaults(role):
    defaults = _defaults(role)
    different = []
    for name, option in _main_options(role).items():
        if not option or "default" not in option or name not in defaults:
            continue
        documented, actual = option["default"], defaults[name]
        if isinstance(actual, str) and "{{" in actual:
            continue
        if isinstance(documented, str) and PLACEHOLDER.search(documented):
            continue
        if documented != actual:
            different.append(f"{name}: spec {documented!r}, defaults/main.yml {actual!r}")
    assert not different, f"roles/{role}: argument_specs defaults differ from defaults/main.yml: {different}"


@pytest.mark.parametrize("role", [role for role in ROLES if role not in PREFIX_EXEMPT])
def test_variables_carry_role_prefix(role):
    unprefixed = [
        name for name in _defaults(role) if not (name.startswith(f"{role}_") or name.startswith(f"_{role}_"))
    ]
    assert not unprefixed, f"roles/{role}/defaults/main.yml: rename to '{role}_<name>': {unprefixed}"
