"""The Python side of the redis transport's tests, stdlib only.

  produce N [--pause-every K --pause-ms MS]   N pickles to stdout
  work OUT [--delay-ms MS]                    each message's number to OUT, a line each
  serve OUT [--die-at K] [--delay-ms MS]      replies {"reply": i} to each request, MS after
                                              it; with --die-at, SIGKILLs itself on its
                                              K-th request
  expect-stream SOCKET STREAM N               the stream holds exactly produce N's pickles
  expect-replies SOCKET STREAM N              every request 0..N-1 has a reply on STREAM
  consumers SOCKET STREAM GROUP               the group's consumer names, a line each
  pending SOCKET STREAM GROUP                 how many entries the group has pending
  ping SOCKET                                 exit 0 once Redis answers
"""
import os
import pickle
import signal
import socket
import sys
import time


def message(i):
    # Sizes vary, from a few bytes of padding to a few KiB.
    return {"i": i, "pad": b"x" * ((i * 37) % 3000), "tag": "m%d" % i}


def encode(i):
    return pickle.dumps(message(i), protocol=5)


class Redis:
    """Just enough RESP2 for the checks."""

    def __init__(self, path):
        self.sock = socket.socket(socket.AF_UNIX)
        self.sock.connect(path)
        self.buf = b""

    def call(self, *args):
        out = b"*%d\r\n" % len(args)
        for a in args:
            a = a if isinstance(a, bytes) else str(a).encode()
            out += b"$%d\r\n%s\r\n" % (len(a), a)
        self.sock.sendall(out)
        return self.reply()

    def line(self):
        while b"\r\n" not in self.buf:
            more = self.sock.recv(1 << 20)
            if not more:
                raise EOFError("redis closed the connection")
            self.buf += more
        line, self.buf = self.buf.split(b"\r\n", 1)
        return line

    def exactly(self, n):
        while len(self.buf) < n + 2:
            more = self.sock.recv(1 << 20)
            if not more:
                raise EOFError("redis closed the connection")
            self.buf += more
        data, self.buf = self.buf[:n], self.buf[n + 2:]
        return data

    def reply(self):
        line = self.line()
        kind, rest = line[:1], line[1:]
        if kind == b"+":
            return rest
        if kind == b"-":
            raise RuntimeError(rest.decode())
        if kind == b":":
            return int(rest)
        if kind == b"$":
            n = int(rest)
            return None if n < 0 else self.exactly(n)
        if kind == b"*":
            n = int(rest)
            return None if n < 0 else [self.reply() for _ in range(n)]
        raise RuntimeError("unknown reply %r" % line)

    def entries(self, stream):
        """Every entry of STREAM, oldest first, as (id, fields)."""
        start, got = b"-", []
        while True:
            batch = self.call("XRANGE", stream, start, "+", "COUNT", 1000)
            if not batch:
                return got
            got.extend(batch)
            start = b"(" + batch[-1][0]


def produce(args):
    n = int(args[0])
    every = int(args[args.index("--pause-every") + 1]) if "--pause-every" in args else 0
    pause = int(args[args.index("--pause-ms") + 1]) / 1000 if "--pause-ms" in args else 0
    out = sys.stdout.buffer
    for i in range(n):
        out.write(encode(i))
        if every and (i + 1) % every == 0:
            out.flush()
            time.sleep(pause)
    out.flush()


def requests():
    """The messages on stdin, until it ends."""
    while True:
        try:
            yield pickle.load(sys.stdin.buffer)
        except EOFError:
            return


def work(args):
    delay = int(args[args.index("--delay-ms") + 1]) / 1000 if "--delay-ms" in args else 0
    with open(args[0], "a") as log:
        for m in requests():
            if delay:
                time.sleep(delay)
            log.write("%d\n" % m["i"])
            log.flush()


def serve(args):
    die_at = int(args[args.index("--die-at") + 1]) if "--die-at" in args else 0
    delay = int(args[args.index("--delay-ms") + 1]) / 1000 if "--delay-ms" in args else 0
    with open(args[0], "a") as log:
        for count, m in enumerate(requests(), 1):
            log.write("%d\n" % m["i"])
            log.flush()
            if count == die_at:
                os.kill(os.getpid(), signal.SIGKILL)  # mid-request: no reply
            if delay:
                time.sleep(delay)
            sys.stdout.buffer.write(pickle.dumps({"reply": m["i"]}, protocol=5))
            sys.stdout.buffer.flush()


def expect_stream(args):
    r, stream, n = Redis(args[0]), args[1], int(args[2])
    entries = r.entries(stream)
    if len(entries) != n:
        sys.exit("%d entries, not %d" % (len(entries), n))
    for i, (entry_id, fields) in enumerate(entries):
        if fields != [b"p", encode(i)]:
            sys.exit("entry %d (%s) is not message %d byte for byte" % (i, entry_id.decode(), i))
    print("ok", n)


def expect_replies(args):
    r, stream, n = Redis(args[0]), args[1], int(args[2])
    replies = [pickle.loads(dict(zip(f[::2], f[1::2]))[b"p"])["reply"] for _, f in r.entries(stream)]
    missing = sorted(set(range(n)) - set(replies))
    if missing:
        sys.exit("no reply to %d requests, the first %s" % (len(missing), missing[:10]))
    print("ok", len(replies), "replies")


def consumers(args):
    r = Redis(args[0])
    for c in r.call("XINFO", "CONSUMERS", args[1], args[2]):
        print(dict(zip(c[::2], c[1::2]))[b"name"].decode())


def pending(args):
    print(Redis(args[0]).call("XPENDING", args[1], args[2])[0])


def ping(args):
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        try:
            if Redis(args[0]).call("PING") == b"PONG":
                return
        except (OSError, EOFError):
            time.sleep(0.02)
    sys.exit("redis did not answer on " + args[0])


if __name__ == "__main__":
    commands = {"produce": produce, "work": work, "serve": serve, "expect-stream": expect_stream,
                "expect-replies": expect_replies, "consumers": consumers, "pending": pending,
                "ping": ping}
    commands[sys.argv[1]](sys.argv[2:])
