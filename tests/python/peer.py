#!/usr/bin/env python3
"""Python peers for pickleway's engine tests.

    peer.py echo      [--via V]          answer every object with itself, until EOF
    peer.py produce   [--via V] options  send messages, check the echoes, report
    peer.py flood     [--via V] options  send messages as fast as it can (--every-ms), read nothing
    peer.py sink      [--via V] options  read until EOF, check, report
    peer.py raw FILE  [--via V]          write FILE's bytes as they are, then read to EOF
    peer.py clients   --via V --count N  N connections at once, each echoed and checked

--via says where the pickle channel is:
    stdio (default)          this process's stdin/stdout
    fds                      PICKLEWAY_FDS (spawn's channel: fds)
    fifo:WRITE,READ          FIFOs (either may be empty for one way)
    unix:PATH                connect to a Unix socket
    tcp:HOST:PORT            connect over TCP
    spawn:CONFIG             run `pickleway run CONFIG` and talk to its stdio

produce sends --small messages of ~100 bytes and --big messages of --big-size
bytes, interleaved, each {"seq": i, "data": ...}, from a writer thread while
the main thread reads the echoes, and checks each echo equals what was sent,
in order. A JSON line {"sent": n, "received": n, "ok": bool, ...} goes to
--report (a file) or stderr; exit status 0 only when all came back intact.
"""
import argparse
import json
import os
import pickle
import socket
import subprocess
import sys
import threading

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..",
                                "tools", "python"))
import pickleway_io  # noqa: E402


def open_channel(via, gateway=None):
    """A pickleway_io.Channel for --via; `gateway` receives a spawned Popen."""
    if via == "stdio":
        return pickleway_io.channel()
    if via == "fds":
        return pickleway_io.channel()
    kind, _, where = via.partition(":")
    if kind == "fifo":
        write_path, _, read_path = where.partition(",")
        # Open in the order pickleway opens its ends (read side first there,
        # i.e. our write side first here) so neither open blocks for ever.
        writer = open(write_path, "wb") if write_path else None
        reader = open(read_path, "rb") if read_path else None
        return pickleway_io.Channel(reader, writer)
    if kind in ("unix", "tcp"):
        if kind == "unix":
            sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            sock.connect("\0" + where[1:] if where.startswith("@") else where)
        else:
            host, _, port = where.rpartition(":")
            sock = socket.create_connection((host.strip("[]"), int(port)))
        return SocketChannel(sock)
    if kind == "spawn":
        binary = os.environ["PICKLEWAY_BINARY"]
        proc = subprocess.Popen([binary, "run", where], stdin=subprocess.PIPE,
                                stdout=subprocess.PIPE)
        if gateway is not None:
            gateway.append(proc)
        return pickleway_io.Channel(proc.stdout, proc.stdin)
    raise SystemExit("unknown --via " + via)


class SocketChannel(pickleway_io.Channel):
    def __init__(self, sock):
        self.sock = sock
        super().__init__(sock.makefile("rb"), sock.makefile("wb"))

    def close(self):
        super().close()
        self.sock.shutdown(socket.SHUT_WR)


