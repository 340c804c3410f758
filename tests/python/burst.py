#!/usr/bin/env python3
"""A burst of clients, and the echo server they are bridged to, for the
load tests.

    burst.py echo HOST:PORT              echo every byte back, on each connection
    burst.py clients HOST:PORT --count N [--messages M] [--timeout S]
        N connections opened at once, each sending M pickles (one unless
        given) and reading them back, byte for byte and in order; prints
        {"served": n, "failed": n, "seconds": s} and exits 0 only when every
        one was served

One process, one event loop (asyncio), so thousands of connections cost no
threads. The open-file limit is raised to the hard limit first.
"""
import argparse
import asyncio
import json
import pickle
import resource
import sys
import time


def raise_open_files():
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))


def split(address):
    host, _, port = address.rpartition(":")
    return host.strip("[]"), int(port)


async def echo(address):
    async def serve(reader, writer):
        try:
            while data := await reader.read(65536):
                writer.write(data)
                await writer.drain()
        except ConnectionError:
            pass
        finally:
            writer.close()

    host, port = split(address)
    server = await asyncio.start_server(serve, host, port, backlog=65535)
    print("listening", flush=True)
    async with server:
        await server.serve_forever()


async def one_client(host, port, index, messages, timeout):
    sent = b"".join(pickle.dumps({"client": index, "seq": k, "payload": "x" * 40}, 4)
                    for k in range(messages))

    async def send(writer):
        writer.write(sent)
        await writer.drain()

    try:
        reader, writer = await asyncio.wait_for(asyncio.open_connection(host, port), timeout)
        _, got = await asyncio.wait_for(
            asyncio.gather(send(writer), reader.readexactly(len(sent))), timeout)
        writer.close()
        return got == sent
    except (OSError, asyncio.TimeoutError, asyncio.IncompleteReadError):
        return False


async def clients(address, count, messages, timeout):
    host, port = split(address)
    start = time.monotonic()
    results = await asyncio.gather(*(one_client(host, port, i, messages, timeout)
                                     for i in range(count)))
    served = sum(results)
    print(json.dumps({"served": served, "failed": count - served,
                      "seconds": round(time.monotonic() - start, 3)}), flush=True)
    return 0 if served == count else 1


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("mode", choices=["echo", "clients"])
    parser.add_argument("address")
    parser.add_argument("--count", type=int, default=1000)
    parser.add_argument("--messages", type=int, default=1)
    parser.add_argument("--timeout", type=float, default=60)
    args = parser.parse_args()
    raise_open_files()
    if args.mode == "echo":
        asyncio.run(echo(args.address))
        return 0
    return asyncio.run(clients(args.address, args.count, args.messages, args.timeout))


if __name__ == "__main__":
    sys.exit(main())
