#!/usr/bin/env python3
"""
A recording upstream app on Python's own HTTP/1.1 parser (http.server), independent of Node's
llhttp: the desync tests run the same cases against it and against node:http, because request
smuggling lives in the disagreement between two parsers.

Every request this server parses is reported on stdout as JSON lines: one "head" line as soon
as the head is parsed (the app's handler would run now), one "end" line once the body was read
(Content-Length, or Transfer-Encoding: chunked decoded here, not by the library). Each request
is answered with a small framed 200 on a kept-alive connection; an Upgrade is never accepted
(an app that does not speak WebSocket answers 200). Starts on 127.0.0.1 port 0 and prints
{"phase": "listening", "port": N} first. Exits when stdin closes, so it never outlives the test.
"""
import base64
import json
import os
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

LOCK = threading.Lock()
COUNTER = [0]
MAX_BODY = 1 << 20


def emit(obj):
    with LOCK:
        sys.stdout.write(json.dumps(obj) + "\n")
        sys.stdout.flush()


class BadBody(Exception):
    pass


def header_values(pairs, name):
    return [v for k, v in pairs if k.lower() == name]


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *args):
        pass

    def __getattr__(self, name):
        # Any method at all (do_GET, do_DELETE, do_TRACE, do_FOO): the app records it.
        if name.startswith("do_"):
            return self.handle_any
        raise AttributeError(name)

    def handle_any(self):
        with LOCK:
            COUNTER[0] += 1
            rid = COUNTER[0]
        pairs = [[k, v] for k, v in self.headers.items()]
        emit({"phase": "head", "id": rid, "method": self.command, "target": self.path,
              "version": self.request_version, "headers": pairs})
        body, trailers, complete, error = b"", [], True, None
        try:
            body, trailers = self.read_body(pairs)
        except BadBody as e:
            complete, error = False, str(e)
        except (OSError, ValueError) as e:
            complete, error = False, f"{type(e).__name__}: {e}"
        emit({"phase": "end", "id": rid, "body": base64.b64encode(body).decode(), "trailers": trailers,
              "complete": complete, "error": error})
        if error is not None:
            self.close_connection = True
            self.respond(400, b"bad body\n")
            return
        self.respond(200, b"ok\n")

    def respond(self, status, payload):
        try:
            self.send_response(status)
            self.send_header("Content-Type", "text/plain")
            self.send_header("Content-Length", str(len(payload)))
            self.send_header("Connection", "close" if self.close_connection else "keep-alive")
            self.end_headers()
            if self.command != "HEAD":
                self.wfile.write(payload)
            self.wfile.flush()
        except OSError:
            self.close_connection = True

    def read_body(self, pairs):
        te = header_values(pairs, "transfer-encoding")
        cl = header_values(pairs, "content-length")
        if te:
            codings = [t.strip().lower() for t in ",".join(te).split(",") if t.strip()]
            if not codings or codings[-1] != "chunked":
                raise BadBody("Transfer-Encoding without a final chunked")
            if cl:
                # RFC 9112 §6.1: Transfer-Encoding overrides Content-Length; close afterwards.
                self.close_connection = True
            return self.read_chunked()
        if cl:
            values = {v.strip() for v in ",".join(cl).split(",")}
            if len(values) != 1:
                raise BadBody(f"differing Content-Length values {sorted(values)}")
            value = values.pop()
            if not value.isdigit() or len(value) > 12:
                raise BadBody(f"invalid Content-Length {value!r}")
            n = int(value)
            if n > MAX_BODY:
                raise BadBody("body too large")
            data = self.rfile.read(n)
            if len(data) < n:
                raise BadBody(f"connection closed after {len(data)} of {n} body bytes")
            return data, []
        return b"", []

    def read_line(self):
        line = self.rfile.readline(65537)
        if not line:
            raise BadBody("connection closed inside the chunked body")
        return line

    def read_chunked(self):
        # RFC 9112 §7.1, decoded by hand (as a typical app framework does, a little leniently:
        # bare LF line ends are accepted, extensions after ';' ignored).
        body = b""
        while True:
            line = self.read_line().rstrip(b"\r\n")
            size_text = line.split(b";", 1)[0].strip()
            if not size_text or any(c not in b"0123456789abcdefABCDEF" for c in size_text) or len(size_text) > 8:
                raise BadBody(f"bad chunk size line {line[:80]!r}")
            size = int(size_text, 16)
            if size == 0:
                break
            if len(body) + size > MAX_BODY:
                raise BadBody("body too large")
            data = self.rfile.read(size)
            if len(data) < size:
                raise BadBody("connection closed inside a chunk")
            body += data
            if self.read_line() not in (b"\r\n", b"\n"):
                raise BadBody("chunk data not followed by CRLF")
        trailers = []
        while True:
            line = self.read_line()
            if line in (b"\r\n", b"\n"):
                return body, trailers
            text = line.decode("latin-1").rstrip("\r\n")
            name, _, value = text.partition(":")
            trailers.append([name, value.strip()])


def main():
    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    emit({"phase": "listening", "port": server.server_address[1]})

    def exit_when_stdin_closes():
        sys.stdin.read()
        os._exit(0)

    threading.Thread(target=exit_when_stdin_closes, daemon=True).start()
    server.serve_forever()


if __name__ == "__main__":
    main()
