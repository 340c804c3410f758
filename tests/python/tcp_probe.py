#!/usr/bin/env python3
"""A TCP echo server and a client that reports what the network does to it,
for the tests of the network fault fixture (tests/support/netns.hpp).

    tcp_probe.py serve HOST    echo every connection; print "listening PORT"
    tcp_probe.py client HOST   answer commands read from standard input

The server binds port 0 and runs until its standard input closes. When a
connection fails, it prints the errno's name (ECONNRESET, ...).

The client's first line of input is the server's port (so that both can
start at once). Then it reads one command a line and answers each with one
line:

    open SECONDS    connect, and keep the connection as the held one
    try SECONDS     connect and close again; the held connection is untouched
    echo SECONDS    send one byte on the held connection and wait for every
                    byte sent so far to come back

An answer is "ok", "timeout" (nothing within SECONDS), "eof" (the peer closed),
"none" (no held connection) or the errno's name (ECONNREFUSED, ECONNRESET,
ENETUNREACH, ...).
"""
import errno
import os
import socket
import sys
import threading


def outcome(error):
    if isinstance(error, TimeoutError) and error.errno is None:
        return "timeout"  # the socket's own timeout, not ETIMEDOUT
    return errno.errorcode.get(error.errno, str(error))


def serve(host):
    listener = socket.create_server((host, 0))
    printing = threading.Lock()

    def echo(conn):
        with conn:
            try:
                while data := conn.recv(65536):
                    conn.sendall(data)
            except OSError as error:
                with printing:
                    print(outcome(error), flush=True)

    def accept():
        while True:
            conn, _ = listener.accept()
            threading.Thread(target=echo, args=(conn,), daemon=True).start()

    threading.Thread(target=accept, daemon=True).start()
    print("listening", listener.getsockname()[1], flush=True)
    sys.stdin.read()  # until the test closes it or dies


class Client:
    def __init__(self, host):
        self.address = (host, int(sys.stdin.readline()))
        self.held = None
        self.sent = 0  # bytes sent on the held connection
        self.received = 0

    def connect(self, seconds):
        return socket.create_connection(self.address, timeout=seconds)

    def open(self, seconds):
        if self.held:
            self.held.close()
        self.held, self.sent, self.received = None, 0, 0
        self.held = self.connect(seconds)
        return "ok"

    def try_(self, seconds):
        self.connect(seconds).close()
        return "ok"

    def echo(self, seconds):
        if not self.held:
            return "none"
        self.held.settimeout(seconds)
        self.held.sendall(b"x")
        self.sent += 1
        while self.received < self.sent:
            data = self.held.recv(self.sent - self.received)
            if not data:
                return "eof"
            self.received += len(data)
        return "ok"

    def run(self):
        commands = {"open": self.open, "try": self.try_, "echo": self.echo}
        for line in sys.stdin:
            name, seconds = line.split()
            try:
                answer = commands[name](float(seconds))
            except OSError as error:
                answer = outcome(error)
            print(answer, flush=True)


def main():
    if sys.argv[1] == "serve":
        serve(sys.argv[2])
    else:
        Client(sys.argv[2]).run()
    os._exit(0)  # without waiting for the daemon threads


if __name__ == "__main__":
    main()