def message(seq, size):
    return {"seq": seq, "data": bytes((seq + i) % 256 for i in range(min(size, 256))) * (size // 256 + 1)}


def intact(obj):
    """Whether a message() has the data it was made with."""
    data = obj.get("data")
    if not isinstance(data, bytes):
        return True
    size = len(data) if len(data) < 256 else len(data) - 256  # one of the sizes that make it
    return data == message(obj["seq"], size)["data"]


def plan(args):
    """The sizes to send, big ones spread among the small ones."""
    sizes = [100] * args.small
    step = max(1, len(sizes) // (args.big + 1))
    for k in range(args.big):
        sizes.insert(min(len(sizes), (k + 1) * step + k), args.big_size)
    return sizes


def report(args, result):
    line = json.dumps(result)
    if args.report:
        with open(args.report, "w") as f:
            f.write(line + "\n")
    else:
        sys.stderr.write(line + "\n")
    return 0 if result["ok"] else 1


def produce(args):
    gateway = []
    channel = open_channel(args.via, gateway)
    sizes = plan(args)
    sent = []
    errors = []

    def writer():
        try:
            for seq, size in enumerate(sizes):
                obj = message(seq, size)
                if args.protocol is not None:
                    channel._writer.write(pickle.dumps(obj, args.protocol))
                    channel._writer.flush()
                else:
                    channel.send(obj)
                sent.append(seq)
            channel.close()
        except Exception as e:  # reported with the result
            errors.append("writer: %r" % (e,))

    thread = threading.Thread(target=writer)
    thread.start()
    received = 0
    ok = True
    try:
        for obj in channel:
            if obj != message(received, sizes[received]):
                ok = False
                errors.append("echo %d differs" % received)
                break
            received += 1
    except Exception as e:
        ok = False
        errors.append("reader: %r" % (e,))
    thread.join()
    for proc in gateway:
        proc.wait(timeout=30)
    ok = ok and not errors and received == len(sizes)
    return report(args, {"sent": len(sent), "received": received, "ok": ok, "errors": errors})


def flood(args):
    """Sends the planned messages as fast as it can (or one each --every-ms),
    reading nothing back."""
    channel = open_channel(args.via)
    pause = threading.Event()
    for seq, size in enumerate(plan(args)):
        channel.send(message(seq, size))
        if args.every_ms:
            pause.wait(args.every_ms / 1000.0)
    channel.close()
    return 0


def sink(args):
    channel = open_channel(args.via)
    received = 0
    errors = []
    try:
        for obj in channel:
            if isinstance(obj, dict) and obj.get("seq") != received:
                errors.append("message %d has seq %r" % (received, obj.get("seq")))
            elif isinstance(obj, dict) and not intact(obj):
                errors.append("message %d has other data than was sent" % received)
            received += 1
            if args.progress_every and received % args.progress_every == 0:
                sys.stderr.write("sink: received %d\n" % received)
                sys.stderr.flush()
            if args.slow_ms:
                threading.Event().wait(args.slow_ms / 1000.0)
    except Exception as e:
        errors.append("reader: %r" % (e,))
    ok = not errors and (args.expect is None or received == args.expect)
    return report(args, {"received": received, "ok": ok, "errors": errors})


def echo(args):
    if args.stray:
        os.write(1, args.stray.encode() + b"\n")  # a print that bypasses everything
    channel = open_channel(args.via)
    for obj in channel:
        channel.send(obj)
    channel.close()
    return 0


def raw(args):
    channel = open_channel(args.via)
    with open(args.file, "rb") as f:
        channel._writer.write(f.read())
    channel.close()
    try:
        for _ in channel:
            pass
    except Exception:
        pass
    return 0


def clients(args):
    """--count clients at once, each sending --small messages and checking the echoes."""
    results = []

    def one(index):
        try:
            channel = open_channel(args.via)
            sent = [{"client": index, "seq": i} for i in range(args.small)]
            # Send everything first: pickleway buffers within its bounds and
            # the echo child reads as we write, so this cannot deadlock for
            # a few small messages.
            for obj in sent:
                channel.send(obj)
            channel.close()
            got = list(channel)
            results.append(got == sent)
        except Exception as e:
            sys.stderr.write("client %d: %r\n" % (index, e))
            results.append(False)

    threads = [threading.Thread(target=one, args=(i,)) for i in range(args.count)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    ok = len(results) == args.count and all(results)
    return report(args, {"clients": args.count, "intact": sum(results), "ok": ok})


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("mode", choices=["echo", "produce", "flood", "sink", "raw", "clients"])
    parser.add_argument("file", nargs="?")
    parser.add_argument("--via", default="stdio")
    parser.add_argument("--small", type=int, default=0)
    parser.add_argument("--big", type=int, default=0)
    parser.add_argument("--big-size", type=int, default=1 << 20)
    parser.add_argument("--protocol", type=int)
    parser.add_argument("--expect", type=int)
    parser.add_argument("--count", type=int, default=1)
    parser.add_argument("--slow-ms", type=float, default=0)
    parser.add_argument("--every-ms", type=float, default=0, help="flood: a message this often")
    parser.add_argument("--progress-every", type=int, default=0,
                        help="sink: say 'sink: received N' on stderr every N messages")
    parser.add_argument("--report")
    parser.add_argument("--stray", help="echo: write this line to fd 1 first")
    args = parser.parse_args()
    modes = {"echo": echo, "produce": produce, "flood": flood, "sink": sink, "raw": raw,
             "clients": clients}
    return modes[args.mode](args)


if __name__ == "__main__":
    sys.exit(main())
