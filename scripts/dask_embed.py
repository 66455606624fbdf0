#!/usr/bin/env python3
"""Embed a JSON-lines file of records with jclip on a Dask cluster.

usage: dask_embed.py --scheduler ADDR [--jclip PATH] [--model DIR] [--kind text|image]
                     [--partition-records N] [--threads N]
                     [--via pipe|http] [--servers URL,URL...] IN.jsonl OUT.jsonl

IN holds one record per line, {"id": ..., "text": "..."} (or "image": "/abs/path.png" with
--kind image), as `jclip embed-text --jsonl` (embed-image) reads them. The lines are cut into
partitions of N whole lines, each partition is embedded by one task on the cluster, and the
outputs are written to OUT in input order: one {"id":...,"embedding":[...]} or
{"id":...,"error":"..."} line per input line, the bytes `jclip embed-text --jsonl < IN`
would write on one host (hosts of one OpenBLAS core type: see jclip(1), PIPELINES). OUT is
written under a temporary name and renamed when complete; on failure there is none.

--via pipe (the default): every worker process keeps one `jclip embed-text --jsonl` (or
embed-image) process for the run and streams each of its partitions through it. jclip and the
model must be on every worker host; run the workers with --nthreads 1, as jclip uses all the
cores of its host (tasks of a worker with more threads take turns on its one process).

--via http: each task posts its partition's inputs to one of the `jclip serve` URLs and builds
the record lines from the responses; the workers need only Python and distributed. The
servers must serve the same model. Image paths are read on the worker and sent in base64.
Bad records get jclip's error records; one with "draft": true gets an error, as the server
drafts all its JPEGs (--draft) or none.

A task's output depends on its partition alone, so when a worker is lost Dask runs its
partitions again elsewhere and OUT is still complete and the same.

Example:
    dask-scheduler --port 8786 &
    dask-worker --nthreads 1 tcp://sched:8786 &      # on every host
    python3 dask_embed.py --scheduler tcp://sched:8786 --model /opt/jina-clip-v1 \\
        records.jsonl vectors.jsonl
"""

import argparse
import base64
import collections
import errno
import http.client
import json
import os
import re
import subprocess
import sys
import threading
import time
import urllib.parse
import uuid
import warnings

from distributed import Client, WorkerPlugin, get_worker

PROG = "dask_embed.py"

# jclip serve takes at most 2048 inputs and a 64 MiB body per request; stay well below both.
HTTP_MAX_INPUTS = 256
HTTP_MAX_BODY = 32 << 20


# ---- partitions ---------------------------------------------------------------------------


def read_partitions(path, n):
    """Yields the file's lines in groups of n, as bytes, each line ending in a newline.

    A last line without its newline gets one, so that every partition is whole lines and
    the line counts of input and output agree.
    """
    with open(path, "rb") as f:
        lines = []
        for line in f:
            if not line.endswith(b"\n"):
                line += b"\n"
            lines.append(line)
            if len(lines) == n:
                yield b"".join(lines)
                lines = []
        if lines:
            yield b"".join(lines)


# ---- pipe mode: one jclip per worker process ------------------------------------------------


