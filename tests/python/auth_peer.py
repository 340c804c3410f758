#!/usr/bin/env python3
"""multiprocessing.connection peers for the auth tests, run by any CPython 3.

    auth_peer.py client PORT KEYFILE COUNT
        Client(("127.0.0.1", PORT), authkey=KEY): sends COUNT objects, checks
        each echo; prints "ok COUNT", or "AuthenticationError: ..." (exit 3).
    auth_peer.py listen KEYFILE CONFIG BINARY PLUGIN_DIR COUNT
        Listener(("127.0.0.1", 0), authkey=KEY); writes CONFIG with its port
        put for {PORT}, runs `BINARY run CONFIG`, accepts, sends COUNT objects
        and checks each echo (or prints the AuthenticationError), closes, and
        prints pickleway's exit status and log.
    auth_peer.py serve KEYFILE
        A spawned child: the handshake on its stdin/stdout as the side that
        challenges first (deliver_challenge, then answer_challenge), then
        echoes every message until EOF.
    auth_peer.py raw PORT [SIZE]
        A plain socket: reads the challenge; then sends a handshake message of
        SIZE bytes when given, else nothing; reads to EOF. Prints the bytes it
        got after the challenge and the seconds until EOF.
"""
import os
import socket
import struct
import subprocess
import sys
import time
from multiprocessing.connection import AuthenticationError, Client, Listener


def objects(count):
    return [{"n": i, "blob": b"k" * (i * 300), "text": "é" * i} for i in range(count)]


def exchange(conn, count):
    for obj in objects(count):
        conn.send(obj)
        back = conn.recv()
        assert back == obj, (back, obj)


def client(port, key_file, count):
    key = open(key_file, "rb").read()
    try:
        conn = Client(("127.0.0.1", int(port)), authkey=key)
    except AuthenticationError as e:
        print("AuthenticationError:", e)
        return 3
    exchange(conn, int(count))
    conn.close()
    print("ok", count)
    return 0


def listen(key_file, config, binary, plugin_dir, count):
    key = open(key_file, "rb").read()
    listener = Listener(("127.0.0.1", 0), authkey=key)
    port = listener.address[1]
    with open(config) as f:
        text = f.read().replace("{PORT}", str(port))
    with open(config, "w") as f:
        f.write(text)
    gateway = subprocess.Popen([binary, "run", config, "--plugin-path", plugin_dir],
                               stderr=subprocess.PIPE)
    try:
        conn = listener.accept()
    except AuthenticationError as e:
        print("AuthenticationError:", e)
    else:
        exchange(conn, int(count))
        conn.close()
        print("ok", count)
    _, log = gateway.communicate(timeout=30)
    print("exit", gateway.returncode)
    sys.stdout.write(log.decode())
    return 0


def serve(key_file):
    from multiprocessing.connection import Connection, answer_challenge, deliver_challenge
    key = open(key_file, "rb").read()
    reader = Connection(0, writable=False)
    writer = Connection(1, readable=False)

    class Duplex:  # the two pipes as the one connection the handshake expects
        send_bytes = writer.send_bytes
        recv_bytes = reader.recv_bytes

    deliver_challenge(Duplex, key)
    answer_challenge(Duplex, key)
    while True:
        try:
            data = reader.recv_bytes()
        except EOFError:
            return 0
        writer.send_bytes(data)


def recv_message(sock):
    data = b""
    while len(data) < 4:
        chunk = sock.recv(4 - len(data))
        if not chunk:
            raise EOFError
        data += chunk
    size, = struct.unpack("!i", data)
    data = b""
    while len(data) < size:
        chunk = sock.recv(size - len(data))
        if not chunk:
            raise EOFError
        data += chunk
    return data


def raw(port, size=None):
    sock = socket.create_connection(("127.0.0.1", int(port)))
    start = time.monotonic()
    challenge = recv_message(sock)
    assert challenge.startswith(b"#CHALLENGE#{sha256}"), challenge
    if size is not None:
        sock.sendall(struct.pack("!i", int(size)) + b"x" * int(size))
    sock.settimeout(20)
    rest = b""
    while True:
        try:
            chunk = sock.recv(4096)
        except ConnectionResetError:
            break
        if not chunk:
            break
        rest += chunk
    print("after challenge %r in %.3f s" % (rest, time.monotonic() - start))
    return 0


if __name__ == "__main__":
    mode, args = sys.argv[1], sys.argv[2:]
    sys.exit({"client": client, "listen": listen, "serve": serve, "raw": raw}[mode](*args))
