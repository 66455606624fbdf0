#!/usr/bin/env python3
"""A local web server for the tests of image URLs: never the internet.

    GET /files/NAME       the file NAME of --root
    GET /redirect/NAME    302 to /files/NAME
    GET /loop             302 to itself, for ever
    GET /status/N         answers with status N
    GET /big              a body of 1 GiB without Content-Length (streamed until the client stops)
    GET /big-length       the same with Content-Length: 1073741824
    GET /slow             waits --slow seconds before answering

Binds 127.0.0.1 on a free port, prints the port on stdout, logs one line per request to
--log and exits by itself after --lifetime seconds. Python standard library only.
"""

import argparse
import os
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--root", required=True)
    ap.add_argument("--log", required=True)
    ap.add_argument("--lifetime", type=float, default=120)
    ap.add_argument("--slow", type=float, default=30)
    args = ap.parse_args()
    log = open(args.log, "a", buffering=1)

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, fmt, *a):
            log.write("%s %s\n" % (self.command, self.path))

        def send(self, status, body=b"", headers=()):
            self.send_response(status)
            for k, v in headers:
                self.send_header(k, v)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def stream(self, length):
            self.send_response(200)
            self.send_header("Content-Type", "image/jpeg")
            if length:
                self.send_header("Content-Length", str(length))
            else:
                self.send_header("Connection", "close")
            self.end_headers()
            chunk = b"\xff" * 65536
            try:
                for _ in range((1 << 30) // len(chunk)):
                    self.wfile.write(chunk)
            except (BrokenPipeError, ConnectionResetError):
                pass
            self.close_connection = True

        def do_GET(self):
            p = self.path
            if p.startswith("/files/"):
                name = os.path.basename(p[len("/files/"):])
                path = os.path.join(args.root, name)
                if not os.path.isfile(path):
                    return self.send(404, b"not found")
                with open(path, "rb") as f:
                    return self.send(200, f.read(), [("Content-Type", "image/png")])
            if p.startswith("/redirect/"):
                return self.send(302, headers=[("Location", "/files/" + p[len("/redirect/"):])])
            if p == "/loop":
                return self.send(302, headers=[("Location", "/loop")])
            if p.startswith("/status/"):
                return self.send(int(p[len("/status/"):]), b"no")
            if p == "/big":
                return self.stream(0)
            if p == "/big-length":
                return self.stream(1 << 30)
            if p == "/slow":
                time.sleep(args.slow)
                return self.send(200, b"late")
            self.send(404, b"no such path")

    srv = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    srv.daemon_threads = True
    print(srv.server_address[1], flush=True)
    sys.stdout.close()
    threading.Timer(args.lifetime, lambda: os._exit(0)).start()
    srv.serve_forever()


if __name__ == "__main__":
    main()
