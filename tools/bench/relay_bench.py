#!/usr/bin/env python3
"""The relay benchmark: what a pickleway hop costs against a plain pipe.

    python3 tools/bench/relay_bench.py --pickleway build/pickleway \\
        --load build/tools/bench/relay_load

`tools/dev bench` runs exactly that, after the framer benchmark. relay_load
(tools/bench/relay_load.cpp) is the load generator, the checking sink, the
pinger and the ponger; it only reads stdin and writes stdout, so the same
program runs on every path. Its pickles are made here once, by this python3:

  small  1000 dicts {'id': i, 'name': 'sensor-7', 'value': 3.25, ...},
         protocol 5, 97-100 bytes each, cycled
  large  4 dicts {'id': i, 'payload': <1 MiB of random bytes>}, protocol 5,
         cycled
  ping   one 64-byte protocol-5 pickle

Throughput (small: messages/s; large: MB/s), generator to sink, on five
paths; the sink checks every message against the corpus and times its first
byte to EOF:

  direct  gen | sink (one pipe)
  hop     relay_load hop: gen and sink on pipes of a minimal relay (epoll,
          read, write, no framing): the least any relay process costs
  spawn   one pickleway: a: spawn gen, b: spawn sink
  unix    pickleway 1 (a: spawn gen, b: unix connect) to
          pickleway 2 (a: unix listen, b: spawn sink)
  tcp     the same over TCP on 127.0.0.1

each twice: every process pinned to CPU 1 (taskset -c 1: the CPU cost of a
path, steady from run to run) and unpinned (what the 2 CPUs give, noisier).

The same streams, written to a file first, from `cat FILE` to
`cat >/dev/null`, timed from start to exit (the ends do no checking and no
pickling, so what is left is the path):

  cat        cat FILE | cat >/dev/null (one pipe)
  cat-spawn  one pickleway: a: spawn cat FILE, b: spawn cat >/dev/null
  cat-socat  socat -u EXEC:'cat FILE',pipes SYSTEM:'cat >/dev/null',pipes

--baseline PICKLEWAY adds one-session rows (spawn, cat-spawn, and the
pickleway round trip) run with another build, interleaved with the rest: a
change measured before and after in one run.

Round-trip time of a 64-byte ping-pong, every process pinned to CPU 1:

  direct     pinger and ponger on two pipes
  hop        the minimal relay between them
  pickleway  one pickleway: a: spawn pinger, b: spawn ponger (pipes both)
  socat      socat EXEC:pinger,pipes EXEC:ponger,pipes (pipes, like spawn);
             also socat's default, socketpairs, for reference

Every measurement runs --runs times, interleaved; the tables give the median
run. Wire framing on unix/tcp is pickleway's default (pickle). Markdown
tables and the targets of the relay issue come out on stdout, progress on
stderr. About a minute on an idle 2-CPU machine.
"""

import argparse
import json
import os
import pickle
import platform
import random
import re
import shlex
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from bench_support import (Failed, LogReader, build_info, fmt_rate, machine_info,  # noqa: E402
                           median_run, read_result, write_corpus, yaml_list)

PIN_CPU = 1  # as the framer benchmark: the first CPU takes most other work
TIMEOUT = 120  # seconds any one process may take before the run is called hung

SMALL_COUNT = 3_000_000
LARGE_COUNT = 1024  # 1 GiB of payload
PING_COUNT = 20_000
PING_WARMUP = 1_000


# --- corpora -----------------------------------------------------------------


def small_messages():
    # The framer benchmark's dict-p5 messages: about 100 bytes each.
    return [pickle.dumps({'id': i, 'name': 'sensor-7', 'value': 3.25, 'ok': True,
                          'tags': ['a', 'b'], 'unit': 'degC'}, protocol=5)
            for i in range(1000)]


def large_messages():
    rng = random.Random(1)
    return [pickle.dumps({'id': i, 'payload': rng.randbytes(1 << 20)}, protocol=5)
            for i in range(4)]


def ping_message():
    for pad in range(64):
        m = pickle.dumps({'seq': 1, 'pad': b'x' * pad}, protocol=5)
        if len(m) >= 64:
            return m
    raise AssertionError('no 64-byte pickle')