class JclipPipe:
    """One `jclip embed-... --jsonl` process, started on first use and restarted if it dies.

    jclip writes exactly one line per input line, in order, and flushes what it has done
    whenever its stdin runs dry, so writing a partition and then reading as many lines as it
    has is a complete exchange: the process can stay up for the next partition.
    """

    ATTEMPTS = 3  # a partition that kills jclip this many times in a row fails the task

    def __init__(self, argv):
        self.argv = argv
        self.proc = None
        self.stderr_tail = collections.deque(maxlen=20)
        self.lock = threading.Lock()  # tasks of a multi-threaded worker take turns

    def _start(self):
        self.stderr_tail.clear()
        self.proc = subprocess.Popen(
            self.argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE
        )
        # jclip warns on stderr for every bad record: drain it, or a full pipe stops jclip.
        threading.Thread(
            target=self._drain, args=(self.proc.stderr, self.stderr_tail), daemon=True
        ).start()

    @staticmethod
    def _drain(stream, tail):
        for line in stream:
            tail.append(line.decode("utf-8", "replace").rstrip("\n"))

    def stop(self):
        proc, self.proc = self.proc, None
        if proc is None:
            return
        try:
            proc.stdin.close()  # end of input: jclip finishes and exits 0
            proc.wait(timeout=10)
        except (OSError, subprocess.TimeoutExpired):
            proc.kill()
            proc.wait()

    def _exchange(self, data, n):
        """Writes data (n lines) and reads n lines back; None if jclip died meanwhile."""
        proc = self.proc
        write_error = []

        # A writer thread, so that a partition larger than the pipe buffers cannot deadlock
        # with jclip waiting for us to read what it has written.
        def write():
            try:
                proc.stdin.write(data)
                proc.stdin.flush()
            except (OSError, ValueError) as e:  # jclip is gone (or stopped): the reader sees EOF
                write_error.append(e)

        writer = threading.Thread(target=write, daemon=True)
        writer.start()
        out = []
        for _ in range(n):
            line = proc.stdout.readline()
            if not line.endswith(b"\n"):
                break
            out.append(line)
        writer.join()
        if len(out) < n or write_error:
            return None
        return b"".join(out)

    def run(self, data):
        n = data.count(b"\n")
        if n == 0:
            return b""
        with self.lock:
            for _ in range(self.ATTEMPTS):
                if self.proc is None or self.proc.poll() is not None:
                    self.stop()
                    self._start()
                out = None
                try:
                    out = self._exchange(data, n)
                finally:
                    # Anything but a whole exchange leaves the process in an unknown place
                    # of its stream: never reuse it.
                    if out is None:
                        self._kill()
                if out is not None:
                    return out
            raise RuntimeError(
                "%s died %d times on this partition; its last messages:\n%s"
                % (" ".join(self.argv), self.ATTEMPTS, "\n".join(self.stderr_tail))
            )

    def _kill(self):
        proc, self.proc = self.proc, None
        if proc is not None:
            proc.kill()
            proc.wait()


class JclipPipePlugin(WorkerPlugin):
    """Holds a worker process's JclipPipe; stops jclip when the worker closes."""

    def __init__(self, argv):
        self.argv = argv
        self.pipe = None

    def setup(self, worker):
        self.pipe = JclipPipe(self.argv)

    def teardown(self, worker):
        if self.pipe is not None:
            self.pipe.stop()


def embed_pipe(data, plugin_name):
    """A task: the output lines of one partition, through this worker's jclip process."""
    return get_worker().plugins[plugin_name].pipe.run(data)


# ---- http mode: jclip serve ---------------------------------------------------------------
#
# The server answers inputs, not records, so the task does the record handling that
# `jclip --jsonl` does: it checks each line as jclip's record parser does, with the same
# messages, finds the id as written, and writes the same lines. The embedding's text is taken
# from the response token by token, never re-printed from floats, so it is the bytes the CLI
# prints. tests/cluster/dask.bats compares the two on good and bad records.


class BadRecord(Exception):
    def __init__(self, msg, id_text=None):
        super().__init__(msg)
        self.msg = msg
        self.id_text = id_text


class _Fault(Exception):
    """Malformed JSON: where (a byte offset) and what."""

    def __init__(self, at, why):
        super().__init__(why)
        self.at = at
        self.why = why


_UNEXPECTED = "an unexpected character"  # the one fault whose message names the character
_WS = b" \t\n\r"
_HEX = b"0123456789abcdefABCDEF"
_MAX_DEPTH = 256


def _ws(b, i):
    while i < len(b) and b[i] in _WS:
        i += 1
    return i


