#!/usr/bin/python
# SPDX-License-Identifier: Apache-2.0

from __future__ import annotations

DOCUMENTATION = r"""
module: release_download
short_description: Download a release artifact, verify its sha256 and install it or members of its tar.gz
version_added: "0.1.0"
author: scratch.kubernetes developers (@scratch-kubernetes)
description:
  - Downloads O(url), verifies it against O(checksum) before anything is installed, and installs it as the
    file O(dest), or installs the requested O(extract.members) of the C(.tar.gz) into the directory O(dest).
  - The body is streamed to disk and hashed on the way; a C(Content-Length) mismatch or broken connection is
    a truncated download. Network errors, timeouts, truncated bodies and HTTP 429/5xx answers are retried
    O(retries) times; other HTTP errors (such as 404) and a checksum mismatch fail at once.
  - Every file is written to a temporary file in its target directory and renamed into place, so a failure
    of any kind leaves the previous file untouched. Missing directories are created.
  - Idempotent without the network. A plain O(dest) is current when its sha256 equals the expected one.
    Extracted members are recorded in C(<dest>/.release_download.json) (installed path, archive sha256,
    member, member sha256); a member is current when it is recorded for the same archive and member and
    the file still has the recorded sha256, so a file changed on disk is detected and reinstalled.
  - With O(checksum=sha256:<url>) the checksum file is fetched on each run to learn the expected sha256,
    unless O(cache_dir) is set; then it is kept in the cache and reused, as the versioned release it
    describes does not change.
  - Meant to run on the controller (C(delegate_to=localhost), C(run_once=true)) with O(cache_dir), so that
    each artifact is fetched once; the installed binaries are then copied to the nodes.
extends_documentation_fragment:
  - scratch.kubernetes._attributes
  - scratch.kubernetes._attributes.FULL
attributes:
  check_mode:
    details: >-
      May fetch the checksum file (without caching it) to learn the expected sha256, never the artifact;
      writes nothing.
  diff_mode:
    details: >-
      Per installed path the sha256 before and after (and mode, owner, group when they change), never file
      contents. In check mode the sha256 of a member not yet recorded is unknown until the archive is read.
options:
  url:
    description:
      - HTTP(S) URL of the artifact; its last path component is its name in checksum files and cache.
      - Required, with O(checksum) and O(dest), unless O(artifacts) is given.
    type: str
  checksum:
    description:
      - V(sha256:<64 hex digits>), or V(sha256:<url>) of a checksum file.
      - A checksum file holds either one bare sha256 (the C(.sha256) files of C(dl.k8s.io)) or lines
        C(<sha256>  <file name>) or C(<sha256> *<file name>) (C(SHA256SUMS), C(.sha256sum)); the line whose
        file name, without a leading C(./) or C(*), equals the last component of O(url) is used.
      - Other algorithms are rejected.
    type: str
  dest:
    description:
      - Without O(extract), the file to install.
      - With O(extract), the directory in which the members are installed.
    type: path
  mode:
    description:
      - Permissions of each installed file, as an octal string such as V("0755") or a symbolic mode.
      - An octal mode is set on the temporary file, so a new file never appears with other permissions; a
        symbolic mode is applied after the rename, on top of V(0755).
      - Unset, V(0755).
    type: raw
  owner:
    description: Owner of each installed file; unchanged when omitted.
    type: str
  group:
    description: Group of each installed file; unchanged when omitted.
    type: str
  extract:
    description: Treat the artifact as a C(.tar.gz)/C(.tgz) and install only the listed members.
    type: dict
    suboptions:
      members:
        description:
          - Member paths inside the archive, for example V(etcd-v3.6.16-linux-amd64/etcd), V(bin/containerd)
            or V(./bridge). A leading C(./) need not match the archive's spelling.
          - Each is installed as O(dest)/<member path without its first O(extract.strip_components)
            components>. Absolute paths and C(..) are rejected.
          - A member missing from the archive fails the task, naming the first members the archive has.
        type: list
        elements: str
        required: true
      strip_components:
        description:
          - Leading path components removed from each member to form its installed path.
          - Counted as written, as GNU tar does, so the C(./) of V(./bridge) is a component.
        type: int
        default: 0
  cache_dir:
    description:
      - Directory keeping the verified artifact as C(<cache_dir>/<sha256>/<file name>) and checksum files
        as C(<cache_dir>/checksums/<sha256 of their URL>).
      - A cached artifact is re-hashed before use and fetched again if it was damaged; with a cache, a
        second task installing the same artifact (or another member of it) makes no request at all.
    type: path
  artifacts:
    description:
      - Several artifacts in one call, each handled as if given alone, in order; the other options
        (O(cache_dir), O(owner), O(group), O(retries), O(timeout), O(validate_certs), O(force), and O(mode)
        where an artifact names none) apply to all. Results are in RV(results).
      - One call costs one module run on the controller instead of one per artifact.
    type: list
    elements: dict
    version_added: "0.2.0"
    suboptions:
      url:
        description: As O(url).
        type: str
        required: true
      checksum:
        description: As O(checksum).
        type: str
        required: true
      dest:
        description: As O(dest).
        type: path
        required: true
      mode:
        description: As O(mode).
        type: raw
      extract:
        description: As O(extract).
        type: dict
        suboptions:
          members:
            description: As O(extract.members).
            type: list
            elements: str
            required: true
          strip_components:
            description: As O(extract.strip_components).
            type: int
            default: 0
  retries:
    description: How often a failed transfer is tried again, so V(retries+1) attempts in all.
    type: int
    default: 3
  timeout:
    description: Seconds to wait for the connection and for each read.
    type: int
    default: 60
  validate_certs:
    description: Verify the server's TLS certificate; only disable for a trusted mirror with a private CA.
    type: bool
    default: true
  force:
    description:
      - Do not trust O(cache_dir); fetch the checksum file and, when something must be installed, the
        artifact again, refreshing the cache.
      - Installed files that already match are still left alone, since a verified download would be
        identical.
    type: bool
    default: false
notes:
  - HTTP goes through Python's C(urllib), which honours the C(https_proxy), C(http_proxy) and C(no_proxy)
    environment variables.
seealso:
  - module: ansible.builtin.get_url
  - module: ansible.builtin.unarchive
"""

