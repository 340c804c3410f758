#!/usr/bin/env python3
"""The Redis benchmark: messages through Redis between gateways, beside raw
pipelined XADD on the same server.

    python3 tools/bench/redis_bench.py --pickleway build/pickleway \\
        --load build/tools/bench/relay_load

`tools/dev bench` runs exactly that. One redis-server (Debian's, started
here on a Unix socket in a temporary directory, no persistence) serves both:

  through  producer gateway (a: spawn relay_load gen, b: redis write) to
           Redis to worker gateway (a: redis read, ack: written, b: spawn
           relay_load sink), both running at once; from the producer's start
           until the group has read and acknowledged every entry (XINFO
           GROUPS, polled every 5 ms); the sink then checks every message
  raw XADD redis-cli --pipe sending the same messages as XADD commands (one
           entry each, field p) down the same socket, as fast as Redis takes
           them: the most a writer can get from this Redis

Beside each, the CPU time Redis spent per message (INFO cpu): the through
path costs Redis an XADD, its share of an XREADGROUP and of an XACK per
message where raw XADD costs it one XADD, on the same two cores that run
both gateways, the generator and the sink.

The corpora are the relay benchmark's: ~100-byte dicts and 1 MiB random
payloads. Every measurement runs --runs times, interleaved; the table gives
the median run and the range. The target: through at least 50% of raw
XADD's rate for small messages.
"""

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from bench_support import (Failed, LogReader, build_info, fmt_rate, machine_info,  # noqa: E402
                           median_run, read_result, write_corpus, yaml_list)
import relay_bench  # noqa: E402  the corpora, relay_load's modes, process helpers

TIMEOUT = 300


class Redis:
    def __init__(self, workdir):
        self.dir = workdir
        self.socket = str(workdir / 'redis.sock')
        self.proc = subprocess.Popen(['redis-server', '--port', '0', '--unixsocket', self.socket,
                                      '--dir', str(workdir), '--save', '', '--appendonly', 'no',
                                      '--logfile', str(workdir / 'redis.log')])
        deadline = time.monotonic() + 10
        while self.cli('PING', check=False) != 'PONG':
            if time.monotonic() > deadline:
                raise Failed('redis-server did not answer')
            time.sleep(0.02)

    def cli(self, *args, check=True):
        r = subprocess.run(['redis-cli', '-s', self.socket] + list(args), capture_output=True, text=True,
                           check=check)
        return r.stdout.strip()

    def group_done(self, stream, group, count):
        """Whether `group` has read `count` entries of `stream` and has none pending."""
        lines = self.cli('XINFO', 'GROUPS', stream, check=False).splitlines()
        info = dict(zip(lines[::2], lines[1::2]))
        return info.get('name') == group and info.get('pending') == '0' and \
            info.get('entries-read') == str(count)

    def cpu_seconds(self):
        info = dict(line.split(':', 1) for line in self.cli('INFO', 'cpu').splitlines() if ':' in line)
        return float(info['used_cpu_sys']) + float(info['used_cpu_user'])

    def stop(self):
        self.proc.terminate()
        self.proc.wait()


def resp_xadd(stream, message):
    return (b'*5\r\n$4\r\nXADD\r\n$%d\r\n%s\r\n$1\r\n*\r\n$1\r\np\r\n$%d\r\n%s\r\n'
            % (len(stream), stream, len(message), message))


def raw_xadd(redis, commands, count, total_bytes):
    redis.cli('DEL', 'raw')
    cpu = redis.cpu_seconds()
    with open(commands, 'rb') as f:
        start = time.perf_counter()
        r = subprocess.run(['redis-cli', '-s', redis.socket, '--pipe'], stdin=f, capture_output=True,
                           text=True)
        seconds = time.perf_counter() - start
    if r.returncode != 0 or f'replies: {count}' not in r.stdout or 'errors: 0' not in r.stdout:
        raise Failed('redis-cli --pipe: ' + r.stdout + r.stderr)
    if redis.cli('XLEN', 'raw') != str(count):
        raise Failed('raw XADD: the stream does not hold every entry')
    cpu = redis.cpu_seconds() - cpu
    redis.cli('DEL', 'raw')
    return {'messages_per_s': count / seconds, 'mb_per_s': total_bytes / seconds / 1e6,
            'redis_us': cpu / count * 1e6}


