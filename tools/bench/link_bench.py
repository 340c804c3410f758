#!/usr/bin/env python3
"""The link benchmark: what `framing: link` costs, how fast it notices and
rides out a broken network, and how a listener takes a burst of clients.

    python3 tools/bench/link_bench.py --pickleway build/pickleway \\
        --load build/tools/bench/relay_load

`tools/dev bench` runs exactly that, after the relay benchmark. Needs root
(network namespaces and nftables, as the link tests).

Throughput, generator to checking sink (relay_load, the relay benchmark's
corpora: ~100-byte dicts and 1 MiB random payloads), unpinned:

  length  pickleway 1 (a: spawn gen, b: tcp connect, framing: length) to
          pickleway 2 (a: tcp listen, framing: length, b: spawn sink) on
          127.0.0.1
  link    the same with framing: link on both
  session one pickleway, a: spawn gen, b: spawn sink: what the two gateways
          are held against (the performance round's target: 0.5 of it)

Faults, two namespaces joined by a veth pair (a producer of a message a
millisecond on the near gateway, a sink on the far one, keepalive_ms 200):

  notice  from an nftables rule that drops everything (a silent partition)
          to the near gateway's "link broken: nothing heard" line; the
          keepalive promises 3 x keepalive_ms = 600 ms
  resume  from lifting the rule to its "link resumed" line (a reconnect
          with retry initial_ms 50, the hello, and the resend)

Burst: 4,000 clients at once (tests/python/burst.py, one asyncio process),
each sending a pickle and reading it back, to a tcp->tcp session (max
4,000 instances) in front of an echo server, against the same clients
straight to the echo server; in a namespace of its own.

Every measurement runs --runs times, interleaved; the tables give the
median run and the range.
"""

import argparse
import json
import os
import re
import shlex
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from bench_support import (Failed, LogReader, build_info, fmt_rate, machine_info,  # noqa: E402
                           median_run, read_result, write_corpus, yaml_list)
import relay_bench  # noqa: E402  the corpora and relay_load's modes

ROOT = Path(__file__).resolve().parents[2]
TIMEOUT = 120
SMALL_COUNT = 2_000_000
LARGE_COUNT = 512


def run_pair(bench, framing, first, second, link_options='{}'):
    """pickleway 2 listens (a: tcp, b: spawn second); pickleway 1 connects (a: spawn first)."""
    stem = bench._fresh(framing)
    extra = f', link: {link_options}' if framing == 'link' else ''
    server_cfg = stem.with_suffix('.server.yaml')
    server_cfg.write_text('sessions:\n  - name: server\n'
                          f'    a: {{transport: tcp, listen: "127.0.0.1:0", framing: {framing}{extra}}}\n'
                          f'    b: {{transport: spawn, command: {yaml_list(second)}}}\n')
    server = relay_bench.pickleway_process(bench.pickleway, server_cfg, [])
    server_log = LogReader(server.stderr)
    try:
        m = server_log.wait_for(r'session server: listening on (\S+) (\S+)', 10)
        client_cfg = stem.with_suffix('.client.yaml')
        client_cfg.write_text('sessions:\n  - name: client\n'
                              f'    a: {{transport: spawn, command: {yaml_list(first)}}}\n'
                              f'    b: {{transport: tcp, connect: {json.dumps(m.group(2))}, '
                              f'framing: {framing}{extra}}}\n')
        client = relay_bench.pickleway_process(bench.pickleway, client_cfg, [])
        relay_bench.wait_ok(client, LogReader(client.stderr), f'pickleway run {client_cfg}')
        server_log.wait_for(r'session server#\d+: ended', TIMEOUT)
    finally:
        if server.poll() is None:
            server.send_signal(signal.SIGTERM)
    relay_bench.wait_ok(server, server_log, f'pickleway run {server_cfg}')


