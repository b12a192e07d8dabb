# SPDX-License-Identifier: Apache-2.0
"""The sealed network's name server: every question is answered "no such name" at once.

Docker's DNS in the nodes, and CoreDNS through it, forward names outside the cluster to the
host's bridge address. With nothing there, each lookup waited out its timeouts (20 s a name),
so an image pull from a registry, which a node here can never reach, hung instead of failing as
it does on an air-gapped network whose own resolver knows no outside names.

    no-such-name.py ADDRESS   (UDP and TCP port 53)
"""

from __future__ import annotations

import socketserver
import struct
import sys
import threading

NXDOMAIN = 3


def answer(query: bytes) -> bytes | None:
    """The reply to one DNS message: its header and question back, as a response with NXDOMAIN."""
    if len(query) < 12:
        return None
    ident, flags, questions = struct.unpack("!HHH", query[:6])
    if flags & 0x8000:  # a response, not a question
        return None
    opcode, recursion_desired = flags & 0x7800, flags & 0x0100
    reply_flags = 0x8000 | opcode | recursion_desired | 0x0080 | NXDOMAIN
    # The question section as asked; no answer, authority or additional records.
    end = 12
    for _question in range(questions):
        while end < len(query) and query[end]:
            end += query[end] + 1
        end += 5  # the name's closing zero, type and class
    return struct.pack("!HHHHHH", ident, reply_flags, questions, 0, 0, 0) + query[12:end]


class Udp(socketserver.BaseRequestHandler):
    def handle(self) -> None:
        data, sock = self.request
        reply = answer(data)
        if reply:
            sock.sendto(reply, self.client_address)


class Tcp(socketserver.StreamRequestHandler):
    def handle(self) -> None:
        head = self.rfile.read(2)
        if len(head) == 2:
            reply = answer(self.rfile.read(struct.unpack("!H", head)[0]))
            if reply:
                self.wfile.write(struct.pack("!H", len(reply)) + reply)


def main() -> None:
    address = (sys.argv[1], 53)
    socketserver.ThreadingTCPServer.allow_reuse_address = True
    tcp = socketserver.ThreadingTCPServer(address, Tcp)
    udp = socketserver.ThreadingUDPServer(address, Udp)
    threading.Thread(target=tcp.serve_forever, daemon=True).start()
    udp.serve_forever()


if __name__ == "__main__":
    main()
