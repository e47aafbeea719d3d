"""What the model API stand-ins (anthropic_, openai_, chat_ and gemini_standin) share: a
threaded HTTP server on a free 127.0.0.1 port, started and stopped with the object, every
request recorded, and the handler's JSON answers and body reading."""

import gzip
import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True


class Handler(BaseHTTPRequestHandler):
    """HTTP/1.1 (the CLIs keep their connections), quiet, with JSON answers."""

    protocol_version = "HTTP/1.1"

    def log_message(self, *args):
        pass

    def _json(self, status, payload, headers=()):
        data = json.dumps(payload).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        for name, value in headers:
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(data)

    def _raw_body(self):
        """The request's body as sent (gunzipped when it says gzip)."""
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length) if length else b""
        return gzip.decompress(raw) if self.headers.get("Content-Encoding") == "gzip" else raw

    def _json_body(self):
        """The body parsed as JSON; text when it is not JSON, None when there is none."""
        raw = self._raw_body()
        try:
            return json.loads(raw) if raw else None
        except ValueError:
            return raw.decode("utf-8", "replace")


class Served:
    """A stand-in's server: ``handler`` answers, ``request_type(method, path, headers, body)``
    records each request in ``requests``. Use as a context manager, or start()/stop()."""

    handler = None
    request_type = None

    def start(self):
        self.server = _Server(("127.0.0.1", 0), self.handler)
        self.server.owner = self
        self.port = self.server.server_address[1]
        self.url = f"http://127.0.0.1:{self.port}"
        self.thread = threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
        self.thread.start()
        return self

    def stop(self):
        self.server.shutdown()
        self.server.server_close()

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()

    def _record(self, method, path, headers, body, **fields):
        record = self.request_type(method, path, {k.lower(): v for k, v in headers.items()}, body, **fields)
        with self.lock:
            self.requests.append(record)
        return record
