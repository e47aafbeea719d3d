"""A small keep-alive HTTP/1.1 client on raw sockets: cheap enough per request that the load
generator, not the server, is rarely what a figure measures."""

import json
import socket


class Client:
    def __init__(self, port, key=None):
        self.sock = socket.create_connection(("127.0.0.1", port))
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.file = self.sock.makefile("rb")
        self.auth = f"Authorization: Bearer {key}\r\n" if key else ""

    def request(self, method, path, body=None):
        """Send one request; returns (status, body bytes)."""
        payload = json.dumps(body).encode() if body is not None else b""
        head = (
            f"{method} {path} HTTP/1.1\r\nHost: 127.0.0.1\r\n{self.auth}"
            f"Content-Type: application/json\r\nContent-Length: {len(payload)}\r\n\r\n"
        )
        self.sock.sendall(head.encode() + payload)
        status = int(self.file.readline().split()[1])
        length, chunked = 0, False
        while True:
            line = self.file.readline()
            if line in (b"\r\n", b""):
                break
            name, _, value = line.decode().partition(":")
            name = name.lower()
            if name == "content-length":
                length = int(value)
            elif name == "transfer-encoding" and "chunked" in value:
                chunked = True
        if not chunked:
            return status, self.file.read(length)
        data = b""
        while True:
            size = int(self.file.readline().strip(), 16)
            if size == 0:
                self.file.readline()
                return status, data
            data += self.file.read(size)
            self.file.readline()

    def close(self):
        self.file.close()
        self.sock.close()
