#!/usr/bin/env python3
"""Python's multiprocessing.connection, direct and through a pickleway hop.

    python3 tools/bench/mpc_bench.py --pickleway build/pickleway

`tools/dev bench` runs exactly that, after the relay benchmark. What a user
of a stock `multiprocessing.connection` Client and Listener sees when one
pickleway sits between them, with this python3 at both ends:

  direct  Client -> Listener on a Unix socket
  hop     Client -> pickleway (a: unix listen, b: unix connect, both
          framing: length, the module's own wire format) -> Listener

Two measurements on each path:

  throughput  the Client send()s COUNT small dicts (the relay benchmark's
              ~100-byte kind) and closes; the Listener's side recv()s them
              all; messages/s from its first recv to its last
  round trip  the Client sends one dict and waits for its echo, PINGS
              times; median and p99

Every measurement runs --runs times, interleaved, unpinned; the tables give
the median run and the range. --baseline PICKLEWAY adds the hop run with
another build, in turns with the rest. This script is also each peer, run as
`mpc_bench.py peer MODE SOCKET COUNT`.
"""

import argparse
import json
import os
import shlex
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from multiprocessing.connection import Client, Listener
from pathlib import Path

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from bench_support import Failed, LogReader, build_info, machine_info, median_run  # noqa: E402

COUNT = 300_000
PINGS = 20_000
TIMEOUT = 120


def message(i):
    return {'id': i, 'name': 'sensor-7', 'value': 3.25, 'ok': True, 'tags': ['a', 'b'],
            'unit': 'degC'}


# --- the peers ----------------------------------------------------------------