def through(bench, redis, corpus, count, total_bytes):
    redis.cli('DEL', 'jobs')
    stem = bench._fresh('redis')
    out = stem.with_suffix('.sink.json')
    endpoint = f'{{transport: redis, address: "unix:{redis.socket}", '
    worker_cfg = stem.with_suffix('.worker.yaml')
    worker_cfg.write_text('sessions:\n  - name: worker\n'
                          f'    a: {endpoint}read: {{stream: jobs, group: bench}}}}\n'
                          f'    b: {{transport: spawn, command: {yaml_list(bench.sink(corpus, count, out))}}}\n')
    producer_cfg = stem.with_suffix('.producer.yaml')
    producer_cfg.write_text('sessions:\n  - name: producer\n'
                            f'    a: {{transport: spawn, command: {yaml_list(bench.gen(corpus, count))}}}\n'
                            f'    b: {endpoint}write: {{stream: jobs}}}}\n')
    worker = relay_bench.pickleway_process(bench.pickleway, worker_cfg, [])
    worker_log = LogReader(worker.stderr)
    try:
        deadline = time.monotonic() + 10
        while redis.cli('XINFO', 'GROUPS', 'jobs', check=False).find('bench') < 0:
            if time.monotonic() > deadline:
                raise Failed('the worker gateway did not join its group:\n' + worker_log.text())
            time.sleep(0.01)
        cpu = redis.cpu_seconds()
        start = time.perf_counter()
        producer = relay_bench.pickleway_process(bench.pickleway, producer_cfg, [])
        deadline = time.monotonic() + TIMEOUT
        while not redis.group_done('jobs', 'bench', count):
            if time.monotonic() > deadline:
                raise Failed('the worker did not acknowledge every entry:\n' + worker_log.text())
            time.sleep(0.005)
        seconds = time.perf_counter() - start
        cpu = redis.cpu_seconds() - cpu
        relay_bench.wait_ok(producer, LogReader(producer.stderr), f'pickleway run {producer_cfg}')
    finally:
        worker.terminate()  # SIGTERM: it drains, and the sink reads EOF
    relay_bench.wait_ok(worker, worker_log, f'pickleway run {worker_cfg}')
    r = read_result(out)
    if r['messages'] != count:
        raise Failed(f'the sink got {r["messages"]} messages of {count}')
    redis.cli('DEL', 'jobs')
    return {'messages_per_s': count / seconds, 'mb_per_s': total_bytes / seconds / 1e6,
            'redis_us': cpu / count * 1e6}


def spread(runs, key):
    values = sorted(r[key] for r in runs)
    return values[(len(values) - 1) // 2], values[0], values[-1]


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('--pickleway', default='build/pickleway')
    parser.add_argument('--load', default='build/tools/bench/relay_load')
    parser.add_argument('--runs', type=int, default=3)
    parser.add_argument('--small-count', type=int, default=200_000)
    parser.add_argument('--large-count', type=int, default=100)
    args = parser.parse_args()
    for tool in ('redis-server', 'redis-cli'):
        if not shutil.which(tool):
            sys.exit(f'{tool} is missing: apt-get install redis-server')
    workdir = Path(tempfile.mkdtemp(prefix='pickleway-redis-bench-'))
    try:
        bench = relay_bench.Bench(args, workdir)
        corpora = {'small': workdir / 'small.pickles', 'large': workdir / 'large.pickles'}
        messages = {'small': relay_bench.small_messages(), 'large': relay_bench.large_messages()}
        counts = {'small': args.small_count, 'large': args.large_count}
        totals, commands = {}, {}
        for kind, path in corpora.items():
            write_corpus(path, messages[kind])
            stream = [messages[kind][i % len(messages[kind])] for i in range(counts[kind])]
            totals[kind] = sum(len(m) for m in stream)
            commands[kind] = workdir / f'{kind}.resp'
            with open(commands[kind], 'wb') as f:
                for m in stream:
                    f.write(resp_xadd(b'raw', m))
        redis = Redis(workdir)
        results = {(kind, path): [] for kind in corpora for path in ('through', 'raw')}
        try:
            version = redis.cli('INFO', 'server').split('redis_version:')[1].split()[0]
            for _ in range(args.runs):
                for kind in corpora:
                    results[(kind, 'raw')].append(raw_xadd(redis, commands[kind], counts[kind], totals[kind]))
                    results[(kind, 'through')].append(
                        through(bench, redis, corpora[kind], counts[kind], totals[kind]))
        finally:
            redis.stop()
    except Failed as e:
        sys.exit(f'redis_bench: {e}')
    finally:
        shutil.rmtree(workdir, ignore_errors=True)

    print(f'== Redis: through a producer gateway, Redis {version} and a worker gateway, '
          f'against raw pipelined XADD')
    print(f'   {machine_info()}; {build_info(args.pickleway)}; median of {args.runs} runs [range]')
    print()
    print('| messages | path | msgs/s | MB/s | of raw XADD | Redis CPU µs/msg |')
    print('|---|---|---:|---:|---:|---:|')
    for kind, label in (('small', f'{counts["small"]:,} x ~100 B'), ('large', f'{counts["large"]} x 1 MiB')):
        raw_rate = spread(results[(kind, 'raw')], 'messages_per_s')
        for path in ('raw', 'through'):
            rate, low, high = spread(results[(kind, path)], 'messages_per_s')
            median = median_run(results[(kind, path)], 'messages_per_s')
            mb, redis_us = median['mb_per_s'], median['redis_us']
            name = 'raw XADD (redis-cli --pipe)' if path == 'raw' else 'pickleway -> Redis -> pickleway'
            print(f'| {label} | {name} | {fmt_rate(rate)} [{fmt_rate(low)}-{fmt_rate(high)}] | '
                  f'{mb:,.0f} | {rate / raw_rate[0]:.2f} | {redis_us:.1f} |')


if __name__ == '__main__':
    main()
