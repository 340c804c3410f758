#!/usr/bin/env python3
"""The filter benchmark: what the `log` and `compress` filters cost.

    python3 tools/bench/filter_bench.py --pickleway build/pickleway \\
        --load build/tools/bench/relay_load

`tools/dev bench` runs exactly that, after the framer benchmark. The load
generator and the checking sink are the relay benchmark's (relay_load gen and
sink, tools/bench/relay_load.cpp); the pickles are made here once, by this
python3:

  small   200,000 orders {'seq': i, 'sym': 'AMZN', 'qty': 107, 'side': 'buy'},
          protocol 4 (pickle's default), 58-61 bytes each, every one
          distinct, cycled to 2,000,000 messages: 118 MB whose repeats lie
          12 MB apart, beyond the window of every compressor measured
  text    4 dicts {'id': i, 'payload': <1 MiB of CSV trade lines>},
          protocol 5, cycled to 256 messages (zlib, which runs at 25-50
          MB/s: 64): 1 MiB messages that compress about 3x
  random  4 dicts {'id': i, 'payload': <1 MiB of random bytes>}, protocol 5
          (the relay benchmark's large messages), likewise: 1 MiB that no
          codec shrinks

Throughput, generator to sink (small: messages/s; text, random: MB/s), on:

  session  one pickleway, a: spawn gen, b: spawn sink; no filter, then
           `log: {path: FILE, format: jsonl}` (default queue of 1024
           records: a log that cannot keep up drops records, never data),
           then the same log with a queue as long as the run (drops none)
  link     pickleway 1 (a: spawn gen, b: tcp connect, framing: length) to
           pickleway 2 (b: tcp listen, framing: length; a: spawn sink) on
           127.0.0.1; no filter, then `compress` on both ends: zstd level 1,
           zstd level 3, lz4 (level 0), zlib (level 6)

Session paths run the small and text messages (a log never reads a bytes
payload, so random would time the same thing); link paths run all three.
Bytes on the wire come from the sending pickleway's summary at exit (its
a>b bytes are the frames it wrote; each frame has a 4-byte length before
it). CPU time is read per thread from /proc (schedstat) while each pickleway
runs. The ratio and speed of compress are set against the zstd, lz4 and gzip
command-line tools compressing the same messages as one file (their best
case: one stream, no flush per message): the whole small stream, and the
first 64 text messages (without gzip there: 3 s a pass).

With --before BINARY (an earlier build's pickleway, its plugins beside it),
the paths of the filters that inspect messages (log, firewall; session and
link, small and text messages) also run on that build, interleaved with
the others, and a table sets the two side by side.

Every measurement runs --runs times, interleaved; the tables give the median
run. Nothing is pinned (2 CPUs are shared by the 3 or 4 processes of a path).
A Markdown table and the targets of the filters issue come out on stdout.
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
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from pathlib import Path

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from bench_support import (Failed, LogReader, build_info, fmt_rate, machine_info,  # noqa: E402
                           median_run, read_result, write_corpus, yaml_list)

TIMEOUT = 120  # seconds any one process may take before the run is called hung
SAMPLE_S = 0.01  # how often the CPU time of each pickleway thread is read

SMALL_CORPUS = 200_000
SMALL_COUNT = 2_000_000
LARGE_COUNT = 256  # 256 MiB of payload per run
LARGE_SLOW = {'zlib': 4}  # zlib runs at 25-50 MB/s: a quarter of the messages
LENGTH_PREFIX = 4  # bytes before each message on a `framing: length` link
FRAME_HEADER = 2   # bytes before each compress frame's payload (docs/compress.md)


# --- corpora -----------------------------------------------------------------


def small_messages(count):
    return [pickle.dumps({'seq': i, 'sym': 'AMZN', 'qty': 107, 'side': 'buy'}, protocol=4)
            for i in range(count)]


def csv_payload(rng, size):
    syms = ['AMZN', 'AAPL', 'MSFT', 'GOOG', 'TSLA', 'NVDA', 'META', 'NFLX']
    venues = ['XNAS', 'XNYS', 'BATS', 'ARCX']
    lines, total, seq = [], 0, rng.randrange(10**6)
    while total < size:
        seq += 1
        line = (f'{seq},{rng.choice(syms)},{rng.choice(("buy", "sell"))},{rng.randrange(1, 1000)},'
                f'{rng.uniform(10, 900):.2f},{rng.choice(venues)},'
                f'2024-05-0{rng.randrange(1, 10)}T{rng.randrange(9, 17):02}:'
                f'{rng.randrange(60):02}:{rng.randrange(60):02}.{rng.randrange(10**6):06}Z\n')
        lines.append(line)
        total += len(line)
    return ''.join(lines).encode()[:size]


def text_messages():
    rng = random.Random(2)
    return [pickle.dumps({'id': i, 'payload': csv_payload(rng, 1 << 20)}, protocol=5)
            for i in range(4)]


def random_messages():
    rng = random.Random(1)
    return [pickle.dumps({'id': i, 'payload': rng.randbytes(1 << 20)}, protocol=5)
            for i in range(4)]


# --- running things ----------------------------------------------------------


def read_schedstat(pid, tid):
    """ns the thread has run, or None once it is gone."""
    try:
        with open(f'/proc/{pid}/task/{tid}/schedstat') as f:
            return int(f.read().split()[0])
    except (OSError, ValueError, IndexError):
        return None


class Pickleway:
    """`pickleway run CONFIG`, its stderr, and the CPU time of each of its threads.

    The threads' times are read every SAMPLE_S while it runs; when it has
    exited it is left a zombie (waitid WNOWAIT) for one last reading of its
    main thread before it is reaped. A thread that ended before the process
    did counts what the last reading saw (at most SAMPLE_S short)."""

    def __init__(self, pickleway, config):
        self.config = config
        self.cpu = {}  # tid -> ns it has run
        self.code = None  # the exit status, once reaped
        self.proc = subprocess.Popen([pickleway, 'run', str(config)], stdin=subprocess.DEVNULL,
                                     stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        self.log = LogReader(self.proc.stderr)

    def sample(self):
        pid = self.proc.pid
        try:
            tids = [int(t) for t in os.listdir(f'/proc/{pid}/task')]
        except OSError:
            return
        for tid in tids:
            ns = read_schedstat(pid, tid)
            if ns is not None and ns >= self.cpu.get(tid, 0):
                self.cpu[tid] = ns

    def exited(self):
        """True once it has exited (then it has been read a last time and reaped)."""
        if self.code is not None:
            return True
        try:
            info = os.waitid(os.P_PID, self.proc.pid, os.WEXITED | os.WNOWAIT | os.WNOHANG)
        except ChildProcessError:
            info = True
        if info is None:
            return False
        self.sample()  # the zombie's main thread, for the last time
        self.code = self.proc.wait()
        return True

    def terminate(self):
        if self.code is None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)

    def kill(self):
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()

    def main_cpu(self):
        return self.cpu.get(self.proc.pid, 0) / 1e9

    def other_cpu(self):
        return sum(ns for tid, ns in self.cpu.items() if tid != self.proc.pid) / 1e9

    def summary(self, session):
        """(a>b messages, a>b bytes, b>a messages, b>a bytes) of the exit summary."""
        m = self.log.find(rf'session {re.escape(session)}: \d+ instances?, a>b (\d+) messages '
                          rf'(\d+) bytes, b>a (\d+) messages (\d+) bytes')
        if not m:
            raise Failed(f'no summary of session {session}; log:\n' + self.log.text())
        return tuple(int(g) for g in m.groups())


def wait_all(procs, deadline):
    """Waits for every Pickleway in procs to exit, sampling their threads meanwhile."""
    while True:
        for p in procs:
            if not p.exited():
                p.sample()
        if all(p.code is not None for p in procs):
            break
        if time.monotonic() > deadline:
            for p in procs:
                p.kill()
            raise Failed(f'pickleway run {procs[0].config} hung; log:\n' +
                         '\n'.join(p.log.text() for p in procs))
        time.sleep(SAMPLE_S)
    for p in procs:
        p.log.finish()


def check_ok(p):
    if p.code != 0:
        raise Failed(f'pickleway run {p.config} exited with {p.code}; log:\n' + p.log.text())
    if any('with an error' in line for line in p.log.lines):
        raise Failed(f'pickleway run {p.config} reports an error:\n' + p.log.text())


def count_lines(path):
    n = 0
    with open(path, 'rb') as f:
        while chunk := f.read(1 << 20):
            n += chunk.count(b'\n')
    return n


# filter name -> the YAML of its `filters:` list (FILE: the log's path,
# COUNT: the run's message count)
SESSION_FILTERS = {
    'none': None,
    'log': '[{log: {path: FILE, format: jsonl}}]',
    'log-all': '[{log: {path: FILE, format: jsonl, queue: COUNT}}]',
    'firewall': '[firewall]',
    'metrics': None,  # no filter: `metrics` served, and scraped every SCRAPE_S
}
SCRAPE_S = 0.1
LINK_FILTERS = {
    'none': None,
    'zstd-1': '[{compress: {codec: zstd, level: 1}}]',
    'zstd-3': '[{compress: {codec: zstd, level: 3}}]',
    'lz4': '[{compress: {codec: lz4}}]',
    'zlib': '[{compress: {codec: zlib}}]',
    'firewall': '[firewall]',
}


def free_port():
    with socket.socket() as s:
        s.bind(('127.0.0.1', 0))
        return s.getsockname()[1]


class Scraper:
    """GETs /metrics every SCRAPE_S, as a Prometheus set far too eagerly would."""

    def __init__(self, port):
        self.url = f'http://127.0.0.1:{port}/metrics'
        self.done = threading.Event()
        self.count = 0
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self):
        while not self.done.wait(SCRAPE_S):
            try:
                with urllib.request.urlopen(self.url, timeout=2) as r:
                    if b'pickleway_messages_total' in r.read():
                        self.count += 1
            except OSError:
                pass  # not listening yet, or gone

    def stop(self):
        self.done.set()
        self.thread.join()
        return self.count


class Bench:
    def __init__(self, args, workdir):
        self.pickleway = str(Path(args.pickleway).resolve())
        self.load = str(Path(args.load).resolve())
        self.dir = workdir
        self.serial = 0

    def _fresh(self, stem):
        self.serial += 1
        return self.dir / f'{stem}-{self.serial}'

    def gen(self, corpus, count):
        return [self.load, 'gen', str(corpus), str(count), '--out', os.devnull]

    def sink(self, corpus, count, out):
        return [self.load, 'sink', str(corpus), str(count), '--out', str(out)]

    def session(self, filt, corpus, count, binary=None):
        """One pickleway: a: spawn gen, b: spawn sink, with the filter."""
        stem = self._fresh(f'session-{filt}')
        out, logfile = stem.with_suffix('.sink.json'), stem.with_suffix('.jsonl')
        filters = SESSION_FILTERS[filt]
        if filters:
            filters = filters.replace('FILE', json.dumps(str(logfile)))
            filters = filters.replace('COUNT', str(count))
        config = stem.with_suffix('.yaml')
        port = free_port() if filt == 'metrics' else None
        config.write_text(
            (f'metrics: {{listen: "127.0.0.1:{port}"}}\n' if port else '') +
            'sessions:\n  - name: relay\n'
            f'    a: {{transport: spawn, command: {yaml_list(self.gen(corpus, count))}}}\n'
            f'    b: {{transport: spawn, command: {yaml_list(self.sink(corpus, count, out))}}}\n' +
            (f'    filters: {filters}\n' if filters else ''))
        p = Pickleway(binary or self.pickleway, config)
        scraper = Scraper(port) if port else None
        wait_all([p], time.monotonic() + TIMEOUT)
        check_ok(p)
        r = read_result(out)
        r['cpu'] = {'send_main': p.main_cpu(), 'send_other': p.other_cpu()}
        if scraper:
            r['scrapes'] = scraper.stop()
            if r['scrapes'] == 0:
                raise Failed('the metrics were never scraped; log:\n' + p.log.text())
        if filt.startswith('log'):
            r['records'] = count_lines(logfile)
            m = p.log.find(r'log: (\d+) records? dropped')
            r['dropped'] = int(m.group(1)) if m else 0
            if m:
                r['records'] -= 1  # the log's own `dropped` record
            logfile.unlink()
        return r

    def link(self, filt, corpus, count, binary=None):
        """pickleway 2 listens (b: tcp, a: spawn sink); pickleway 1 connects (a: spawn gen)."""
        stem = self._fresh(f'link-{filt}')
        out = stem.with_suffix('.sink.json')
        filters = LINK_FILTERS[filt]
        filters_line = f'    filters: {filters}\n' if filters else ''
        server_cfg = stem.with_suffix('.server.yaml')
        server_cfg.write_text(
            'sessions:\n  - name: server\n'
            f'    a: {{transport: spawn, command: {yaml_list(self.sink(corpus, count, out))}}}\n'
            '    b: {transport: tcp, listen: "127.0.0.1:0", framing: length}\n' + filters_line)
        deadline = time.monotonic() + TIMEOUT
        server = Pickleway(binary or self.pickleway, server_cfg)
        client = None
        try:
            m = server.log.wait_for(r'session server: listening on (\S+) (\S+)', 10)
            client_cfg = stem.with_suffix('.client.yaml')
            client_cfg.write_text(
                'sessions:\n  - name: client\n'
                f'    a: {{transport: spawn, command: {yaml_list(self.gen(corpus, count))}}}\n'
                f'    b: {{transport: tcp, connect: {json.dumps(m.group(2))}, framing: length}}\n' +
                filters_line)
            client = Pickleway(binary or self.pickleway, client_cfg)
            # The listener runs on for further clients: end it once its
            # instance has ended (check_ok asks that it ended cleanly).
            while not server.log.find(r'session server#\d+: ended'):
                for p in (server, client):
                    if not p.exited():
                        p.sample()
                if server.code is not None or time.monotonic() > deadline:
                    raise Failed('the listening pickleway did not end its instance; logs:\n' +
                                 server.log.text() + '\n' + client.log.text())
                time.sleep(SAMPLE_S)
            server.terminate()
            wait_all([client, server], deadline)
        finally:
            server.terminate()
            for p in (server, client):
                if p is not None and p.code is None:
                    p.kill()
        check_ok(client)
        check_ok(server)
        r = read_result(out)
        sent_messages, sent_bytes, _, _ = client.summary('client')
        if sent_messages != count:
            raise Failed(f'link {filt}: the sender wrote {sent_messages} messages of {count}')
        r['frames'] = sent_bytes
        r['wire'] = sent_bytes + LENGTH_PREFIX * sent_messages
        r['cpu'] = {'send_main': client.main_cpu(), 'send_other': client.other_cpu(),
                    'recv_main': server.main_cpu(), 'recv_other': server.other_cpu()}
        return r

    def throughput(self, path, filt, corpus, count, binary=None):
        r = (self.session if path == 'session' else self.link)(filt, corpus, count, binary)
        if r['messages'] != count:
            raise Failed(f'{path} {filt}: the sink got {r["messages"]} messages of {count}')
        return r


# --- the command-line compressors --------------------------------------------

_ZSTD1 = ('zstd -1', ['zstd', '-1', '-T1', '-q', '-c'])
_ZSTD3 = ('zstd -3', ['zstd', '-3', '-T1', '-q', '-c'])
_LZ4 = ('lz4 -1', ['lz4', '-1', '-q', '-c'])
_GZIP = ('gzip -6', ['gzip', '-6', '-c'])
CLI_TOOLS = {  # per stream; gzip would take 3 s a pass over the text one
    'small': [_ZSTD1, _ZSTD3, _LZ4, _GZIP],
    'text': [_ZSTD1, _ZSTD3, _LZ4],
}
CLI_TEXT_MESSAGES = 64  # the text stream the tools compress: its first 64 messages


def run_cli(argv, stream, out):
    """Compresses stream into out; returns (output bytes, CPU seconds, wall seconds)."""
    with open(stream, 'rb') as src, open(out, 'wb') as dst:
        start = time.monotonic()
        proc = subprocess.Popen(argv, stdin=src, stdout=dst)
        _, status, usage = os.wait4(proc.pid, 0)
        wall = time.monotonic() - start
    proc.returncode = os.waitstatus_to_exitcode(status)
    if proc.returncode != 0:
        raise Failed(f'{shlex.join(argv)} < {stream} exited with {proc.returncode}')
    size = out.stat().st_size
    out.unlink()
    return size, usage.ru_utime + usage.ru_stime, wall


# --- reporting ---------------------------------------------------------------


def tool_version(argv):
    try:
        out = subprocess.run(argv, capture_output=True, text=True)
        text = (out.stdout or out.stderr).strip().splitlines()
        return text[0] if text else '?'
    except OSError:
        return 'missing'


def median(values):
    ordered = sorted(values)
    return ordered[(len(ordered) - 1) // 2]


def fmt_size(v):
    return f'{v:,.1f}' if v < 1000 else f'{v:,.0f}'


WORKLOADS = {  # name -> (key of the rate that counts, paths that run it)
    'small': ('messages_per_s', ('session', 'link')),
    'text': ('mb_per_s', ('session', 'link')),
    'random': ('mb_per_s', ('link',)),
}
PATHS = [
    ('session', 'none', 'one pickleway, spawn→spawn: no filter'),
    ('session', 'log', 'the same + `log` (jsonl file, default queue 1024)'),
    ('session', 'log-all', 'the same + `log` (jsonl file, queue = the run: drops none)'),
    ('session', 'firewall', 'the same + `firewall` (defaults: safe)'),
    ('session', 'metrics', 'no filter, `metrics` served and scraped every 100 ms'),
    ('link', 'none', 'two pickleways, TCP, framing: length: no filter'),
    ('link', 'zstd-1', 'the same + `compress` zstd level 1'),
    ('link', 'zstd-3', 'the same + `compress` zstd level 3'),
    ('link', 'lz4', 'the same + `compress` lz4 (level 0)'),
    ('link', 'zlib', 'the same + `compress` zlib (level 6)'),
    ('link', 'firewall', 'the same + `firewall` on both (each judges what it receives)'),
]


def run_count(counts, workload, filt):
    if workload == 'small':
        return counts[workload]
    return max(8, counts[workload] // LARGE_SLOW.get(filt, 1))


def describe_workload(workload, counts, means):
    if workload == 'small':
        return f'{counts["small"]:,} × ~{means["small"]:.0f} B orders'
    return f'{counts[workload]:,} × 1 MiB, {"CSV text" if workload == "text" else "random"}'


INSPECTING = ('log', 'log-all', 'firewall')


def print_before(tput, before, runs):
    """The inspecting filters on the earlier build and on this one, side by side."""
    print(f'The filters that inspect messages, {before} (before) against this build (after); '
          f'median of {runs} interleaved runs:')
    print()
    print('| messages | path | filter | before | after | after ÷ before | '
          'before ÷ no filter | after ÷ no filter |')
    print('| --- | --- | --- | ---: | ---: | ---: | ---: | ---: |')
    for workload in ('small', 'text'):
        key = WORKLOADS[workload][0]
        unit = 'msg/s' if key == 'messages_per_s' else 'MB/s'
        for path, filt, _ in PATHS:
            if filt not in INSPECTING or ('before', workload, path, filt) not in tput:
                continue
            b = median_run(tput[('before', workload, path, filt)], key)[key]
            a = median_run(tput[(workload, path, filt)], key)[key]
            b0 = median_run(tput[('before', workload, path, 'none')], key)[key]
            a0 = median_run(tput[(workload, path, 'none')], key)[key]
            print(f'| {workload} | {path} | {filt} | {fmt_rate(b)} {unit} | {fmt_rate(a)} {unit} | '
                  f'{a / b:.2f} | {b / b0:.2f} | {a / a0:.2f} |')
    print()


def print_metrics_cost(tput, runs):
    """The small-message session with and without `metrics` served and scraped."""
    key = 'messages_per_s'
    if ('small', 'session', 'metrics') not in tput:
        return
    bare = tput[('small', 'session', 'none')]
    served = tput[('small', 'session', 'metrics')]
    a, b = median_run(bare, key)[key], median_run(served, key)[key]
    scrapes = sorted(r['scrapes'] for r in served)
    print(f'Metrics, small messages, one session (median of {runs}): {b:,.0f} msg/s with `metrics` '
          f'served and scraped every {SCRAPE_S * 1000:.0f} ms ({scrapes[len(scrapes) // 2]} scrapes '
          f'in the median run) against {a:,.0f} without: {b / a:.2f}')
    print()


def print_throughput(tput, counts, means, runs):
    print(f'Throughput, generator to checking sink, unpinned; median of {runs} runs, '
          'range in brackets:')
    print()
    print('| messages | path | messages/s | MB/s | ÷ no filter | wire ratio | '
          'pickleway CPU µs/message | notes |')
    print('| --- | --- | ---: | ---: | ---: | ---: | ---: | --- |')
    for workload, (key, paths) in WORKLOADS.items():
        what = describe_workload(workload, counts, means)
        for path, filt, text in PATHS:
            if path not in paths:
                continue
            runs_ = tput[(workload, path, filt)]
            r = median_run(runs_, key)
            base = median_run(tput[(workload, path, 'none')], key)[key]
            cells = {'messages_per_s': fmt_rate(r['messages_per_s']),
                     'mb_per_s': fmt_rate(r['mb_per_s'])}
            if len(runs_) > 1:
                values = [x[key] for x in runs_]
                cells[key] += f' ({fmt_rate(min(values))}–{fmt_rate(max(values))})'
            cpu = sum(r['cpu'].values())
            ratio, notes = '', ''
            if path == 'link':
                plain = r['bytes'] + LENGTH_PREFIX * r['messages']
                ratio = f'{plain / r["wire"]:.2f}×'
            if 'records' in r:
                notes = (f'{r["records"]:,} records written, {r["dropped"]:,} dropped'
                         if r['dropped'] else f'{r["records"]:,} records written')
            if r['messages'] != counts[workload]:
                text += f' ({r["messages"]:,} messages)'
            print(f'| {what} | {text} | {cells["messages_per_s"]} | {cells["mb_per_s"]} | '
                  f'{r[key] / base:.2f} | {ratio} | {cpu / r["messages"] * 1e6:,.2f} | {notes} |')
    print()


def side(r, which):
    """CPU seconds of one pickleway of a run: 'send' (the only one of a session) or 'recv'."""
    c = r['cpu']
    return c.get(f'{which}_main', 0.0) + c.get(f'{which}_other', 0.0)


def print_cpu(tput, counts):
    n = counts['small']
    print(f'Where the CPU time of pickleway goes, small messages: µs per message in each '
          f'thread (read from /proc/PID/task/TID/schedstat), the median run of each path:')
    print()
    print('| path | event loop, sending pickleway | event loop, receiving pickleway | '
          'other threads (the log\'s writer) | all | added by the filter |')
    print('| --- | ---: | ---: | ---: | ---: | ---: |')
    base = {}
    for path, filt, text in PATHS:
        r = median_run(tput[('small', path, filt)], 'messages_per_s')
        c = r['cpu']
        total = sum(c.values())
        if filt == 'none':
            base[path] = total
        recv = '(one process)' if path == 'session' else f'{c["recv_main"] / n * 1e6:.3f}'
        other = c['send_other'] + c.get('recv_other', 0.0)
        added = '—' if filt == 'none' else f'{(total - base[path]) / n * 1e6:+.3f}'
        print(f'| {text} | {c["send_main"] / n * 1e6:.3f} | {recv} | {other / n * 1e6:.3f} | '
              f'{total / n * 1e6:.3f} | {added} |')
    print()


def print_ratio(workload, title, tput, cli, cli_stream, runs):
    """compress on the link (its median runs) against the command-line tools (cli: name ->
    [(bytes, cpu s, wall s)], on cli_stream: (pickle bytes, messages))."""
    print(f'{title}: compress per message on the link against the command-line tools on the '
          f'same messages as one file ({cli_stream[1]:,} messages, {cli_stream[0]:,} bytes). '
          f'Ratios of the first run (they do not vary); speeds: median of {runs} runs.')
    print()
    print('| compressor | bytes out per message | ratio: wire | ratio: frames | '
          'ratio: codec output | compress MB/s per CPU second | restore MB/s per CPU second |')
    print('| --- | ---: | ---: | ---: | ---: | ---: | ---: |')

    def per_byte(runs_, which):
        return median([side(x, which) / x['bytes'] for x in runs_])

    none = tput[(workload, 'link', 'none')]
    send0, recv0 = per_byte(none, 'send'), per_byte(none, 'recv')
    r = none[0]
    plain = (r['bytes'] + LENGTH_PREFIX * r['messages']) / r['messages']
    print(f'| link without compress (length framing) | {fmt_size(plain)} | 1.00× | | | | |')
    for path, filt, text in PATHS:
        if path != 'link' or filt == 'none':
            continue
        runs_ = tput[(workload, 'link', filt)]
        r = runs_[0]
        n, pickles, frames = r['messages'], r['bytes'], r['frames']
        plain_wire = pickles + LENGTH_PREFIX * n
        send = 1 / (per_byte(runs_, 'send') - send0) / 1e6
        recv = 1 / (per_byte(runs_, 'recv') - recv0) / 1e6
        name = text.replace('the same + ', 'pickleway ')
        print(f'| {name} | {fmt_size(r["wire"] / n)} | {plain_wire / r["wire"]:.2f}× | '
              f'{pickles / frames:.2f}× | {pickles / (frames - FRAME_HEADER * n):.2f}× | '
              f'{send:,.0f} | {recv:,.0f} |')
    stream_bytes, messages = cli_stream
    for name, _ in CLI_TOOLS[workload]:
        if name not in cli:
            continue
        size = cli[name][0][0]
        cpu = median([x[1] for x in cli[name]])
        print(f'| `{name}` CLI, the messages as one file | {fmt_size(size / messages)} | | | '
              f'{stream_bytes / size:.2f}× | {stream_bytes / 1e6 / cpu:,.0f} | |')
    print()


def main():
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    parser.add_argument('--pickleway', default='build/pickleway')
    parser.add_argument('--load', default='build/tools/bench/relay_load')
    parser.add_argument('--runs', type=int, default=3, help='runs of each measurement')
    parser.add_argument('--scale', type=float, default=1.0,
                        help='multiply the message counts (a quick run: 0.1)')
    parser.add_argument('--keep', metavar='DIR', help='work in DIR and keep it')
    parser.add_argument('--before', metavar='BINARY',
                        help="an earlier build's pickleway: the inspecting filters run on it too")
    parser.add_argument('--only-inspecting', action='store_true',
                        help='run only the paths of the filters that inspect messages')
    args = parser.parse_args()

    for tool in (args.pickleway, args.load):
        if not os.access(tool, os.X_OK):
            sys.exit(f'filter_bench: {tool} is not built')
    if not Path(f'/proc/{os.getpid()}/task/{os.getpid()}/schedstat').exists():
        sys.exit('filter_bench: needs /proc/PID/task/TID/schedstat (Linux with schedstats)')

    print('command:', shlex.join([sys.executable] + sys.argv))
    print(f'machine: {machine_info()}; build: {build_info(args.pickleway)}; '
          f'python {platform.python_version()}')
    print('tools: ' + '; '.join(tool_version(v) for v in (['zstd', '-V'], ['lz4', '-V'],
                                                            ['gzip', '-V'])))
    load = os.getloadavg()[0]
    print(f'load average before the run: {load:.2f}' +
          (' (busy: the figures may be off)' if load > (os.cpu_count() or 1) / 2 else ''))
    print()

    workdir = Path(args.keep) if args.keep else Path(tempfile.mkdtemp(prefix='filter_bench.'))
    workdir.mkdir(parents=True, exist_ok=True)
    bench = Bench(args, workdir)
    counts = {'small': max(1000, int(SMALL_COUNT * args.scale)),
              'text': max(8, int(LARGE_COUNT * args.scale)),
              'random': max(8, int(LARGE_COUNT * args.scale))}
    corpora = {w: workdir / w for w in WORKLOADS}
    small = small_messages(min(SMALL_CORPUS, counts['small']))
    text = text_messages()
    means = {'small': write_corpus(corpora['small'], small),
             'text': write_corpus(corpora['text'], text),
             'random': write_corpus(corpora['random'], random_messages())}
    # The streams as the link carries them, for the command-line tools: the
    # whole small stream; the first CLI_TEXT_MESSAGES of the text one.
    cli_streams = {}  # workload -> (path, pickle bytes, messages)
    for workload, messages, count in (('small', small, counts['small']),
                                      ('text', text, min(CLI_TEXT_MESSAGES, counts['text']))):
        path = workdir / f'{workload}.stream'
        with open(path, 'wb') as f:
            whole, rest = divmod(count, len(messages))
            corpus = b''.join(messages)
            for _ in range(whole):
                f.write(corpus)
            f.write(b''.join(messages[:rest]))
        cli_streams[workload] = (path, path.stat().st_size, count)
    del small, text, corpus

    started = time.monotonic()
    tput = {}  # (workload, path, filter) -> [sink results]
    cli = {}   # workload -> tool -> [(bytes, cpu s, wall s)]
    try:
        # Runs are interleaved, so that a slow spell of the machine spreads
        # over every path instead of sinking one.
        for run in range(args.runs):
            for workload, (key, paths) in WORKLOADS.items():
                for path, filt, _ in PATHS:
                    if path not in paths:
                        continue
                    # The paths --only-inspecting keeps: the filters that
                    # inspect, the metrics, and the bare path they are set against.
                    inspecting = filt in INSPECTING or filt in ('none', 'metrics')
                    if args.only_inspecting and not inspecting:
                        continue
                    compared = filt in INSPECTING or filt == 'none'  # what --before runs too
                    if args.before and compared and workload != 'random':
                        r = bench.throughput(path, filt, corpora[workload],
                                             run_count(counts, workload, filt), args.before)
                        tput.setdefault(('before', workload, path, filt), []).append(r)
                    r = bench.throughput(path, filt, corpora[workload],
                                         run_count(counts, workload, filt))
                    tput.setdefault((workload, path, filt), []).append(r)
                    extra = ''
                    if 'wire' in r:
                        extra = f', wire {r["wire"]:,} B'
                    if 'records' in r:
                        extra = f', {r["records"]:,} records, {r["dropped"]:,} dropped'
                    print(f'  run {run + 1}: {workload} {path} {filt}: '
                          f'{r["messages_per_s"]:,.0f} msg/s {r["mb_per_s"]:,.0f} MB/s{extra}',
                          file=sys.stderr, flush=True)
            for workload, (stream, _, _) in cli_streams.items():
                for name, argv in CLI_TOOLS[workload]:
                    if not shutil.which(argv[0]):
                        continue
                    res = run_cli(argv, stream, workdir / 'cli.out')
                    cli.setdefault(workload, {}).setdefault(name, []).append(res)
                    print(f'  run {run + 1}: {workload} {name}: {res[0]:,} bytes, '
                          f'{res[1]:.3f} s CPU', file=sys.stderr, flush=True)
    except Failed as e:
        sys.exit(f'filter_bench: {e}')
    finally:
        if not args.keep:
            shutil.rmtree(workdir, ignore_errors=True)
    elapsed = time.monotonic() - started

    if args.before:
        print_before(tput, args.before, args.runs)
    print_metrics_cost(tput, args.runs)
    if args.only_inspecting:
        return
    print_throughput(tput, counts, means, args.runs)
    print_cpu(tput, counts)
    print_ratio('small', 'Compression of the small orders', tput, cli.get('small', {}),
                cli_streams['small'][1:], args.runs)
    print_ratio('text', 'Compression of the 1 MiB CSV text messages', tput, cli.get('text', {}),
                cli_streams['text'][1:], args.runs)

    print('MB = 10^6 bytes of pickles (what the sink receives, not what the wire carries). '
          'wire ratio: bytes on the link without compress ÷ with it, 4-byte length prefixes '
          'included; frames: without the prefixes; codec output: without the 2-byte frame '
          'headers too (and without the zstd block headers compress leaves out). '
          'pickleway\'s MB/s per CPU second: pickle bytes over the CPU time compress adds to '
          'the sending (compress) or the receiving (restore) pickleway, against the no-filter '
          'link on the same messages; it includes the frame check (CRC-32 of up to 64 KiB of '
          'each message) and the buffers. CLI: user+system time of the tool reading the file '
          'from the page cache and writing a file.')
    print(f'Wall time of the measurements: {elapsed:.0f} s.')
    print()

    def rate(workload, path, filt):
        key = WORKLOADS[workload][0]
        return median_run(tput[(workload, path, filt)], key)[key]

    print('Targets:')
    none, logged = rate('small', 'session', 'none'), rate('small', 'session', 'log')
    logged_all = rate('small', 'session', 'log-all')
    r = median_run(tput[('small', 'session', 'log')], 'messages_per_s')
    cost, cost_all = 1 - logged / none, 1 - logged_all / none
    print(f'  (a) `log` costs <= 30% of the no-filter rate, small messages: '
          f'{"met" if cost <= 0.30 else "MISSED"} ({logged / 1e6:.2f}M of {none / 1e6:.2f}M '
          f'messages/s: costs {cost:.0%}, with {r["dropped"]:,} of {r["messages"]:,} records '
          f'dropped; writing every record: {logged_all / 1e6:.2f}M, costs {cost_all:.0%})')
    for workload in ('text', 'random'):
        base, lz4 = rate(workload, 'link', 'none'), rate(workload, 'link', 'lz4')
        print(f'  (b) `compress` lz4 keeps >= 70% of the no-filter link MB/s, 1 MiB {workload}: '
              f'{"met" if lz4 >= 0.7 * base else "MISSED"} ({lz4:,.0f} of {base:,.0f} MB/s = '
              f'{lz4 / base:.0%})')
    z = tput[('small', 'link', 'zstd-1')][0]
    n = z['messages']
    wire = (z['bytes'] + LENGTH_PREFIX * n) / z['wire']
    frames = z['bytes'] / z['frames']
    payload = z['bytes'] / (z['frames'] - FRAME_HEADER * n)
    print(f'  (c) zstd level 1 reaches >= 4x on the small-message stream: '
          f'{"met" if wire >= 4 else "MISSED"} on the wire ({wire:.2f}x, length prefixes and '
          f'frame headers included); of the frames (headers included, no prefixes): '
          f'{frames:.2f}x ({"met" if frames >= 4 else "missed"} there); the codec output alone: '
          f'{payload:.2f}x')


if __name__ == '__main__':
    main()