EXAMPLES = r"""
- name: Install kubectl, checked against the .sha256 file published beside it
  scratch.kubernetes.release_download:
    url: https://dl.k8s.io/release/v1.34.1/bin/linux/amd64/kubectl
    checksum: sha256:https://dl.k8s.io/release/v1.34.1/bin/linux/amd64/kubectl.sha256
    dest: /usr/local/bin/kubectl
    cache_dir: ~/.cache/scratch-kubernetes/artifacts
  delegate_to: localhost
  run_once: true

- name: Unpack etcd and etcdctl from the release tarball, checked against its SHA256SUMS
  scratch.kubernetes.release_download:
    url: https://github.com/etcd-io/etcd/releases/download/v3.6.16/etcd-v3.6.16-linux-amd64.tar.gz
    checksum: sha256:https://github.com/etcd-io/etcd/releases/download/v3.6.16/SHA256SUMS
    dest: /srv/artifacts/etcd/3.6.16
    extract:
      members:
        - etcd-v3.6.16-linux-amd64/etcd
        - etcd-v3.6.16-linux-amd64/etcdctl
      strip_components: 1
    cache_dir: ~/.cache/scratch-kubernetes/artifacts
  delegate_to: localhost
  run_once: true
  register: __etcd
# __etcd.installed: [/srv/artifacts/etcd/3.6.16/etcd, /srv/artifacts/etcd/3.6.16/etcdctl]

- name: Install CNI plugins with a pinned checksum
  scratch.kubernetes.release_download:
    url: https://github.com/containernetworking/plugins/releases/download/v1.6.2/cni-plugins-linux-amd64-v1.6.2.tgz
    checksum: "sha256:{{ cni_plugins_sha256 }}"
    dest: /opt/cni/bin
    extract:
      members: [./bridge, ./host-local, ./loopback, ./portmap]
    owner: root
    group: root
"""

RETURN = r"""
results:
  description: With O(artifacts), one entry per artifact with the return values below, in order.
  returned: when O(artifacts) is given
  type: list
  elements: dict
  sample: [{url: https://dl.k8s.io/release/v1.34.1/bin/linux/amd64/kubectl, changed: false}]
  version_added: "0.2.0"
dest:
  description: The O(dest) option, as given.
  returned: success without O(artifacts)
  type: str
  sample: /usr/local/bin/kubectl
url:
  description: The O(url) option, as given.
  returned: always
  type: str
  sample: https://dl.k8s.io/release/v1.34.1/bin/linux/amd64/kubectl
sha256:
  description: The verified sha256 of the artifact (the archive itself with O(extract)).
  returned: success
  type: str
  sample: 7ad50e3d8a5c4d7e8b3f9ba2b1d0c1e5f3a8a6c1d2e3f4a5b6c7d8e9f0a1b2c3
installed:
  description:
    - Every path this task manages, whether or not it changed in this run; O(dest) without O(extract),
      otherwise each member's installed path, in the order of O(extract.members).
  returned: success
  type: list
  elements: str
  sample: [/srv/artifacts/etcd/3.6.16/etcd, /srv/artifacts/etcd/3.6.16/etcdctl]
cached:
  description: Whether the artifact was installed from O(cache_dir) without a download; false when nothing
    was installed.
  returned: success
  type: bool
  sample: true
msg:
  description: What was done, or why the task failed.
  returned: always
  type: str
  sample: Installed /usr/local/bin/kubectl from the cache.
"""