# --- running things ----------------------------------------------------------


def pickleway_process(pickleway, config, pin):
    return subprocess.Popen(pin + [pickleway, 'run', str(config)], stdin=subprocess.DEVNULL,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)


def wait_ok(proc, log, what):
    try:
        code = proc.wait(timeout=TIMEOUT)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()
        raise Failed(f'{what} hung; log:\n' + log.text())
    log.finish()
    if code != 0:
        raise Failed(f'{what} exited with {code}; log:\n' + log.text())


class Bench:
    def __init__(self, args, workdir):
        self.pickleway = str(Path(args.pickleway).resolve())
        baseline = getattr(args, 'baseline', None)  # the other benchmarks have none
        self.baseline = str(Path(baseline).resolve()) if baseline else None
        self.load = str(Path(args.load).resolve())
        self.dir = workdir
        self.serial = 0

    def _fresh(self, stem):
        self.serial += 1
        return self.dir / f'{stem}-{self.serial}'

    # argv of relay_load's modes
    def gen(self, corpus, count):
        return [self.load, 'gen', str(corpus), str(count), '--out', os.devnull]

    def sink(self, corpus, count, out):
        return [self.load, 'sink', str(corpus), str(count), '--out', str(out)]

    def ping(self, corpus, out):
        return [self.load, 'ping', str(corpus), str(PING_COUNT), '--warmup', str(PING_WARMUP),
                '--out', str(out)]

    def pong(self):
        return [self.load, 'pong']

    # --- the paths ---
    def direct(self, first, second, pin=()):
        """first's stdout into second's stdin; second's stdout back into first's stdin."""
        pin = list(pin)
        a_to_b_r, a_to_b_w = os.pipe()
        b_to_a_r, b_to_a_w = os.pipe()
        procs = [subprocess.Popen(pin + first, stdin=b_to_a_r, stdout=a_to_b_w),
                 subprocess.Popen(pin + second, stdin=a_to_b_r, stdout=b_to_a_w)]
        for fd in (a_to_b_r, a_to_b_w, b_to_a_r, b_to_a_w):
            os.close(fd)
        for p, argv in zip(procs, (first, second)):
            try:
                code = p.wait(timeout=TIMEOUT)
            except subprocess.TimeoutExpired:
                for q in procs:
                    q.kill()
                raise Failed(f'{shlex.join(argv)} hung')
            if code != 0:
                raise Failed(f'{shlex.join(argv)} exited with {code}')

    def hop(self, first, second, pin=()):
        """relay_load hop: the least a relay process can do, between first and second."""
        argv = list(pin) + [self.load, 'hop'] + first + ['--'] + second
        run = subprocess.run(argv, timeout=TIMEOUT, stdin=subprocess.DEVNULL,
                             stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        if run.returncode != 0:
            raise Failed(f'{shlex.join(argv)} exited with {run.returncode}: {run.stderr}')

    def spawn(self, first, second, pin=(), pickleway=None):
        """One pickleway (this build, or `pickleway`): a: spawn first, b: spawn second."""
        config = self._fresh('spawn').with_suffix('.yaml')
        config.write_text('sessions:\n  - name: relay\n'
                          f'    a: {{transport: spawn, command: {yaml_list(first)}}}\n'
                          f'    b: {{transport: spawn, command: {yaml_list(second)}}}\n')
        proc = pickleway_process(pickleway or self.pickleway, config, list(pin))
        wait_ok(proc, LogReader(proc.stderr), f'pickleway run {config}')

    def two_processes(self, kind, first, second, pin=()):
        """pickleway 2 listens (b: spawn second); pickleway 1 connects (a: spawn first)."""
        stem = self._fresh(kind)
        if kind == 'unix':
            at = str(stem.with_suffix('.sock'))
            listen, connect = f'listen: {json.dumps(at)}', f'connect: {json.dumps(at)}'
        else:
            listen = 'listen: "127.0.0.1:0"'
        server_cfg = stem.with_suffix('.server.yaml')
        server_cfg.write_text('sessions:\n  - name: server\n'
                              f'    a: {{transport: {kind}, {listen}}}\n'
                              f'    b: {{transport: spawn, command: {yaml_list(second)}}}\n')
        server = pickleway_process(self.pickleway, server_cfg, list(pin))
        server_log = LogReader(server.stderr)
        try:
            m = server_log.wait_for(r'session server: listening on (\S+) (\S+)', 10)
            if kind == 'tcp':
                connect = f'connect: {json.dumps(m.group(2))}'
            client_cfg = stem.with_suffix('.client.yaml')
            client_cfg.write_text('sessions:\n  - name: client\n'
                                  f'    a: {{transport: spawn, command: {yaml_list(first)}}}\n'
                                  f'    b: {{transport: {kind}, {connect}}}\n')
            client = pickleway_process(self.pickleway, client_cfg, list(pin))
            wait_ok(client, LogReader(client.stderr), f'pickleway run {client_cfg}')
            # The listener runs on for further clients: end it once its
            # instance has ended, and ask that it ended cleanly.
            server_log.wait_for(r'session server#\d+: ended', TIMEOUT)
        finally:
            if server.poll() is None:
                server.send_signal(signal.SIGTERM)
        wait_ok(server, server_log, f'pickleway run {server_cfg}')
        if any('with an error' in line for line in server_log.lines):
            raise Failed('the listening pickleway reports an error:\n' + server_log.text())

    def socat(self, first, second, pin=(), pipes=True):
        opt = ',pipes' if pipes else ''

        def address(argv):
            text = ' '.join(argv)
            if re.search(r'[\s,:!\\\'"]', ''.join(argv)):
                raise Failed(f'socat cannot take this path in EXEC: {text}')
            return f'EXEC:{text}{opt}'

        argv = list(pin) + ['socat', address(first), address(second)]
        run = subprocess.run(argv, timeout=TIMEOUT, stdin=subprocess.DEVNULL,
                             capture_output=True, text=True)
        if run.returncode != 0:
            raise Failed(f'{shlex.join(argv)} exited with {run.returncode}: {run.stderr}')

    def route(self, path, first, second, pin):
        """first and second, on the path of that name in the tables."""
        if path in ('direct', 'cat'):
            self.direct(first, second, pin)
        elif path == 'hop':
            self.hop(first, second, pin)
        elif path in ('spawn', 'cat-spawn', 'pickleway'):
            self.spawn(first, second, pin)
        elif path.endswith('-baseline'):
            self.spawn(first, second, pin, self.baseline)
        elif path == 'socat':
            self.socat(first, second, pin, pipes=True)
        elif path == 'socat-socketpair':
            self.socat(first, second, pin, pipes=False)
        else:
            self.two_processes(path, first, second, pin)

    # --- the measurements ---
    def throughput(self, path, corpus, count, pin=()):
        out = self._fresh('sink').with_suffix('.json')
        self.route(path, self.gen(corpus, count), self.sink(corpus, count, out), pin)
        r = read_result(out)
        if r['messages'] != count:
            raise Failed(f'{path}: the sink got {r["messages"]} messages of {count}')
        return r

    def cat_stream(self, path, stream, count, pin=()):
        """`stream` (a file of `count` messages) from cat to cat >/dev/null, through `path`."""
        first, second = ['cat', str(stream)], ['sh', '-c', 'exec cat >/dev/null']
        started = time.monotonic()
        if path != 'cat-socat':
            self.route(path, first, second, pin)
        else:  # -u: one way, so no 0.5 s wait once the sink's side ends
            if re.search(r'[\s,:!\\\'"]', str(stream)):
                raise Failed(f'socat cannot take this path in EXEC: {stream}')
            argv = list(pin) + ['socat', '-u', f'EXEC:cat {stream},pipes',
                                'SYSTEM:cat >/dev/null,pipes']
            run = subprocess.run(argv, timeout=TIMEOUT, stdin=subprocess.DEVNULL,
                                 capture_output=True, text=True)
            if run.returncode != 0:
                raise Failed(f'{shlex.join(argv)} exited with {run.returncode}: {run.stderr}')
        seconds = time.monotonic() - started
        return {'messages_per_s': count / seconds,
                'mb_per_s': stream.stat().st_size / seconds / 1e6, 'seconds': seconds}

    def latency(self, path, corpus, pin):
        out = self._fresh('ping').with_suffix('.json')
        self.route(path, self.ping(corpus, out), self.pong(), pin)
        return read_result(out)


# --- reporting ---------------------------------------------------------------


def spread(runs, key, fmt):
    values = [r[key] for r in runs]
    return f'{fmt(min(values))}–{fmt(max(values))}' if len(values) > 1 else ''


THROUGHPUT_PATHS = [
    ('direct', 'direct pipe: gen → sink'),
    ('hop', 'minimal relay (relay_load hop), for reference'),
    ('spawn', 'pickleway, one session spawn→spawn'),
    ('unix', 'two pickleways over a Unix socket'),
    ('tcp', 'two pickleways over TCP 127.0.0.1'),
]
LATENCY_PATHS = [
    ('direct', 'direct: pinger ⇄ ponger on two pipes'),
    ('hop', 'minimal relay (relay_load hop), for reference'),
    ('pickleway', 'one pickleway hop (spawn→spawn, pipes)'),
    ('socat', 'one socat hop (EXEC …,pipes both sides)'),
    ('socat-socketpair', "one socat hop (EXEC, socat's default socketpairs)"),
]
CAT_PATHS = [
    ('cat', 'cat FILE \\| cat >/dev/null, one pipe'),
    ('cat-spawn', 'pickleway, one session: spawn cat FILE → spawn cat >/dev/null'),
    ('cat-socat', "socat -u EXEC:'cat FILE',pipes SYSTEM:'cat >/dev/null',pipes"),
]
BASELINE_PATHS = {
    'spawn': ('spawn-baseline', 'pickleway, one session spawn→spawn: the --baseline build'),
    'cat-spawn': ('cat-spawn-baseline', 'pickleway, one session, cat ends: the --baseline build'),
    'pickleway': ('pickleway-baseline', 'one pickleway hop: the --baseline build'),
}
WORKLOADS = [('small', 'messages_per_s'), ('large', 'mb_per_s')]


def with_baseline(paths, baseline):
    """`paths` with the --baseline build's row after each one-session row."""
    out = []
    for path in paths:
        out.append(path)
        if baseline and path[0] in BASELINE_PATHS:
            out.append(BASELINE_PATHS[path[0]])
    return out


def print_throughput(tput, pinning, label, counts, means, runs, paths, cat=False):
    if cat:
        print(f'The same streams from `cat FILE` to `cat >/dev/null`, start to exit, {label}; '
              f'median of {runs} runs, range in brackets:')
    else:
        print(f'Throughput, generator to checking sink, {label}; median of {runs} runs, '
              'range in brackets:')
    print()
    print('| messages | path | messages/s | MB/s | ÷ ' + ('cat \\| cat |' if cat else 'direct |'))
    print('| --- | --- | ---: | ---: | ---: |')
    for workload, key in WORKLOADS:
        base = median_run(tput[(pinning, workload, paths[0][0])], key)[key]
        what = (f'{counts[workload]:,} × ~{means[workload]:.0f} B' if workload == 'small'
                else f'{counts[workload]:,} × 1 MiB')
        for path, text in paths:
            runs_ = tput[(pinning, workload, path)]
            r = median_run(runs_, key)
            cells = {'messages_per_s': fmt_rate(r['messages_per_s']),
                     'mb_per_s': fmt_rate(r['mb_per_s'])}
            if len(runs_) > 1:
                cells[key] += f' ({spread(runs_, key, fmt_rate)})'
            print(f'| {what} | {text} | {cells["messages_per_s"]} | {cells["mb_per_s"]} | '
                  f'{r[key] / base:.2f} |')
    print()


def main():
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    parser.add_argument('--pickleway', default='build/pickleway')
    parser.add_argument('--load', default='build/tools/bench/relay_load')
    parser.add_argument('--runs', type=int, default=3, help='runs of each measurement')
    parser.add_argument('--scale', type=float, default=1.0,
                        help='multiply the message counts (a quick run: 0.1)')
    parser.add_argument('--only', choices=['throughput', 'latency'],
                        help='run only one half')
    parser.add_argument('--keep', metavar='DIR', help='work in DIR and keep it')
    parser.add_argument('--baseline', metavar='PICKLEWAY',
                        help='another build, run on the one-session paths beside this one')
    args = parser.parse_args()

    for tool in (args.pickleway, args.load) + ((args.baseline,) if args.baseline else ()):
        if not os.access(tool, os.X_OK):
            sys.exit(f'relay_bench: {tool} is not built')
    if not (shutil.which('taskset') and hasattr(os, 'sched_getaffinity')
            and PIN_CPU in os.sched_getaffinity(0)):
        sys.exit(f'relay_bench: needs taskset and CPU {PIN_CPU} (the latency figures and '
                 'the one-CPU throughput figures are pinned there)')
    pin = ['taskset', '-c', str(PIN_CPU)]
    pinnings = [('one-cpu', pin, f'every process pinned to CPU {PIN_CPU} (taskset -c {PIN_CPU})'),
                ('unpinned', [], f'unpinned ({os.cpu_count()} CPUs shared by every process)')]
    have_socat = shutil.which('socat') is not None
    throughput_paths = with_baseline(THROUGHPUT_PATHS, args.baseline)
    latency_paths = with_baseline(LATENCY_PATHS, args.baseline)
    cat_paths = with_baseline([p for p in CAT_PATHS if have_socat or p[0] != 'cat-socat'],
                              args.baseline)

    print('command:', shlex.join([sys.executable] + sys.argv))
    print(f'machine: {machine_info()}; build: {build_info(args.pickleway)}; '
          f'python {platform.python_version()}')
    load = os.getloadavg()[0]
    print(f'load average before the run: {load:.2f}' +
          (' (busy: the figures may be off)' if load > (os.cpu_count() or 1) / 2 else ''))
    print()

    workdir = Path(args.keep) if args.keep else Path(tempfile.mkdtemp(prefix='relay_bench.'))
    workdir.mkdir(parents=True, exist_ok=True)
    bench = Bench(args, workdir)
    corpora = {'small': workdir / 'small', 'large': workdir / 'large'}
    ping = workdir / 'ping'
    means = {'small': write_corpus(corpora['small'], small_messages()),
             'large': write_corpus(corpora['large'], large_messages())}
    write_corpus(ping, [ping_message()])
    counts = {'small': max(1000, int(SMALL_COUNT * args.scale)),
              'large': max(8, int(LARGE_COUNT * args.scale))}
    # The cat paths' streams: what gen writes, in files.
    streams = {}
    if args.only != 'latency':
        for workload in corpora:
            streams[workload] = workdir / f'stream-{workload}'
            with open(streams[workload], 'wb') as out:
                subprocess.run(bench.gen(corpora[workload], counts[workload]), stdout=out,
                               check=True, timeout=TIMEOUT)

    started = time.monotonic()
    tput = {}  # (pinning, workload, path) -> [sink results]
    lat = {}   # path -> [ping results]
    try:
        # Runs are interleaved, so that a slow spell of the machine spreads
        # over every path instead of sinking one.
        for run in range(args.runs):
            if args.only != 'latency':
                for pinning, pin_argv, _ in pinnings:
                    for workload, _ in WORKLOADS:
                        for path, _ in throughput_paths + cat_paths:
                            if path.startswith('cat'):
                                r = bench.cat_stream(path, streams[workload], counts[workload],
                                                     pin_argv)
                            else:
                                r = bench.throughput(path, corpora[workload], counts[workload],
                                                     pin_argv)
                            tput.setdefault((pinning, workload, path), []).append(r)
                            print(f'  run {run + 1}: {pinning} {workload} {path}: '
                                  f'{r["messages_per_s"]:,.0f} msg/s {r["mb_per_s"]:,.0f} MB/s',
                                  file=sys.stderr, flush=True)
            if args.only != 'throughput':
                for path, _ in latency_paths:
                    if path.startswith('socat') and not have_socat:
                        continue
                    r = bench.latency(path, ping, pin)
                    lat.setdefault(path, []).append(r)
                    print(f'  run {run + 1}: ping-pong {path}: median {r["median_us"]:.1f} µs '
                          f'p99 {r["p99_us"]:.1f} µs', file=sys.stderr, flush=True)
    except Failed as e:
        sys.exit(f'relay_bench: {e}')
    finally:
        if not args.keep:
            shutil.rmtree(workdir, ignore_errors=True)
    elapsed = time.monotonic() - started

    if tput:
        for pinning, _, label in pinnings:
            print_throughput(tput, pinning, label, counts, means, args.runs, throughput_paths)
        for pinning, _, label in pinnings:
            print_throughput(tput, pinning, label, counts, means, args.runs, cat_paths, cat=True)

    direct = None
    if lat:
        print(f'Round trip of a {lat["direct"][0]["bytes"]}-byte pickle: {PING_COUNT:,} round '
              f'trips after {PING_WARMUP:,} unrecorded, every process pinned to CPU {PIN_CPU} '
              f'(taskset -c {PIN_CPU}); the run with the median median of {args.runs}:')
        print()
        print('| path | pinning | median µs | p99 µs | hop adds (median − direct) |')
        print('| --- | --- | ---: | ---: | ---: |')
        direct = median_run(lat['direct'], 'median_us')['median_us']
        for path, text in latency_paths:
            if path not in lat:
                continue
            r = median_run(lat[path], 'median_us')
            adds = '—' if path == 'direct' else f'{r["median_us"] - direct:.1f} µs'
            print(f'| {text} | taskset -c {PIN_CPU} | {r["median_us"]:.1f} | {r["p99_us"]:.1f} '
                  f'| {adds} |')
        print()

    print('MB = 10^6 bytes. The sink times its first byte to EOF and checks every message '
          'against the corpus (whole up to 4 KiB; head, tail and 64 B every 64 KiB above). '
          'unix and tcp carry the default framing (pickle) on the wire.')
    print(f'Wall time of the measurements: {elapsed:.0f} s.')
    print()
    print('Targets:')
    if tput:
        for pinning, _, label in pinnings:
            r = median_run(tput[(pinning, 'small', 'spawn')], 'messages_per_s')['messages_per_s']
            print(f'  (a) >= 1M small messages/s through one session, {pinning}: '
                  f'{"met" if r >= 1e6 else "MISSED"} ({r / 1e6:.2f}M messages/s spawn→spawn)')
        for pinning, _, label in pinnings:
            d = median_run(tput[(pinning, 'large', 'direct')], 'mb_per_s')['mb_per_s']
            p = median_run(tput[(pinning, 'large', 'spawn')], 'mb_per_s')['mb_per_s']
            h = median_run(tput[(pinning, 'large', 'hop')], 'mb_per_s')['mb_per_s']
            print(f"  (b) >= 50% of the direct pipe's MB/s, 1 MiB messages, {pinning}: "
                  f'{"met" if p >= 0.5 * d else "MISSED"} ({p:,.0f} of {d:,.0f} MB/s = '
                  f'{p / d:.0%} spawn→spawn; the minimal relay: {h / d:.0%})')
    if lat and 'socat' in lat:
        def adds(path):
            return median_run(lat[path], 'median_us')['median_us'] - direct
        pw, so = adds('pickleway'), adds('socat')
        line = (f'  (c) a pickleway hop adds <= half what a socat hop adds, pinned: '
                f'{"met" if pw <= 0.5 * so else "MISSED"} (pickleway adds {pw:.1f} µs; socat '
                f'with pipes {so:.1f} µs, so {pw / so:.0%} of it')
        if 'socat-socketpair' in lat:
            sp = adds('socat-socketpair')
            line += f'; socat with socketpairs {sp:.1f} µs, {pw / sp:.0%} of it'
        print(line + f'; the minimal relay adds {adds("hop"):.1f} µs)')
    elif lat:
        print('  (c) not measured: socat is not installed (tools/dev bench installs it)')


if __name__ == '__main__':
    main()
