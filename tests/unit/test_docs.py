# SPDX-License-Identifier: Apache-2.0
"""The docs stay in step: the Chinese README gives the English one's commands, relative links in
the docs lead to files that exist, and the catalog of bad input is the one the tests run."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
TRANSLATIONS = {"README.md": "README.zh-CN.md", "docs/guide.md": "docs/guide.zh-CN.md"}
FENCE = re.compile(r"^```.*?^```", re.M | re.S)
# [text](target): the target up to a closing parenthesis or an anchor.
LINK = re.compile(r"\]\((?!https?://|mailto:|#)([^)#\s]+)")


def test_chinese_readme_gives_the_same_commands() -> None:
    english = FENCE.findall((REPO / "README.md").read_text())
    chinese = FENCE.findall((REPO / "README.zh-CN.md").read_text())
    assert english, "README.md lost its commands"
    assert chinese == english


LINKING = [
    *TRANSLATIONS,
    *TRANSLATIONS.values(),
    "docs/security.md",
    "docs/cis-benchmark.md",
    "docs/bad-inputs.md",
    "docs/troubleshooting.md",
]


@pytest.mark.parametrize("document", LINKING)
def test_relative_links_lead_to_files(document: str) -> None:
    path = REPO / document
    missing = [target for target in LINK.findall(path.read_text()) if not (path.parent / target).exists()]
    assert not missing, f"{document} links to missing files: {missing}"


@pytest.mark.parametrize(("english", "chinese"), TRANSLATIONS.items())
def test_each_translation_links_the_other(english: str, chinese: str) -> None:
    assert f"]({Path(chinese).name})" in (REPO / english).read_text()
    assert f"]({Path(english).name})" in (REPO / chinese).read_text()


def test_bad_input_catalog_lists_every_case_the_tests_run() -> None:
    catalog = (REPO / "molecule/default/tests/test_rerun.py").read_text()
    tested = re.findall(r'^        id="([^"]+)",$', catalog, re.M)
    listed = re.findall(r"^\| `([^`]+)` \|", (REPO / "docs/bad-inputs.md").read_text(), re.M)
    assert len(tested) >= 20
    assert sorted(listed) == sorted(tested)
