# SPDX-License-Identifier: Apache-2.0
"""Kubeconfig files with embedded credentials, compared by content rather than bytes.

The desired configuration is a plain dict; an existing file is parsed and compared to it, so
reformatting by another tool does not count as a change. Diffs come from :func:`summarize`,
which reports names, the server and certificate fingerprints, never a key or a token.
"""

from __future__ import annotations

import base64
import contextlib
from typing import Any
from urllib.parse import urlparse

from ansible_collections.scratch.kubernetes.plugins.module_utils._pki import (
    KeyFileError,
    Outcome,
    PKIError,
    SettingError,
    certificate_fingerprint,
    load_certificate,
    load_private_key,
    public_key_fingerprint,
    read_file,
    write_file,
)

# Absent on a host without them: the kubeconfig module calls _deps.require("cryptography", "yaml") first.
with contextlib.suppress(ImportError):
    import yaml
    from cryptography import x509


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def _pem(path: str, setting: str) -> bytes:
    data = read_file(path, setting)
    if data is None:  # it was there a moment ago, when it was loaded and checked
        raise PKIError(f"{setting} {path} was removed while the kubeconfig was built; run again.")
    return data


def build_kubeconfig(
    *,
    cluster_name: str,
    server: str,
    ca_certificate_path: str,
    user: str,
    client_certificate_path: str | None = None,
    client_key_path: str | None = None,
    token: str | None = None,
    context_name: str | None = None,
) -> dict[str, Any]:
    """The kubeconfig, as the dict its YAML parses to; the context defaults to ``<user>@<cluster_name>``."""
    parsed = urlparse(server)
    if parsed.scheme != "https" or not parsed.hostname:
        raise SettingError(
            f"server {server!r} is not an https:// URL; set it to the API server, e.g. https://10.0.0.1:6443."
        )
    if (token is None) == (client_certificate_path is None) or (client_certificate_path is None) != (
        client_key_path is None
    ):
        raise SettingError("set either token, or client_certificate_path together with client_key_path.")

    load_certificate(ca_certificate_path, "ca_certificate_path")
    credentials: dict[str, str]
    if client_certificate_path is not None and client_key_path is not None:
        cert = load_certificate(client_certificate_path, "client_certificate_path")
        key = load_private_key(client_key_path, "client_key_path")
        if public_key_fingerprint(cert.public_key()) != public_key_fingerprint(key.public_key()):
            raise KeyFileError(
                f"client_key_path {client_key_path} is not the key of client_certificate_path "
                f"{client_certificate_path}; point both at the same identity."
            )
        credentials = {
            "client-certificate-data": _b64(_pem(client_certificate_path, "client_certificate_path")),
            "client-key-data": _b64(_pem(client_key_path, "client_key_path")),
        }
    else:
        credentials = {"token": str(token)}

    ca = {"certificate-authority-data": _b64(_pem(ca_certificate_path, "ca_certificate_path"))}
    return kubeconfig_document(cluster_name, server, ca, user, credentials, context_name)


def kubeconfig_document(
    cluster_name: str,
    server: str,
    ca: dict[str, str],
    user: str,
    credentials: dict[str, str],
    context_name: str | None = None,
) -> dict[str, Any]:
    """The kubeconfig's one cluster, user and context, whatever form the CA and credentials take
    (embedded data here, file paths in the ``kubeconfig`` filter)."""
    context = context_name or f"{user}@{cluster_name}"
    return {
        "apiVersion": "v1",
        "kind": "Config",
        "preferences": {},
        "clusters": [{"name": cluster_name, "cluster": {**ca, "server": server}}],
        "users": [{"name": user, "user": credentials}],
        "contexts": [{"name": context, "context": {"cluster": cluster_name, "user": user}}],
        "current-context": context,
    }


def _named(entries: Any, name: Any, key: str) -> dict[str, Any]:
    """The ``key`` mapping of the list entry called ``name``, or {} (tolerates any shape)."""
    for entry in entries if isinstance(entries, list) else ():
        if isinstance(entry, dict) and entry.get("name") == name and isinstance(entry.get(key), dict):
            return entry[key]
    return {}


def _fingerprint(data: Any) -> str | None:
    if not data:
        return None
    try:
        return certificate_fingerprint(x509.load_pem_x509_certificate(base64.b64decode(data)))
    except (ValueError, TypeError):
        return "(unreadable)"


def summarize(config: Any) -> dict[str, Any]:
    """Metadata of the current context, for diffs: no key and no token, only whether one is set."""
    if not isinstance(config, dict):
        return {}
    context_name = config.get("current-context")
    context = _named(config.get("contexts"), context_name, "context")
    cluster = _named(config.get("clusters"), context.get("cluster"), "cluster")
    user = _named(config.get("users"), context.get("user"), "user")
    summary = {
        "context": context_name,
        "cluster": context.get("cluster"),
        "server": cluster.get("server"),
        "user": context.get("user"),
        "certificate_authority": _fingerprint(cluster.get("certificate-authority-data")),
        "client_certificate": _fingerprint(user.get("client-certificate-data")),
        "token": "(set)" if user.get("token") else None,
    }
    return {name: value for name, value in summary.items() if value is not None}


def ensure_kubeconfig(path: str, config: dict[str, Any], *, check_mode: bool = False) -> Outcome:
    """Write ``config`` to ``path`` (0600) unless the file already parses to exactly it."""
    data = read_file(path, "path")
    existing: Any = None
    reasons: list[str] = []
    if data is None:
        reasons.append(f"{path} does not exist")
    else:
        try:
            existing = yaml.safe_load(data)
        except yaml.YAMLError:
            reasons.append(f"{path} is not valid YAML")
    before, after = summarize(existing), summarize(config)
    if not reasons and existing != config:
        reasons = _differences(before, after)
    if reasons and not check_mode:
        write_file(path, yaml.safe_dump(config, sort_keys=False).encode(), 0o600)
    return Outcome(reasons, {"path": path, "context": config["current-context"]}, before, after)


def _differences(have: dict[str, Any], want: dict[str, Any]) -> list[str]:
    reasons = [
        f"{name} differs" for name in sorted(have.keys() | want.keys()) if have.get(name) != want.get(name)
    ]
    return reasons or ["the embedded key, token or other content differs"]