def _string(b, i):
    """The offset after the string whose quote is at b[i]."""
    start = i
    i += 1
    while i < len(b):
        c = b[i]
        if c == 0x22:
            return i + 1
        if c < 0x20:
            raise _Fault(i, "a control character in a string (it must be escaped)")
        if c == 0x5C:
            if len(b) - i < 2:
                break
            if b[i + 1] == 0x75:  # \uXXXX
                for k in range(2, 6):
                    if len(b) - i <= k or b[i + k] not in _HEX:
                        raise _Fault(i, "a \\u escape without four hex digits")
                i += 6
            elif b[i + 1] in b'"\\/bfnrt':
                i += 2
            else:
                raise _Fault(i, "an invalid escape in a string")
            continue
        i += 1  # the line is valid UTF-8 by now: a byte at a time will do
    raise _Fault(start, "a string without its closing quote")


def _digits(b, i):
    while i < len(b) and 0x30 <= b[i] <= 0x39:
        i += 1
    return i


def _number(b, i):
    start = i
    if b[i] == 0x2D:
        i += 1
    if i < len(b) and b[i] == 0x30:
        i += 1
        if i < len(b) and 0x30 <= b[i] <= 0x39:
            raise _Fault(start, "a number with a leading zero")
    else:
        j = _digits(b, i)
        if j == i:
            raise _Fault(start, "an invalid number")
        i = j
    if i < len(b) and b[i] == 0x2E:
        j = _digits(b, i + 1)
        if j == i + 1:
            raise _Fault(start, "an invalid number (no digit after '.')")
        i = j
    if i < len(b) and b[i] in b"eE":
        i += 1
        if i < len(b) and b[i] in b"+-":
            i += 1
        j = _digits(b, i)
        if j == i:
            raise _Fault(start, "an invalid number (no digit in the exponent)")
        i = j
    return i


def _container(b, i, depth):
    close = 0x7D if b[i] == 0x7B else 0x5D
    if depth >= _MAX_DEPTH:
        raise _Fault(i, "nesting deeper than 256 levels")
    i = _ws(b, i + 1)
    if i < len(b) and b[i] == close:
        return i + 1
    while True:
        if close == 0x7D:
            if i >= len(b) or b[i] != 0x22:
                raise _Fault(i, "a key (a string) expected")
            i = _ws(b, _string(b, i))
            if i >= len(b) or b[i] != 0x3A:
                raise _Fault(i, "':' expected after a key")
            i = _ws(b, i + 1)
        i = _ws(b, _value(b, i, depth + 1))
        if i < len(b) and b[i] == 0x2C:
            i = _ws(b, i + 1)
            continue
        if i < len(b) and b[i] == close:
            return i + 1
        raise _Fault(i, "',' or '}' expected" if close == 0x7D else "',' or ']' expected")


def _value(b, i, depth):
    """The offset after the JSON value at b[i]; a _Fault where jclip would find one."""
    if i >= len(b):
        raise _Fault(i, "a value expected at the end of the line")
    c = b[i]
    if c in b"{[":
        return _container(b, i, depth)
    if c == 0x22:
        return _string(b, i)
    for word in (b"true", b"false", b"null"):
        if c == word[0]:
            if b[i : i + len(word)] != word:
                raise _Fault(i, _UNEXPECTED)
            return i + len(word)
    if c == 0x2D or 0x30 <= c <= 0x39:
        return _number(b, i)
    raise _Fault(i, _UNEXPECTED)


def _compact(b):
    """A value's JSON text without the whitespace outside its strings, as jclip echoes ids."""
    out, i = [], 0
    while i < len(b):
        if b[i] == 0x22:
            j = _string(b, i)
            out.append(b[i:j])
            i = j
        else:
            if b[i] not in _WS:
                out.append(b[i : i + 1])
            i += 1
    return b"".join(out).decode("utf-8")


def _kind_name(c):
    return {0x7B: "an object", 0x5B: "an array", 0x22: "a string", 0x74: "a boolean",
            0x66: "a boolean", 0x6E: "null"}.get(c, "a number")


def _key_text(raw):
    """A key as written, quotes included, cut short for a message as jclip cuts it."""
    if len(raw) + 1 <= 72:
        return raw.decode("utf-8")
    n = 72 - 5
    while n > 1 and raw[n] & 0xC0 == 0x80:  # not inside a UTF-8 sequence
        n -= 1
    return (raw[:n] + b'..."').decode("utf-8")