from ansible.module_utils.basic import AnsibleModule
from ansible_collections.scratch.kubernetes.plugins.module_utils._download import (
    DownloadError,
    Extract,
    Release,
    Transport,
    release_download,
)


def _initial_mode(mode: object) -> int:
    """The numeric mode for new files; a symbolic mode is applied afterwards by Ansible."""
    if isinstance(mode, int):
        return mode
    try:
        return int(str(mode), 8)
    except ValueError:
        return 0o755


_ARTIFACT_OPTIONS = dict(
    url=dict(type="str"),
    checksum=dict(type="str"),
    dest=dict(type="path"),
    mode=dict(type="raw"),
    extract=dict(
        type="dict",
        options=dict(
            members=dict(type="list", elements="str", required=True),
            strip_components=dict(type="int", default=0),
        ),
    ),
)


_REQUIRED = ("url", "checksum", "dest")


def _install(module: AnsibleModule, params: dict, transport: Transport) -> dict:
    """One artifact: download, verify, install; then the file attributes of what it installed."""
    extract = params["extract"]
    release = Release(
        url=params["url"],
        checksum=params["checksum"],
        dest=params["dest"],
        mode=_initial_mode(params["mode"]),
        extract=Extract(tuple(extract["members"]), extract["strip_components"]) if extract else None,
        cache_dir=params["cache_dir"],
        force=params["force"],
    )
    try:
        outcome = release_download(release, transport, check_mode=module.check_mode)
    except DownloadError as error:
        module.fail_json(msg=str(error), dest=params["dest"], url=params["url"])
    changed = outcome.changed
    for path in outcome.installed:
        file_args = module.load_file_common_arguments(params, path=path)
        # Sub-dicts of the diff, so Ansible records mode/owner/group changes per path.
        path_diff = dict(before=outcome.before[path], after=outcome.after[path])
        changed = module.set_fs_attributes_if_different(file_args, changed, diff=path_diff)
    return dict(
        changed=changed,
        dest=params["dest"],
        url=params["url"],
        sha256=outcome.sha256,
        installed=outcome.installed,
        cached=outcome.cached,
        msg=outcome.msg if outcome.changed or not changed else f"{outcome.msg} File attributes updated.",
        diff=dict(before=outcome.before, after=outcome.after),
    )


def main() -> None:
    module = AnsibleModule(
        argument_spec=dict(
            **_ARTIFACT_OPTIONS,
            artifacts=dict(
                type="list",
                elements="dict",
                options=dict(
                    _ARTIFACT_OPTIONS,
                    **{name: dict(_ARTIFACT_OPTIONS[name], required=True) for name in _REQUIRED},
                ),
            ),
            owner=dict(type="str"),
            group=dict(type="str"),
            cache_dir=dict(type="path"),
            retries=dict(type="int", default=3),
            timeout=dict(type="int", default=60),
            validate_certs=dict(type="bool", default=True),
            force=dict(type="bool", default=False),
        ),
        required_one_of=[("url", "artifacts")],
        mutually_exclusive=[("artifacts", name) for name in ("url", "checksum", "dest", "extract")],
        required_together=[_REQUIRED],
        supports_check_mode=True,
    )
    params = module.params
    transport = Transport(
        timeout=params["timeout"], retries=params["retries"], validate_certs=params["validate_certs"]
    )
    mode = params["mode"] if params["mode"] is not None else "0755"
    if params["artifacts"] is None:
        result = _install(module, dict(params, mode=mode), transport)
        diff = result.pop("diff")
        if module._diff:
            result["diff"] = diff
        module.exit_json(**result)
    # Each artifact with the shared options, and its own mode if it names one.
    results = []
    diff: dict[str, dict] = {"before": {}, "after": {}}
    for item in params["artifacts"]:
        one = _install(module, dict(params, **dict(item, mode=item["mode"] or mode)), transport)
        paths = one.pop("diff")
        for side, values in diff.items():
            values.update(paths[side])
        results.append(one)
    result = dict(changed=any(one["changed"] for one in results), results=results)
    if module._diff:
        result["diff"] = diff
    module.exit_json(**result)


if __name__ == "__main__":
    main()