def throughput(bench, framing, corpus, count):
    out = bench._fresh('sink').with_suffix('.json')
    if framing == 'session':
        bench.spawn(bench.gen(corpus, count), bench.sink(corpus, count, out))
    else:
        run_pair(bench, framing, bench.gen(corpus, count), bench.sink(corpus, count, out))
    r = read_result(out)
    if r['messages'] != count:
        raise Failed(f'{framing}: the sink got {r["messages"]} messages of {count}')
    return r


# --- namespaces ----------------------------------------------------------------


def sh(*argv, check=True):
    return subprocess.run(argv, check=check, capture_output=True, text=True)


class Namespaces:
    """Two namespaces `near` and `far` joined by a veth pair, 10.77.0.1 and .2."""

    def __init__(self):
        tag = str(os.getpid())
        self.near, self.far = f'pwbench-{tag}-near', f'pwbench-{tag}-far'
        self.addr = {self.near: '10.77.0.1', self.far: '10.77.0.2'}
        for ns in (self.near, self.far):
            sh('ip', 'netns', 'add', ns)
            sh('ip', '-n', ns, 'link', 'set', 'lo', 'up')
        sh('ip', '-n', self.near, 'link', 'add', 'veth0', 'type', 'veth', 'peer', 'name', 'veth1',
           'netns', self.far)
        for ns, dev in ((self.near, 'veth0'), (self.far, 'veth1')):
            sh('ip', '-n', ns, 'addr', 'add', self.addr[ns] + '/30', 'dev', dev)
            sh('ip', '-n', ns, 'link', 'set', dev, 'up')
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            if sh('ip', 'netns', 'exec', self.near, 'ping', '-c1', '-W1', self.addr[self.far],
                  check=False).returncode == 0:
                break

    def run(self, ns, argv, **kwargs):
        return subprocess.Popen(['ip', 'netns', 'exec', ns] + argv, **kwargs)

    def partition(self):
        for ns in (self.near, self.far):
            sh('ip', 'netns', 'exec', ns, 'nft', 'add table inet pwbench { chain in { '
               'type filter hook input priority 0; ip saddr != 127.0.0.0/8 drop; }; }')

    def heal(self):
        for ns in (self.near, self.far):
            sh('ip', 'netns', 'exec', ns, 'nft', 'delete', 'table', 'inet', 'pwbench', check=False)

    def close(self):
        for ns in (self.near, self.far):
            pids = sh('ip', 'netns', 'pids', ns, check=False).stdout.split()
            for pid in pids:
                try:
                    os.kill(int(pid), signal.SIGKILL)
                except (ProcessLookupError, ValueError):
                    pass
            sh('ip', 'netns', 'delete', ns, check=False)


