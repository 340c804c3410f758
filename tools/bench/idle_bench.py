#!/usr/bin/env python3
"""The idle benchmark: how much of the gateway's memory an idle instance
holds.

    python3 tools/bench/idle_bench.py --pickleway build/pickleway

A tcp->tcp session (listen on 127.0.0.1, connect onward to an asyncio echo
server in this process) takes --instances clients, opened 200 at a time,
which then stay connected and silent. The gateway's resident memory
(VmRSS) after them, less what it held with one instance, divided by their
number, is one instance's share. Two workloads:

  silent     the clients only connect
  one trip   each first sends a ~100-byte pickle and reads it back, so
             that both directions of the instance have carried a message

Runs --runs times, interleaved; prints the median and the range. Memory of
the kernel (socket buffers) is not the gateway's and is not counted.
"""

import argparse
import asyncio
import os
import pickle
import re
import resource
import shlex
import subprocess
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from bench_support import Failed, build_info, machine_info  # noqa: E402

BATCH = 200


def rss_kib(pid):
    with open(f'/proc/{pid}/status') as f:
        return int(re.search(r'VmRSS:\s+(\d+)', f.read()).group(1))


async def echo(reader, writer):
    try:
        while data := await reader.read(65536):
            writer.write(data)
            await writer.drain()
    except (ConnectionError, asyncio.CancelledError):
        pass
    finally:
        writer.close()


async def measure(pickleway, workdir, instances, trip):
    server = await asyncio.start_server(echo, '127.0.0.1', 0, backlog=4096)
    echo_port = server.sockets[0].getsockname()[1]
    config = Path(workdir) / 'idle.yaml'
    config.write_text('sessions:\n  - name: idle\n'
                      f'    max_instances: {instances + 10}\n'
                      '    a: {transport: tcp, listen: "127.0.0.1:0"}\n'
                      f'    b: {{transport: tcp, connect: "127.0.0.1:{echo_port}"}}\n')
    gateway = await asyncio.create_subprocess_exec(pickleway, 'run', str(config),
                                                   stderr=asyncio.subprocess.PIPE)
    clients = []
    drain = None
    try:
        line = (await asyncio.wait_for(gateway.stderr.readline(), 10)).decode()
        m = re.search(r'listening on tcp 127\.0\.0\.1:(\d+)', line)
        if not m:
            raise Failed(f'pickleway did not listen: {line.strip()}')
        port = int(m.group(1))
        # The gateway logs a line or two per instance; a full pipe would
        # stop it.
        drain = asyncio.ensure_future(gateway.stderr.read())
        message = pickle.dumps({'seq': 1, 'name': 'idle', 'values': list(range(20))}, 5)

        async def connect():
            reader, writer = await asyncio.open_connection('127.0.0.1', port)
            if trip:
                writer.write(message)
                await writer.drain()
                got = await asyncio.wait_for(reader.readexactly(len(message)), 30)
                if got != message:
                    raise Failed('the echo came back changed')
            clients.append(writer)

        await connect()
        await asyncio.sleep(0.5)
        base = rss_kib(gateway.pid)
        for _ in range(0, instances, BATCH):
            await asyncio.gather(*(connect() for _ in range(BATCH)))
        await asyncio.sleep(2.0)  # every instance opened onward and settled
        after = rss_kib(gateway.pid)
        return (after - base) / (len(clients) - 1)
    finally:
        for w in clients:
            w.close()
        if gateway.returncode is None:
            gateway.terminate()
        await gateway.wait()
        server.close()
        if drain:
            await drain


def spread(values):
    ordered = sorted(values)
    mid = ordered[(len(ordered) - 1) // 2]
    return f'{mid:.1f} ({ordered[0]:.1f}–{ordered[-1]:.1f})'


def main():
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    parser.add_argument('--pickleway', default='build/pickleway')
    parser.add_argument('--instances', type=int, default=2000)
    parser.add_argument('--runs', type=int, default=3)
    args = parser.parse_args()
    # Each instance holds two sockets here and two in the gateway.
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    if hard < 2 * args.instances + 100:
        sys.exit(f'idle_bench: the open-file limit ({hard}) is too low for {args.instances} instances')
    print('command:', shlex.join([sys.executable] + sys.argv))
    print(f'machine: {machine_info()}; build: {build_info(args.pickleway)}')
    print()
    results = {'silent': [], 'one trip': []}
    with tempfile.TemporaryDirectory(prefix='idle_bench.') as workdir:
        try:
            for run in range(args.runs):
                for name, trip in (('silent', False), ('one trip', True)):
                    kib = asyncio.run(measure(args.pickleway, workdir, args.instances, trip))
                    results[name].append(kib)
                    print(f'  run {run + 1}: {name}: {kib:.1f} KiB an instance', file=sys.stderr, flush=True)
        except Failed as e:
            sys.exit(f'idle_bench: {e}')
    print(f'{args.instances:,} idle tcp->tcp instances, KiB of the gateway\'s memory each, '
          f'median of {args.runs} runs (range):')
    print()
    print('| workload | KiB an instance |')
    print('| --- | ---: |')
    for name, values in results.items():
        print(f'| {name} | {spread(values)} |')
    print()
    worst = max(sorted(v)[(len(v) - 1) // 2] for v in results.values())
    print('Target: an idle instance holds at most 24 KiB: ' + ('met' if worst <= 24 else 'MISSED') +
          f' ({worst:.1f} KiB)')


if __name__ == '__main__':
    main()
