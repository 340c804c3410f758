#!/usr/bin/env python3
"""The threads benchmark: what `threads: 2` carries against `threads: 1`.

    python3 tools/bench/threads_bench.py --pickleway build/pickleway \\
        --load build/tools/bench/relay_load

One tcp->tcp session: relay_load fan opens --connections connections (100)
to the gateway's listener at once and writes the framer's ~100-byte dict-p5
messages on each as fast as it can; each instance connects onward to
relay_load gather, which checks every connection carries exactly its
stream, whole and in order, and times first byte to last EOF. The rate is
all the connections' messages over that time.

The two thread counts run interleaved, --runs times each; it prints each
run, the medians and ranges, and the ratio of each 2-thread run to the
1-thread run just before it (the machine's spells move a run's rate by a
third, so runs side by side compare better than medians). The load tools
run on the same two CPUs: they take a share of what a second thread could
use.
"""

import argparse
import json
import os
import pickle
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from bench_support import (Failed, LogReader, build_info, machine_info,  # noqa: E402
                           write_corpus)

TIMEOUT = 300


def small_messages():
    # The framer benchmark's dict-p5 messages: about 100 bytes each.
    return [pickle.dumps({'id': i, 'name': 'sensor-7', 'value': 3.25, 'ok': True,
                          'tags': ['a', 'b'], 'unit': 'degC'}, protocol=5)
            for i in range(1000)]


def one_run(args, workdir, corpus, threads):
    gather = subprocess.Popen([args.load, 'gather', str(corpus), str(args.messages),
                               '--connections', str(args.connections)],
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        port = int(gather.stdout.readline().split()[1])
        config = workdir / f'threads-{threads}.yaml'
        config.write_text(f'threads: {threads}\nsessions:\n  - name: spread\n'
                          f'    max_instances: {args.connections + 10}\n'
                          '    a: {transport: tcp, listen: "127.0.0.1:0"}\n'
                          f'    b: {{transport: tcp, connect: "127.0.0.1:{port}"}}\n')
        gateway = subprocess.Popen([args.pickleway, 'run', str(config)], stdin=subprocess.DEVNULL,
                                   stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        log = LogReader(gateway.stderr)
        try:
            listening = log.wait_for(r'listening on tcp 127\.0\.0\.1:(\d+)', 10)
            fan = subprocess.run([args.load, 'fan', str(corpus), str(args.messages),
                                  '--connect', listening.group(1),
                                  '--connections', str(args.connections), '--out', os.devnull],
                                 capture_output=True, text=True, timeout=TIMEOUT)
            if fan.returncode != 0:
                raise Failed('fan failed: ' + fan.stderr)
            _, err = gather.communicate(timeout=TIMEOUT)
            if gather.returncode != 0:
                raise Failed('gather failed: ' + err)
            result = json.loads(err.strip().splitlines()[-1])
        finally:
            gateway.terminate()
            gateway.wait(timeout=10)
            log.finish()
        return result['messages_per_s']
    finally:
        if gather.poll() is None:
            gather.kill()
            gather.wait()


def main():
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    parser.add_argument('--pickleway', default='build/pickleway')
    parser.add_argument('--load', default='build/tools/bench/relay_load')
    parser.add_argument('--runs', type=int, default=5)
    parser.add_argument('--connections', type=int, default=100)
    parser.add_argument('--messages', type=int, default=100_000, help='per connection')
    args = parser.parse_args()
    args.pickleway = str(Path(args.pickleway).resolve())
    args.load = str(Path(args.load).resolve())
    print(f'machine: {machine_info()}')
    print(f'build: {build_info(args.pickleway)}')
    print(f'{args.connections} tcp->tcp instances, {args.messages:,} messages of ~100 bytes each')
    rates = {1: [], 2: []}
    with tempfile.TemporaryDirectory(prefix='threads-bench-') as tmp:
        workdir = Path(tmp)
        corpus = workdir / 'small.pickles'
        write_corpus(corpus, small_messages())
        for run in range(args.runs):
            for threads in (1, 2):
                rates[threads].append(one_run(args, workdir, corpus, threads))
            print(f'run {run + 1}: threads 1 {rates[1][-1]:,.0f} msg/s, threads 2 '
                  f'{rates[2][-1]:,.0f} msg/s, ratio {rates[2][-1] / rates[1][-1]:.2f}', flush=True)
    for threads in (1, 2):
        r = rates[threads]
        print(f'threads {threads}: median {statistics.median(r):,.0f} msg/s '
              f'(range {min(r):,.0f} - {max(r):,.0f})')
    ratios = [b / a for a, b in zip(rates[1], rates[2])]
    print(f'2 threads / 1 thread, per run: median {statistics.median(ratios):.2f} '
          f'(range {min(ratios):.2f} - {max(ratios):.2f}); target 1.7')
    return 0


if __name__ == '__main__':
    try:
        sys.exit(main())
    except Failed as e:
        print(f'threads_bench: {e}', file=sys.stderr)
        sys.exit(1)