def _unescape(raw):
    # jclip reads a lone surrogate escape as U+FFFD (the server would refuse it)
    return re.sub("[\ud800-\udfff]", "\ufffd", json.loads(raw.decode("utf-8")))


_B64 = {c: v for v, c in
        enumerate(b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/")}


def _b64_decode(s):
    """Strict base64 (padding required, no stray bits), with jclip's messages."""
    if re.fullmatch(rb"[A-Za-z0-9+/]*={0,2}", s) and len(s) % 4 == 0:
        data = base64.b64decode(s)
        if base64.b64encode(data) == s:  # the one spelling of these bytes
            return data
    # Not so: walk it as jclip does, to say where it goes wrong.
    if len(s) % 4:
        raise ValueError("invalid base64: %d characters, not a multiple of 4 (padding is "
                         "required)" % len(s))
    pad = (2 if s[-2] == 0x3D else 1) if s and s[-1] == 0x3D else 0
    for i in range(0, len(s), 4):
        n = 4 - pad if i + 4 == len(s) else 4
        t = 0
        for j in range(4):
            v = _B64.get(s[i + j], -1) if j < n else 0
            if v < 0:
                c = s[i + j]
                if c == 0x3D:
                    raise ValueError("invalid base64: padding '=' at offset %d before the end"
                                     % (i + j))
                if 0x20 < c < 0x7F:
                    raise ValueError("invalid base64: '%c' at offset %d is not in the alphabet"
                                     % (c, i + j))
                raise ValueError("invalid base64: byte 0x%02x at offset %d is not in the "
                                 "alphabet" % (c, i + j))
            t = t << 6 | v
        if (n == 2 and t & 0xFFFF) or (n == 3 and t & 0xFF):
            raise ValueError("invalid base64: the last character at offset %d has nonzero "
                             "unused bits" % (i + n - 1))
    raise ValueError("invalid base64")  # not reached: the fast path took it


def _data_uri(uri):
    """(head, bytes) of a data:image/TYPE[;...];base64,DATA URI; BadRecord as jclip has it."""
    u = uri.encode("utf-8")
    comma = u.find(b",")
    if comma < 0:
        raise BadRecord("\"image\" is a data URI without ','")
    semi = u.find(b";", 5, comma)
    type_ = u[5 : semi if semi >= 0 else comma]
    if len(type_) <= 6 or type_[:6].lower() != b"image/":
        raise BadRecord("\"image\" is a data URI of type '%s', not image/*"
                        % type_[:100].decode("utf-8", "replace"))
    if comma - 5 < 7 or u[comma - 7 : comma].lower() != b";base64":
        raise BadRecord("\"image\" is a data URI without ';base64' (data:image/TYPE;base64,DATA)")
    try:
        return u[: comma + 1].decode("utf-8"), _b64_decode(u[comma + 1 :])
    except ValueError as e:
        raise BadRecord("\"image\" data URI: %s" % e)


def parse_record(line, kind):
    """(id text, text or image) of a good record line; BadRecord with jclip's message if not.

    An image is (name, bytes) for a data URI, else (path or URL, None).
    """
    b = line.decode("utf-8", "replace").encode("utf-8")  # jclip too reads bad UTF-8 as U+FFFD
    i = _ws(b, 0)
    if i == len(b):
        raise BadRecord("an empty line, not a JSON object")
    try:
        end = _ws(b, _value(b, i, 0))
        if end < len(b):
            raise _Fault(end, "more after the JSON value")
    except _Fault as f:
        if f.why is not _UNEXPECTED:
            raise BadRecord("malformed JSON at column %d: %s" % (f.at + 1, f.why))
        c = b[f.at]
        if 0x20 < c < 0x7F:
            raise BadRecord("malformed JSON at column %d: an unexpected '%c'" % (f.at + 1, c))
        raise BadRecord("malformed JSON at column %d: an unexpected byte 0x%02x" % (f.at + 1, c))
    if b[i] != 0x7B:
        raise BadRecord("not a JSON object but " + _kind_name(b[i]))

    # The line is valid JSON: walk the top-level members, noting each value's text.
    members, bad, duplicate = {}, None, False
    i = _ws(b, i + 1)
    while b[i] != 0x7D:
        key_end = _string(b, i)
        raw_key = b[i:key_end]
        v = _ws(b, _ws(b, key_end) + 1)
        v_end = _value(b, v, 1)
        key = _unescape(raw_key)
        if key in ("id", "text", "image", "draft") and key not in members:
            members[key] = b[v:v_end]
        elif bad is None:
            bad, duplicate = raw_key, key in members
        i = _ws(b, v_end)
        if b[i] == 0x2C:
            i = _ws(b, i + 1)
    id_text = _compact(members["id"]) if "id" in members else None

    def fail(msg):
        raise BadRecord(msg, id_text)

    # The checks of jclip's record parser, in its order, with its messages.
    if bad is not None:
        if duplicate:
            fail("duplicate key " + _key_text(bad))
        fail('unknown key %s (a record has "id" and "text" or "image")' % _key_text(bad))
    draft = members.get("draft")
    if draft is not None:
        if draft not in (b"true", b"false"):
            fail('"draft" is %s, not true or false' % _kind_name(draft[0]))
        if "text" in members:
            fail('"draft" is for image records, not text')
    if id_text is None:
        fail('missing "id"')
    if "text" in members and "image" in members:
        fail('both "text" and "image": a record has one of them')
    if "text" not in members and "image" not in members:
        fail('neither "text" nor "image"')
    name = "text" if "text" in members else "image"
    if members[name][0] != 0x22:
        fail('"%s" is %s, not a string' % (name, _kind_name(members[name][0])))
    value = _unescape(members[name])
    if name == "image":
        if value == "":
            fail('"image" is empty: a path or a data URI expected')
        if value[:5].lower() == "data:":
            try:
                value = _data_uri(value)
            except BadRecord as e:
                fail(e.msg)
        elif "\0" in value:
            fail('"image" is a path with a NUL character')
        else:
            value = (value, None)
    if name != kind:
        other = 'embed-image takes only "image"' if kind == "image" else \
            'embed-text takes only "text"'
        fail("%s record: %s" % ('a "text"' if name == "text" else 'an "image"', other))
    if draft == b"true":
        # jclip serve drafts all its JPEGs or none (its --draft), not record by record
        fail('"draft": true is not available through jclip serve')
    return id_text, value


def json_string(s):
    """A JSON string as jclip writes one: only quote, backslash and controls escaped."""
    out = ['"']
    for c in s:
        if c in '"\\':
            out.append("\\" + c)
        elif c == "\n":
            out.append("\\n")
        elif c == "\t":
            out.append("\\t")
        elif c < " " or c == "\x7f":
            out.append("\\u%04x" % ord(c))
        else:
            out.append(c)
    out.append('"')
    return "".join(out)


def error_line(id_text, msg):
    return ('{"id":%s,"error":%s}\n' % (id_text or "null", json_string(msg))).encode("utf-8")


def image_input(name, data):
    """The server's input for an image: the bytes in base64, read here from a file.

    An http(s) URL goes as it is, for the server to fetch as jclip would.
    """
    if data is None and re.match("https?://", name, re.I):
        return {"image": name}
    if data is None:
        try:
            if os.path.isdir(name):
                raise BadRecord("cannot read '%s': is a directory" % name)
            with open(name, "rb") as f:
                data = f.read()
        except OSError as e:
            raise BadRecord("cannot open '%s': %s" % (name, os.strerror(e.errno or errno.EIO)))
    if not data:
        raise BadRecord("cannot decode '%s': empty file" % name)
    return {"image": base64.b64encode(data).decode("ascii")}


class ServerError(Exception):
    pass


def post(servers, start, body, timeout):
    """POSTs body to /v1/embeddings, to servers[start] first and the others if it is down.

    Returns (status, response bytes). A server that cannot be reached, or answers 503 (it is
    stopping), is skipped; after two rounds the task fails.
    """
    last = None
    for attempt in range(2 * len(servers)):
        url = urllib.parse.urlsplit(servers[(start + attempt) % len(servers)])
        conn = http.client.HTTPConnection(url.hostname, url.port or 80, timeout=timeout)
        try:
            conn.request("POST", url.path.rstrip("/") + "/v1/embeddings", body,
                         {"Content-Type": "application/json"})
            resp = conn.getresponse()
            data = resp.read()
            if resp.status != 503:
                return resp.status, data
            last = "%s: 503 %s" % (url.geturl(), data[:200])
        except (OSError, http.client.HTTPException) as e:
            last = "%s: %s" % (url.geturl(), e)
        finally:
            conn.close()
        if attempt + 1 == len(servers):
            time.sleep(1)
    raise ServerError("no jclip serve answered; last: %s" % last)


def embed_http(data, kind, servers, start, timeout):
    """A task: the output lines of one partition, through jclip serve."""
    lines = data.split(b"\n")[:-1]
    out = [None] * len(lines)
    todo = []  # (line number, id text, input, image name)
    for k, line in enumerate(lines):
        id_text = None
        try:
            id_text, value = parse_record(line, kind)
            if kind == "image":
                name = value[0]
                inp = image_input(*value)
            else:
                inp, name = value, None
            todo.append((k, id_text, inp, name))
        except BadRecord as e:
            # parse_record's errors carry the id; image_input's come after it is known
            out[k] = error_line(e.id_text or id_text, e.msg)

    while todo:
        # one request: up to HTTP_MAX_INPUTS inputs and about HTTP_MAX_BODY bytes
        chunk, size = [], 0
        for item in todo:
            n = len(item[2]["image"]) if kind == "image" else len(item[2]) * 6
            if chunk and (len(chunk) == HTTP_MAX_INPUTS or size + n > HTTP_MAX_BODY):
                break
            chunk.append(item)
            size += n
        # truncate: cut texts over 8192 tokens as the CLI does, not refuse them
        body = json.dumps({"input": [c[2] for c in chunk], "truncate": True},
                          ensure_ascii=False).encode("utf-8")
        status, resp = post(servers, start, body, timeout)
        if status == 200:
            # Numbers are kept as the text the server printed (parse_float=str), so the
            # embedding is spliced, not re-printed.
            items = json.loads(resp, parse_float=str, parse_int=str)["data"]
            if len(items) != len(chunk):
                raise ServerError("%d inputs, %d embeddings" % (len(chunk), len(items)))
            for item in items:
                k, id_text, _, _ = chunk[int(item["index"])]
                out[k] = ('{"id":%s,"embedding":[%s]}\n'
                          % (id_text, ",".join(item["embedding"]))).encode("utf-8")
            del todo[: len(chunk)]
            continue
        # An error that names one input (an image that does not decode, a URL that cannot be
        # fetched) is that record's error; the others go again. Any other fails the task.
        try:
            detail = json.loads(resp)["detail"]
        except (ValueError, KeyError, TypeError):
            detail = resp[:200].decode("utf-8", "replace")
        named = re.findall(r"input\[(\d+)\]", detail)
        if (status in (400, 413, 422, 502, 504) and len(set(named)) == 1
                and int(named[0]) < len(chunk)):
            j = int(named[0])
            k, id_text, _, name = chunk[j]
            # the server names the input where jclip names the image
            prefix = "input[%d]: " % j
            if detail.startswith(prefix):
                detail = detail[len(prefix):]
            out[k] = error_line(id_text, detail.replace("'input[%d]'" % j, "'%s'" % name))
            todo.remove(chunk[j])
            continue
        raise ServerError("jclip serve answered %d: %s" % (status, detail))
    return b"".join(out)


# ---- the client ---------------------------------------------------------------------------


def parse_args(argv):
    p = argparse.ArgumentParser(
        prog=PROG, description="Embed a JSON-lines file of records with jclip on Dask.")
    p.add_argument("--scheduler", required=True, help="the scheduler, e.g. tcp://host:8786")
    p.add_argument("--jclip", default="jclip", help="jclip on the workers (default: on PATH)")
    p.add_argument("--model", help="model directory on the workers (default: their JCLIP_MODEL)")
    p.add_argument("--kind", choices=("text", "image"), default="text")
    p.add_argument("--partition-records", type=int, default=1000, metavar="N",
                   help="records per partition (default 1000)")
    p.add_argument("--threads", type=int, metavar="N", help="jclip -t on the workers")
    p.add_argument("--via", choices=("pipe", "http"), default="pipe")
    p.add_argument("--servers", help="http: jclip serve URLs, comma-separated")
    p.add_argument("--timeout", type=float, default=600, help="http: seconds per request")
    p.add_argument("input", metavar="IN.jsonl")
    p.add_argument("output", metavar="OUT.jsonl")
    a = p.parse_args(argv)
    if a.partition_records < 1:
        p.error("--partition-records must be at least 1")
    if a.via == "http":
        if not a.servers:
            p.error("--via http needs --servers")
        a.servers = [u.strip() for u in a.servers.split(",") if u.strip()]
        for u in a.servers:
            if urllib.parse.urlsplit(u).scheme != "http":
                p.error("--servers: '%s' is not an http:// URL" % u)
    elif a.servers:
        p.error("--servers is for --via http")
    return a


def run(a):
    # Partitions travel inside their tasks, not scattered ahead: scattered data lost with its
    # worker could not be recomputed. So distributed's advice to scatter large arguments
    # does not apply here.
    warnings.filterwarnings("ignore", message="Large object of size")
    client = Client(a.scheduler, timeout="60s")
    # Names this run's keys and its worker plugin: another run, even of the same file, has
    # its own tasks and its own jclip processes.
    run_id = uuid.uuid4().hex[:12]
    plugin = None
    try:
        if a.via == "pipe":
            argv = [a.jclip, "embed-" + a.kind, "--jsonl"]
            argv += ["-m", a.model] if a.model else []
            argv += ["-t", str(a.threads)] if a.threads else []
            # Every worker, also one that joins later, gets the plugin; unregistered at the
            # end, it stops the jclip processes of this run.
            plugin = "jclip-pipe-" + run_id
            client.register_worker_plugin(JclipPipePlugin(argv), name=plugin)

            def submit(i, part, key):
                return client.submit(embed_pipe, part, plugin, key=key)
        else:

            def submit(i, part, key):
                # partitions go round the servers; a task falls back on the others
                return client.submit(embed_http, part, a.kind, a.servers,
                                     i % len(a.servers), a.timeout, key=key)

        # Enough partitions in flight to keep every worker busy, few enough that the
        # client holds a bounded part of the file.
        window = max(8, 3 * sum(client.nthreads().values()))
        tmp = "%s.tmp.%d" % (a.output, os.getpid())
        records = parts = 0
        try:
            with open(tmp, "wb") as f:
                pending = collections.deque()

                def write_oldest():
                    f.write(pending.popleft().result())
                    f.flush()  # progress shows in the file as it goes

                for i, part in enumerate(read_partitions(a.input, a.partition_records)):
                    key = "jclip-%s-%s-%06d" % (a.kind, run_id, i)
                    pending.append(submit(i, part, key))
                    records += part.count(b"\n")
                    parts += 1
                    while len(pending) >= window:
                        write_oldest()
                while pending:
                    write_oldest()
                os.fsync(f.fileno())
            os.replace(tmp, a.output)
        except BaseException:
            try:
                os.unlink(tmp)
            except OSError:
                pass
            raise
        print("%s: %d records in %d partitions" % (PROG, records, parts), file=sys.stderr)
    finally:
        if plugin is not None:
            try:
                client.unregister_worker_plugin(plugin)
            except Exception:  # the run's own error, if any, is the one to report
                pass
        client.close()


def main(argv=None):
    a = parse_args(sys.argv[1:] if argv is None else argv)
    try:
        run(a)
    except KeyboardInterrupt:
        return 130
    except Exception as e:
        print("%s: error: %s: %s" % (PROG, type(e).__name__, e), file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
