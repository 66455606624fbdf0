#!/usr/bin/env python3
"""A stand-in for the Hugging Face Hub, for the tests of `jclip download`.

Serves the files of a model directory as one repository, in the Hub's URL layout and with its
headers:

    HEAD/GET /{repo}/resolve/{revision}/{file}
        X-Repo-Commit, ETag (the git blob SHA-1), Content-Length, Accept-Ranges.
        LFS files (*.safetensors) answer 302 to /cdn/{sha256} on another host name
        (localhost instead of 127.0.0.1) with X-Linked-Etag (the SHA-256) and X-Linked-Size.
    HEAD/GET /cdn/{sha256}
        The content; `Range: bytes=N-` gives 206. Needs no token, as the Hub's signed CDN
        URLs do not.

Errors carry X-Error-Code and X-Error-Message as the Hub's do. Binds 127.0.0.1 on a free
port, prints the port on stdout, logs one line per request to --log and exits by itself after
--lifetime seconds. Python standard library only.
"""

import argparse
import hashlib
import os
import socket
import sys
import threading
import time
import urllib.parse
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


def git_blob_sha1(data):
    return hashlib.sha1(b"blob %d\0" % len(data) + data).hexdigest()


class Hub:
    def __init__(self, args):
        self.args = args
        self.files = {}  # name -> bytes
        for name in sorted(os.listdir(args.model)):
            path = os.path.join(args.model, name)
            if os.path.isfile(path):
                with open(path, "rb") as f:
                    self.files[name] = f.read()
        self.sha256 = {n: hashlib.sha256(d).hexdigest() for n, d in self.files.items()}
        self.by_sha = {s: n for n, s in self.sha256.items()}
        # file -> (byte count, hang up or stall), for the one transfer to break
        self.cut = {}
        for spec, stall in [(c, False) for c in args.cut] + [(c, True) for c in args.stall]:
            name, _, n = spec.rpartition(":")
            self.cut[name] = (int(n), stall)
        self.lock = threading.Lock()
        self.log = open(args.log, "a", buffering=1) if args.log else None

    def is_lfs(self, name):
        return name.endswith(".safetensors")

    def served(self, name):
        """The bytes a GET sends: the file, unless a switch damages it."""
        data = self.files[name]
        if name in self.args.corrupt:
            i = len(data) // 2
            data = data[:i] + bytes([data[i] ^ 0xFF]) + data[i + 1 :]
        if name in self.args.short:
            data = data[:-1000]
        return data

    def take_cut(self, name):
        with self.lock:
            return self.cut.pop(name, None)

    def note(self, line):
        if self.log:
            with self.lock:
                self.log.write(line + "\n")


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "hfserver"

    def log_message(self, fmt, *args):
        pass  # one line per request goes to --log instead

    def do_HEAD(self):
        self.handle_request(head=True)

    def do_GET(self):
        self.handle_request(head=False)

    def reply(self, status, headers=(), body=b"", head=False, log_extra=""):
        hub = self.server.hub
        hub.note(
            "%s %s range=%s auth=%s status=%d%s"
            % (
                self.command,
                self.path,
                self.headers.get("Range", "-").replace(" ", ""),
                "yes" if self.headers.get("Authorization") else "no",
                status,
                log_extra,
            )
        )
        self.send_response(status)
        for k, v in headers:
            self.send_header(k, v)
        if not any(k.lower() == "content-length" for k, _ in headers):
            self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if not head and body:
            self.wfile.write(body)

    def error(self, status, code, message, head, extra=()):
        body = message.encode()
        headers = [
            ("Content-Type", "text/plain; charset=utf-8"),
            ("X-Error-Code", code),
            ("X-Error-Message", message),
        ]
        self.reply(status, headers + list(extra), body, head)

    def handle_request(self, head):
        hub = self.server.hub
        args = hub.args
        path = urllib.parse.urlsplit(self.path).path
        parts = path.split("/")[1:]
        if len(parts) == 2 and parts[0] == "cdn":
            return self.serve_content(hub.by_sha.get(parts[1]), head)
        if "resolve" not in parts or parts.index("resolve") + 2 >= len(parts):
            return self.error(404, "NotFound", "Not Found", head)
        i = parts.index("resolve")
        repo = "/".join(parts[:i])
        rev = urllib.parse.unquote(parts[i + 1])
        name = urllib.parse.unquote("/".join(parts[i + 2 :]))
        auth = self.headers.get("Authorization")
        authorised = not args.token or auth == "Bearer " + args.token
        if repo != args.repo:
            # The Hub does not tell a stranger whether a private repository exists.
            status = 404 if auth else 401
            return self.error(status, "RepoNotFound", "Repository Not Found", head)
        if not authorised:
            return self.error(
                401,
                "GatedRepo",
                "Access to model %s is restricted. You must be authenticated to access it." % repo,
                head,
            )
        if rev not in ("main", args.commit):
            return self.error(404, "RevisionNotFound", "Invalid rev id: " + rev, head)
        commit = [("X-Repo-Commit", args.commit)]
        if name not in hub.files or name in args.missing:
            return self.error(404, "EntryNotFound", "Entry not found", head, commit)
        data = hub.files[name]
        if hub.is_lfs(name):
            sha = hub.sha256[name]
            pointer = b"version https://git-lfs.github.com/spec/v1\noid sha256:%s\nsize %d\n" % (
                sha.encode(),
                len(data),
            )
            host = "%s:%d" % (args.cdn_host, self.server.server_address[1])
            headers = commit + [
                ("ETag", '"%s"' % git_blob_sha1(pointer)),
                ("X-Linked-Etag", '"%s"' % sha),
                ("X-Linked-Size", str(len(data))),
                ("Location", "http://%s/cdn/%s" % (host, sha)),
            ]
            return self.reply(302, headers, b"", head)
        return self.serve_content(name, head, commit + [("ETag", '"%s"' % git_blob_sha1(data))])

    def serve_content(self, name, head, headers=()):
        hub = self.server.hub
        if name is None:
            return self.error(404, "NotFound", "Not Found", head)
        data = hub.served(name) if not head else hub.files[name]
        headers = list(headers) + [
            ("Content-Type", "application/octet-stream"),
            ("Accept-Ranges", "bytes"),
        ]
        if hub.is_lfs(name):
            headers.append(("ETag", '"%s"' % hub.sha256[name]))
        status, start = 200, 0
        rng = self.headers.get("Range")
        if rng and not head and not hub.args.no_ranges:
            if not rng.startswith("bytes=") or not rng[6:].endswith("-"):
                return self.error(400, "BadRange", "only bytes=N- is served", head)
            start = int(rng[6:-1])
            if start >= len(data):
                return self.reply(
                    416, headers + [("Content-Range", "bytes */%d" % len(data))], b"", head
                )
            status = 206
            headers.append(("Content-Range", "bytes %d-%d/%d" % (start, len(data) - 1, len(data))))
        body = data[start:]
        cut = None if head else hub.take_cut(name)
        if cut is None:
            return self.reply(status, headers, body, head)
        # Promise the whole body, send part of it, then hang up or go silent.
        n, stall = cut
        self.reply(
            status,
            headers + [("Content-Length", str(len(body)))],
            b"",
            head=True,
            log_extra=" %s=%d" % ("stall" if stall else "cut", n),
        )
        self.wfile.write(body[:n])
        self.wfile.flush()
        if stall:
            time.sleep(hub.args.lifetime)
        self.close_connection = True
        try:
            self.connection.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("model", help="the directory whose files the repository holds")
    p.add_argument("--repo", default="jinaai/jina-clip-v1")
    p.add_argument("--commit", default="4bc2ac4e2a4b57c7ef4b0a8d4dbfc0c1a1ca5d13")
    p.add_argument("--log", help="append one line per request to this file")
    p.add_argument("--lifetime", type=float, default=60, help="exit after this many seconds")
    p.add_argument("--cdn-host", default="localhost", help="host name of the CDN redirects")
    p.add_argument("--token", help="answer 401 to requests without this bearer token")
    p.add_argument("--missing", action="append", default=[], help="answer 404 for this file")
    p.add_argument(
        "--cut", action="append", default=[], metavar="FILE:N",
        help="hang up after N bytes of FILE, once",
    )
    p.add_argument(
        "--stall", action="append", default=[], metavar="FILE:N",
        help="send N bytes of FILE and then nothing, once",
    )
    p.add_argument("--corrupt", action="append", default=[], help="flip a byte of this file")
    p.add_argument("--short", action="append", default=[], help="send this file 1000 bytes short")
    p.add_argument("--no-ranges", action="store_true", help="ignore Range: always send it all")
    args = p.parse_args()

    timer = threading.Timer(args.lifetime, os._exit, args=(0,))
    timer.daemon = True
    timer.start()
    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    server.hub = Hub(args)
    print(server.server_address[1], flush=True)
    sys.stdout.close()
    server.serve_forever()


if __name__ == "__main__":
    main()
