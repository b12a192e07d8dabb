# SPDX-License-Identifier: Apache-2.0
"""A real HTTP server on 127.0.0.1 serving release-like files, for the download tests.

Files are real (a binary, tar.gz archives, checksum files). Besides plain files it has
faulty paths that wrap any file: ``/truncated/<name>`` announces more bytes than it sends,
``/slow/<name>`` answers only after ``SLOW_SECONDS``, ``/flaky/<name>`` fails with HTTP 503
on its first request. Every request path is recorded, so tests can prove that no request
was made.
"""

from __future__ import annotations

import hashlib
import io
import os
import tarfile
import threading
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

SLOW_SECONDS = 5.0
BINARY = "kubectl"
ETCD = "etcd-v3.6.16-linux-amd64"
ETCD_ARCHIVE = f"{ETCD}.tar.gz"
CNI_ARCHIVE = "cni-plugins-linux-amd64-v1.6.2.tgz"
CORRUPT_ARCHIVE = "corrupt.tar.gz"


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _tar_gz(members: dict[str, bytes], directories: tuple[str, ...] = ()) -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as tar:
        for name in directories:
            info = tarfile.TarInfo(name)
            info.type = tarfile.DIRTYPE
            info.mode = 0o755
            tar.addfile(info)
        for name, data in members.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            info.mode = 0o755
            tar.addfile(info, io.BytesIO(data))
    return buffer.getvalue()


@dataclass
class ReleaseServer:
    root: Path
    base: str = ""
    # name -> bytes of each served file, and archive member -> bytes.
    files: dict[str, bytes] = field(default_factory=dict)
    members: dict[str, bytes] = field(default_factory=dict)
    requests: list[str] = field(default_factory=list)
    stop: threading.Event = field(default_factory=threading.Event)
    _seen: set[str] = field(default_factory=set)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def url(self, path: str) -> str:
        return f"{self.base}/{path}"

    def sha(self, name: str) -> str:
        return sha256(self.files[name])

    def put(self, name: str, data: bytes) -> None:
        (self.root / name).write_bytes(data)
        self.files[name] = data

    def record(self, path: str) -> bool:
        """Log a request; True when it is the first for ``path``."""
        with self._lock:
            self.requests.append(path)
            first = path not in self._seen
            self._seen.add(path)
            return first


def _populate(server: ReleaseServer) -> None:
    server.members = {
        f"{ETCD}/etcd": b"etcd binary\n" + os.urandom(64 * 1024),
        f"{ETCD}/etcdctl": b"etcdctl binary\n" + os.urandom(16 * 1024),
        f"{ETCD}/README.md": b"# etcd\n",
        "./bridge": b"bridge plugin\n" + os.urandom(8 * 1024),
        "./loopback": b"loopback plugin\n",
    }
    etcd = {name: data for name, data in server.members.items() if name.startswith(ETCD)}
    cni = {name: data for name, data in server.members.items() if name.startswith("./")}
    server.put(BINARY, b"\x7fELF kubectl\n" + os.urandom(256 * 1024))
    server.put(ETCD_ARCHIVE, _tar_gz(etcd, directories=(f"{ETCD}/",)))
    server.put(CNI_ARCHIVE, _tar_gz(cni, directories=("./",)))
    server.put(CORRUPT_ARCHIVE, b"\x1f\x8b" + os.urandom(4096))
    server.put(f"{BINARY}.sha256", f"{server.sha(BINARY)}\n".encode())
    server.put(
        "SHA256SUMS",
        (
            f"{'0' * 64}  {ETCD}-linux-arm64.tar.gz\n"
            f"{server.sha(ETCD_ARCHIVE)}  {ETCD_ARCHIVE}\n"
            f"{server.sha(CNI_ARCHIVE)} *./{CNI_ARCHIVE}\n"
            f"{server.sha(CORRUPT_ARCHIVE)}  {CORRUPT_ARCHIVE}\n"
        ).encode(),
    )


class _Handler(SimpleHTTPRequestHandler):
    release: ReleaseServer

    def log_message(self, format: str, *args: object) -> None:
        pass

    def do_GET(self) -> None:
        first = self.release.record(self.path)
        fault, _slash, name = self.path.lstrip("/").partition("/")
        if fault == "truncated":
            body = self.release.files[name]
            self.send_response(200)
            self.send_header("Content-Length", str(len(body) + 1000))
            self.end_headers()
            self.wfile.write(body[: len(body) // 2])
            self.close_connection = True
            return
        if fault == "slow":
            if self.release.stop.wait(SLOW_SECONDS):
                return
            self.path = f"/{name}"
        elif fault == "flaky":
            if first:
                self.send_error(503, "Try again")
                return
            self.path = f"/{name}"
        # A client that timed out has gone away by the time a slow answer is written.
        with suppress(BrokenPipeError, ConnectionResetError):
            super().do_GET()


@contextmanager
def release_server(root: Path) -> Iterator[ReleaseServer]:
    """Serve fresh release files from ``root`` on 127.0.0.1 until the block ends."""
    root.mkdir(parents=True, exist_ok=True)
    release = ReleaseServer(root)
    _populate(release)
    handler = type("Handler", (_Handler,), {"release": release})

    def make(*args, **kwargs):
        return handler(*args, directory=str(root), **kwargs)

    httpd = ThreadingHTTPServer(("127.0.0.1", 0), make)
    httpd.daemon_threads = True
    release.base = f"http://127.0.0.1:{httpd.server_address[1]}"
    thread = threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    try:
        yield release
    finally:
        release.stop.set()
        httpd.shutdown()
        httpd.server_close()
        thread.join()
