# SPDX-License-Identifier: Apache-2.0
"""Kubeconfig core: structure, embedded credentials, idempotency by content."""

from __future__ import annotations

import base64
import json
import stat
from pathlib import Path

import pytest
import yaml
from ansible_collections.scratch.kubernetes.plugins.module_utils._pki import (
    KeyFileError,
    KeySpec,
    SettingError,
    csr_pem,
    ensure_ca_certificate,
    ensure_certificate,
    ensure_private_key,
    load_private_key,
    make_csr,
)
from ansible_collections.scratch.kubernetes.plugins.module_utils._pki_kubeconfig import (
    build_kubeconfig,
    ensure_kubeconfig,
)

SERVER = "https://10.0.0.1:6443"


@pytest.fixture
def pki(tmp_path: Path) -> dict[str, str]:
    """CA, and an admin key with its certificate, made by the PKI core."""
    files = {name: str(tmp_path / name) for name in ("ca.key", "ca.crt", "admin.key", "admin.crt")}
    ensure_private_key(files["ca.key"], KeySpec())
    ensure_ca_certificate(files["ca.crt"], files["ca.key"], "test-ca")
    ensure_private_key(files["admin.key"], KeySpec())
    csr = csr_pem(make_csr(load_private_key(files["admin.key"]), "admin", ["system:masters"]))
    ensure_certificate(files["admin.crt"], csr, files["ca.crt"], files["ca.key"])
    return files


def admin_config(pki: dict[str, str], **overrides) -> dict:
    options = dict(
        cluster_name="kubernetes",
        server=SERVER,
        ca_certificate_path=pki["ca.crt"],
        user="admin",
        client_certificate_path=pki["admin.crt"],
        client_key_path=pki["admin.key"],
    )
    options.update(overrides)
    return build_kubeconfig(**options)


def test_structure_embeds_ca_and_client_credentials(pki: dict[str, str], tmp_path: Path) -> None:
    path = tmp_path / "admin.kubeconfig"
    outcome = ensure_kubeconfig(str(path), admin_config(pki))
    config = yaml.safe_load(path.read_text())
    assert config["apiVersion"] == "v1" and config["kind"] == "Config"
    assert config["current-context"] == "admin@kubernetes" == outcome.facts["context"]
    assert config["contexts"] == [
        {"name": "admin@kubernetes", "context": {"cluster": "kubernetes", "user": "admin"}}
    ]
    (cluster,) = config["clusters"]
    assert cluster["name"] == "kubernetes" and cluster["cluster"]["server"] == SERVER
    assert (
        base64.b64decode(cluster["cluster"]["certificate-authority-data"]) == Path(pki["ca.crt"]).read_bytes()
    )
    (user,) = config["users"]
    assert user["name"] == "admin"
    assert base64.b64decode(user["user"]["client-certificate-data"]) == Path(pki["admin.crt"]).read_bytes()
    assert base64.b64decode(user["user"]["client-key-data"]) == Path(pki["admin.key"]).read_bytes()
    assert stat.S_IMODE(path.stat().st_mode) == 0o600


def test_rerun_and_reformatted_file_change_nothing(pki: dict[str, str], tmp_path: Path) -> None:
    path = tmp_path / "admin.kubeconfig"
    assert ensure_kubeconfig(str(path), admin_config(pki)).changed
    assert not ensure_kubeconfig(str(path), admin_config(pki)).changed
    # Same content in another layout (JSON is YAML): compared parsed, not byte by byte.
    path.write_text(json.dumps(yaml.safe_load(path.read_text()), indent=2))
    outcome = ensure_kubeconfig(str(path), admin_config(pki), check_mode=True)
    assert not outcome.changed and outcome.before == outcome.after


def test_changes_are_named_and_check_mode_writes_nothing(pki: dict[str, str], tmp_path: Path) -> None:
    path = tmp_path / "admin.kubeconfig"
    ensure_kubeconfig(str(path), admin_config(pki))
    content = path.read_bytes()
    outcome = ensure_kubeconfig(str(path), admin_config(pki, server="https://10.0.0.2:6443"), check_mode=True)
    assert outcome.reasons == ["server differs"]
    assert outcome.before["server"] == SERVER and outcome.after["server"] == "https://10.0.0.2:6443"
    assert path.read_bytes() == content
    outcome = ensure_kubeconfig(str(path), admin_config(pki, context_name="ops"))
    assert outcome.reasons == ["context differs"]
    assert yaml.safe_load(path.read_text())["current-context"] == "ops"


def test_token_user_and_diff_without_secrets(pki: dict[str, str], tmp_path: Path) -> None:
    path = tmp_path / "bootstrap.kubeconfig"
    options = dict(client_certificate_path=None, client_key_path=None, token="abcdef.0123456789abcdef")
    outcome = ensure_kubeconfig(str(path), admin_config(pki, **options))
    assert yaml.safe_load(path.read_text())["users"] == [
        {"name": "admin", "user": {"token": "abcdef.0123456789abcdef"}}
    ]
    assert outcome.after["token"] == "(set)"
    options["token"] = "abcdef.fedcba9876543210"
    outcome = ensure_kubeconfig(str(path), admin_config(pki, **options))
    assert outcome.reasons == ["the embedded key, token or other content differs"]
    shown = repr((outcome.before, outcome.after, outcome.facts))
    assert "0123456789" not in shown and "fedcba" not in shown and "PRIVATE" not in shown


def test_summary_shows_certificate_fingerprints(pki: dict[str, str], tmp_path: Path) -> None:
    outcome = ensure_kubeconfig(str(tmp_path / "k"), admin_config(pki))
    ca_outcome = ensure_ca_certificate(pki["ca.crt"], pki["ca.key"], "test-ca")
    assert outcome.after["certificate_authority"] == ca_outcome.facts["fingerprint"]
    assert outcome.after["client_certificate"].count(":") == 31
    assert "client-key-data" not in repr(outcome.after)


def test_invalid_settings_fail(pki: dict[str, str]) -> None:
    with pytest.raises(SettingError, match="not an https:// URL"):
        admin_config(pki, server="http://10.0.0.1:8080")
    with pytest.raises(KeyFileError, match=r"client_key_path .* is not the key of client_certificate_path"):
        admin_config(pki, client_key_path=pki["ca.key"])
    with pytest.raises(SettingError, match="either token"):
        admin_config(pki, token="x")