def fault_times(bench, net):
    """Seconds from a silent partition to its notice, and from healing to resuming."""
    stem = bench._fresh('fault')
    peer = str(ROOT / 'tests' / 'python' / 'peer.py')
    far_cfg = stem.with_suffix('.far.yaml')
    link = 'link: {keepalive_ms: 200}'
    far_cfg.write_text('sessions:\n  - name: far\n'
                       f'    a: {{transport: tcp, listen: "{net.addr[net.far]}:7000", framing: link, {link}}}\n'
                       f'    b: {{transport: spawn, command: {yaml_list([sys.executable, peer, "sink"])}}}\n')
    near_cfg = stem.with_suffix('.near.yaml')
    near_cfg.write_text('sessions:\n  - name: near\n'
                        '    a: {transport: spawn, command: ' +
                        yaml_list([sys.executable, peer, 'flood', '--small', '100000', '--every-ms', '1']) +
                        '}\n'
                        f'    b: {{transport: tcp, connect: "{net.addr[net.far]}:7000", framing: link, '
                        f'retry: {{initial_ms: 50, max_ms: 200}}, {link}}}\n')
    far = net.run(net.far, [bench.pickleway, 'run', str(far_cfg)], stdin=subprocess.DEVNULL,
                  stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    far_log = LogReader(far.stderr)
    near = None
    try:
        far_log.wait_for(r'listening on', 10)
        near = net.run(net.near, [bench.pickleway, 'run', str(near_cfg)], stdin=subprocess.DEVNULL,
                       stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        near_log = LogReader(near.stderr)
        time.sleep(1.0)  # the stream under way
        cut = time.monotonic()
        net.partition()
        near_log.wait_for(r'link broken: nothing heard', 30)
        noticed = time.monotonic() - cut
        time.sleep(0.5)
        healed = time.monotonic()
        net.heal()
        near_log.wait_for(r'link resumed', 30)
        resumed = time.monotonic() - healed
        return {'notice': noticed, 'resume': resumed}
    finally:
        net.heal()
        for p in (near, far):
            if p and p.poll() is None:
                p.kill()
                p.wait()


def burst_times(bench, net, count):
    """Seconds for `count` clients at once, straight to the echo server and through pickleway."""
    burst = str(ROOT / 'tests' / 'python' / 'burst.py')
    stem = bench._fresh('burst')
    cfg = stem.with_suffix('.yaml')
    cfg.write_text('sessions:\n  - name: burst\n'
                   '    a: {transport: tcp, listen: "127.0.0.1:7200"}\n'
                   '    b: {transport: tcp, connect: "127.0.0.1:7100"}\n'
                   f'    max_instances: {count}\n')
    echo = net.run(net.far, [sys.executable, burst, 'echo', '127.0.0.1:7100'],
                   stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
    gateway = None
    try:
        echo.stdout.readline()
        gateway = net.run(net.far, [bench.pickleway, 'run', str(cfg)], stdin=subprocess.DEVNULL,
                          stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        LogReader(gateway.stderr).wait_for(r'listening on', 10)
        out = {}
        for name, port in (('direct', 7100), ('pickleway', 7200)):
            run = subprocess.run(['ip', 'netns', 'exec', net.far, sys.executable, burst, 'clients',
                                  f'127.0.0.1:{port}', '--count', str(count)],
                                 capture_output=True, text=True, timeout=TIMEOUT)
            result = json.loads(run.stdout)
            if result['served'] != count:
                raise Failed(f'burst {name}: {result}')
            out[name] = result['seconds']
        return out
    finally:
        for p in (gateway, echo):
            if p and p.poll() is None:
                p.kill()
                p.wait()


def spread(values, fmt):
    ordered = sorted(values)
    mid = ordered[(len(ordered) - 1) // 2]
    return fmt(mid) + (f' ({fmt(ordered[0])}–{fmt(ordered[-1])})' if len(ordered) > 1 else '')


def main():
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    parser.add_argument('--pickleway', default='build/pickleway')
    parser.add_argument('--load', default='build/tools/bench/relay_load')
    parser.add_argument('--runs', type=int, default=3)
    parser.add_argument('--scale', type=float, default=1.0)
    parser.add_argument('--burst', type=int, default=4000)
    parser.add_argument('--throughput-only', action='store_true',
                        help='only link against length, without the faults and the burst')
    args = parser.parse_args()
    if os.geteuid() != 0:
        sys.exit('link_bench: needs root (network namespaces)')
    print('command:', shlex.join([sys.executable] + sys.argv))
    print(f'machine: {machine_info()}; build: {build_info(args.pickleway)}')
    print()
    workdir = Path(tempfile.mkdtemp(prefix='link_bench.'))
    bench = relay_bench.Bench(args, workdir)
    counts = {'small': max(1000, int(SMALL_COUNT * args.scale)),
              'large': max(8, int(LARGE_COUNT * args.scale))}
    corpora = {'small': workdir / 'small', 'large': workdir / 'large'}
    write_corpus(corpora['small'], relay_bench.small_messages())
    write_corpus(corpora['large'], relay_bench.large_messages())
    tput, faults, bursts = {}, [], []
    net = Namespaces()
    try:
        for run in range(args.runs):
            for workload in ('small', 'large'):
                for framing in ('session', 'length', 'link'):
                    r = throughput(bench, framing, corpora[workload], counts[workload])
                    tput.setdefault((workload, framing), []).append(r)
                    print(f'  run {run + 1}: {workload} {framing}: {r["messages_per_s"]:,.0f} msg/s '
                          f'{r["mb_per_s"]:,.0f} MB/s', file=sys.stderr, flush=True)
            if args.throughput_only:
                continue
            faults.append(fault_times(bench, net))
            print(f'  run {run + 1}: faults {faults[-1]}', file=sys.stderr, flush=True)
            bursts.append(burst_times(bench, net, args.burst))
            print(f'  run {run + 1}: burst {bursts[-1]}', file=sys.stderr, flush=True)
    except Failed as e:
        sys.exit(f'link_bench: {e}')
    finally:
        net.close()

    print(f'Throughput, two gateways on 127.0.0.1, unpinned; median of {args.runs} runs, and the')
    print('ratio of each run\'s link to the length run just before it (the pair shares the spell of')
    print('a noisy machine):')
    print()
    print('| messages | one session | length | link | link ÷ length | per run | length, link ÷ one session |')
    print('| --- | ---: | ---: | ---: | ---: | ---: | ---: |')
    ratios, of_session = {}, {}
    for workload, key, unit in (('small', 'messages_per_s', 'msg/s'), ('large', 'mb_per_s', 'MB/s')):
        session = median_run(tput[(workload, 'session')], key)[key]
        length = median_run(tput[(workload, 'length')], key)[key]
        link = median_run(tput[(workload, 'link')], key)[key]
        of_session[workload] = (length / session, link / session)
        ratios[workload] = [b[key] / a[key] for a, b in zip(tput[(workload, 'length')], tput[(workload, 'link')])]
        what = f'{counts[workload]:,} × ~100 B' if workload == 'small' else f'{counts[workload]:,} × 1 MiB'
        print(f'| {what} | {spread([r[key] for r in tput[(workload, "session")]], fmt_rate)} {unit} | '
              f'{spread([r[key] for r in tput[(workload, "length")]], fmt_rate)} {unit} | '
              f'{spread([r[key] for r in tput[(workload, "link")]], fmt_rate)} {unit} | {link / length:.2f} | '
              f'{spread(ratios[workload], lambda v: f"{v:.2f}")} | '
              f'{length / session:.2f}, {link / session:.2f} |')
    print()
    if faults:
        print_faults_and_bursts(faults, bursts, args.burst)
    small, large = (sorted(ratios[w])[(len(ratios[w]) - 1) // 2] for w in ('small', 'large'))
    print('Target: link keeps >= 90% of length (median per-run ratio): small ' +
          ('met' if small >= 0.9 else 'MISSED') + f' ({small:.0%}), 1 MiB ' +
          ('met' if large >= 0.9 else 'MISSED') + f' ({large:.0%})')
    length, link = of_session['small']
    print('Target: two gateways over TCP >= 0.5 of one session, small messages: length ' +
          ('met' if length >= 0.5 else 'MISSED') + f' ({length:.2f}), link ' +
          ('met' if link >= 0.5 else 'MISSED') + f' ({link:.2f})')


def print_faults_and_bursts(faults, bursts, clients):
    print('Faults (keepalive_ms 200), seconds:')
    print()
    print('| from | to | median (range) |')
    print('| --- | --- | ---: |')
    print(f'| a silent partition | its notice | {spread([f["notice"] for f in faults], lambda v: f"{v:.2f}")} |')
    print(f'| healing it | the link resumed | {spread([f["resume"] for f in faults], lambda v: f"{v:.2f}")} |')
    print()
    print(f'Burst of {clients:,} clients at once, seconds until all are served:')
    print()
    print('| straight to the echo server | through a tcp->tcp pickleway | ratio |')
    print('| ---: | ---: | ---: |')
    d = [b['direct'] for b in bursts]
    p = [b['pickleway'] for b in bursts]
    ratio = sorted(p)[(len(p) - 1) // 2] / sorted(d)[(len(d) - 1) // 2]
    print(f'| {spread(d, lambda v: f"{v:.2f}")} | {spread(p, lambda v: f"{v:.2f}")} | {ratio:.2f} |')
    print()


if __name__ == '__main__':
    main()