def peer(mode, address, count):
    """One end, as its own process; its result is one JSON line on stdout."""
    if mode in ('sink', 'echo'):
        with Listener(address, 'AF_UNIX') as listener:
            print('ready', flush=True)
            with listener.accept() as conn:
                if mode == 'echo':
                    try:
                        while True:
                            conn.send(conn.recv())
                    except EOFError:
                        return
                first = conn.recv()
                started = time.perf_counter()
                for i in range(1, count):
                    got = conn.recv()
                    if got['id'] != i:
                        raise SystemExit(f'sink: message {got["id"]} where {i} was due')
                seconds = time.perf_counter() - started
                if first['id'] != 0:
                    raise SystemExit('sink: the first message is not the first sent')
                print(json.dumps({'messages_per_s': (count - 1) / seconds}))
    elif mode == 'send':
        with Client(address, 'AF_UNIX') as conn:
            for i in range(count):
                conn.send(message(i))
    else:  # ping
        with Client(address, 'AF_UNIX') as conn:
            times = []
            for i in range(count):
                started = time.perf_counter()
                conn.send(message(i))
                if conn.recv()['id'] != i:
                    raise SystemExit('ping: the echo is not the message sent')
                times.append(time.perf_counter() - started)
        times = sorted(times[count // 20:])  # the first 5% warm up
        print(json.dumps({'median_us': statistics.median(times) * 1e6,
                          'p99_us': times[int(len(times) * 0.99)] * 1e6}))


# --- the driver ---------------------------------------------------------------


def start_peer(mode, address, count):
    return subprocess.Popen([sys.executable, __file__, 'peer', mode, str(address), str(count)],
                            stdout=subprocess.PIPE, text=True)


def finish(proc, what):
    try:
        out, _ = proc.communicate(timeout=TIMEOUT)
    except subprocess.TimeoutExpired:
        proc.kill()
        raise Failed(f'{what} hung')
    if proc.returncode != 0:
        raise Failed(f'{what} exited with {proc.returncode}')
    return out


def measure(args, workdir, path, server_mode, client_mode, count, serial):
    """Runs one server and one client on `path`; the JSON of whichever reports."""
    server_at = workdir / f'server-{serial}.sock'
    server = start_peer(server_mode, server_at, count)
    if server.stdout.readline().strip() != 'ready':
        raise Failed(f'the {server_mode} peer did not start')
    hop = None
    client_at = server_at
    try:
        if path in ('hop', 'hop-baseline'):
            client_at = workdir / f'hop-{serial}.sock'
            config = workdir / f'hop-{serial}.yaml'
            config.write_text('sessions:\n  - name: hop\n'
                              f'    a: {{transport: unix, listen: {json.dumps(str(client_at))}, '
                              'framing: length}\n'
                              f'    b: {{transport: unix, connect: {json.dumps(str(server_at))}, '
                              'framing: length}\n')
            binary = args.baseline if path == 'hop-baseline' else args.pickleway
            hop = subprocess.Popen([binary, 'run', str(config)], stdin=subprocess.DEVNULL,
                                   stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
            hop_log = LogReader(hop.stderr)
            hop_log.wait_for(r'session hop: listening on', 10)
        client_out = finish(start_peer(client_mode, client_at, count), f'the {client_mode} peer')
        server_out = finish(server, f'the {server_mode} peer')
    finally:
        if server.poll() is None:
            server.kill()
        if hop is not None:
            hop.send_signal(signal.SIGTERM)
            hop.wait(timeout=TIMEOUT)
            hop_log.finish()
            if hop.returncode != 0 or any('with an error' in line for line in hop_log.lines):
                raise Failed('the pickleway hop reports an error:\n' + hop_log.text())
    return json.loads(client_out or server_out)


def spread(values, fmt):
    return f'{fmt(min(values))}–{fmt(max(values))}'


def main():
    if len(sys.argv) == 5 and sys.argv[1] == 'peer':
        return peer(sys.argv[2], sys.argv[3], int(sys.argv[4]))
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    parser.add_argument('--pickleway', default='build/pickleway')
    parser.add_argument('--runs', type=int, default=3)
    parser.add_argument('--scale', type=float, default=1.0)
    parser.add_argument('--baseline', metavar='PICKLEWAY',
                        help='another build, run on the hop beside this one')
    args = parser.parse_args()
    args.pickleway = str(Path(args.pickleway).resolve())
    if args.baseline:
        args.baseline = str(Path(args.baseline).resolve())
    paths = [('direct', 'Client → Listener'), ('hop', 'Client → pickleway → Listener')]
    if args.baseline:
        paths.append(('hop-baseline', 'Client → pickleway → Listener, the --baseline build'))
    count = max(1000, int(COUNT * args.scale))
    pings = max(200, int(PINGS * args.scale))
    print('command:', shlex.join([sys.executable] + sys.argv))
    print(f'machine: {machine_info()}; build: {build_info(args.pickleway)}; '
          f'python {sys.version.split()[0]}')
    print()

    rates, trips = {p: [] for p, _ in paths}, {p: [] for p, _ in paths}
    workdir = Path(tempfile.mkdtemp(prefix='mpc_bench.'))
    serial = 0
    try:
        for run in range(args.runs):
            for path, _ in paths:
                serial += 1
                rates[path].append(measure(args, workdir, path, 'sink', 'send', count, serial))
                serial += 1
                trips[path].append(measure(args, workdir, path, 'echo', 'ping', pings, serial))
                print(f'  run {run + 1}: {path}: {rates[path][-1]["messages_per_s"]:,.0f} msg/s, '
                      f'round trip {trips[path][-1]["median_us"]:.1f} µs', file=sys.stderr,
                      flush=True)
    except Failed as e:
        sys.exit(f'mpc_bench: {e}')
    finally:
        for f in workdir.iterdir():
            f.unlink()
        workdir.rmdir()

    print(f'multiprocessing.connection, {count:,} sends of a ~100-byte dict and {pings:,} round '
          f'trips, unpinned; median of {args.runs} runs, range in brackets:')
    print()
    print('| path | messages/s | ÷ direct | round trip, median µs | p99 µs | the hop adds |')
    print('| --- | ---: | ---: | ---: | ---: | ---: |')
    base_rate = median_run(rates['direct'], 'messages_per_s')['messages_per_s']
    base_trip = median_run(trips['direct'], 'median_us')['median_us']
    for path, what in paths:
        r = median_run(rates[path], 'messages_per_s')['messages_per_s']
        t = median_run(trips[path], 'median_us')
        adds = '—' if path == 'direct' else f'{t["median_us"] - base_trip:.1f} µs'
        print(f'| {what} | {r:,.0f} ({spread([x["messages_per_s"] for x in rates[path]], "{:,.0f}".format)}) '
              f'| {r / base_rate:.2f} | {t["median_us"]:.1f} '
              f'({spread([x["median_us"] for x in trips[path]], "{:.1f}".format)}) '
              f'| {t["p99_us"]:.1f} | {adds} |')
    print()


if __name__ == '__main__':
    main()
